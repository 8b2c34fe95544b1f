"""The multimodal dataset: reverberant-corpus audio and cached video frames, per clip, for training and testing.

Notebook: 06_fusion_training.ipynb

Two prepared stores feed training (docs/design.md §10):

* the reverberant corpus (:func:`merlib.data.reverberant.build_reverberant_corpus`): 16 kHz FLAC, one
  channel per microphone, and ``manifest.csv`` with one row per (clip, condition) — ``clean`` (1 channel),
  ``reverberant`` (training/validation clips in simulated rooms, 3 channels) and one condition per test room;
* the video frame cache (:func:`merlib.data.video.build_frame_cache`): ``<clip_id>.npy`` uint8 frames.

:class:`MERDataset` joins them by ``clip_id``. Every item is a dict::

    {"waveform": (C, 64000) float32,   # the first 4 s, zero-padded at the end; microphones 0…C-1
     "video": (3, T, H, W) float32,    # Kinetics-normalised frames; augmented (one draw per clip) when training
     "label": int, "actor": int, "clip_id": str, "condition": str}

``waveform`` is left out for the video-only model and ``video`` for the audio-only models, so neither store
is read when it is not needed. A single-channel model gets microphone 0 of a 3-microphone recording — the
reference's "first row of the stored waveform".

:class:`MERDataModule` picks the rows for a Table II model (:data:`merlib.models.mer.MODEL_SPECS`): train
and validation clips in the model's training condition, test clips per test room, and serves them through
``DataLoader`` workers (persistent between epochs) so that reading keeps up with the model.
:func:`prepare_corpora` builds (or reuses) both stores for a RAVDESS-shaped corpus.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

from .data.video import FrameSettings, VideoFrames
from .errors import DataError
from .models.mer import ModelSpec, get_spec

__all__ = [
    "CLIP_SAMPLES",
    "CorpusPaths",
    "prepare_corpora",
    "read_waveform",
    "MERDataset",
    "MERDataModule",
]

CLIP_SAMPLES = 64000  # 4 s at 16 kHz, the reference's clip length


@dataclass
class CorpusPaths:
    """Where the prepared data of one corpus lives.

    Attributes:
        reverberant: the reverberant build folder (holding ``manifest.csv``).
        frames: the frame-cache folder returned by :func:`~merlib.data.video.build_frame_cache`; None when only
            audio models are trained.
    """

    reverberant: Path
    frames: Path | None = None

    def __post_init__(self) -> None:
        self.reverberant = Path(self.reverberant)
        self.frames = Path(self.frames) if self.frames is not None else None


def prepare_corpora(
    data_root: str | os.PathLike,
    seed: int = 0,
    frame_settings: FrameSettings | None = None,
    ace_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    video: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> CorpusPaths:
    """Build (or reuse) the reverberant corpus and the frame cache of the RAVDESS-shaped corpus ``data_root``.

    Args:
        data_root: a RAVDESS folder (real or :func:`merlib.data.synthetic.ensure_corpus`).
        seed: the reverberant corpus seed (rooms, noise, actor split).
        frame_settings: the frames to cache (default :meth:`FrameSettings.paper`).
        ace_root: measured ACE RIRs for the test rooms; None uses the simulated stand-ins.
        cache_dir: where both live (default :func:`merlib.config.default_cache_dir`): ``reverberant/`` and
            ``frames/`` below it.
        video: also build the frame cache (False for audio-only work).
        workers: processes for the builds (default: all cores).
        progress: tqdm bars.
    """
    from .config import default_cache_dir
    from .data.ravdess import scan
    from .data.reverberant import ReverbConfig, build_reverberant_corpus
    from .data.video import build_frame_cache

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cfg = ReverbConfig(seed=seed, ace_root=str(ace_root) if ace_root else None)
    rev = build_reverberant_corpus(data_root, cache / "reverberant", cfg, workers=workers, progress=progress)
    frames = None
    if video:
        clips = scan(data_root).complete()
        if not clips:
            raise DataError(f"no RAVDESS clip under {data_root} has both its wav and its mp4; "
                             f"run `merlib scan {data_root}` to see what is missing")
        frames = build_frame_cache(clips, cache / "frames", frame_settings or FrameSettings.paper(),
                                   workers=workers, progress=progress)
    return CorpusPaths(rev, frames)


def read_waveform(path: str | os.PathLike, num_mics: int, clip_samples: int = CLIP_SAMPLES) -> np.ndarray:
    """Microphones ``0 … num_mics-1`` of the first ``clip_samples`` samples of a FLAC, zero-padded: float32 (C, N).

    Reads only the samples it needs. Raises naming the file when it has fewer channels than ``num_mics``.
    """
    data, _ = sf.read(str(path), frames=clip_samples, dtype="float32", always_2d=True)  # (n, channels)
    if data.shape[1] < num_mics:
        raise ValueError(
            f"{path} has {data.shape[1]} channel(s) but the model takes {num_mics} microphones; a clean "
            "single-channel recording cannot feed a 3-microphone model — use a reverberant or test-room condition"
        )
    out = np.zeros((num_mics, clip_samples), dtype=np.float32)
    out[:, : data.shape[0]] = data[:, :num_mics].T
    return out


class MERDataset(Dataset):
    """Clips of a reverberant-corpus manifest with their cached frames, as dicts (see the module docstring).

    Args:
        rows: manifest rows (:func:`merlib.data.reverberant.read_manifest`), already filtered to one split and
            condition.
        num_mics: microphones per waveform (1 takes microphone 0).
        frames: the frame-cache folder (needed when ``"video"`` is in ``modalities``).
        frame_settings: the frame settings (default: the cache's own); augmentation comes from here.
        train: augment the video (random crop, flips, rotation — one draw per clip).
        modalities: which of ``"audio"``, ``"video"`` to load.
        clip_samples: waveform length (64 000).
    """

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        num_mics: int = 3,
        frames: str | os.PathLike | None = None,
        frame_settings: FrameSettings | None = None,
        train: bool = False,
        modalities: Sequence[str] = ("audio", "video"),
        clip_samples: int = CLIP_SAMPLES,
    ) -> None:
        unknown = set(modalities) - {"audio", "video"}
        if unknown or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of ('audio', 'video'), got {tuple(modalities)}")
        self.rows = list(rows)
        self.modalities = tuple(modalities)
        self.num_mics = int(num_mics)
        self.clip_samples = int(clip_samples)
        self.train = bool(train)
        if "audio" in self.modalities and self.num_mics < 1:
            raise ValueError(f"num_mics must be >= 1 to load audio, got {num_mics}")
        self.video: VideoFrames | None = None
        if "video" in self.modalities:
            if frames is None:
                raise ValueError(
                    "MERDataset needs the frame cache folder (frames=…) to load video; build it with "
                    "merlib.data.video.build_frame_cache or merlib.datasets.prepare_corpora"
                )
            self.video = VideoFrames([r["clip_id"] for r in self.rows], frames, frame_settings, train=train)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> list[int]:
        return [int(r["label"]) for r in self.rows]

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        item: dict[str, Any] = {"label": int(row["label"]), "actor": int(row["actor"]),
                                "clip_id": row["clip_id"], "condition": row["condition"]}
        if "audio" in self.modalities:
            item["waveform"] = torch.from_numpy(read_waveform(row["path"], self.num_mics, self.clip_samples))
        if self.video is not None:
            item["video"] = self.video[i][0]
        return item


class MERDataModule(L.LightningDataModule):
    """Train, validation and per-room test loaders of one Table II model.

    Args:
        corpus: a :class:`CorpusPaths`, or the reverberant build folder (audio-only models).
        model: the model's name or :class:`~merlib.models.mer.ModelSpec` (its inputs, microphones and training
            condition choose the rows and what each item holds).
        batch_size: clips per loader batch (per device under DDP; :func:`merlib.training.train` divides the
            global batch).
        num_workers: ``DataLoader`` worker processes (kept alive between epochs); 0 loads in the main process.
        frame_settings: frame settings for augmentation (default: the cache's own).
        train_condition: overrides the spec's training condition (``"clean"`` / ``"reverberant"``).
        eval_batch_size: batch of the validation and test loaders (default ``batch_size``).
        pin_memory: pin batches for the GPU (default: when CUDA is available).
    """

    def __init__(
        self,
        corpus: CorpusPaths | str | os.PathLike,
        model: str | ModelSpec,
        batch_size: int = 32,
        num_workers: int = 0,
        frame_settings: FrameSettings | None = None,
        train_condition: str | None = None,
        eval_batch_size: int | None = None,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__()
        self.corpus = corpus if isinstance(corpus, CorpusPaths) else CorpusPaths(Path(corpus))
        self.spec = get_spec(model)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.frame_settings = frame_settings
        self.train_condition = train_condition or self.spec.train_condition
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        if self.spec.uses_video and self.corpus.frames is None:
            raise ValueError(f"model {self.spec.name!r} reads video: give CorpusPaths(reverberant, frames=<frame cache>)")
        self._rows: list[dict[str, Any]] | None = None
        self.skipped_clips: list[str] = []  # clips left out because the frame cache lacks them
        self._datasets: dict[tuple[str, str], MERDataset] = {}

    # -- rows and datasets -------------------------------------------------------------------------

    @property
    def rows(self) -> list[dict[str, Any]]:
        """All manifest rows of the reverberant build (read once). A model that reads video leaves out the
        clips whose video the frame cache could not decode (its ``failed.json``), with a warning naming them."""
        if self._rows is None:
            from .data.reverberant import read_manifest

            rows = read_manifest(self.corpus.reverberant)
            if self.spec.uses_video:
                from .data.video import read_cache_report

                report = read_cache_report(self.corpus.frames)
                missing = sorted({r["clip_id"] for r in rows} - set(report.clips))
                if missing:
                    failed = [f"{report.failed[c]['video']}" for c in missing if c in report.failed]
                    warnings.warn(
                        f"{len(missing)} clip(s) have no frames in {self.corpus.frames} and are left out"
                        + (f" (videos that failed to decode: {', '.join(failed[:5])}"
                           f"{', …' if len(failed) > 5 else ''}; see its failed.json)" if failed else ""),
                        RuntimeWarning, stacklevel=2)
                    self.skipped_clips = missing
                    rows = [r for r in rows if r["clip_id"] not in set(missing)]
            self._rows = rows
        return self._rows

    def test_conditions(self) -> list[str]:
        """The test conditions of the build: ``"matched"`` (when built) and the test rooms in the order of
        :data:`merlib.data.ace.TEST_ROOM_NAMES`."""
        from .data.ace import TEST_ROOM_NAMES
        from .data.reverberant import MATCHED

        present = {r["condition"] for r in self.rows if r["split"] == "test"}
        return [name for name in (MATCHED, *TEST_ROOM_NAMES) if name in present]

    def select(self, split: str, condition: str | None = None) -> list[dict[str, Any]]:
        """Manifest rows of ``split`` in ``condition`` (default: the training condition for train/val)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if condition is None:
            if split == "test":
                raise ValueError(f"name the test condition: one of {self.test_conditions() + ['clean']}")
            condition = self.train_condition
        rows = [r for r in self.rows if r["split"] == split and r["condition"] == condition]
        if not rows:
            have = sorted({r["condition"] for r in self.rows if r["split"] == split})
            raise ValueError(
                f"{self.corpus.reverberant / 'manifest.csv'} has no {split!r} rows in condition {condition!r}; "
                f"its {split} conditions are {have}"
            )
        return rows

    def dataset(self, split: str, condition: str | None = None, train: bool | None = None) -> MERDataset:
        """The :class:`MERDataset` of ``split``/``condition``; augmented iff ``train`` (default: split == train)."""
        augment = (split == "train") if train is None else train
        if condition is None and split != "test":
            condition = self.train_condition
        key = (split, f"{condition}|{augment}")
        if key not in self._datasets:
            self._datasets[key] = MERDataset(
                self.select(split, condition), num_mics=max(1, self.spec.num_mics), frames=self.corpus.frames,
                frame_settings=self.frame_settings, train=augment, modalities=self.spec.inputs,
            )
        return self._datasets[key]

    def _loader(self, ds: MERDataset, batch_size: int, shuffle: bool) -> DataLoader:
        # a last training batch of one clip breaks BatchNorm in training mode (R(2+1)D's last stage pools to 1×1×1)
        drop_last = shuffle and len(ds) % batch_size == 1
        return DataLoader(
            ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0, pin_memory=self.pin_memory,
        )

    def loader(self, split: str, condition: str | None = None) -> DataLoader:
        """A loader for any split and condition (training order and augmentation only for ``"train"``)."""
        if split == "train":
            return self._loader(self.dataset(split, condition), self.batch_size, shuffle=True)
        return self._loader(self.dataset(split, condition), self.eval_batch_size, shuffle=False)

    # -- Lightning hooks ---------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self.dataset("train")
            self.dataset("val")

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test room (:meth:`test_conditions`)."""
        return [self.loader("test", room) for room in self.test_conditions()]

    def describe(self) -> dict[str, Any]:
        """Counts per split for the run's record."""
        return {
            "model": self.spec.name, "train_condition": self.train_condition,
            "reverberant": str(self.corpus.reverberant),
            "frames": str(self.corpus.frames) if self.corpus.frames else None,
            "n_train": len(self.select("train")), "n_val": len(self.select("val")),
            "test_rooms": self.test_conditions(), "skipped_clips": self.skipped_clips,
        }
