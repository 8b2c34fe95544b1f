"""Video frames for the R(2+1)D branch: the reference's frame pipeline, a decode-once cache and augmentation.

Notebook: 05_r2plus1d_video.ipynb

The authors' pipeline (``docs/reference-model.md`` §1.7, ``docs/design.md`` §5), reproduced exactly by default:

1. decode the whole RAVDESS clip (1280×720, 30 fps, ~3.5 s ≈ 105 frames);
2. take ``n_frames = 8`` frames spread uniformly over the **whole** clip with nearest-neighbour sampling —
   frame ``floor(i · T / 8)`` for i = 0…7, exactly what ``F.interpolate(mode="nearest")`` over time picks
   (:func:`sample_indices`);
3. resize every frame to 224×224 **without** keeping the aspect ratio (16:9 is squashed), bilinear;
4. divide by 255 and normalise with the Kinetics-400 mean (0.43216, 0.394666, 0.37645) and std
   (0.22803, 0.22145, 0.216989); the model gets ``(3, T, H, W)`` float;
5. training only: ``RandomCrop(180)``, horizontal and vertical flips (p = 0.3 each) and a rotation
   in ±30° (fill 0, i.e. the mean colour after normalisation), with **one random draw per clip** shared by
   all its frames (torchvision ``transforms.v2`` on a ``(T, C, H, W)`` tensor treats T as a batch of images
   transformed identically). The model thus trains on 180×180 and is evaluated on 224×224, as the reference.

Steps 1–3 give uint8 frames that never change between epochs, so :func:`build_frame_cache` computes them
once per clip — decoding each mp4 a single time, converting only the needed frames to RGB and stopping after
the last one — and stores them as ``<cache>/<hash>/<clip_id>.npy``, uint8 ``(T, H, W, 3)`` (docs/design.md §10).
:class:`VideoFrames` reads that cache and applies steps 4–5: an epoch never decodes video.

Options beyond the paper, all off by default (:class:`FrameSettings`):

* ``align_to_audio_window`` — take the frames from the first 4 s only, the part of the clip the audio branch
  hears (the reference samples the whole clip while its audio is cut to 4 s);
* ``keep_aspect="letterbox"`` (pad to square with the Kinetics mean colour, which normalises to 0) or
  ``"crop"`` (centre square crop) instead of squashing 16:9 into a square;
* ``face_crop`` — a square box around the face found by OpenCV's bundled Haar cascade
  (``haarcascade_frontalface_default.xml``) on the sampled frames, widened by ``face_margin`` of its side on
  every side, one box per clip (the median over the frames where a face was found) so the crop does not
  jitter in time. A clip where no frame shows a face keeps its full frame; the build counts those clips and
  warns once with their number and names.

Decision (the paper is silent, its software version unknown): resizing uses antialiasing. torchvision ≥ 0.17
antialiases by default (the authors' environment may have predated that); without it, squeezing 1280 pixels
into 224 aliases badly. ``FrameSettings(antialias=False)`` gives the older behaviour.

The cache folder's name hashes the settings that change the stored frames *and* the corpus folder, so the
synthetic and the real RAVDESS (same clip ids) never share frames. Builds are parallel (processes), atomic
(every file is written to a temporary name and renamed), resumable (a clip counts as done when its ``.npy``
exists and ``index.json`` lists it; the index is flushed as clips complete) and never write into the corpus.
A video that cannot be decoded is named in a warning and in ``failed.json`` and left out — never replaced
by zeros (merlib's rule for bad files in a build, docs/design.md). ``build.json`` is written when a build has
finished and removed when one starts, so a cache without it is an interrupted build that readers refuse.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import multiprocessing
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..errors import DataError
from .media import MediaError, atomic_path, read_video, write_json
from .ravdess import Clip

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "FrameSettings",
    "ClipFrames",
    "CacheReport",
    "sample_indices",
    "frame_window",
    "resize_frames",
    "detect_face_box",
    "decode_frames",
    "load_clip_frames",
    "normalize_frames",
    "train_augmentation",
    "reference_transform",
    "load_clip_like_reference",
    "corpus_root",
    "build_frame_cache",
    "read_cache_report",
    "VideoFrames",
]

KINETICS_MEAN: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
KINETICS_STD: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)
CACHE_FORMAT = 1  # bump when the stored frames of the same settings would change
SETTINGS_FILE = "settings.json"
INDEX_FILE = "index.json"
FAILED_FILE = "failed.json"
BUILD_FILE = "build.json"
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
_KEEP_ASPECT = (None, "letterbox", "crop")


# ------------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class FrameSettings:
    """How frames are taken from a clip (cached) and augmented for training (applied on the fly).

    The defaults are the paper's (:meth:`paper`); :meth:`quick` is the CPU-sized variant (4 frames of 64×64,
    a 51-pixel training crop). R(2+1)D ends in adaptive pooling, so the same model takes either size.

    Attributes:
        n_frames: frames per clip (paper: 8).
        size: frames are resized to ``size × size`` (paper: 224).
        train_crop: side of the random training crop; ``None`` (default) = ``round(size · 180 / 224)``, i.e.
            the paper's 180 at 224 and 51 at 64 (see :attr:`crop`).
        hflip_p, vflip_p: probabilities of the horizontal and the vertical flip (paper: 0.3 each).
        rotation: training rotations are drawn from ``[-rotation, rotation]`` degrees (paper: 30).
        antialias: antialiased bilinear resize (see the module docstring's decision).
        align_to_audio_window: sample only the first ``audio_window_s`` seconds (the audio crop).
        audio_window_s: the audio branch's crop, 4 s.
        keep_aspect: ``None`` (squash, the paper), ``"letterbox"`` or ``"crop"``.
        face_crop: crop a square around the face (OpenCV Haar cascade) before resizing.
        face_margin: margin added on every side of the detected face box, as a fraction of its side.
    """

    n_frames: int = 8
    size: int = 224
    train_crop: int | None = None
    hflip_p: float = 0.3
    vflip_p: float = 0.3
    rotation: float = 30.0
    antialias: bool = True
    align_to_audio_window: bool = False
    audio_window_s: float = 4.0
    keep_aspect: str | None = None
    face_crop: bool = False
    face_margin: float = 0.25

    def __post_init__(self) -> None:
        if int(self.n_frames) < 1:
            raise ValueError(f"FrameSettings.n_frames must be >= 1, got {self.n_frames}")
        if int(self.size) < 8:
            raise ValueError(f"FrameSettings.size must be >= 8 pixels, got {self.size}")
        if self.train_crop is not None and not 1 <= int(self.train_crop) <= int(self.size):
            raise ValueError(
                f"FrameSettings.train_crop ({self.train_crop}) must lie in 1..size ({self.size}); the reference "
                "crops 180 out of 224 (None scales that ratio to any size)"
            )
        for name in ("hflip_p", "vflip_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"FrameSettings.{name} is a probability, got {getattr(self, name)}")
        if self.rotation < 0:
            raise ValueError(f"FrameSettings.rotation is a maximum angle in degrees (>= 0), got {self.rotation}")
        if self.keep_aspect not in _KEEP_ASPECT:
            raise ValueError(f"FrameSettings.keep_aspect must be one of {_KEEP_ASPECT}, got {self.keep_aspect!r}")
        if self.audio_window_s <= 0 or self.face_margin < 0:
            raise ValueError("FrameSettings.audio_window_s must be > 0 and face_margin >= 0")

    @classmethod
    def paper(cls, **overrides: Any) -> "FrameSettings":
        """The reference's settings: 8 frames, 224×224, crop 180, flips 0.3, rotation ±30°."""
        return cls(**overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> "FrameSettings":
        """CPU-sized: 4 frames of 64×64, training crop 51 (180/224 of 64); other fields as the paper."""
        return cls(**{"n_frames": 4, "size": 64, **overrides})

    @property
    def crop(self) -> int:
        """The training crop's side: ``train_crop``, or ``round(size · 180 / 224)`` when it is None."""
        return int(self.train_crop) if self.train_crop is not None else max(1, round(self.size * 180 / 224))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FrameSettings":
        """Inverse of :meth:`to_dict`; unknown keys raise so a typo is not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"FrameSettings has no field(s) {sorted(unknown)}")
        return cls(**data)

    def cache_fields(self) -> dict[str, Any]:
        """The fields that change the cached uint8 frames (augmentation fields do not)."""
        keys = ["n_frames", "size", "antialias", "align_to_audio_window", "keep_aspect", "face_crop"]
        if self.align_to_audio_window:
            keys.append("audio_window_s")
        if self.face_crop:
            keys.append("face_margin")
        return {k: getattr(self, k) for k in keys}

    def digest(self, source: str = "") -> str:
        """12 hex digits naming a cache folder: the cache fields, the cache format and the corpus ``source``."""
        payload = json.dumps({"format": CACHE_FORMAT, "frames": self.cache_fields(), "source": source},
                             sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------- the frame pipeline


def sample_indices(total_frames: int, n_frames: int) -> np.ndarray:
    """The frames ``F.interpolate(video, size=n_frames, mode="nearest")`` keeps out of ``total_frames``.

    Index ``i`` maps to ``floor(i · total / n)`` computed in float32 as PyTorch does (clamped to the last
    frame); with fewer frames than ``n_frames`` some frames repeat, as in the reference.
    """
    if total_frames < 1 or n_frames < 1:
        raise ValueError(f"need total_frames >= 1 and n_frames >= 1, got {total_frames} and {n_frames}")
    if total_frames == n_frames:
        return np.arange(n_frames, dtype=np.int64)
    scale = np.float32(total_frames) / np.float32(n_frames)
    idx = np.floor(np.arange(n_frames, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, total_frames - 1)


def frame_window(total_frames: int, fps: float, settings: FrameSettings) -> int:
    """How many leading frames the sampling may use: all, or those inside the audio window."""
    if not settings.align_to_audio_window:
        return total_frames
    in_window = math.ceil(settings.audio_window_s * fps - 1e-6)  # frames with timestamp < window
    return max(1, min(total_frames, in_window))


def _mean_colour() -> list[int]:
    return [round(255 * m) for m in KINETICS_MEAN]


def resize_frames(
    frames: np.ndarray, size: int, keep_aspect: str | None = None, antialias: bool = True
) -> np.ndarray:
    """Resize uint8 RGB frames ``(T, H, W, 3)`` to ``(T, size, size, 3)`` (bilinear, one call for all frames).

    ``keep_aspect=None`` squashes (the reference); ``"crop"`` takes the centred square first;
    ``"letterbox"`` fits the longer side and pads with the Kinetics mean colour (0 after normalisation).
    """
    from torchvision.transforms.v2 import functional as TF

    if keep_aspect not in _KEEP_ASPECT:
        raise ValueError(f"keep_aspect must be one of {_KEEP_ASPECT}, got {keep_aspect!r}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    h, w = x.shape[-2:]
    if keep_aspect == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        x = x[..., top : top + side, left : left + side]
    if keep_aspect == "letterbox":
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = TF.resize(x, [nh, nw], antialias=antialias)
        top, left = (size - nh) // 2, (size - nw) // 2
        x = TF.pad(x, [left, top, size - nw - left, size - nh - top], fill=_mean_colour())
    elif (h, w) != (size, size):
        x = TF.resize(x, [size, size], antialias=antialias)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


@functools.lru_cache(maxsize=1)
def _cascade():
    import cv2

    path = os.path.join(cv2.data.haarcascades, HAAR_CASCADE)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(
            f"OpenCV could not load its bundled face detector {path}; reinstall opencv-python-headless<5"
        )
    return cascade


@functools.lru_cache(maxsize=1)
def _clahe():
    import cv2

    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def detect_face_box(frames: np.ndarray, margin: float = 0.25, detect_width: int = 480) -> tuple[int, int, int] | None:
    """One square face box ``(left, top, side)`` for a clip's frames, or ``None`` when no frame shows a face.

    Each frame (RGB uint8, downscaled to ``detect_width`` for speed) goes through OpenCV's Haar cascade — again
    after CLAHE contrast equalisation when the plain grey image gives nothing; the largest detection counts. The box is the median centre and size over the frames with a face, widened by
    ``margin`` · side on every side, then shifted (and if need be shrunk) to lie inside the frame.
    """
    import cv2

    h, w = frames.shape[1:3]
    scale = min(1.0, detect_width / w)
    found = []
    for img in frames:
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        min_side = max(20, int(0.1 * min(gray.shape)))
        boxes = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        if not len(boxes):
            # the cascade misses low-contrast (e.g. dark-skinned) faces; local contrast equalisation recovers
            # many of them without adding false detections on the others
            boxes = _cascade().detectMultiScale(_clahe().apply(gray), scaleFactor=1.1, minNeighbors=5,
                                                minSize=(min_side, min_side))
        if len(boxes):
            x, y, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
            found.append(((x + bw / 2) / scale, (y + bh / 2) / scale, max(bw, bh) / scale))
    if not found:
        return None
    cx, cy, side = np.median(np.array(found), axis=0)
    side = min(int(round(side * (1 + 2 * margin))), h, w)
    left = int(round(min(max(cx - side / 2, 0), w - side)))
    top = int(round(min(max(cy - side / 2, 0), h - side)))
    return left, top, side


def count_frames(path: str | os.PathLike) -> tuple[int, float]:
    """Frame count and rate from the mp4 header; counts packets (no decoding) when the header has none."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise MediaError(f"{path} has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        total = int(stream.frames or 0)
        if total <= 0:
            total = sum(1 for p in container.demux(stream) if p.size)
    return total, fps


def decode_frames(path: str | os.PathLike, indices: Sequence[int]) -> np.ndarray:
    """The frames ``indices`` of a video (:func:`merlib.data.media.read_video`, which decodes only as far as the
    last wanted frame and converts only the wanted frames to RGB).

    Returns uint8 ``(len(indices), H, W, 3)`` in the order of ``indices`` (repeats allowed). Raises
    :class:`~merlib.data.media.MediaError` naming the file when it cannot be decoded or ends before a
    wanted frame (a truncated file).
    """
    return read_video(path, indices).frames


@dataclass
class ClipFrames:
    """What the cache stores for one clip (``frames``) and how it was taken (recorded in ``index.json``)."""

    frames: np.ndarray  # uint8 (T, size, size, 3)
    indices: list[int]
    total_frames: int
    fps: float
    face_box: tuple[int, int, int] | None = None  # (left, top, side) in source pixels, face_crop only

    def record(self, video: str) -> dict[str, Any]:
        out: dict[str, Any] = {"video": video, "total_frames": self.total_frames, "fps": self.fps,
                               "indices": self.indices, "shape": list(self.frames.shape)}
        out["face_box"] = list(self.face_box) if self.face_box else None
        return out


def load_clip_frames(path: str | os.PathLike, settings: FrameSettings | None = None) -> ClipFrames:
    """Steps 1–3 of the pipeline for one mp4: sample, (face-crop), resize — uint8 ``(T, size, size, 3)``."""
    settings = settings or FrameSettings()
    path = Path(path)
    try:
        total, fps = count_frames(path)
    except av.error.FFmpegError as err:
        raise MediaError(f"cannot open video {path}: {err}. Re-download or regenerate it.") from err
    if total < 1:
        raise MediaError(f"video {path} holds no frames (truncated?). Re-download or regenerate it.")
    indices = sample_indices(frame_window(total, fps, settings), settings.n_frames)
    frames, box = crop_and_resize(decode_frames(path, indices), settings)
    return ClipFrames(frames, [int(i) for i in indices], total, fps, box)


def crop_and_resize(
    frames: np.ndarray, settings: FrameSettings
) -> tuple[np.ndarray, tuple[int, int, int] | None]:
    """Steps 2–3 on decoded frames ``(T, H, W, 3)``: the face crop (when ``settings.face_crop`` and a face is
    found) and the resize to ``settings.size``. Returns the frames and the face box (None without one)."""
    box = None
    if settings.face_crop:
        box = detect_face_box(frames, settings.face_margin)
        if box is not None:
            left, top, side = box
            frames = frames[:, top : top + side, left : left + side]
    return resize_frames(frames, settings.size, settings.keep_aspect, settings.antialias), box


def normalize_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Step 4: uint8 ``(T, H, W, 3)`` → float32 ``(3, T, H, W)``, /255 and Kinetics mean/std."""
    x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    # one scale and one shift per channel on the contiguous (T, H, W, 3) layout, then a single transpose:
    # (x/255 − mean)/std = x·(1/(255·std)) − mean/std, without temporaries of the strided layout
    std = torch.tensor(KINETICS_STD)
    x = x.float().mul_(1.0 / (255.0 * std)).sub_(torch.tensor(KINETICS_MEAN) / std)
    return x.permute(3, 0, 1, 2).contiguous()


def train_augmentation(settings: FrameSettings | None = None):
    """Step 5 as a torchvision ``transforms.v2`` pipeline for a normalised ``(T, C, H, W)`` clip.

    v2 transforms draw their random parameters once per call and apply them to every leading index, so all
    T frames of a clip get the same crop, flips and rotation (``tests/test_video_frames.py`` checks it).
    Randomness comes from torch's global generator (seed it with ``torch.manual_seed``; DataLoader workers
    are seeded by torch).
    """
    from torchvision.transforms import v2

    s = settings or FrameSettings()
    return v2.Compose([
        v2.RandomCrop(s.crop),
        v2.RandomHorizontalFlip(s.hflip_p),
        v2.RandomVerticalFlip(s.vflip_p),
        v2.RandomRotation((-s.rotation, s.rotation), fill=0.0),  # 0 = the mean colour after normalisation
    ])


def reference_transform(
    video: np.ndarray | torch.Tensor, n_frames: int = 8, size: int = 224, antialias: bool = True
) -> torch.Tensor:
    """The reference's eval transform on a whole decoded clip ``(T, H, W, 3)`` uint8 → ``(3, n, size, size)``.

    Nearest-neighbour interpolation over time of the entire video, then a bilinear resize of every kept
    frame, /255 and the Kinetics normalisation (torchmultimodal's ``VideoTransform`` with ``time_samples =
    n_frames``, as the authors configured it). Slow by design — it touches every frame; merlib's cache takes the
    same frames without decoding the rest (``tests/test_video_frames.py`` checks both agree).
    """
    from torchvision.transforms.v2 import functional as TF

    x = torch.as_tensor(np.asarray(video) if not torch.is_tensor(video) else video)
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 video (T, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    t, h, w, _ = x.shape
    x = x.permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
    if t != n_frames:
        x = F.interpolate(x, size=[n_frames, h, w], mode="nearest")
    x = x[0].permute(1, 0, 2, 3)  # (n, 3, H, W)
    if (h, w) != (size, size):
        x = TF.resize(x, [size, size], antialias=antialias)
    return normalize_frames(x.permute(0, 2, 3, 1))


def load_clip_like_reference(path: str | os.PathLike, settings: FrameSettings | None = None) -> torch.Tensor:
    """What the reference does for every item of every epoch: decode the whole mp4, then
    :func:`reference_transform`. The baseline of ``benchmarks/bench_video.py``; use the cache instead."""
    s = settings or FrameSettings()
    if s.align_to_audio_window or s.keep_aspect or s.face_crop:
        raise ValueError("load_clip_like_reference reproduces the paper's pipeline only; its options are off")
    return reference_transform(read_video(path).frames, s.n_frames, s.size, s.antialias)


# ---------------------------------------------------------------------------------------------- the cache


_ACTOR_DIR = re.compile(r"^(Actor_\d{2}|Video_(Speech|Song)_Actors?_\d{2}(-\d{2})?)$")


def corpus_root(video_paths: Iterable[str | os.PathLike]) -> Path:
    """The corpus folder a set of RAVDESS videos comes from: their common folder, climbing out of
    ``Actor_XX`` and ``Video_Speech_Actor_XX`` folders so any subset of a corpus names the same root."""
    parents = [str(Path(p).resolve().parent) for p in video_paths]
    if not parents:
        raise ValueError("no video paths given")
    root = Path(os.path.commonpath(parents))
    while _ACTOR_DIR.match(root.name) and root.parent != root:
        root = root.parent
    return root


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete the cache folder {path.parent} and rebuild") from err


def _cache_job(job: tuple[str, str, str, dict[str, Any]]) -> dict[str, Any]:
    """Worker: decode one clip and write its frames atomically. Returns its index record or its error."""
    clip_id, video, out_path, settings_dict = job
    try:
        clip = load_clip_frames(video, FrameSettings.from_dict(settings_dict))
    except (MediaError, av.error.FFmpegError, OSError, ValueError) as err:
        return {"clip_id": clip_id, "ok": False, "video": video, "error": f"{type(err).__name__}: {err}"}
    with atomic_path(out_path) as tmp:
        np.save(tmp, clip.frames)
    return {"clip_id": clip_id, "ok": True, "record": clip.record(video)}


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one clip per process; do not oversubscribe the cores
    torch.set_num_threads(1)


def _pool_context() -> multiprocessing.context.BaseContext:
    """Workers fork from a clean server process. Plain ``fork`` of *this* process is unsafe: once OpenCV's
    thread pool has run here (a face-crop build, the synthetic face renderer), the forked children deadlock in
    OpenCV (seen in ``cv2.setNumThreads``); torch's OpenMP pool has the same hazard."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])  # the server imports torch/av once; workers start in milliseconds
    return ctx


class MissingFramesError(DataError, KeyError):
    """Clips asked for that the frame cache does not hold (failed to decode, or never built)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


@dataclass
class CacheReport:
    """What a cache folder holds, from its ``index.json``, ``failed.json`` and ``build.json``."""

    folder: Path
    settings: FrameSettings
    source: str
    clips: dict[str, dict[str, Any]] = field(default_factory=dict)  # clip_id → index record
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # clip_id → {"video", "error"}
    last_build: dict[str, Any] = field(default_factory=dict)

    @property
    def no_face(self) -> list[str]:
        """Clips that kept their full frame because no face was found (face_crop builds only)."""
        if not self.settings.face_crop:
            return []
        return sorted(cid for cid, rec in self.clips.items() if rec.get("face_box") is None)

    def bytes_per_clip(self) -> float:
        sizes = [(self.folder / f"{cid}.npy").stat().st_size for cid in self.clips]
        return float(np.mean(sizes)) if sizes else 0.0


def read_cache_report(cache: str | os.PathLike) -> CacheReport:
    """The :class:`CacheReport` of a folder returned by :func:`build_frame_cache`."""
    folder = Path(cache)
    meta = _read_json(folder / SETTINGS_FILE, None)
    if meta is None:
        raise FileNotFoundError(
            f"{folder} holds no {SETTINGS_FILE}: it is not a frame cache; pass the folder that "
            "build_frame_cache returned"
        )
    return CacheReport(folder, FrameSettings.from_dict(meta["settings"]), meta["source"],
                       _read_json(folder / INDEX_FILE, {}), _read_json(folder / FAILED_FILE, {}),
                       _read_json(folder / BUILD_FILE, {}))


def build_frame_cache(
    clips: Sequence[Clip],
    cache_dir: str | os.PathLike,
    settings: FrameSettings | None = None,
    workers: int | None = None,
    progress: bool = True,
    source: str | os.PathLike | None = None,
) -> Path:
    """Decode every clip's mp4 once and store its sampled, resized uint8 frames; return the cache folder.

    The folder is ``cache_dir/<hash>`` with ``<clip_id>.npy`` (uint8 ``(T, size, size, 3)``),
    ``settings.json`` (the frame settings and the corpus), ``index.json`` (per clip: source video, frame count,
    fps, the sampled frame numbers, the face box), ``failed.json`` (clips whose video could not be decoded,
    with the error) and ``build.json`` (counts and timing of the last build).

    Args:
        clips: RAVDESS clips with a ``video_path`` (e.g. ``scan(root).complete()``).
        cache_dir: where cache folders live, e.g. ``merlib.config.default_cache_dir() / "frames"``; must not
            lie inside the corpus.
        settings: :class:`FrameSettings` (default: the paper's).
        workers: decoding processes (default: all cores; 1 decodes in this process).
        progress: show a tqdm bar.
        source: the corpus identity hashed into the folder name (default: :func:`corpus_root` of the videos).

    Worker processes start from a fork server, which imports the calling script again: in a script, call this
    under ``if __name__ == "__main__":`` (as any multiprocessing code on macOS or Windows), or pass
    ``workers=1``. Notebooks need nothing.

    Resumes a partial build (finished clips are kept as they are) and retries clips that failed before.
    Warns, naming them, about videos that could not be decoded (they get no ``.npy``) and, with
    ``face_crop``, about how many clips had no detectable face (they keep the full frame).
    """
    settings = settings or FrameSettings()
    clips = list(clips)
    ids = [c.clip_id for c in clips]
    dupes = sorted(cid for cid, n in Counter(ids).items() if n > 1)
    if dupes:
        raise ValueError(f"build_frame_cache: clip ids {dupes[:5]} appear more than once; pass each clip once")
    no_video = [c.clip_id for c in clips if c.video_path is None]
    if no_video:
        raise ValueError(
            f"build_frame_cache: clip(s) {no_video[:5]} have no full-AV mp4 (video_path is None); "
            "pass scan(root).complete()"
        )
    if not clips:
        raise ValueError("build_frame_cache: no clips given")
    src = str(Path(source).resolve()) if source is not None else str(corpus_root(c.video_path for c in clips))
    folder = Path(cache_dir).resolve() / settings.digest(src)
    if folder == Path(src) or Path(src) in folder.parents:
        raise ValueError(
            f"the frame cache {folder} would lie inside the corpus {src}; merlib never writes into a corpus. "
            "Choose a cache_dir outside it (default: merlib.config.default_cache_dir() / 'frames')"
        )
    meta = {"format": CACHE_FORMAT, "settings": settings.to_dict(), "cache_fields": settings.cache_fields(),
            "source": src}
    old = _read_json(folder / SETTINGS_FILE, None)
    if old is not None and (old.get("format"), old.get("cache_fields"), old.get("source")) != (
        meta["format"], meta["cache_fields"], meta["source"]
    ):
        raise ValueError(
            f"{folder / SETTINGS_FILE} describes other frames than asked for ({old.get('cache_fields')} from "
            f"{old.get('source')}); delete {folder} and rebuild"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUILD_FILE).unlink(missing_ok=True)  # written again when this build has finished
    if old is None:
        write_json(folder / SETTINGS_FILE, meta, sort_keys=True)
    for stale in folder.glob(".*.part*"):  # left by a process killed mid-write
        stale.unlink()

    index: dict[str, dict[str, Any]] = _read_json(folder / INDEX_FILE, {})
    failed: dict[str, dict[str, str]] = _read_json(folder / FAILED_FILE, {})
    todo = [c for c in clips if not ((folder / f"{c.clip_id}.npy").exists() and c.clip_id in index)]
    kept = len(clips) - len(todo)
    jobs = [(c.clip_id, str(c.video_path), str(folder / f"{c.clip_id}.npy"), settings.to_dict()) for c in todo]
    flush_every = max(1, len(jobs) // 100)
    bar = tqdm(total=len(clips), initial=kept, desc="frame cache", unit="clip", disable=not progress)
    t0 = time.time()
    written = 0
    new_failures: dict[str, dict[str, str]] = {}

    def take(result: dict[str, Any]) -> None:
        nonlocal written
        cid = result["clip_id"]
        if result["ok"]:
            index[cid] = result["record"]
            failed.pop(cid, None)
            written += 1
        else:
            new_failures[cid] = failed[cid] = {"video": result["video"], "error": result["error"]}
        bar.update()
        if (written + len(new_failures)) % flush_every == 0:
            write_json(folder / INDEX_FILE, index, sort_keys=True)

    workers = max(1, min(workers or os.cpu_count() or 1, max(1, len(jobs))))
    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                take(_cache_job(job))
        else:
            try:
                with ProcessPoolExecutor(workers, mp_context=_pool_context(), initializer=_init_worker) as pool:
                    for result in pool.map(_cache_job, jobs, chunksize=1):
                        take(result)
            except BrokenProcessPool as err:
                raise RuntimeError(
                    f"build_frame_cache: a worker process died ({err}). Workers start by re-importing the calling "
                    "script, so a script must call build_frame_cache under `if __name__ == \"__main__\":`; "
                    "or pass workers=1. Finished clips are kept; calling again resumes."
                ) from err
    finally:
        # whatever finished is recorded, so an interrupted build resumes where it stopped
        write_json(folder / INDEX_FILE, index, sort_keys=True)
        write_json(folder / FAILED_FILE, failed, sort_keys=True)
        bar.close()
    report = read_cache_report(folder)
    requested = set(ids)
    no_face = [cid for cid in report.no_face if cid in requested]
    write_json(folder / BUILD_FILE, {
        "clips": len(clips), "written": written, "kept": kept, "failed": sorted(new_failures),
        "no_face": no_face, "workers": workers, "seconds": round(time.time() - t0, 2),
    }, sort_keys=True)
    if new_failures:
        names = "; ".join(f"{cid} ({v['video']}): {v['error']}" for cid, v in list(new_failures.items())[:5])
        more = f" and {len(new_failures) - 5} more" if len(new_failures) > 5 else ""
        warnings.warn(
            f"frame cache: {len(new_failures)} video(s) could not be decoded and are left out: {names}{more}. "
            f"Listed in {folder / FAILED_FILE}; re-download or regenerate them and build again.",
            RuntimeWarning, stacklevel=2,
        )
    if no_face:
        warnings.warn(
            f"face crop: no face found in {len(no_face)} of {len(clips)} clip(s) ({', '.join(no_face[:5])}"
            f"{', …' if len(no_face) > 5 else ''}); they keep the full frame",
            RuntimeWarning, stacklevel=2,
        )
    return folder


# -------------------------------------------------------------------------------------------- the dataset


def _label_of(clip_id: str) -> int:
    parts = clip_id.split("-")
    if len(parts) != 6 or not all(p.isdigit() for p in parts) or not 1 <= int(parts[1]) <= 8:
        raise ValueError(f"{clip_id!r} is not a RAVDESS clip id 'VV-EE-II-SS-RR-AA' with emotion EE in 01–08")
    return int(parts[1]) - 1


class VideoFrames(Dataset):
    """Clips from a frame cache as ``(video (3, T, H, W) float32, label)`` — normalised, augmented if ``train``.

    Args:
        clips: :class:`~merlib.data.ravdess.Clip` objects or clip ids (``"01-03-02-01-01-12"``).
        cache: the folder :func:`build_frame_cache` returned.
        settings: the frame settings; must match the cache's stored frames. Default: the cache's own
            (its augmentation fields too).
        train: apply the training augmentation (one random draw per clip).
        skip_missing: leave out clips the cache lacks (failed videos) with a warning instead of raising.
    """

    def __init__(
        self,
        clips: Sequence[Clip | str],
        cache: str | os.PathLike,
        settings: FrameSettings | None = None,
        train: bool = False,
        skip_missing: bool = False,
    ) -> None:
        self.cache = Path(cache)
        report = read_cache_report(self.cache)
        if not (self.cache / BUILD_FILE).exists():
            raise DataError(f"the frame cache {self.cache} is unfinished (no {BUILD_FILE}: its build was interrupted); "
                            "run the same build again (merlib train, prepare_corpora or build_frame_cache) to resume it")
        if settings is not None and settings.cache_fields() != report.settings.cache_fields():
            raise ValueError(
                f"the frame cache {self.cache} holds frames for {report.settings.cache_fields()}, not "
                f"{settings.cache_fields()}; build one with build_frame_cache(clips, cache_dir, settings)"
            )
        self.settings = settings or report.settings
        self.train = train
        ids = [c if isinstance(c, str) else c.clip_id for c in clips]
        missing = [cid for cid in ids if cid not in report.clips or not (self.cache / f"{cid}.npy").exists()]
        if missing:
            why = "; ".join(f"{cid}: {report.failed[cid]['error']}" for cid in missing[:3] if cid in report.failed)
            msg = (f"the frame cache {self.cache} lacks {len(missing)} of the {len(ids)} clips "
                   f"({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''})"
                   + (f" — failed to decode: {why}" if why else "; run build_frame_cache on them"))
            if not skip_missing:
                raise MissingFramesError(msg + ". Pass skip_missing=True to leave them out.")
            warnings.warn(msg + "; left out", RuntimeWarning, stacklevel=2)
        self.skipped = missing
        gone = set(missing)
        self.clip_ids = [cid for cid in ids if cid not in gone]
        self.labels = [_label_of(cid) for cid in self.clip_ids]
        self._augment = train_augmentation(self.settings) if train else None

    def __len__(self) -> int:
        return len(self.clip_ids)

    def frames(self, i: int) -> np.ndarray:
        """The cached uint8 frames ``(T, H, W, 3)`` of item ``i``."""
        path = self.cache / f"{self.clip_ids[i]}.npy"
        try:
            return np.load(path)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"frame cache file {path} disappeared after the dataset was created (was the cache folder "
                "deleted?); run build_frame_cache again"
            ) from None

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        video = normalize_frames(self.frames(i))  # (3, T, H, W)
        if self._augment is not None:
            video = self._augment(video.permute(1, 0, 2, 3)).permute(1, 0, 2, 3).contiguous()
        return video, self.labels[i]
