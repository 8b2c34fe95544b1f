"""The reverberant corpus: every RAVDESS clip as the 3-microphone phone would have recorded it.

Notebook: 02_reverberant_corpus.ipynb

From a RAVDESS-shaped corpus (real or synthetic) and an actor split, :func:`build_reverberant_corpus`
writes one folder per configuration (named by a hash of it) holding 16 kHz FLAC files (PCM_24, one channel
per microphone, the clip's full length) and a ``manifest.csv`` that training and the notebooks read:

- ``reverberant``: each training and validation clip convolved with its *own* simulated paper scene
  (:func:`merlib.acoustics.sample_paper_scene`) plus AR(1) noise at 20 dB SNR;
- one condition per test room (``Lecture 1`` …): each test clip convolved with that room's measured ACE
  RIRs when an ACE root is given, else with the simulated ACE-like stand-ins, plus noise — seven test sets;
- ``matched``: each test clip in its own fresh simulated paper scene, drawn exactly like the training rooms
  (a test condition beyond the paper's: the training distribution on held-out actors, so the gap between it
  and the seven rooms measures what unfamiliar rooms and distances cost);
- ``clean``: single-channel 16 kHz copies of every clip, for the clean-trained models and Table I.

Alignment follows :func:`merlib.acoustics.reverberate`: the output keeps the clean clip's length and
starts at sample 0 of the convolution (the direct-path delay is kept, the tail after the clip is cut).

Everything is deterministic for a seed (each clip's room, noise and the test rooms derive from
``(seed, clip)``), parallel over processes, and resumable: each FLAC and its manifest row are written
atomically, the manifest only once every clip is done, and a folder built with other settings is refused.

A clip whose wav cannot be decoded (truncated, empty, not audio) follows merlib's rule for bad files in a
build (docs/design.md, "Bad files in a build"): the build finishes the others, names the skipped file in a
warning and in ``failed.json`` (clip id → file and error), leaves it out of ``manifest.csv``, and the next
build of the same folder tries it again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import DataError, MediaError, OutputError, check_output_dir
from .media import atomic_path, read_audio, write_audio, write_json
from .ravdess import Clip, Split, actor_split, scan

MANIFEST_COLUMNS = [
    "clip_id", "path", "split", "condition", "actor", "sex", "label", "emotion", "statement", "intensity",
    "t60_target", "t60_measured", "distance", "critical_distance", "drr_db", "snr_db", "seed", "rir_source", "gain",
]
"""The columns of docs/design.md §10, plus ``rir_source`` ("simulated paper scene", "simulated ACE-like" or
"ACE measured") and ``gain`` (1.0 unless a clip had to be scaled down to fit FLAC's fixed-point range)."""
CONFIG_FILE = "reverb_config.json"
FAILED_FILE = "failed.json"


@dataclass
class ReverbConfig:
    """Settings of one reverberant corpus build; its hash names the output folder."""

    seed: int = 0
    sample_rate: int = 16000
    snr_db: float = 20.0
    backend: str = "merlib"            # RIR simulator for the training scenes (see merlib.acoustics)
    ace_root: str | None = None        # measured ACE RIRs; None → simulated ACE-like stand-ins
    ace_position: int = 1              # 1 = near (the paper's), 2 = far
    include_clean: bool = True
    include_matched: bool = True      # the test clips also in fresh paper-protocol rooms (condition "matched")
    splits: dict[str, list[int]] = field(default_factory=dict)  # filled from the actor split

    def digest(self, source: str) -> str:
        payload = json.dumps({"config": asdict(self), "source": source}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReverbConfig":
        """Inverse of :meth:`to_dict` (also reads the ``"config"`` of a build's ``reverb_config.json``); unknown
        keys raise so a typo is not silently ignored."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"ReverbConfig has no field(s) {sorted(unknown)}")
        splits = {str(k): [int(a) for a in v] for k, v in (data.get("splits") or {}).items()}
        return cls(**{**data, "splits": splits})


#: The test condition drawn like the training rooms: each test clip in its own freshly sampled paper-protocol
#: room. Against it, the seven test rooms show what rooms unlike the training ones cost.
MATCHED = "matched"


def _clip_seed(seed: int, clip_id: str, condition: str) -> int:
    return zlib.crc32(f"{seed}|{clip_id}|{condition}".encode())


@dataclass(frozen=True)
class _Job:
    clip: Clip
    split: str
    condition: str
    out_path: str
    cfg: ReverbConfig


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _row(job: _Job, **acoustics: Any) -> dict[str, Any]:
    m = job.clip.meta
    row = {
        "clip_id": job.clip.clip_id, "path": "", "split": job.split, "condition": job.condition,
        "actor": m.actor, "sex": m.sex, "label": m.label, "emotion": m.emotion, "statement": m.statement,
        "intensity": m.intensity, "t60_target": "", "t60_measured": "", "distance": "",
        "critical_distance": "", "drr_db": "", "snr_db": "", "seed": job.cfg.seed, "rir_source": "", "gain": 1.0,
    }
    row.update({k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in acoustics.items()})
    return row


_TEST_ROOMS: dict[str, Any] | None = None  # per-process cache of the seven test rooms' RIRs


def _test_rooms(cfg: ReverbConfig) -> dict[str, Any]:
    global _TEST_ROOMS
    if _TEST_ROOMS is None or _TEST_ROOMS["key"] != (cfg.ace_root, cfg.ace_position, cfg.seed, cfg.sample_rate):
        from .ace import test_room_rirs

        rooms = test_room_rirs(cfg.ace_root, position=cfg.ace_position, sample_rate=cfg.sample_rate, seed=cfg.seed)
        _TEST_ROOMS = {"key": (cfg.ace_root, cfg.ace_position, cfg.seed, cfg.sample_rate),
                       "rooms": {r.name: r for r in rooms}}
    return _TEST_ROOMS["rooms"]


def _run_job(job: _Job) -> dict[str, Any]:
    """Write one FLAC and its row (``<file>.json``), or return the row of a file already written."""
    from ..acoustics import drr_db, measure_t60, reverberate, sample_paper_scene, simulate_scene

    out = Path(job.out_path)
    row_file = out.with_suffix(".json")
    if out.exists() and row_file.exists():
        return json.loads(row_file.read_text())
    cfg = job.cfg
    try:
        clean = read_audio(job.clip.audio_path, cfg.sample_rate)
    except MediaError as err:  # a bad source file: recorded in failed.json by the build, never fatal
        return {"clip_id": job.clip.clip_id, "failed": str(err), "source": str(job.clip.audio_path)}
    seed = _clip_seed(cfg.seed, job.clip.clip_id, job.condition)
    rng = np.random.default_rng(seed)
    if job.condition == "clean":
        audio, acoustics = clean[None, :], {}
    elif job.condition in ("reverberant", MATCHED):
        scene = sample_paper_scene(rng)
        rirs = simulate_scene(scene, backend=cfg.backend, generator=torch.Generator().manual_seed(seed)).numpy()
        audio = reverberate(clean, rirs, snr_db=cfg.snr_db, rng=rng)
        acoustics = dict(t60_target=scene.t60, t60_measured=float(np.mean(measure_t60(rirs, scene.fs))),
                         distance=scene.distance, critical_distance=scene.critical_distance,
                         drr_db=float(np.mean(drr_db(rirs, scene.fs))), snr_db=cfg.snr_db,
                         rir_source="simulated paper scene")
    else:
        room = _test_rooms(cfg)[job.condition]
        audio = reverberate(clean, room.rirs, snr_db=cfg.snr_db, rng=rng)
        acoustics = dict(t60_target=room.t60, t60_measured=room.t60_measured, distance=room.distance,
                         critical_distance=room.critical_distance, drr_db=room.drr_db, snr_db=cfg.snr_db,
                         rir_source=room.source)
    peak = float(np.abs(audio).max())
    if peak >= 1.0:  # FLAC is fixed-point: scale a clipping clip down (recorded in the row), never clip it
        audio = audio * (0.99 / peak)
        acoustics["gain"] = 0.99 / peak
    write_audio(out, audio, cfg.sample_rate, subtype="PCM_24")
    row = _row(job, **acoustics)
    row["path"] = out.name  # replaced by the path relative to the build folder when the manifest is written
    write_json(row_file, row)
    return row


def _init_worker() -> None:
    torch.set_num_threads(1)


def plan_jobs(clips: Sequence[Clip], split: Split, cfg: ReverbConfig, out_dir: Path) -> list[_Job]:
    """Every (clip, condition) the build writes, in a fixed order."""
    from .ace import TEST_ROOM_NAMES

    jobs = []
    for clip in clips:
        part = split.of(clip.meta.actor)
        actor_dir = out_dir / f"Actor_{clip.meta.actor:02d}"
        conditions = ["reverberant"] if part in ("train", "val") else list(TEST_ROOM_NAMES)
        if part == "test" and cfg.include_matched:
            conditions = [MATCHED] + conditions
        if cfg.include_clean:
            conditions = ["clean"] + conditions
        for cond in conditions:
            slug = cond.lower().replace(" ", "_")
            jobs.append(_Job(clip, part, cond, str(actor_dir / slug / f"{clip.clip_id}.flac"), cfg))
    return jobs


def build_reverberant_corpus(
    data_root: str | os.PathLike,
    out_root: str | os.PathLike,
    cfg: ReverbConfig | None = None,
    split: Split | None = None,
    workers: int | None = None,
    progress: bool = True,
    max_clips_per_actor: int | None = None,
) -> Path:
    """Build (or resume, or reuse) the reverberant corpus of ``data_root`` under ``out_root``.

    Returns the build folder ``out_root/reverb-<hash>`` holding the FLAC files, ``manifest.csv`` and
    ``reverb_config.json``. ``split`` defaults to :func:`merlib.data.ravdess.actor_split` with the seed.
    ``max_clips_per_actor`` keeps only each actor's first clips (small demos and tests).
    """
    cfg = cfg or ReverbConfig()
    check_output_dir(out_root)
    corpus = scan(data_root)
    clips = [c for c in corpus.clips if c.audio_path is not None]
    if not clips:
        raise DataError(f"no RAVDESS audio found under {data_root}; run `merlib scan {data_root}` to see why")
    if max_clips_per_actor:
        kept: dict[int, int] = {}
        for clip in list(clips):
            kept[clip.meta.actor] = kept.get(clip.meta.actor, 0) + 1
            if kept[clip.meta.actor] > max_clips_per_actor:
                clips.remove(clip)
    split = split or actor_split(corpus.actors, seed=cfg.seed)
    cfg = ReverbConfig(**{**asdict(cfg), "splits": split.as_dict()})
    source = str(Path(data_root).resolve()) + (f"|first{max_clips_per_actor}" if max_clips_per_actor else "")
    out_dir = Path(out_root) / f"reverb-{cfg.digest(source)}"
    record = {"config": asdict(cfg), "source": source, "n_clips": len(clips)}
    cfg_file = out_dir / CONFIG_FILE
    if cfg_file.exists():
        old = json.loads(cfg_file.read_text())
        if {k: old.get(k) for k in record} != record:
            raise OutputError(f"{out_dir} holds a reverberant corpus of other settings ({cfg_file}); "
                              "delete the folder or choose another output root")
    out_dir.mkdir(parents=True, exist_ok=True)
    failed_file = out_dir / FAILED_FILE
    if (out_dir / "manifest.csv").exists() and not failed_file.exists():
        return out_dir
    if not cfg_file.exists():
        write_json(cfg_file, record)
    for stale in out_dir.rglob("*.part*"):  # left by a process killed mid-write
        stale.unlink()
    jobs = plan_jobs(clips, split, cfg, out_dir)
    t0 = time.time()
    workers = max(1, workers or os.cpu_count() or 1)
    bar = tqdm(total=len(jobs), desc="reverberant corpus", unit="file", disable=not progress)
    rows = []
    if workers == 1:
        for job in jobs:
            rows.append(_run_job(job))
            bar.update()
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
            for row in pool.map(_run_job, jobs, chunksize=4):
                rows.append(row)
                bar.update()
    bar.close()
    failed = {r["clip_id"]: {"audio": r["source"], "error": r["failed"]} for r in rows if "failed" in r}
    rows = [dict(row, path=_rel(Path(job.out_path), out_dir)) for job, row in zip(jobs, rows) if "failed" not in row]
    if failed:  # the build still finishes: the bad clips are named, recorded and left out
        write_json(failed_file, failed, sort_keys=True)
        names = "; ".join(v["error"].rstrip(".") for v in list(failed.values())[:5])  # each names its file
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        warnings.warn(f"reverberant corpus: {len(failed)} clip(s) could not be read and are left out: {names}{more}. "
                      f"Listed in {failed_file}; re-download or regenerate them and build again.",
                      RuntimeWarning, stacklevel=2)
    elif failed_file.exists():
        failed_file.unlink()  # every clip that failed before is in now
    with atomic_path(out_dir / "manifest.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    record["seconds"] = round(time.time() - t0, 1)
    write_json(cfg_file, record)
    return out_dir


def read_manifest(build_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a finished build's ``manifest.csv``, with ``path`` made absolute."""
    build_dir = Path(build_dir)
    path = build_dir / "manifest.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the build is unfinished or the folder is wrong; "
                                "run build_reverberant_corpus / `merlib reverb` again to finish it")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["path"] = str(build_dir / row["path"])
    return rows
