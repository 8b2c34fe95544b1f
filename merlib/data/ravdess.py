"""The RAVDESS corpus: file names, the distribution layouts, pairing audio with video, and the actor split.

Notebook: 00_data_tour.ipynb

RAVDESS names every file with seven two-digit fields ``MM-VV-EE-II-SS-RR-AA``:

======  =====================================================================================
field   values
======  =====================================================================================
MM      modality: 01 full audio-video, 02 video-only, 03 audio-only
VV      vocal channel: 01 speech, 02 song
EE      emotion: 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised
II      intensity: 01 normal, 02 strong (neutral has no strong take)
SS      statement: 01 "Kids are talking by the door", 02 "Dogs are sitting by the door"
RR      repetition: 01, 02
AA      actor: 01–24, odd = male, even = female
======  =====================================================================================

The class index is the emotion code minus one (0 neutral … 7 surprised), the order of the authors' code.
The same functions read the real corpus and merlib's synthetic one (:mod:`merlib.data.synthetic`), which is
written in exactly this naming and layout.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import ConfigError, DataError

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
"""Emotion names in class-index order (index = RAVDESS emotion code − 1)."""

MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
INTENSITIES = {1: "normal", 2: "strong"}
N_ACTORS = 24  # actors 01–24: 12 male (odd), 12 female (even)
SYNTH_MARKER = "merlib_synth.json"  # written by merlib.data.synthetic at the root of a synthetic corpus
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
AUDIO_EXTENSIONS = (".wav",)
VIDEO_EXTENSIONS = (".mp4",)

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


@dataclass(frozen=True, order=True)
class RavdessFile:
    """The seven fields of one RAVDESS file name, decoded."""

    modality: int
    vocal_channel: int
    emotion: str
    label: int
    intensity: int
    statement: int
    repetition: int
    actor: int
    sex: str

    @property
    def clip_id(self) -> str:
        """The six fields shared by a clip's audio-only, full-AV and video-only files (no modality)."""
        return (
            f"{self.vocal_channel:02d}-{self.label + 1:02d}-{self.intensity:02d}-"
            f"{self.statement:02d}-{self.repetition:02d}-{self.actor:02d}"
        )

    def filename(self, modality: int | None = None, ext: str | None = None) -> str:
        """The RAVDESS file name of this clip for ``modality`` (default: its own)."""
        modality = self.modality if modality is None else modality
        if ext is None:
            ext = ".wav" if modality == 3 else ".mp4"
        return f"{modality:02d}-{self.clip_id}{ext}"


def sex_of(actor: int) -> str:
    """RAVDESS convention: odd actors are male, even actors female."""
    return "male" if actor % 2 == 1 else "female"


def parse_filename(name: str | os.PathLike) -> RavdessFile:
    """Decode a RAVDESS file name (a bare name or a full path; the extension is ignored).

    >>> parse_filename("Actor_05/03-01-06-02-01-02-05.wav").emotion
    'fearful'

    Raises :class:`~merlib.errors.DataError` (a ``ValueError``) naming the file and the offending field for
    anything outside RAVDESS's published codes: modality 01–03, vocal channel 01–02, emotion 01–08, intensity
    01–02 (no strong neutral), statement 01–02, repetition 01–02, actor 01–24.
    """
    path = Path(name)
    stem = path.name.split(".")[0]
    m = _NAME.match(stem)
    if not m:
        raise DataError(
            f"RAVDESS file name {path.name!r} does not have seven two-digit fields MM-VV-EE-II-SS-RR-AA "
            f"(e.g. '03-01-06-02-01-02-05.wav')"
        )
    mod, voc, emo, inten, stmt, rep, actor = (int(g) for g in m.groups())

    def bad(field_name: str, value: int, valid: str) -> DataError:
        return DataError(
            f"RAVDESS file name {path.name!r} has {field_name} code {value:02d}; valid codes are {valid}"
        )

    if mod not in MODALITIES:
        raise bad("modality", mod, "01 (audio-video), 02 (video-only), 03 (audio-only)")
    if voc not in VOCAL_CHANNELS:
        raise bad("vocal channel", voc, "01 (speech), 02 (song)")
    if not 1 <= emo <= 8:
        raise bad("emotion", emo, "01–08")
    if inten not in INTENSITIES:
        raise bad("intensity", inten, "01 (normal), 02 (strong)")
    if emo == 1 and inten == 2:
        raise DataError(
            f"RAVDESS file name {path.name!r} has intensity 02 (strong) with emotion 01 (neutral); "
            "RAVDESS has no strong-intensity neutral"
        )
    if stmt not in STATEMENTS:
        raise bad("statement", stmt, "01, 02")
    if rep not in (1, 2):
        raise bad("repetition", rep, "01, 02")
    if not 1 <= actor <= N_ACTORS:
        raise bad("actor", actor, f"01–{N_ACTORS}")
    return RavdessFile(
        modality=mod,
        vocal_channel=voc,
        emotion=EMOTIONS[emo - 1],
        label=emo - 1,
        intensity=inten,
        statement=stmt,
        repetition=rep,
        actor=actor,
        sex=sex_of(actor),
    )


def clip_items(actor: int, vocal_channel: int = 1) -> list[RavdessFile]:
    """The 60 speech clips RAVDESS records per actor, in canonical order (audio-only modality)."""
    items = []
    for label, emotion in enumerate(EMOTIONS):
        for intensity in (1,) if label == 0 else (1, 2):
            for statement in (1, 2):
                for repetition in (1, 2):
                    items.append(
                        RavdessFile(3, vocal_channel, emotion, label, intensity, statement, repetition, actor, sex_of(actor))
                    )
    return items


# ----------------------------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class Clip:
    """One recorded take: its labels and the files that carry it."""

    meta: RavdessFile  # modality-agnostic fields; ``meta.modality`` is 3 (audio-only) by convention
    audio_path: Path | None
    video_path: Path | None  # the full audio-video mp4 (modality 01)

    @property
    def clip_id(self) -> str:
        return self.meta.clip_id


@dataclass
class ScanResult:
    """What :func:`scan` found under a corpus root."""

    root: Path
    clips: list[Clip]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    missing_partner: list[tuple[str, str]] = field(default_factory=list)  # (clip_id, what is missing)

    @property
    def actors(self) -> list[int]:
        return sorted({c.meta.actor for c in self.clips})

    def complete(self) -> list[Clip]:
        """Clips that have both the audio-only wav and the full-AV mp4."""
        return [c for c in self.clips if c.audio_path is not None and c.video_path is not None]

    def report(self) -> str:
        """A short human-readable summary (counts, skipped files, unpaired clips)."""
        n_both = len(self.complete())
        lines = [
            f"{self.root}: {len(self.clips)} clips from {len(self.actors)} actors "
            f"({n_both} with audio and video)",
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s):")
            lines += [f"  {p}: {why}" for p, why in self.skipped[:20]]
            if len(self.skipped) > 20:
                lines.append(f"  … and {len(self.skipped) - 20} more")
        if self.missing_partner:
            lines.append(f"{len(self.missing_partner)} clip(s) missing a partner file:")
            lines += [f"  {cid}: {what}" for cid, what in self.missing_partner[:20]]
            if len(self.missing_partner) > 20:
                lines.append(f"  … and {len(self.missing_partner) - 20} more")
        return "\n".join(lines)


def _refuse_unfinished_synthetic(root: Path) -> None:
    """A synthetic corpus whose build was interrupted holds only some of its clips: refuse it by name."""
    marker = root / SYNTH_MARKER
    if not marker.exists():
        return
    try:
        complete = bool(json.loads(marker.read_text()).get("complete"))
    except (json.JSONDecodeError, AttributeError, OSError) as err:
        raise DataError(f"{marker} is unreadable ({err}): delete {root} and run `merlib synth {root}` again") from err
    if not complete:
        raise DataError(f"{root} is a synthetic corpus whose build did not finish ({marker} says complete: false); "
                        f"run `merlib synth {root}` with the same options again to finish it")


def scan(root: str | os.PathLike, speech_only: bool = True) -> ScanResult:
    """Find RAVDESS clips under ``root`` and pair each audio-only wav with its full-AV mp4.

    Any layout works as long as the files keep their RAVDESS names: the official distribution
    (``Audio_Speech_Actors_01-24/Actor_XX/03-….wav`` and ``Video_Speech_Actor_XX/Actor_XX/01-….mp4``), the
    synthetic corpus (the same), or everything in one folder. Video-only ``02-`` files are recognised but not
    used (the full-AV file carries the same frames). Song (vocal channel 02) is skipped unless
    ``speech_only=False``. Nothing is written under ``root``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"RAVDESS root {root} is not a folder; point DATA_ROOT / --data-root at the folder that holds "
            "Audio_Speech_Actors_01-24 and Video_Speech_Actor_XX (or run `merlib synth DIR` for the synthetic corpus)"
        )
    _refuse_unfinished_synthetic(root)
    audio: dict[str, tuple[RavdessFile, Path]] = {}
    video: dict[str, tuple[RavdessFile, Path]] = {}
    skipped: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            ext = path.suffix.lower()
            if fname.startswith(".") or ext not in AUDIO_EXTENSIONS + VIDEO_EXTENSIONS:
                continue
            try:
                meta = parse_filename(path)
            except ValueError as err:
                skipped.append((path, str(err)))
                continue
            if speech_only and meta.vocal_channel != 1:
                skipped.append((path, "song (vocal channel 02); pass speech_only=False to use it"))
                continue
            if meta.modality == 3 and ext in AUDIO_EXTENSIONS:
                table = audio
            elif meta.modality == 1 and ext in VIDEO_EXTENSIONS:
                table = video
            elif meta.modality == 2:
                continue  # video-only copy of the full-AV stream: not needed
            else:
                skipped.append((path, f"modality {meta.modality:02d} with extension {ext}"))
                continue
            if meta.clip_id in table:
                skipped.append((path, f"duplicate of {table[meta.clip_id][1]}"))
                continue
            table[meta.clip_id] = (meta, path)
    clips: list[Clip] = []
    missing: list[tuple[str, str]] = []
    for cid in sorted(set(audio) | set(video), key=lambda c: (int(c[-2:]), c)):
        a = audio.get(cid)
        v = video.get(cid)
        meta = a[0] if a else v[0]  # type: ignore[index]
        meta = RavdessFile(3, *[getattr(meta, f) for f in ("vocal_channel", "emotion", "label", "intensity",
                                                            "statement", "repetition", "actor", "sex")])
        if a is None:
            missing.append((cid, f"no audio-only wav {meta.filename(3)}"))
        if v is None:
            missing.append((cid, f"no full-AV mp4 {meta.filename(1)}"))
        clips.append(Clip(meta, a[1] if a else None, v[1] if v else None))
    return ScanResult(root=root, clips=clips, skipped=skipped, missing_partner=missing)


# ----------------------------------------------------------------------------------------------- splitting


@dataclass(frozen=True)
class Split:
    """Actor-independent partition of actors into train / validation / test."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]

    def __post_init__(self) -> None:
        sets = [set(self.train), set(self.val), set(self.test)]
        overlap = (sets[0] & sets[1]) | (sets[0] & sets[2]) | (sets[1] & sets[2])
        if overlap:
            raise ConfigError(f"actor(s) {sorted(overlap)} appear in more than one split; splits must be actor-independent")

    def of(self, actor: int) -> str:
        """``"train"``, ``"val"`` or ``"test"`` for an actor."""
        for name in ("train", "val", "test"):
            if actor in getattr(self, name):
                return name
        raise KeyError(f"actor {actor} is in no split")

    def as_dict(self) -> dict[str, list[int]]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}


def actor_split(
    actors: Iterable[int],
    seed: int = 0,
    val_actors: Sequence[int] | None = None,
    test_actors: Sequence[int] | None = None,
    train_actors: Sequence[int] | None = None,
) -> Split:
    """Split actors for actor-independent evaluation (docs/design.md §2), deterministic for ``seed``.

    Default rule for the full 24 actors: validation 1 female + 1 male; test 2 + 1, the sex with two test
    actors alternating with the seed (even seed: two female); training the rest (19/2/3, the paper's
    "80/10/10" with a 180-clip test set). With fewer actors (< 12) the rule scales down to one validation
    and one test actor of opposite sex. Explicit actor lists override the rule; actors given in none of
    them go to training.
    """
    actors = sorted(set(int(a) for a in actors))
    if val_actors is not None or test_actors is not None or train_actors is not None:
        val = tuple(sorted(val_actors or ()))
        test = tuple(sorted(test_actors or ()))
        unknown = (set(val) | set(test) | set(train_actors or ())) - set(actors)
        if unknown:
            raise ConfigError(f"split names actor(s) {sorted(unknown)} that are not in the corpus (actors: {actors})")
        train = tuple(sorted(train_actors)) if train_actors is not None else tuple(
            a for a in actors if a not in val and a not in test
        )
        return Split(train, val, test)
    rng = np.random.default_rng(seed)
    female = [a for a in actors if sex_of(a) == "female"]
    male = [a for a in actors if sex_of(a) == "male"]
    rng.shuffle(female)
    rng.shuffle(male)
    if len(actors) >= 12:
        n_val = {"female": 1, "male": 1}
        n_test = {"female": 2, "male": 1} if seed % 2 == 0 else {"female": 1, "male": 2}
    else:
        # one validation and one test actor of opposite sex; which sex tests alternates with the seed
        n_val = {"female": 1, "male": 0} if seed % 2 else {"female": 0, "male": 1}
        n_test = {"female": 0, "male": 1} if seed % 2 else {"female": 1, "male": 0}
    pools = {"female": female, "male": male}
    for sex in pools:
        need = n_val[sex] + n_test[sex] + 1
        if len(pools[sex]) < need:
            raise DataError(
                f"cannot split actors {actors}: the rule needs at least {need} {sex} actors "
                "(give val_actors/test_actors explicitly)"
            )
    val = [pools[s].pop() for s in pools for _ in range(n_val[s])]
    test = [pools[s].pop() for s in pools for _ in range(n_test[s])]
    train = [a for a in actors if a not in val and a not in test]
    return Split(tuple(sorted(train)), tuple(sorted(val)), tuple(sorted(test)))
