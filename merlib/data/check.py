"""Validate a RAVDESS and/or ACE "Mobile" copy: counts per actor, names, readable files, and what is missing.

Notebook: 00_data_tour.ipynb

    merlib check-data DIR [--deep] [--actors 1-24]        # exit 0 when complete, 1 when not

``DIR`` may hold RAVDESS, the ACE Mobile RIRs, or both (as ``merlib fetch … --to DIR`` leaves them, or
placed by hand). What is checked:

RAVDESS (every ``.wav``/``.mp4`` under ``DIR``, any layout, as :func:`merlib.data.ravdess.scan` reads it;
the ACE tree and hidden folders are left out):

* per actor: speech wavs (``03-01-…``, expected 60), full audio-video mp4s (``01-01-…``, 60) and video-only
  mp4s (``02-01-…``, 60) — the video columns only when the copy holds any video (an audio-only copy is
  complete without them, with a note); each missing file is listed by name and expected folder;
* names that do not parse as RAVDESS names (listed; they do not make the copy incomplete), song files
  (ignored) and duplicates;
* every file opens: wav headers through soundfile (48 kHz mono, not empty) plus the RIFF size against the
  file size (a truncated download); mp4 top-level boxes must add up to the file size and hold ``moov``, and
  PyAV must find the streams (video and audio in ``01-``, video in ``02-``). ``deep=True`` decodes every file
  completely instead (minutes for the whole corpus).

The expected set is RAVDESS's 24 actors × 60 clips (``actors`` narrows it, e.g. after
``merlib fetch ravdess --video --actors 1-3``). **Decision:** a folder holding ``merlib_synth.json`` is
merlib's synthetic corpus; it is checked against its own settings (the quick one has 16 actors × 16 clips)
and the report says so, so ``check-data`` passes on a complete synthetic corpus too.

ACE (found by :func:`merlib.data.ace.mobile_dir`): the 7 rooms × 2 positions of
``Mobile/<Room>/<pos>/Mobile_<code>_<pos>_RIR.wav``, each a readable, untruncated 3-channel wav (48 kHz
expected; another rate is noted, as the loader resamples from the header's rate).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import soundfile as sf
from tqdm.auto import tqdm

from . import ace
from .fetch import parse_actors
from .ravdess import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, RavdessFile, clip_items, parse_filename

__all__ = ["DataReport", "RavdessCheck", "AceCheck", "check_data", "check_ravdess", "check_ace", "file_problem"]

RAVDESS_RATE = 48000
_KINDS = {3: "speech wav", 1: "audio-video mp4", 2: "video-only mp4"}


def _folder(kind: int, actor: int) -> str:
    return (f"Audio_Speech_Actors_01-24/Actor_{actor:02d}" if kind == 3
            else f"Video_Speech_Actor_{actor:02d}/Actor_{actor:02d}")


# ------------------------------------------------------------------------------------------ one file


def _riff_problem(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None if head[:4] == b"RF64" else "not a RIFF/WAVE file"
    declared = int.from_bytes(head[4:8], "little" if head[:4] == b"RIFF" else "big") + 8
    size = path.stat().st_size
    if 8 < declared < 0xFFFFFFFF and declared > size:  # 0 / 0xFFFFFFFF: a streamed header, size unknown
        return f"truncated: the header declares {declared} bytes, the file has {size}"
    return None


def _mp4_problem(path: Path) -> str | None:
    size = path.stat().st_size
    pos, boxes = 0, []
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            head = f.read(16)
            if len(head) < 8:
                return f"truncated: {size - pos} stray byte(s) at the end"
            n, kind = int.from_bytes(head[:4], "big"), head[4:8].decode("latin-1")
            if n == 1:
                n = int.from_bytes(head[8:16], "big") if len(head) == 16 else 0
            elif n == 0:
                n = size - pos
            if n < 8:
                return f"corrupt: box {kind!r} at byte {pos} has size {n}"
            if pos + n > size:
                return f"truncated: box {kind!r} at byte {pos} needs {n} bytes, {size - pos} left"
            boxes.append(kind)
            pos += n
    if "moov" not in boxes:
        return f"no 'moov' box (boxes: {', '.join(boxes) or 'none'}): an incomplete file"
    return None


def file_problem(path: str | os.PathLike, kind: str, deep: bool = False) -> str | None:
    """Why ``path`` is unusable, or None. ``kind``: ``"wav"`` (RAVDESS speech: 48 kHz mono), ``"rir"`` (ACE
    Mobile: 3 channels), ``"av"`` (mp4 with video and audio) or ``"video"`` (mp4 with video).

    Header checks by default (see the module docstring); ``deep`` decodes the whole file.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        return "empty file"
    if kind in ("wav", "rir"):
        problem = _riff_problem(path)
        if problem:
            return problem
        try:
            info = sf.info(str(path))
            if deep:
                sf.read(str(path), dtype="float32")
        except Exception as err:  # libsndfile's errors for anything it cannot read
            return f"unreadable ({err})"
        want = 1 if kind == "wav" else ace.MOBILE_CHANNELS
        if info.channels != want:
            return f"{info.channels} channel(s), expected {want}"
        if info.frames == 0:
            return "no samples"
        if kind == "wav" and info.samplerate != RAVDESS_RATE:
            return f"{info.samplerate} Hz, RAVDESS is {RAVDESS_RATE} Hz"
        return None
    problem = _mp4_problem(path)
    if problem:
        return problem
    from .media import MediaError, read_audio, read_video, video_info

    try:
        info = video_info(path)
        if not info["video_codec"]:
            return "no video stream"
        if kind == "av" and not info["audio_codec"]:
            return "no audio stream (a full audio-video '01-' file has one)"
        if deep:
            read_video(path)
            if kind == "av":
                read_audio(path, sample_rate=None)
    except MediaError as err:
        return str(err)
    return None


# ------------------------------------------------------------------------------------------ RAVDESS


@dataclass
class RavdessCheck:
    """What :func:`check_ravdess` found.

    Attributes:
        expected: what the counts are checked against (RAVDESS, or a synthetic corpus's own settings).
        actors: the actors expected.
        per_actor: ``{actor: {"speech wav": n, "audio-video mp4": n, "video-only mp4": n}}`` found.
        expected_per_actor: ``{actor: clips}`` expected per kind.
        video: whether the copy holds video (the video columns are then checked).
        missing: expected files not found, as ``folder/name``.
        broken: ``(path, why)`` for files that exist but cannot be used.
        bad_names: ``(path, why)`` for .wav/.mp4 files whose names do not parse.
        ignored: ``(path, why)`` for song files, actors not expected and duplicates.
    """

    expected: str
    actors: list[int]
    per_actor: dict[int, dict[str, int]]
    expected_per_actor: dict[int, int]
    video: bool
    missing: list[str] = field(default_factory=list)
    broken: list[tuple[Path, str]] = field(default_factory=list)
    bad_names: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.broken


def _synthetic_items(root: Path) -> tuple[str, list[RavdessFile]] | None:
    from .synthetic.corpus import MARKER, CorpusSpec, corpus_items

    marker = root / MARKER
    if not marker.is_file():
        return None

    info = json.loads(marker.read_text())
    spec = CorpusSpec.from_dict(info["spec"])
    items = corpus_items(spec)
    label = (f"merlib's synthetic corpus ({spec.size}, seed {spec.seed}, {len(items) // len(spec.actors)} clips "
             f"per actor; real RAVDESS has 60)")
    return label, items


def _walk_media(root: Path, skip: Iterable[Path]) -> list[Path]:
    skip = [p.resolve() for p in skip]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not d.startswith("ACE_Corpus_") and (here / d).resolve() not in skip)
        out += [here / f for f in sorted(filenames)
                if not f.startswith(".") and Path(f).suffix.lower() in AUDIO_EXTENSIONS + VIDEO_EXTENSIONS]
    return out


def check_ravdess(root: str | os.PathLike, actors: str | Iterable[int] | None = None, deep: bool = False,
                  progress: bool = False, skip: Iterable[Path] = ()) -> RavdessCheck | None:
    """Check the RAVDESS files under ``root`` (see the module docstring); None when there are none."""
    root = Path(root)
    files = _walk_media(root, skip)
    synthetic = _synthetic_items(root)
    if synthetic is not None and actors is None:
        label, items = synthetic
    else:
        label = "RAVDESS (60 speech clips per actor)"
        items = [it for a in parse_actors(actors) for it in clip_items(a)]
    expected_actors = sorted({it.actor for it in items})
    wanted = {(it.actor, it.clip_id) for it in items}

    found: dict[tuple[int, str], Path] = {}  # (modality, clip_id) -> path
    result = RavdessCheck(label, expected_actors, {a: {k: 0 for k in _KINDS.values()} for a in expected_actors},
                          {a: sum(1 for it in items if it.actor == a) for a in expected_actors}, video=False)
    any_ravdess = False
    for path in files:
        try:
            meta = parse_filename(path)
        except ValueError as err:
            result.bad_names.append((path, str(err)))
            continue
        any_ravdess = True
        ext = path.suffix.lower()
        if meta.vocal_channel != 1:
            result.ignored.append((path, "song (vocal channel 02)"))
            continue
        if (meta.modality == 3) != (ext in AUDIO_EXTENSIONS):
            result.bad_names.append((path, f"modality {meta.modality:02d} with extension {ext}"))
            continue
        if (meta.actor, meta.clip_id) not in wanted:
            result.ignored.append((path, f"not expected (actor {meta.actor:02d})"))
            continue
        if (meta.modality, meta.clip_id) in found:
            result.ignored.append((path, f"duplicate of {found[(meta.modality, meta.clip_id)]}"))
            continue
        found[(meta.modality, meta.clip_id)] = path
    if not any_ravdess:
        return None
    result.video = any(mod in (1, 2) for mod, _ in found)
    if synthetic is not None and actors is None:
        result.notes.append(f"{root} is {label}; checked against its own settings")
    if not result.video:
        result.notes.append("no video files: an audio-only copy (the video and multimodal models need "
                            "`merlib fetch ravdess --video`)")

    kinds = (3, 1, 2) if result.video else (3,)
    to_open = []
    for it in items:
        for mod in kinds:
            path = found.get((mod, it.clip_id))
            if path is None:
                result.missing.append(f"{_folder(mod, it.actor)}/{it.filename(mod)}")
            else:
                result.per_actor[it.actor][_KINDS[mod]] += 1
                to_open.append((path, "wav" if mod == 3 else "av" if mod == 1 else "video"))
    for path, kind in tqdm(to_open, desc="checking files", unit="file", disable=not progress, leave=False):
        problem = file_problem(path, kind, deep)
        if problem:
            result.broken.append((path, problem))
    return result


# ------------------------------------------------------------------------------------------ ACE


@dataclass
class AceCheck:
    """What :func:`check_ace` found: the Mobile folder, the 14 expected RIRs, missing and broken ones."""

    mobile: Path
    expected: list[Path]
    missing: list[Path] = field(default_factory=list)
    broken: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.broken


def check_ace(root: str | os.PathLike, deep: bool = False) -> AceCheck | None:
    """Check the ACE Mobile RIRs under ``root`` (7 rooms × positions 1, 2); None when there is no Mobile folder."""
    try:
        mobile = ace.mobile_dir(root)
    except FileNotFoundError:
        return None
    expected = [mobile / r.relative_path(pos) for r in ace.ACE_ROOMS for pos in (1, 2)]
    result = AceCheck(mobile, expected)
    for path in expected:
        if not path.is_file():
            result.missing.append(path)
            continue
        problem = file_problem(path, "rir", deep)
        if problem:
            result.broken.append((path, problem))
        elif sf.info(str(path)).samplerate != ace.ACE_SAMPLE_RATE:
            result.notes.append(f"{path}: {sf.info(str(path)).samplerate} Hz, not ACE's 48 kHz (it is resampled "
                                "from the header's rate)")
    return result


# ------------------------------------------------------------------------------------------ both


@dataclass
class DataReport:
    """:func:`check_data`'s result: ``ok`` when something was found and nothing is missing or broken."""

    root: Path
    ravdess: RavdessCheck | None
    ace: AceCheck | None

    @property
    def ok(self) -> bool:
        found = [c for c in (self.ravdess, self.ace) if c is not None]
        return bool(found) and all(c.ok for c in found)

    def summary(self, max_items: int = 20) -> str:
        """The printed report: per-actor table, problems by kind, then ``complete`` or what is missing."""

        def listing(title: str, rows: list[str]) -> list[str]:
            if not rows:
                return []
            out = [f"  {title} ({len(rows)}):"] + [f"    {r}" for r in rows[:max_items]]
            if len(rows) > max_items:
                out.append(f"    … and {len(rows) - max_items} more")
            return out

        lines = [f"merlib check-data {self.root}"]
        if self.ravdess is None and self.ace is None:
            lines += [
                "  found neither RAVDESS files (names like 03-01-01-01-01-01-01.wav) nor an ACE 'Mobile' folder.",
                "  RAVDESS: `merlib fetch ravdess --to DIR [--video]`, or unzip Audio_Speech_Actors_01-24.zip into "
                "DIR/Audio_Speech_Actors_01-24/ and Video_Speech_Actor_XX.zip into DIR/Video_Speech_Actor_XX/.",
                "  ACE: `merlib fetch ace --to DIR`, or extract ACE_Corpus_RIRN_Mobile.tbz2 into DIR.",
                "INCOMPLETE: nothing to check",
            ]
            return "\n".join(lines)
        r = self.ravdess
        if r is not None:
            lines.append(f"RAVDESS — checked against {r.expected}")
            kinds = list(_KINDS.values()) if r.video else [_KINDS[3]]
            lines.append("  actor  " + "  ".join(f"{k:>16}" for k in kinds))
            for a in r.actors:
                want = r.expected_per_actor[a]
                cells = [f"{r.per_actor[a][k]:>4} / {want:<3}".rjust(16) for k in kinds]
                flag = "" if all(r.per_actor[a][k] == want for k in kinds) else "   incomplete"
                lines.append(f"  {a:>5}  " + "  ".join(cells) + flag)
            lines += [f"  note: {n}" for n in r.notes]
            lines += listing("missing files", _compress_missing(r))
            lines += listing("unreadable or truncated", [f"{p}: {why}" for p, why in r.broken])
            lines += listing("names that are not RAVDESS names (not used)", [f"{p}: {why}" for p, why in r.bad_names])
            lines += _ignored_lines(r)
        a = self.ace
        if a is not None:
            n_ok = len(a.expected) - len(a.missing) - len(a.broken)
            lines.append(f"ACE Mobile — {a.mobile}: {n_ok} of {len(a.expected)} RIRs (7 rooms × positions 1, 2) "
                         f"usable")
            lines += [f"  note: {n}" for n in a.notes]
            lines += listing("missing files", [str(p) for p in a.missing])
            lines += listing("unreadable or truncated", [f"{p}: {why}" for p, why in a.broken])
        if self.ok:
            names = [n for n, c in (("RAVDESS", r), ("ACE Mobile", a)) if c is not None]
            lines.append(f"COMPLETE: {' and '.join(names)} {'are' if len(names) > 1 else 'is'} usable")
        else:
            parts = []
            for name, c in (("RAVDESS", r), ("ACE Mobile", a)):
                if c is not None and not c.ok:
                    parts.append(f"{name}: {len(c.missing)} missing, {len(c.broken)} unreadable")
            hint = " (--actors narrows the check to the actors you fetched)" if r is not None and r.missing else ""
            lines.append("INCOMPLETE: " + "; ".join(parts) + f". Re-fetch (`merlib fetch …`) or replace those "
                         f"files{hint}.")
        return "\n".join(lines)


def _ignored_lines(r: RavdessCheck) -> list[str]:
    """Ignored files summarised: song files and unexpected actors by count, duplicates by name."""
    song = [p for p, why in r.ignored if why.startswith("song")]
    other = sorted({why[-3:-1] for _, why in r.ignored if why.startswith("not expected")})
    dups = [f"{p}: {why}" for p, why in r.ignored if why.startswith("duplicate")]
    lines = []
    if song:
        lines.append(f"  ignored {len(song)} song file(s) (vocal channel 02; merlib uses speech)")
    if other:
        n = sum(1 for _, why in r.ignored if why.startswith("not expected"))
        lines.append(f"  ignored {n} file(s) of clips or actors not checked (actors {', '.join(other)}; "
                     f"see --actors)")
    if dups:
        lines.append(f"  ignored {len(dups)} duplicate(s): " + "; ".join(dups[:5]) + (" …" if len(dups) > 5 else ""))
    return lines


def _compress_missing(r: RavdessCheck) -> list[str]:
    """One line per actor and kind when all its files are missing, else the file names."""
    groups: dict[tuple[str, int], list[str]] = {}  # (folder, modality) -> names
    for item in r.missing:
        folder, name = item.rsplit("/", 1)
        groups.setdefault((folder, int(name[:2])), []).append(name)
    rows = []
    for (folder, mod), names in groups.items():
        actor = int(folder[-2:])
        if len(names) == r.expected_per_actor[actor]:
            rows.append(f"{folder}/: all {len(names)} {_KINDS[mod]}s of actor {actor:02d}")
        else:
            rows += [f"{folder}/{n}" for n in names]
    return rows


def check_data(root: str | os.PathLike, deep: bool = False, actors: str | Iterable[int] | None = None,
               progress: bool = False) -> DataReport:
    """Check RAVDESS and/or ACE Mobile under ``root``; ``report.summary()`` is what ``merlib check-data`` prints.

    ``actors`` (``"1-3,7"``) narrows the RAVDESS actors expected; ``deep`` decodes every file.
    Raises FileNotFoundError when ``root`` is not a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; give the folder you fetched or extracted the corpora into")
    ace_result = check_ace(root, deep)
    skip = [ace_result.mobile] if ace_result is not None else []
    return DataReport(root, check_ravdess(root, actors, deep, progress, skip), ace_result)
