"""Assemble the synthetic RAVDESS corpus: speech + face → wav, full-AV mp4 and video-only mp4.

Notebook: 00_data_tour.ipynb

Layout written (identical to the RAVDESS distribution, so :func:`merlib.data.ravdess.scan` reads it)::

    OUT_DIR/
      Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav   48 kHz, 16-bit, mono
      Video_Speech_Actor_01/Actor_01/01-01-01-01-01-01-01.mp4       H.264 + AAC 48 kHz
      Video_Speech_Actor_01/Actor_01/02-01-01-01-01-01-01.mp4       the same video stream, copied
      merlib_synth.json                                             what was generated, with which seed

Every file is written atomically, so an interrupted build resumes where it stopped (run it again), and a
folder holding a corpus of other settings is refused rather than mixed.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from ... import __version__
from ..media import copy_video_stream, write_audio, write_av, write_json
from ...errors import OutputError, check_output_dir
from ..ravdess import SYNTH_MARKER, RavdessFile, clip_items, sex_of

AUDIO_RATE = 48000
VIDEO_CRF = 18  # visually lossless-ish, like RAVDESS's high-bitrate H.264; 23 merges more near-still frames
MARKER = SYNTH_MARKER


@dataclass(frozen=True)
class CorpusSpec:
    """What to generate. ``quick``: 16 actors × 16 clips at 320×180; ``full``: 24 × 60 at 640×360.

    The quick corpus has 16 actors so that its split (11 training, 2 validation and 3 test actors, the full
    corpus' rule) gives 176 training clips and 48 test clips per condition: enough to learn from and to
    measure an accuracy to within about ±7 points (75 % interval) rather than the ±14 of one test actor.
    """

    size: Literal["quick", "full"] = "quick"
    seed: int = 0
    resolution: tuple[int, int] = (320, 180)  # width, height
    fps: int = 30
    n_actors: int = 16  # actors 1…n_actors (RAVDESS has 24)

    def __post_init__(self) -> None:
        if not 2 <= int(self.n_actors) <= 24:
            raise ValueError(f"a synthetic corpus has 2–24 actors (RAVDESS's 24), got n_actors={self.n_actors}")

    @classmethod
    def preset(cls, size: str = "quick", seed: int = 0, resolution: tuple[int, int] | None = None) -> "CorpusSpec":
        if size not in ("quick", "full"):
            raise ValueError(f"synthetic corpus size must be 'quick' or 'full', not {size!r}")
        default = (320, 180) if size == "quick" else (640, 360)
        res = tuple(resolution) if resolution else default
        w, h = res
        if w % 2 or h % 2 or not (160 <= w <= 1280 and 90 <= h <= 720):
            raise ValueError(f"resolution {w}x{h} must be even and between 160x90 and 1280x720 (RAVDESS's own)")
        return cls(size=size, seed=seed, resolution=(int(w), int(h)), n_actors=16 if size == "quick" else 24)

    @property
    def actors(self) -> list[int]:
        return list(range(1, int(self.n_actors) + 1))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["resolution"] = list(self.resolution)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "CorpusSpec":
        """Inverse of :meth:`to_dict` (what ``merlib_synth.json`` stores under ``"spec"``). Markers written
        before ``n_actors`` existed describe the old layouts: 8 quick actors, 24 full."""
        n_actors = data.get("n_actors", 8 if data.get("size") == "quick" else 24)
        return cls(**{**data, "resolution": tuple(data["resolution"]), "n_actors": n_actors})


def corpus_items(spec: CorpusSpec) -> list[RavdessFile]:
    """The clips of a corpus (audio-only modality), the same set for every actor.

    Full: RAVDESS's 60 speech clips per actor. Quick: 16 per actor (first repetitions), every emotion twice
    with both sentences — neutral as two normal takes, the others one normal and one strong take, the
    sentence of the strong take alternating between emotions so sentence and intensity are not confounded.
    """
    items = []
    for actor in spec.actors:
        every = clip_items(actor)
        if spec.size == "full":
            items += every
            continue
        for f in every:
            if f.repetition != 1:
                continue
            strong_statement = 2 if f.label % 2 == 0 else 1
            if f.label == 0 or f.statement == (strong_statement if f.intensity == 2 else 3 - strong_statement):
                items.append(f)
    return items


def paths_for(root: Path, meta: RavdessFile) -> tuple[Path, Path, Path]:
    """(audio-only wav, full-AV mp4, video-only mp4) in the RAVDESS distribution layout."""
    actor = f"Actor_{meta.actor:02d}"
    wav = root / "Audio_Speech_Actors_01-24" / actor / meta.filename(3)
    vdir = root / f"Video_Speech_Actor_{meta.actor:02d}" / actor
    return wav, vdir / meta.filename(1), vdir / meta.filename(2)


def speech_envelope(audio: np.ndarray, sample_rate: int, n_frames: int) -> np.ndarray:
    """Per-video-frame speech activity in [0, 1] (RMS over each frame's span, scaled by the clip's 95th percentile).

    Drives the drawn jaw so the mouth moves with the words.
    """
    hop = len(audio) / n_frames
    edges = (np.arange(n_frames + 1) * hop).astype(int)
    rms = np.array([np.sqrt(np.mean(audio[a:b] ** 2)) if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:])])
    db = 20 * np.log10(rms + 1e-6)
    env = np.clip((db + 50) / 35, 0, 1)  # -50 dBFS → closed, -15 dBFS → fully open
    return env.astype(np.float32)


def render_clip(meta: RavdessFile, spec: CorpusSpec) -> tuple[np.ndarray, np.ndarray]:
    """Synthesize one clip: (audio float32 at 48 kHz, frames uint8 (T, H, W, 3)). Deterministic."""
    from .face import render_face_video
    from .speech import synthesize_speech

    audio = synthesize_speech(meta.actor, meta.emotion, meta.intensity, meta.statement, meta.repetition,
                              seed=spec.seed, sample_rate=AUDIO_RATE)
    n_frames = max(1, int(round(len(audio) / AUDIO_RATE * spec.fps)))
    frames = render_face_video(meta.actor, meta.emotion, meta.intensity, n_frames, size=spec.resolution,
                               seed=spec.seed, mouth_open=speech_envelope(audio, AUDIO_RATE, n_frames),
                               variant=(meta.statement - 1) * 2 + (meta.repetition - 1))
    return audio, frames


def _write_clip(args: tuple[str, RavdessFile, CorpusSpec]) -> str:
    root, meta, spec = args
    wav, av_mp4, v_mp4 = paths_for(Path(root), meta)
    if wav.exists() and av_mp4.exists() and v_mp4.exists():
        return "kept"
    audio, frames = render_clip(meta, spec)
    write_audio(wav, audio, AUDIO_RATE, subtype="PCM_16")
    write_av(av_mp4, frames, spec.fps, audio, AUDIO_RATE, crf=VIDEO_CRF)
    copy_video_stream(av_mp4, v_mp4)
    return "written"


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one clip per process; don't oversubscribe the cores


def generate_corpus(
    out_dir: str | os.PathLike,
    spec: CorpusSpec | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write the synthetic corpus of ``spec`` into ``out_dir`` (resuming a partial build) and return it.

    ``workers`` processes render clips in parallel (default: all cores). Refuses a folder that holds a
    corpus of different settings or anything that is not a merlib synthetic corpus.
    """
    spec = spec or CorpusSpec.preset("quick")
    root = check_output_dir(out_dir, "OUT_DIR")
    marker = root / MARKER
    if marker.exists():
        old = json.loads(marker.read_text())
        if old.get("spec") != spec.to_dict():
            raise OutputError(
                f"{root} already holds a synthetic corpus with settings {old.get('spec')}; asked for "
                f"{spec.to_dict()}. Choose another OUT_DIR or delete that folder."
            )
    elif root.exists() and any(root.iterdir()):
        raise OutputError(
            f"{root} is not empty and holds no {MARKER}; merlib synth only writes into an empty folder "
            "or resumes its own build. Choose another OUT_DIR."
        )
    root.mkdir(parents=True, exist_ok=True)
    items = corpus_items(spec)
    info = {"merlib_version": __version__, "spec": spec.to_dict(), "n_clips": len(items),
            "actors": spec.actors, "complete": False}
    if not marker.exists():
        write_json(marker, info)
    workers = max(1, workers or os.cpu_count() or 1)
    jobs = [(str(root), meta, spec) for meta in items]
    t0 = time.time()
    bar = tqdm(total=len(jobs), desc=f"synth {spec.size}", unit="clip", disable=not progress)
    counts = {"written": 0, "kept": 0}
    if workers == 1:
        _init_worker()
        for job in jobs:
            counts[_write_clip(job)] += 1
            bar.update()
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
            for status in pool.map(_write_clip, jobs, chunksize=2):
                counts[status] += 1
                bar.update()
    bar.close()
    info.update(complete=True, seconds=round(time.time() - t0, 1), **counts)
    write_json(marker, info)
    return root


def is_complete(root: str | os.PathLike, spec: CorpusSpec | None = None) -> bool:
    """True when ``root`` holds a finished synthetic corpus (of ``spec``, if given)."""
    marker = Path(root) / MARKER
    if not marker.exists():
        return False
    info = json.loads(marker.read_text())
    return bool(info.get("complete")) and (spec is None or info.get("spec") == spec.to_dict())


def ensure_corpus(
    size: str = "quick",
    seed: int = 0,
    root: str | os.PathLike | None = None,
    resolution: tuple[int, int] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Return the root of a finished synthetic corpus, generating it first if needed.

    Default location: ``$MERLIB_CACHE/synthetic/<size><actors>-seed<seed>-<W>x<H>`` (``~/.cache/merlib`` when
    ``MERLIB_CACHE`` is unset), so notebooks, the CLI and the tests share one copy.
    """
    spec = CorpusSpec.preset(size, seed, resolution)
    if root is None:
        from ...config import default_cache_dir

        w, h = spec.resolution
        root = default_cache_dir() / "synthetic" / f"{size}{spec.n_actors}-seed{seed}-{w}x{h}"
    root = Path(root)
    if not is_complete(root, spec):
        generate_corpus(root, spec, workers=workers, progress=progress)
    return root


__all__ = ["CorpusSpec", "corpus_items", "ensure_corpus", "generate_corpus", "render_clip", "paths_for",
           "speech_envelope", "is_complete", "sex_of"]
