"""Classify your own recordings: ``merlib predict FILE… --model RUN`` and the functions behind it.

Notebook: 07_tsne_and_confusion.ipynb (section "Your own clip").

A trained model takes 4 s of 16 kHz audio (and/or 8 frames of the speaker's face). A recording a user brings
is any length, at any sample rate, in any format soundfile or PyAV decodes. :func:`predict_files` bridges the
two, in four steps:

1. **Decode** (:func:`read_clip`): wav/flac/mp3/ogg through soundfile, the audio track of an mp4/m4a/mov/mkv
   through PyAV; resampled to 16 kHz (polyphase, :func:`merlib.data.media.resample`).
2. **Channels.** A single-channel model (clean-SC, rev-SC and their MER versions) reads channel 1 — the
   phone's first microphone, as in training. A three-microphone model (Avg mel, Sum PE) needs exactly three
   channels in the array's order (microphones 1, 2, 3 of the phone); anything else is refused with a message
   that says so, because the model's weights are tied to that geometry: duplicating a mono channel would
   give Sum PE three identical inputs it never saw in training.
3. **Windows** (:func:`window_starts`): 4 s windows every ``hop_s`` seconds (2 s by default), the last one
   reaching the end of the clip; a clip or last window shorter than 4 s is zero-padded at the end, as the
   training clips were. For the video and MER models each window gets its own frames: ``n_frames`` frames
   sampled evenly (nearest index, as :func:`merlib.data.video.sample_indices`) from the video frames inside
   the window, then face-cropped and resized as the run's frame cache was. A RAVDESS-length clip (≤ 4 s) is
   one window whose frames are exactly those the frame cache holds for it.
4. **Aggregate.** Each window gets softmax probabilities; the file's prediction is the mean of its windows'
   probabilities (soft voting), and its label the arg-max of that mean.

The model (:func:`load_model`) comes from a merlib run folder (``final.pt`` + ``config.json``), one of the run's
Lightning checkpoints (``checkpoints/*.ckpt``; they carry the model's name and recipe), a bare ``final.pt``
(the name from the folder's ``config.json`` or ``model_name``), or the authors' checkpoints (with
``model_name``: their weights do not say whether a model is Sum PE, Avg mel or single channel).

Exit status of ``merlib predict``: 0 when every file was classified; 1 when some were not (each is named with
its reason, and the others are still reported); 2 when the model cannot be loaded.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.video import FrameSettings
from .errors import CheckpointError, ConfigError, DataError, MediaError, describe, is_user_error
from .models.mer import ModelSpec, get_spec

__all__ = [
    "SAMPLE_RATE",
    "WINDOW_S",
    "DEFAULT_HOP_S",
    "LoadedModel",
    "Clip",
    "FilePrediction",
    "load_model",
    "read_clip",
    "window_starts",
    "predict_files",
    "predict_file",
    "results_to_json",
    "results_to_csv",
    "results_table",
    "add_predict_parser",
]

SAMPLE_RATE = 16000  # Hz, what every merlib model takes
WINDOW_S = 4.0  # s, the training clip length
DEFAULT_HOP_S = 2.0  # s between window starts (half a window)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


# ------------------------------------------------------------------------------------------------- models


@dataclass
class LoadedModel:
    """A model ready to classify clips.

    Attributes:
        model: the network, in eval mode, on ``device``.
        spec: its Table II :class:`~merlib.models.mer.ModelSpec` (inputs, microphones).
        size: ``"paper"`` or ``"quick"``.
        frames: the frame settings its video branch was trained with (None for audio-only models).
        source: where the weights came from; ``how`` says how they were read.
        device: ``"cpu"`` or ``"cuda"``.
    """

    model: Any
    spec: ModelSpec
    size: str
    frames: FrameSettings | None
    source: str
    how: str
    device: str = "cpu"

    @property
    def num_classes(self) -> int:
        return int(self.model.num_classes)

    @property
    def classes(self) -> list[str]:
        from .evaluation import class_names

        return class_names(self.num_classes)

    def describe(self) -> str:
        from .paper_results import MODEL_LABELS

        return f"{MODEL_LABELS.get(self.spec.name, self.spec.name)} ({self.spec.name}, {self.size} size) from {self.source}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}; is this a merlib run folder?") from err


def _run_record(folder: Path) -> tuple[str | None, dict[str, Any] | None]:
    """(model name, train section) of the run whose ``config.json`` is in ``folder``, or (None, None)."""
    from .training import CONFIG, _recorded_model

    path = folder / CONFIG
    if not path.is_file():
        return None, None
    record = _read_json(path)
    return _recorded_model(record), record.get("train")


def _frames_of(spec: ModelSpec, size: str, train: dict[str, Any] | None) -> FrameSettings | None:
    from .training import TrainConfig

    if not spec.uses_video:
        return None
    if train:
        return TrainConfig.from_dict(train).frame_settings()
    return (TrainConfig.quick() if size == "quick" else TrainConfig.paper()).frame_settings()


def _load_merlib_state(state: dict[str, Any], name: str, size: str | None, source: Path) -> tuple[Any, str]:
    """Build ``name`` at ``size`` (or whichever size the weights fit) and load merlib-named weights strictly."""
    import torch

    from .models.mer import build_model

    errors = []
    for s in ([size] if size else ["paper", "quick"]):
        model = build_model(name, s)
        try:
            model.load_state_dict({k: v for k, v in state.items() if torch.is_tensor(v)})
        except RuntimeError as err:
            errors.append(f"{s} size: {str(err).splitlines()[0]}")
            continue
        return model, s
    raise CheckpointError(
        f"the weights in {source} do not fit merlib's {name!r} model ({'; '.join(errors)}); check --model-name "
        "(`merlib check-weights FILE` says which models the file loads into)")


def load_model(
    path: str | os.PathLike,
    model_name: str | None = None,
    size: str | None = None,
    device: str = "cpu",
    trusted: bool = False,
) -> LoadedModel:
    """Load a trained model for :func:`predict_files`.

    Args:
        path: a merlib run folder (``final.pt`` + ``config.json``, as ``merlib train``/``merlib reproduce``
            write them), one of its Lightning checkpoints or its ``final.pt``, or an authors' checkpoint.
        model_name: the Table II model (``"audio_sum_pe"`` …) when the file cannot say: needed for the
            authors' audio and multimodal checkpoints and for a weights file outside its run folder.
        size: ``"paper"``/``"quick"``; default: the run's, or whichever size the weights fit.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (a GPU when there is one).
        trusted: allow a checkpoint that pickles more than tensors (only for files you trust).

    Raises :class:`~merlib.errors.CheckpointError` / ``FileNotFoundError`` naming the file and the fix.
    """
    import torch

    from .models.checkpoints import (_classify, _htsat_arch, _load_file, load_reference_checkpoint, read_state_dict,
                                     strip_lightning_model_prefix)
    from .training import FINAL, LAST

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA device here; use --device cpu "
                          "(or auto)")
    if model_name is not None:
        get_spec(model_name)  # an unknown name fails here, listing the valid ones
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model {path} does not exist; give a merlib run folder (with final.pt and "
                                "config.json), a .ckpt/.pt file, or an authors' checkpoint")
    if path.is_dir():
        if not (path / FINAL).is_file():
            ckpts = sorted((path / "checkpoints").glob("*.ckpt")) if (path / "checkpoints").is_dir() else []
            hint = (f"; its checkpoints ({', '.join(p.name for p in ckpts[:3])}) can be given instead" if ckpts
                    else "")
            raise CheckpointError(f"{path} holds no {FINAL}: it is not a finished merlib run folder{hint}")
        weights = path / FINAL
    else:
        weights = path
    raw = _load_file(weights, trusted)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{weights} holds a {type(raw).__name__}, not a model's weights")

    # What the file and its run folder say about the model: Lightning checkpoints written by merlib carry it
    # (EmotionModule.on_save_checkpoint); a final.pt or .ckpt inside a run folder has the folder's config.json.
    meta = raw.get("merlib") if isinstance(raw.get("merlib"), dict) else {}
    name, train = meta.get("model"), meta.get("train")
    for folder in (weights.parent, weights.parent.parent):
        if name is None:
            name, train = _run_record(folder)
    if model_name is not None:
        if name is not None and name != model_name:
            raise ConfigError(f"{weights} is a {name!r} model (its run says so), not {model_name!r}; leave out "
                              "--model-name or give another model")
        name = model_name
    size = size or (train or {}).get("size")

    state, _ = read_state_dict(raw)
    tensors = {k: v for k, v in state.items() if torch.is_tensor(v)}
    tensors, _ = strip_lightning_model_prefix(tensors)
    kind, naming = _classify(tensors)
    how = "merlib run" if path.is_dir() else ("merlib Lightning checkpoint" if weights.suffix == ".ckpt" else
                                              "merlib weights")
    if weights.name == LAST and path.is_file():
        how += " (the last epoch's, not the averaged final.pt)"
    if kind == "unknown":
        raise CheckpointError(f"{weights}: its key names match no merlib or authors' model (first keys: "
                              f"{', '.join(list(tensors)[:4])}); run `merlib check-weights {weights}`")
    if kind in ("htsat_audioset", "torchvision_r2plus1d", "merlib_video_encoder"):
        raise CheckpointError(f"{weights} is a pretrained encoder without an emotion classifier ({kind}); "
                              "fine-tune it first (`merlib train MODEL --audio-weights/--video-weights FILE`)")
    if naming == "merlib":
        if name is None:
            if kind == "merlib_video":
                name = "video"
            else:
                family = "audio_*" if kind == "merlib_audio" else "mer_*"
                raise ConfigError(f"{weights} holds a merlib {family} model but not which one (its run folder's "
                                  "config.json is not beside it); pass --model-name (audio_clean_sc, audio_rev_sc, "
                                  "audio_avg_mel, audio_sum_pe, or the mer_ ones)")
        model, size = _load_merlib_state(tensors, name, size, weights)
    else:  # the authors' naming
        from .models.htsat import HTSATConfig
        from .models.mer import build_model

        if name is None:
            if kind != "reference_video":
                options = ("audio_clean_sc, audio_rev_sc, audio_avg_mel or audio_sum_pe" if kind == "reference_audio"
                           else "mer_clean_sc, mer_rev_sc, mer_avg_mel or mer_sum_pe")
                raise ConfigError(f"{weights} is an authors' checkpoint; its weights do not say which Table II "
                                  f"model it is: pass --model-name ({options}; their file names say which)")
            name = "video"
        spec = get_spec(name)
        if spec.uses_audio and kind == "reference_video" or not spec.uses_audio and kind != "reference_video":
            raise ConfigError(f"{weights} is a {kind.replace('_', ' ')} checkpoint; it cannot be the {name!r} model")
        config = None
        if spec.uses_audio:
            arch, arch_size = _htsat_arch(tensors, "")
            config = HTSATConfig.paper(**arch)
            size = size or ("quick" if arch_size == "quick" else "paper")
        model = build_model(name, size or "paper", audio_config=config)
        report = load_reference_checkpoint(model, dict(tensors))
        if report.missing:
            raise CheckpointError(f"{weights} does not hold the whole {name!r} model: {len(report.missing)} "
                                  f"entries missing ({', '.join(report.missing[:3])}, …); `merlib check-weights "
                                  f"{weights}` lists them")
        size = size or "paper"
        how = "authors' checkpoint"
    spec = get_spec(name)
    return LoadedModel(model.to(device).eval(), spec, size, _frames_of(spec, size, train), str(path), how, device)


# -------------------------------------------------------------------------------------------------- clips


@dataclass
class Clip:
    """A decoded recording: 16 kHz audio of the channels the model reads, and where its video is.

    Attributes:
        path: the file.
        waveform: float32 ``(channels, samples)`` at 16 kHz, or None when the model reads no audio.
        sample_rate, channels: the file's own audio rate and channel count (0 without audio).
        duration_s: the audio's length (the video's for a video-only model).
        video: the file holds a video stream; ``n_video_frames`` and ``fps`` describe it.
    """

    path: Path
    waveform: np.ndarray | None
    sample_rate: int
    channels: int
    duration_s: float
    video: bool = False
    n_video_frames: int = 0
    fps: float = 0.0


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a recording (give the files in it, e.g. DIR/*.wav)", str(path))
    if not path.exists():
        raise FileNotFoundError(2, "no such file", str(path))
    if path.stat().st_size == 0:
        raise MediaError(f"{path} is empty (0 bytes): a copy or recording that did not finish")


def _video_stream(path: Path) -> tuple[int, float] | None:
    """(frame count, fps) of the file's video stream, or None when it has none."""
    import av

    from .data.video import count_frames

    if path.suffix.lower() not in VIDEO_SUFFIXES:
        return None
    try:
        return count_frames(path)
    except MediaError:
        return None  # no video stream
    except av.error.FFmpegError as err:
        raise MediaError(f"cannot open {path}: {err}; is it a whole video file?") from err


def read_clip(path: str | os.PathLike, spec: str | ModelSpec) -> Clip:
    """Decode ``path`` for the model ``spec``: the channels it reads at 16 kHz, and its video stream's size.

    Raises (naming the file and what to do) for a missing, empty or undecodable file, a channel count the model
    cannot take, and a file without the modality the model reads (a MER or video model given audio only).
    """
    from .data.media import decode_audio, resample
    from .paper_results import MODEL_LABELS

    spec = get_spec(spec)
    path = Path(path)
    _check_file(path)
    stream = _video_stream(path) if spec.uses_video else None
    if spec.uses_video and stream is None:
        what = "the speaker's face as well as the voice" if spec.uses_audio else "the speaker's face"
        raise DataError(f"{path} holds no video, and the {MODEL_LABELS[spec.name]} model ({spec.name}) reads {what}; "
                        "give an mp4 with the face in it (RAVDESS's '01-…' files), or use an audio-only model")
    if stream is not None and stream[0] < 1:
        raise MediaError(f"{path} has a video stream without frames (truncated?)")
    waveform, sr, channels = None, 0, 0
    if spec.uses_audio:
        data, sr = decode_audio(path)
        channels = int(data.shape[0])
        if spec.num_mics == 1:
            data = data[:1]  # channel 1: the phone's first microphone, as in training
        elif channels != spec.num_mics:
            raise DataError(
                f"{path} has {channels} channel(s); the {MODEL_LABELS[spec.name]} model ({spec.name}) takes the "
                f"{spec.num_mics} microphones of the phone's array, in its order (1, 2, 3). Record with the "
                "three-microphone array, or use a single-channel model (audio_rev_sc), which reads channel 1")
        waveform = resample(data, sr, SAMPLE_RATE)
        duration = waveform.shape[-1] / SAMPLE_RATE
    else:
        assert stream is not None
        duration = stream[0] / stream[1]
    n, fps = stream if stream is not None else (0, 0.0)
    return Clip(path, waveform, int(sr), channels, float(duration), stream is not None, int(n), float(fps))


def window_starts(duration_s: float, window_s: float = WINDOW_S, hop_s: float = DEFAULT_HOP_S) -> list[float]:
    """Start times (s) of the windows covering a clip: ``0, hop, 2·hop, …``, until a window reaches the end.

    A clip no longer than one window has one window. Otherwise there are ``ceil((duration − window)/hop) + 1``
    windows, and the last one runs past the end by less than ``hop`` (zero-padded, as a short training clip).
    """
    if hop_s <= 0 or window_s <= 0:
        raise ConfigError(f"the window ({window_s} s) and the hop ({hop_s} s) must be positive")
    if duration_s <= window_s + 1e-9:
        return [0.0]
    n = math.ceil((duration_s - window_s) / hop_s - 1e-9) + 1
    return [round(k * hop_s, 6) for k in range(n)]


def _window_audio(clip: Clip, start_s: float, window_s: float) -> np.ndarray:
    assert clip.waveform is not None
    n = int(round(window_s * SAMPLE_RATE))
    a = int(round(start_s * SAMPLE_RATE))
    out = np.zeros((clip.waveform.shape[0], n), dtype=np.float32)
    piece = clip.waveform[:, a : a + n]
    out[:, : piece.shape[1]] = piece
    return out


def _window_frame_indices(clip: Clip, start_s: float, window_s: float, n_frames: int) -> np.ndarray:
    """``n_frames`` frame numbers sampled from the frames whose time lies in ``[start, start + window)``."""
    from .data.video import sample_indices

    first = min(int(math.floor(start_s * clip.fps + 1e-6)), clip.n_video_frames - 1)
    stop = min(clip.n_video_frames, int(math.ceil((start_s + window_s) * clip.fps - 1e-6)))
    return first + sample_indices(max(1, stop - first), n_frames)


def _clip_windows(clip: Clip, loaded: LoadedModel, starts: Sequence[float], window_s: float) -> Iterator[dict[str, Any]]:
    """The model inputs of every window of ``clip`` (frames decoded once for all windows)."""
    import torch

    from .data.video import crop_and_resize, decode_frames, normalize_frames

    frames_of: dict[int, np.ndarray] = {}
    if loaded.spec.uses_video:
        assert loaded.frames is not None
        wanted = [_window_frame_indices(clip, s, window_s, loaded.frames.n_frames) for s in starts]
        unique = sorted({int(i) for w in wanted for i in w})
        decoded = decode_frames(clip.path, unique)
        frames_of = {i: decoded[k] for k, i in enumerate(unique)}
    for k, start in enumerate(starts):
        item: dict[str, Any] = {}
        if loaded.spec.uses_audio:
            item["waveform"] = torch.from_numpy(_window_audio(clip, start, window_s))
        if loaded.spec.uses_video:
            frames, _ = crop_and_resize(np.stack([frames_of[int(i)] for i in wanted[k]]), loaded.frames)
            item["video"] = normalize_frames(frames)
        yield item


# ---------------------------------------------------------------------------------------------- predicting


@dataclass
class FilePrediction:
    """The result for one file: per-window probabilities and their mean, or the reason it failed.

    Attributes:
        path: the file.
        classes: class names (the RAVDESS emotions).
        starts: window start times (s); ``window_s`` their length.
        window_probs: ``(windows, classes)`` softmax probabilities.
        probs: their mean over windows (the file's prediction); ``label`` its arg-max.
        duration_s, sample_rate, channels: the recording (its own rate and channel count).
        error: why the file could not be classified (then the arrays are empty).
    """

    path: Path
    classes: list[str]
    starts: list[float] = field(default_factory=list)
    window_s: float = WINDOW_S
    window_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    duration_s: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def probs(self) -> np.ndarray:
        return self.window_probs.mean(axis=0) if len(self.window_probs) else np.zeros(len(self.classes), np.float32)

    @property
    def label(self) -> str | None:
        return self.classes[int(self.probs.argmax())] if self.ok else None

    @property
    def window_labels(self) -> list[str]:
        return [self.classes[int(i)] for i in self.window_probs.argmax(axis=1)] if self.ok else []

    def to_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"file": str(self.path), "ok": False, "error": self.error}
        probs = lambda p: {c: round(float(v), 6) for c, v in zip(self.classes, p)}  # noqa: E731
        return {
            "file": str(self.path), "ok": True, "duration_s": round(self.duration_s, 4),
            "sample_rate": self.sample_rate, "channels": self.channels, "prediction": self.label,
            "probabilities": probs(self.probs),
            "windows": [{"start_s": s, "end_s": round(s + self.window_s, 6), "prediction": lab,
                         "probabilities": probs(p)}
                        for s, lab, p in zip(self.starts, self.window_labels, self.window_probs)],
        }


def _run_batch(loaded: LoadedModel, items: list[dict[str, Any]], precision: str | None) -> np.ndarray:
    import torch

    from .cpu import autocast
    from .models.mer import forward_logits

    device = loaded.device
    batch = {k: torch.stack([it[k] for it in items]).to(device) for k in items[0]}
    with torch.inference_mode(), autocast(torch.device(device).type, precision):
        logits = forward_logits(loaded.model, loaded.spec, batch)
    return torch.softmax(logits.float(), dim=-1).cpu().numpy()


def predict_files(
    paths: Sequence[str | os.PathLike],
    model: LoadedModel,
    hop_s: float = DEFAULT_HOP_S,
    window_s: float = WINDOW_S,
    batch_size: int = 8,
    precision: str | None = None,
    progress: bool = False,
) -> list[FilePrediction]:
    """Classify every file (see the module docstring for the steps); windows of several files share a batch.

    A file that cannot be classified (missing, empty, undecodable, wrong channels or modality) gets a
    :class:`FilePrediction` with ``error`` set, and the others go on; any other exception is a bug and is raised.
    ``precision``: None/``"fp32"``, ``"bf16"`` or ``"auto"`` (:func:`merlib.cpu.resolve_precision`).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    window_starts(window_s, window_s, hop_s)  # checks the window and hop
    classes = model.classes
    results = [FilePrediction(Path(p), classes, window_s=window_s) for p in paths]
    parts: list[list[np.ndarray]] = [[] for _ in results]
    pending: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        if pending:
            probs = _run_batch(model, [item for _, item in pending], precision)
            for (i, _), p in zip(pending, probs):
                parts[i].append(p)
            pending.clear()

    bar = tqdm(results, desc="predict", unit="file", disable=not progress, file=sys.stderr)
    for i, result in enumerate(bar):
        try:
            clip = read_clip(result.path, model.spec)
            result.starts = window_starts(clip.duration_s, window_s, hop_s)
            result.duration_s, result.sample_rate, result.channels = clip.duration_s, clip.sample_rate, clip.channels
            for item in _clip_windows(clip, model, result.starts, window_s):
                pending.append((i, item))
                if len(pending) >= batch_size:
                    flush()
        except Exception as err:  # noqa: BLE001 — a bad file is reported, not raised; bugs are raised
            if not is_user_error(err):
                raise
            pending[:] = [(j, item) for j, item in pending if j != i]
            result.error, result.starts = describe(err), []
    flush()
    for result, p in zip(results, parts):
        if result.ok:
            result.window_probs = np.stack(p).astype(np.float32)
    return results


def predict_file(path: str | os.PathLike, model: LoadedModel, **kwargs: Any) -> FilePrediction:
    """:func:`predict_files` for one file; raises :class:`~merlib.errors.DataError` when it cannot be classified."""
    result = predict_files([path], model, **kwargs)[0]
    if not result.ok:
        raise DataError(result.error)
    return result


# ------------------------------------------------------------------------------------------------ output


def results_to_json(results: Sequence[FilePrediction], model: LoadedModel, hop_s: float) -> dict[str, Any]:
    """Everything :func:`predict_files` found, as JSON-ready data (what ``--json`` writes)."""
    return {
        "model": {"name": model.spec.name, "size": model.size, "source": model.source, "read_as": model.how,
                  "classes": model.classes},
        "sample_rate": SAMPLE_RATE, "window_s": results[0].window_s if results else WINDOW_S, "hop_s": hop_s,
        "aggregation": "mean of the windows' softmax probabilities",
        "files": [r.to_dict() for r in results],
    }


def results_to_csv(results: Sequence[FilePrediction]) -> str:
    """One row per window and one ``window = "all"`` row per file (the mean); failed files have ``error``."""
    classes = next((r.classes for r in results), [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "window", "start_s", "end_s", "prediction", *[f"p_{c}" for c in classes], "error"])
    for r in results:
        if not r.ok:
            writer.writerow([str(r.path), "", "", "", "", *[""] * len(classes), r.error])
            continue
        writer.writerow([str(r.path), "all", 0.0, round(r.duration_s, 4), r.label,
                         *[f"{v:.6f}" for v in r.probs], ""])
        for k, (s, lab, p) in enumerate(zip(r.starts, r.window_labels, r.window_probs)):
            writer.writerow([str(r.path), k, s, round(s + r.window_s, 6), lab, *[f"{v:.6f}" for v in p], ""])
    return out.getvalue()


def results_table(results: Sequence[FilePrediction]) -> str:
    """The terminal table: file, length, windows, the predicted emotion with its probability, the runner-up."""
    rows = [("file", "length", "windows", "emotion", "p", "runner-up")]
    for r in results:
        if not r.ok:
            rows.append((str(r.path), "", "", "(failed)", "", ""))
            continue
        order = np.argsort(-r.probs)
        second = f"{r.classes[order[1]]} {r.probs[order[1]]:.2f}" if len(order) > 1 else ""
        rows.append((str(r.path), f"{r.duration_s:.1f} s", str(len(r.starts)), r.label, f"{r.probs[order[0]]:.2f}",
                     second))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    right = {1, 2, 4}
    lines = ["  ".join(cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths)))
             .rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    from .data.media import atomic_path

    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(21, "is a folder; give a file name for the results", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text)


def run_predict_command(args: argparse.Namespace) -> int:
    """``merlib predict``: load the model, classify the files, print the table, write --json/--csv."""
    loaded = load_model(args.model, model_name=args.model_name, size=args.size, device=args.device,
                        trusted=args.trusted)
    quiet = args.json == "-" or args.csv == "-"
    if not quiet:
        print(f"model: {loaded.describe()}", file=sys.stderr)
    results = predict_files(args.files, loaded, hop_s=args.hop, batch_size=args.batch_size,
                            precision=args.precision, progress=not args.no_progress)
    if not quiet:
        print(results_table(results))
    if args.json:
        _write(args.json, json.dumps(results_to_json(results, loaded, args.hop), indent=1) + "\n")
    if args.csv:
        _write(args.csv, results_to_csv(results))
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"merlib predict: error: {r.error}", file=sys.stderr)
    if failed:
        print(f"merlib predict: {len(failed)} of {len(results)} file(s) could not be classified", file=sys.stderr)
    return 1 if failed else 0


def add_predict_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``merlib predict`` subcommand."""
    p = subparsers.add_parser(
        "predict", help="classify your own recordings (any length and sample rate) with a trained model",
        description="Classify recordings with a trained model: 16 kHz, sliding 4 s windows, per-window and "
                    "per-file probabilities. Exit 0 when every file was classified, 1 when some were not, 2 when "
                    "the model cannot be loaded.")
    p.add_argument("files", nargs="+", help="wav/flac/mp3/ogg recordings, or mp4 (audio and/or video)")
    p.add_argument("--model", required=True, help="a merlib run folder (final.pt + config.json), one of its "
                                                  ".ckpt files, or an authors' checkpoint")
    p.add_argument("--model-name", default=None, help="the Table II model, when the file cannot say (authors' "
                                                      "checkpoints; weights outside their run folder)")
    p.add_argument("--size", choices=("paper", "quick"), default=None, help="default: the run's")
    p.add_argument("--hop", type=float, default=DEFAULT_HOP_S, help="seconds between window starts (default 2)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", default=None, choices=("fp32", "bf16", "auto"),
                   help="fp32 (default), bf16, or auto (bf16 where it is native)")
    p.add_argument("--json", default=None, metavar="PATH", help="write per-file and per-window probabilities "
                                                                "as JSON ('-': standard output)")
    p.add_argument("--csv", default=None, metavar="PATH", help="the same as CSV, a row per window ('-': standard "
                                                               "output)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--trusted", action="store_true", help="allow checkpoints that pickle more than tensors")
    p.set_defaults(func=run_predict_command)
    return p
