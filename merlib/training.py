"""Training the nine Table II models with the authors' recipe, on a CPU, one GPU or many (PyTorch Lightning).

Notebook: 06_fusion_training.ipynb

The recipe (docs/design.md §6, ``docs/reference-model.md`` §1.9), all of it in :class:`TrainConfig`:

* cross-entropy on the logits; Adam, lr 1e-3, **no** weight decay, over the trainable parameters;
* a per-*epoch* learning-rate multiplier (:func:`reference_lr_multiplier`): 0.02 at epoch 0, 0.05 at epoch 1,
  0.1 for epochs 2–10 (peak lr 1e-4), 0.05 for 11–20, 0.02 for 21–30 and 0.03 from epoch 31 on (the
  reference's inherited quirk: the rate *rises* at epoch 31);
* gradient clipping at norm 1.0; a global batch of 32 clips (per device: 32 // number of devices, as the
  reference, so 5 GPUs train with an effective batch of 30); at most 500 epochs;
* early stopping when the validation loss has not improved for 12 epochs;
* the 8 checkpoints with the best validation accuracy are kept and their weights averaged — every tensor,
  BatchNorm statistics included (:func:`average_checkpoints`) — into the final model, which is what the
  reference evaluates.

Fine-tuning starts from the HTS-AT AudioSet checkpoint (``audio_weights``, its 527-class head skipped) and the
Kinetics-400 R(2+1)D-18 (``video_weights="kinetics400"`` or a path) when given; otherwise from random weights.

Where it runs: ``accelerator="auto"`` uses a GPU when there is one, with bf16 autocast
(``precision="bf16-mixed"``), else the CPU in float32. Several GPUs or nodes use Lightning's DDP: launch with
``torchrun --nproc_per_node N -m merlib train …`` or under SLURM (``srun``); the devices and nodes are read
from the launcher's environment. Every trainable parameter receives a gradient (the fusion model freezes the
unused audio head), so DDP runs without ``find_unused_parameters``. BatchNorm statistics are synchronised
across GPUs (``sync_batchnorm``, the reference's setting; CPU DDP cannot and does not).

A run directory (``train(…, out_dir)``) holds::

    config.yaml, config.json   the run's settings, one merlib.config.Config (run_settings): the model, the seed and
                               the train, frames, reverb, synth and data sections (load_config reads them back)
    run.json                   what happened rather than what was asked: the launch as resolved (devices,
                               precision, world size, per-device batch), the data's counts, versions, start, resume
    logs/run<N>/metrics.csv    Lightning's CSV log of one (re)start (train loss per step and epoch, val loss/acc, lr)
    checkpoints/last.ckpt      full state after the latest epoch (model, optimizer, schedule, callbacks) — for resuming
    checkpoints/epoch…-acc….ckpt  the top-k checkpoints by validation accuracy (weights only)
    final.pt                   the averaged weights: a plain state dict (model.load_state_dict / load_reference_checkpoint)
    summary.json               epochs, best and averaged validation accuracy, the loss curves, which checkpoints were averaged

An interrupted run resumes from ``last.ckpt`` with ``train(…, resume=True)`` (``merlib train … --resume``): the
epoch counter, optimizer, schedule, early-stopping counter, top-k list and the loss history continue where
they stopped; each restart logs to a new ``logs/run<N>``.

Decisions where the paper and the reference are silent or unusable:

* the seed is the project's (0 by default; the reference used 1), set with ``L.seed_everything(seed,
  workers=True)``; training is not bit-reproducible (``deterministic=False``, as the reference);
* the reference multiplies its logged validation accuracy by the world size under DDP (a bug); merlib logs
  the true accuracy, averaged over ranks (Lightning's distributed sampler may repeat a few clips to even out
  the ranks);
* ties in validation accuracy keep the earlier checkpoint (Lightning's rule, as the reference's);
* integer buffers (BatchNorm's ``num_batches_tracked``) are averaged and rounded; the reference stored the
  float average.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from .cpu import allocator_state, resolve_precision, tune_allocator
from .config import Config, DataConfig, read_synth_spec, save_config
from .data.media import write_json
from .errors import OutputError, check_output_dir
from .models.mer import ModelSpec, build_model, forward_logits, get_spec, init_branches

__all__ = [
    "TrainConfig",
    "TrainResult",
    "reference_lr_multiplier",
    "ReferenceSchedule",
    "WarmupCosine",
    "EmotionModule",
    "History",
    "average_checkpoints",
    "average_state_dicts",
    "train",
    "load_final",
    "find_runs",
    "read_run_config",
    "run_settings",
    "read_summary",
]

SCHEDULES = ("reference", "warmup_cosine")

#: The quick grid's per-model settings on top of :meth:`TrainConfig.quick`, measured on two CPU cores:
#: the narrow video network learns from scratch with twice the epochs (an epoch costs it ~3 s, an audio model
#: ~10 s) at the audio models' rate. A rate of 3e-3, used before, made its test accuracy a lottery of the seed:
#: matched rooms 35.4, 43.8 and 72.9 % for seeds 0–2, against 66.7, 72.9 and 70.8 % at 1e-3
#: (benchmarks/seed_spread.py, benchmarks/README.md); the multimodal models start from the grid's unimodal runs
#: (``init_audio``/``init_video``, set by :func:`merlib.reproduce.run_grid`) and only fine-tune: the new fusion
#: head at 1e-3, the trained branches at a tenth of it so that the head's first, random gradients do not undo
#: them (MER Avg mel on matched rooms: 64.6 % this way, 58.3 % with one rate of 5e-4 for all).
QUICK_GRID: dict[str, dict[str, Any]] = {
    "audio": {"lr": 1e-3, "max_epochs": 24},
    "video": {"lr": 1e-3, "max_epochs": 48},
    "mer": {"lr": 1e-3, "encoder_lr_scale": 0.1, "max_epochs": 8, "warmup_steps": 10},
}
CHECKPOINT_DIR = "checkpoints"
CONFIG = "config.json"  # with config.yaml: the run's settings (merlib.config.save_config)
RUN_RECORD = "run.json"  # what happened: launch, data counts, versions, start, resume
LAST = "last.ckpt"
FINAL = "final.pt"
SUMMARY = "summary.json"


# ---------------------------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """Everything one training run needs besides the data. ``paper()`` is the reference recipe.

    The ``train`` section of a run's :class:`merlib.config.Config`; :meth:`paper`, :meth:`quick` and
    :meth:`quick_for` are its presets (what :func:`merlib.config.preset` fills it with).

    Attributes:
        size: model size for :func:`merlib.models.mer.build_model` (``"paper"`` or ``"quick"``).
        seed: seeds weights, data order, augmentation (``L.seed_everything(seed, workers=True)``).
        batch_size: the *global* batch; each of the N devices gets ``batch_size // N`` clips.
        lr, weight_decay: Adam's (1e-3, 0).
        schedule: ``"reference"`` — the reference's per-epoch multipliers (:func:`reference_lr_multiplier`,
            parameters ``lr_rate`` and ``lr_scheduler_epoch``) — or ``"warmup_cosine"``, counted in optimiser
            steps: a linear warm-up over ``warmup_steps`` to ``lr``, then a cosine decay to ``lr · min_lr_ratio``
            at the last step of ``max_epochs`` (:class:`WarmupCosine`).
        lr_rate, lr_scheduler_epoch: the reference's schedule parameters.
        warmup_steps, min_lr_ratio: the ``"warmup_cosine"`` schedule's.
        gradient_clip_val: gradient-norm clipping (1.0).
        max_epochs: at most this many epochs (500).
        patience: early stopping after this many epochs without a lower validation loss (12).
        top_k: checkpoints kept by validation accuracy and averaged into the final model (8).
        num_workers: DataLoader worker processes per device.
        n_frames, frame_size, face_crop: the video frames the run expects in the frame cache (8 whole frames
            of 224² at paper size).
        hflip_p, vflip_p, rotation: the training augmentation of the frames (the paper's 0.3, 0.3, ±30°).
        accelerator, devices, num_nodes, strategy: Lightning's; ``"auto"`` reads torchrun/SLURM and picks DDP
            for several devices.
        precision: ``None`` = ``"bf16-mixed"`` on a GPU, ``"32-true"`` on the CPU; ``"auto"`` = bf16-mixed also
            on a CPU with native bf16 (:func:`merlib.cpu.bf16_support`), where it is faster; or any Lightning
            precision (``"bf16-mixed"`` on a CPU without native bf16 runs, with a warning that it is slower).
        sync_batchnorm: synchronise BatchNorm across GPUs under DDP (the reference's; ignored on the CPU).
        deterministic: ``torch.use_deterministic_algorithms`` (the reference trained with False).
        limit_train_batches: Lightning's (a fraction or a count of batches per epoch; 1.0 = all).
        num_sanity_val_steps: validation batches run before training to catch errors early.
        progress: show Lightning's progress bar (tqdm; in notebooks the widget version).
        cpu_threads: torch intra-op threads while training on the CPU (None: torch's default, one per core).
            The quick preset uses 1: on a small CPU that other processes share (or with DataLoader workers
            beside it), two OpenMP threads spin against each other and run several times slower than one.
        audio_weights, video_weights: fine-tuning starting points (see :func:`merlib.models.mer.build_model`).
        init_audio, init_video: a multimodal model's branches start from these finished merlib runs (run folders
            or their ``final.pt``): the audio-only run of the same audio configuration and the video-only run
            (:func:`merlib.models.mer.init_branches`) — as the paper's MER starts from pretrained encoders.
        encoder_lr_scale: a multimodal model's audio and video branches learn at ``lr · encoder_lr_scale``, its
            fusion head at ``lr`` (1.0: one rate for all, the paper's).
    """

    size: str = "paper"
    seed: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_rate: tuple[float, ...] = (0.02, 0.05, 0.1)
    lr_scheduler_epoch: tuple[int, ...] = (10, 20, 30)
    schedule: str = "reference"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05
    gradient_clip_val: float = 1.0
    max_epochs: int = 500
    patience: int = 12
    top_k: int = 8
    num_workers: int = 8
    n_frames: int = 8
    frame_size: int = 224
    face_crop: bool = False
    hflip_p: float = 0.3
    vflip_p: float = 0.3
    rotation: float = 30.0
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None
    sync_batchnorm: bool = True
    deterministic: bool = False
    limit_train_batches: float | int = 1.0
    num_sanity_val_steps: int = 2
    progress: bool = True
    cpu_threads: int | None = None
    audio_weights: str | None = None
    video_weights: str | None = None
    init_audio: str | None = None
    init_video: str | None = None
    encoder_lr_scale: float = 1.0

    @classmethod
    def paper(cls, **overrides: Any) -> "TrainConfig":
        """The reference recipe at paper size (batch 32, ≤ 500 epochs, patience 12, top 8, 8 × 224² frames)."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> "TrainConfig":
        """The CPU recipe of the quick grid (a documented deviation from the paper's, which needs hundreds of
        epochs): quick models, batch 16, 24 epochs, a step-counted warm-up then cosine decay of 1e-3
        (``schedule="warmup_cosine"``), the 3 best checkpoints averaged, 4 face-cropped frames of 64², one
        compute thread (the grid trains two models at a time, one per core), no sanity validation.

        Why not the reference's schedule: its per-epoch warm-up (1e-3 × 0.02, 0.05, 0.1) assumes ~500 epochs;
        in a few dozen short epochs the weights barely move. Why face crops: in a 64² squashed whole frame the
        face is a dozen pixels wide. Why lighter video augmentation (horizontal flip 0.5, no vertical flip,
        ±10° instead of flips 0.3/0.3 and ±30°): the paper's suits a Kinetics-pretrained network; a small
        network trained from scratch on ~200 clips learned half as fast with it (measured: 27 % vs 42 % test
        accuracy after 24 epochs). Early stopping is effectively off (patience = max_epochs): with 32
        validation clips the validation loss is too noisy to stop on."""
        base = cls(size="quick", batch_size=16, max_epochs=24, patience=24, top_k=3, num_workers=0,
                   schedule="warmup_cosine", warmup_steps=30, n_frames=4, frame_size=64, face_crop=True,
                   hflip_p=0.5, vflip_p=0.0, rotation=10.0, num_sanity_val_steps=0, cpu_threads=1)
        return dataclasses.replace(base, **overrides)

    @classmethod
    def quick_for(cls, model_name: str | ModelSpec, **overrides: Any) -> "TrainConfig":
        """:meth:`quick` with the per-model settings of the quick grid (:data:`QUICK_GRID`)."""
        return cls.quick(**{**QUICK_GRID[get_spec(model_name).kind], **overrides})

    def __post_init__(self) -> None:
        if self.size not in ("paper", "quick"):
            raise ValueError(f"TrainConfig.size must be 'paper' or 'quick', got {self.size!r}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.top_k < 0 or self.patience < 1:
            raise ValueError(
                f"TrainConfig: batch_size ({self.batch_size}), max_epochs ({self.max_epochs}) and patience "
                f"({self.patience}) must be >= 1 and top_k ({self.top_k}) >= 0"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.warmup_steps < 0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"TrainConfig: warmup_steps ({self.warmup_steps}) must be >= 0 and min_lr_ratio "
                             f"({self.min_lr_ratio}) in [0, 1]")
        if len(self.lr_rate) != len(self.lr_scheduler_epoch):
            raise ValueError(f"TrainConfig: lr_rate {self.lr_rate} and lr_scheduler_epoch "
                             f"{self.lr_scheduler_epoch} must have the same length")
        self.lr_rate = tuple(float(v) for v in self.lr_rate)
        self.lr_scheduler_epoch = tuple(int(v) for v in self.lr_scheduler_epoch)

    def frame_settings(self):
        """The :class:`~merlib.data.video.FrameSettings` of this run's frame cache."""
        from .data.video import FrameSettings

        return FrameSettings(n_frames=self.n_frames, size=self.frame_size, face_crop=self.face_crop,
                             hflip_p=self.hflip_p, vflip_p=self.vflip_p, rotation=self.rotation)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise so a typo is not ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"TrainConfig has no field(s) {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# -------------------------------------------------------------------------------------------- schedule


def reference_lr_multiplier(
    epoch: int, lr_rate: Sequence[float] = (0.02, 0.05, 0.1), lr_scheduler_epoch: Sequence[int] = (10, 20, 30)
) -> float:
    """The reference's learning-rate multiplier for ``epoch`` (0-based), HTS-AT's ``lr_foo``.

    Warm-up: ``lr_rate[epoch]`` for the first ``len(lr_rate)`` epochs. Then the stage of ``epoch`` among the
    boundaries ``lr_scheduler_epoch`` (an epoch equal to a boundary belongs to the stage *before* it) picks the
    rates in reverse order: ``lr_rate[-1]`` up to the first boundary, ``lr_rate[-2]`` up to the second, …;
    after the last boundary ``max(lr_rate[0] · 0.98^epoch, 0.03)``. With the defaults: 0.02, 0.05, 0.1
    (epochs 2–10), 0.05 (11–20), 0.02 (21–30), 0.03 (≥ 31).
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if epoch < len(lr_rate):
        return float(lr_rate[epoch])
    stage = sum(1 for boundary in lr_scheduler_epoch if boundary < epoch)  # boundaries strictly before epoch
    if stage >= len(lr_rate):
        return max(float(lr_rate[0]) * 0.98**epoch, 0.03)
    return float(lr_rate[len(lr_rate) - 1 - stage])


class WarmupCosine:
    """Learning-rate multiplier per optimiser *step* for ``LambdaLR``: linear warm-up, then cosine decay.

    ``step < warmup``: ``(step + 1) / warmup``; afterwards ``min_ratio + (1 - min_ratio) · (1 + cos(π·p)) / 2``
    with ``p`` the fraction of the remaining steps done (1 at ``total - 1``). The usual recipe for training a
    transformer from scratch in few steps: warm-up keeps Adam's first, badly-estimated updates small, and
    the decay settles the weights that checkpoint averaging then combines.
    """

    def __init__(self, warmup: int, total: int, min_ratio: float = 0.05) -> None:
        self.warmup = max(0, int(warmup))
        self.total = max(self.warmup + 1, int(total))
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        p = min(1.0, (step - self.warmup) / max(1, self.total - 1 - self.warmup))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))


class ReferenceSchedule:
    """:func:`reference_lr_multiplier` as a picklable callable for ``torch.optim.lr_scheduler.LambdaLR`` (its
    parameters are saved with the scheduler's state)."""

    def __init__(self, lr_rate: Sequence[float], lr_scheduler_epoch: Sequence[int]) -> None:
        self.lr_rate = tuple(lr_rate)
        self.lr_scheduler_epoch = tuple(lr_scheduler_epoch)

    def __call__(self, epoch: int) -> float:
        return reference_lr_multiplier(epoch, self.lr_rate, self.lr_scheduler_epoch)


# ----------------------------------------------------------------------------------------- the module


class EmotionModule(L.LightningModule):
    """Lightning wrapper of one Table II model: loss, metrics, optimiser and schedule of the recipe.

    Args:
        model: the network (:func:`merlib.models.mer.build_model`).
        spec: its :class:`~merlib.models.mer.ModelSpec` (which batch entries it reads).
        cfg: the :class:`TrainConfig` (lr, weight decay, schedule).

    Logs ``train_loss`` (per step and epoch), ``val_loss``, ``val_acc`` (per epoch) and ``lr``.
    """

    def __init__(self, model: nn.Module, spec: str | ModelSpec, cfg: TrainConfig | None = None) -> None:
        super().__init__()
        self.model = model
        self.spec = get_spec(spec)
        self.cfg = cfg or TrainConfig()

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return forward_logits(self.model, self.spec, batch)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # which Table II model and recipe these weights are, so that a .ckpt copied out of its run folder still
        # loads by itself (merlib.predict.load_model); plain strings and numbers, readable with weights_only=True
        checkpoint["merlib"] = {"model": self.spec.name, "train": self.cfg.to_dict()}

    def _loss_acc(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch).float()  # the loss in float32 also under bf16 autocast
        labels = batch["label"]
        return F.cross_entropy(logits, labels), (logits.argmax(dim=1) == labels).float().mean()

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, acc = self._loss_acc(batch)
        n = len(batch["label"])
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        self.log("train_acc", acc, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        loss, acc = self._loss_acc(batch)
        n = len(batch["label"])
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        self.log("val_acc", acc, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)

    def on_train_epoch_start(self) -> None:
        self.log("lr", max(g["lr"] for g in self.optimizers().param_groups), on_step=False, on_epoch=True, sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        params: Any = [p for p in self.model.parameters() if p.requires_grad]
        scale = self.cfg.encoder_lr_scale
        if scale != 1.0 and hasattr(self.model, "classifier") and hasattr(self.model, "audio"):
            head = {id(p) for p in self.model.classifier.parameters()}
            params = [{"params": [p for p in params if id(p) not in head], "lr": self.cfg.lr * scale},
                      {"params": [p for p in params if id(p) in head], "lr": self.cfg.lr}]
        # fused: the same Adam update in one kernel per device (4× faster on the CPU than the per-tensor loop)
        optimizer = torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=True)
        if self.cfg.schedule == "warmup_cosine":
            total = int(self.trainer.estimated_stepping_batches)
            rule, interval = WarmupCosine(self.cfg.warmup_steps, total, self.cfg.min_lr_ratio), "step"
        else:
            rule, interval = ReferenceSchedule(self.cfg.lr_rate, self.cfg.lr_scheduler_epoch), "epoch"
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": interval}}


def _scalar(value: Any) -> float | None:
    if value is None:
        return None
    return float(value.detach().cpu()) if torch.is_tensor(value) else float(value)


class History(L.Callback):
    """Per-epoch record (epoch, train/val loss and accuracy, lr, seconds, process id), saved in every
    checkpoint so that a resumed run's history is continuous."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self._t0 = time.time()
        self._lr: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.time()
        self._lr = max(float(g["lr"]) for g in trainer.optimizers[0].param_groups) if trainer.optimizers else None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = trainer.callback_metrics
        self.epochs.append({
            "epoch": int(trainer.current_epoch),
            "train_loss": _scalar(m.get("train_loss_epoch")),
            "train_acc": _scalar(m.get("train_acc")),
            "val_loss": _scalar(m.get("val_loss")),
            "val_acc": _scalar(m.get("val_acc")),
            "lr": self._lr,
            "seconds": round(time.time() - self._t0, 3),
            "pid": os.getpid(),
        })

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs = list(state_dict.get("epochs", []))


# ----------------------------------------------------------------------------------- weight averaging


def _model_state(checkpoint: Mapping[str, Any], prefix: str = "model.") -> dict[str, torch.Tensor]:
    state = checkpoint.get("state_dict", checkpoint)
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of state dicts with the same keys and shapes (computed in float64).

    Floating tensors keep their dtype; integer tensors (``num_batches_tracked``) are averaged and rounded.
    """
    if not states:
        raise ValueError("average_state_dicts needs at least one state dict")
    keys = list(states[0])
    for i, s in enumerate(states[1:], start=1):
        if set(s) != set(keys):
            diff = sorted(set(s) ^ set(keys))
            raise ValueError(f"state dict {i} has other keys than state dict 0 ({', '.join(diff[:4])} …)")
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        ref = states[0][key]
        total = torch.zeros(ref.shape, dtype=torch.float64)
        for s in states:
            if s[key].shape != ref.shape:
                raise ValueError(f"{key!r} has shape {tuple(s[key].shape)} in one state dict and {tuple(ref.shape)} in another")
            total += s[key].detach().cpu().double()
        mean = total / len(states)
        out[key] = mean.to(ref.dtype) if ref.is_floating_point() else mean.round().to(ref.dtype)
    return out


def average_checkpoints(paths: Sequence[str | os.PathLike], prefix: str = "model.") -> dict[str, torch.Tensor]:
    """Average the model weights of Lightning checkpoints (the reference's ``weight_average``).

    Args:
        paths: ``.ckpt`` files written by :func:`train` (or any ``{"state_dict": …}`` / bare state dicts).
        prefix: removed from the keys (:class:`EmotionModule` keeps the network under ``model.``).

    Returns:
        the averaged state dict, with the network's own names (load it with ``model.load_state_dict``).
    """
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint path")
    states = []
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"checkpoint {p} does not exist")
        states.append(_model_state(torch.load(p, map_location="cpu", weights_only=True), prefix))
    return average_state_dicts(states)


# ------------------------------------------------------------------------------------------- running


@dataclass
class TrainResult:
    """What :func:`train` returns (also written to ``summary.json``).

    Attributes:
        out_dir: the run directory.
        model_name: the Table II model.
        model: the network with the averaged (final) weights, on the CPU, in eval mode.
        final_path: ``out_dir/final.pt``.
        averaged: the checkpoints averaged into ``final.pt`` (best first).
        epochs: epochs trained in total (over all restarts).
        best_val_acc: the best validation accuracy of a single epoch.
        val_acc_averaged, val_loss_averaged: the averaged model on the validation set.
        stopped_early: whether early stopping ended the run.
        summary: the contents of ``summary.json``.
    """

    out_dir: Path
    model_name: str
    model: nn.Module
    final_path: Path
    averaged: list[str]
    epochs: int
    best_val_acc: float | None
    val_acc_averaged: float | None
    val_loss_averaged: float | None
    stopped_early: bool
    summary: dict[str, Any] = field(default_factory=dict)


def _env_int(*names: str) -> int | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            try:
                return int(value.split("(")[0].split(",")[0])
            except ValueError:
                continue
    return None


def resolve_launch(cfg: TrainConfig) -> dict[str, Any]:
    """Lightning Trainer arguments for where this process runs: devices and nodes from torchrun or SLURM when
    ``devices="auto"``, DDP for several devices, bf16-mixed on a GPU (unless ``precision`` is set)."""
    devices: int | str = cfg.devices
    num_nodes = cfg.num_nodes
    local = _env_int("LOCAL_WORLD_SIZE")
    world = _env_int("WORLD_SIZE")
    if devices == "auto" and local and world:  # torchrun
        devices, num_nodes = local, max(1, world // local)
    elif devices == "auto" and os.environ.get("SLURM_NTASKS") and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        nodes = _env_int("SLURM_NNODES") or 1
        per_node = _env_int("SLURM_NTASKS_PER_NODE") or max(1, (_env_int("SLURM_NTASKS") or 1) // nodes)
        devices, num_nodes = per_node, nodes
    accelerator = cfg.accelerator
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    strategy = cfg.strategy
    many = (isinstance(devices, int) and devices > 1) or num_nodes > 1 or (devices in ("auto", -1, "-1") and gpu
                                                                           and torch.cuda.device_count() > 1)
    if strategy == "auto" and many:
        strategy = "ddp"  # every trainable parameter gets a gradient: no find_unused_parameters
    precision = cfg.precision or ("bf16-mixed" if gpu else "32-true")
    if precision == "auto" or (not gpu and precision in ("bf16-mixed", "bf16")):
        # "auto": bf16 on a GPU or a CPU that computes it natively; bf16 asked for on a CPU that emulates it
        # is kept, with merlib.cpu's warning that it is slower there
        precision = "bf16-mixed" if resolve_precision(precision, "cuda" if gpu else "cpu") == "bf16" else "32-true"
    return {"accelerator": accelerator, "devices": devices, "num_nodes": num_nodes, "strategy": strategy,
            "precision": precision, "sync_batchnorm": bool(cfg.sync_batchnorm and gpu and many)}


def _versions() -> dict[str, str]:
    import torchvision

    from . import __version__

    return {"merlib": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "lightning": L.__version__, "python": platform.python_version()}


def run_settings(model_name: str | ModelSpec, cfg: TrainConfig, data: Any = None) -> Config:
    """The :class:`merlib.config.Config` a training run saves (``config.yaml``/``config.json``).

    ``model``, ``seed``, ``preset`` (the model size) and the ``train`` section come from the arguments; ``frames``
    is ``cfg.frame_settings()`` for a model that reads video and None otherwise; the rest is what the data
    records about itself: ``reverb`` is the reverberant build's own settings (its ``reverb_config.json``, the
    actor split included), ``data.root`` the corpus it was built from, ``data.cache_dir`` the cache it lies in
    (when laid out as :func:`merlib.datasets.prepare_corpora` lays it out), and ``synth`` that corpus' spec when
    ``merlib synth`` made it. ``data`` is a :class:`~merlib.datasets.CorpusPaths`, a reverberant build folder or
    a data module with a ``corpus``; for anything else those sections stay empty.
    """
    from .data.reverberant import CONFIG_FILE, ReverbConfig

    spec = get_spec(model_name)
    corpus = getattr(data, "corpus", data)
    build = corpus if isinstance(corpus, (str, os.PathLike)) else getattr(corpus, "reverberant", None)
    reverb, data_cfg = None, DataConfig()
    if build is not None and (Path(build) / CONFIG_FILE).is_file():
        build = Path(build)
        record = json.loads((build / CONFIG_FILE).read_text())
        reverb = ReverbConfig.from_dict(record["config"])
        data_cfg.root = str(record["source"]).split("|first")[0]  # "|firstN": a build of each actor's first N clips
        if build.parent.name == "reverberant":
            data_cfg.cache_dir = str(build.parent.parent)
    return Config(preset=cfg.size, seed=cfg.seed, model=spec.name, data=data_cfg, synth=read_synth_spec(data_cfg.root),
                  reverb=reverb, frames=cfg.frame_settings() if spec.uses_video else None, train=cfg)


def _save_run_config(out_dir: Path, settings: Config, facts: dict[str, Any]) -> None:
    """The run's settings through :func:`merlib.config.save_config`, and beside them ``run.json``."""
    save_config(settings, out_dir)
    write_json(out_dir / RUN_RECORD, facts)


def _recorded_model(record: Mapping[str, Any]) -> str | None:
    """The model name in a run's ``config.json``: ``"model": "mer_sum_pe"`` (a saved Config) or, in runs saved
    before the run's settings were one Config, ``"model": {"name": "mer_sum_pe", …}``."""
    model = record.get("model")
    return model.get("name") if isinstance(model, Mapping) else model


def _make_datamodule(data: Any, spec: ModelSpec, cfg: TrainConfig) -> L.LightningDataModule:
    from .datasets import CorpusPaths, MERDataModule

    if isinstance(data, L.LightningDataModule):
        return data
    if isinstance(data, (str, os.PathLike)):
        data = CorpusPaths(Path(data))
    if not isinstance(data, CorpusPaths):
        raise TypeError(f"data must be a CorpusPaths, a reverberant build folder or a LightningDataModule, "
                        f"not {type(data).__name__}")
    settings = cfg.frame_settings() if spec.uses_video else None
    if settings is not None and data.frames is not None:
        from .data.video import read_cache_report

        cached = read_cache_report(data.frames).settings
        if cached.cache_fields() != settings.cache_fields():
            raise ValueError(
                f"the frame cache {data.frames} holds frames made with {cached.cache_fields()} but the run asks for "
                f"{settings.cache_fields()} (TrainConfig.n_frames / frame_size / face_crop); build the cache "
                "with cfg.frame_settings() (merlib.datasets.prepare_corpora) or change the config"
            )
    return MERDataModule(data, spec, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                         frame_settings=settings)


def check_run_dir(out_dir: str | os.PathLike, model_name: str, resume: bool = False) -> Path:
    """Refuse a run folder :func:`train` cannot use, before any data is prepared: a file, a folder that cannot be
    written, a finished or started run without ``resume``, a resume without a run, or another model's run.

    Raises:
        OutputError: naming the folder and what to do.
    """
    out = check_output_dir(out_dir)
    last = out / CHECKPOINT_DIR / LAST
    if last.exists() and not resume:
        raise OutputError(f"{out} already holds a training run ({last}); pass resume=True (merlib train … --resume) "
                          "to continue it, or choose another output folder")
    if resume and not last.exists():
        raise OutputError(f"cannot resume: {last} does not exist; train without resume=True (--resume) to start "
                          "the run")
    if resume and (out / CONFIG).exists():
        try:
            old = _recorded_model(json.loads((out / CONFIG).read_text()))
        except (json.JSONDecodeError, AttributeError) as err:
            raise OutputError(f"{out / CONFIG} is not a merlib run record ({err}); resume a folder that "
                              "merlib train wrote") from err
        if old and old != model_name:
            raise OutputError(f"{out} holds a run of {old!r}, not {model_name!r}; resume it with that model name")
    return out


def _next_log_version(log_root: Path) -> str:
    n = 0
    while (log_root / f"run{n}").exists():
        n += 1
    return f"run{n}"


def train(
    model_name: str | ModelSpec,
    data: Any,
    cfg: TrainConfig | None = None,
    out_dir: str | os.PathLike = "outputs/train",
    resume: bool = False,
    model: nn.Module | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> TrainResult:
    """Train one Table II model with the reference recipe and average its best checkpoints.

    Args:
        model_name: ``"mer_sum_pe"`` etc. (:data:`merlib.models.mer.MODEL_SPECS`).
        data: a :class:`merlib.datasets.CorpusPaths` (reverberant build + frame cache), a reverberant build
            folder (audio models), or any LightningDataModule whose batches are :mod:`merlib.datasets` dicts.
        cfg: the :class:`TrainConfig` (default :meth:`TrainConfig.paper`).
        out_dir: the run directory (see the module docstring for what it holds).
        resume: continue from ``out_dir/checkpoints/last.ckpt``; without it a directory that already holds a
            run is refused.
        model: a network to train instead of ``build_model(model_name, cfg.size, …)`` (tests, custom sizes).
        callbacks: extra Lightning callbacks.

    Returns:
        a :class:`TrainResult`; the model in it carries the averaged weights.
    """
    spec = get_spec(model_name)
    cfg = cfg or TrainConfig.paper()
    out = check_run_dir(out_dir, spec.name, resume)
    ckpt_dir = out / CHECKPOINT_DIR
    last = ckpt_dir / LAST
    out.mkdir(parents=True, exist_ok=True)

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    tune_allocator()  # merlib.cpu: on the CPU, reuse freed activations instead of faulting them in again
    if model is None:
        model = build_model(spec, cfg.size, audio_weights=cfg.audio_weights, video_weights=cfg.video_weights)
        if (cfg.init_audio or cfg.init_video) and not resume:  # a resumed run reads its weights from last.ckpt
            init_branches(model, audio=cfg.init_audio, video=cfg.init_video)
    module = EmotionModule(model, spec, cfg)
    dm = _make_datamodule(data, spec, cfg)

    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    history = History()
    top_k = ModelCheckpoint(
        dirpath=ckpt_dir, filename="epoch{epoch:03d}-acc{val_acc:.4f}", monitor="val_acc", mode="max",
        save_top_k=cfg.top_k, save_weights_only=True, auto_insert_metric_name=False,
    )
    # the full state after every epoch, overwritten in place (Lightning writes it atomically): what resume reads
    keep_last = ModelCheckpoint(dirpath=ckpt_dir, filename=LAST[: -len(".ckpt")], monitor=None, save_top_k=1,
                                enable_version_counter=False)
    stopper = EarlyStopping(monitor="val_loss", mode="min", patience=cfg.patience)
    cbs: list[L.Callback] = [history, top_k, keep_last, stopper, *callbacks]
    if cfg.progress:
        cbs.append(TQDMProgressBar(refresh_rate=1))
    launch = resolve_launch(cfg)
    log_root = out / "logs"
    logger = CSVLogger(str(out), name="logs", version=_next_log_version(log_root))
    trainer = L.Trainer(
        **launch, max_epochs=cfg.max_epochs, gradient_clip_val=cfg.gradient_clip_val, callbacks=cbs,
        logger=logger, deterministic=cfg.deterministic, enable_progress_bar=cfg.progress,
        enable_model_summary=False, limit_train_batches=cfg.limit_train_batches,
        num_sanity_val_steps=cfg.num_sanity_val_steps, log_every_n_steps=1, default_root_dir=str(out),
    )
    world = trainer.world_size
    if hasattr(dm, "batch_size") and not isinstance(data, L.LightningDataModule):
        dm.batch_size = max(1, cfg.batch_size // world)  # the reference's global batch split over devices

    if trainer.is_global_zero:
        facts = {
            "launch": {**{k: str(v) for k, v in launch.items()}, "world_size": world,
                       "per_device_batch": getattr(dm, "batch_size", None)},
            "data": dm.describe() if hasattr(dm, "describe") else type(dm).__name__,
            "resumed_from": str(last) if resume else None, "versions": _versions(), "allocator": allocator_state(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        _save_run_config(out, run_settings(spec, cfg, dm), facts)

    resumed_epoch = None
    if resume:
        # mmap: only the epoch counter is needed, not gigabytes of weights and optimizer state
        resumed_epoch = int(torch.load(last, map_location="cpu", weights_only=False, mmap=True).get("epoch", -1))
    threads = torch.get_num_threads()
    if cfg.cpu_threads and trainer.strategy.root_device.type == "cpu":
        torch.set_num_threads(cfg.cpu_threads)
    try:
        t0 = time.time()
        trainer.fit(module, datamodule=dm, ckpt_path=str(last) if resume else None)
        fit_seconds = time.time() - t0
        summary, paths, val_avg = _finish(trainer, module, model, dm, top_k, stopper, history, out, spec, cfg,
                                          resumed_epoch, fit_seconds)
    finally:
        torch.set_num_threads(threads)  # leave the caller's setting as it was
    model = model.cpu().eval()
    return TrainResult(out, spec.name, model, out / FINAL, list(paths), summary["epochs"], summary["best_val_acc"],
                       val_avg.get("val_acc"), val_avg.get("val_loss"), summary["stopped_early"], summary)


def _finish(trainer: L.Trainer, module: EmotionModule, model: nn.Module, dm: Any, top_k: Any, stopper: Any,
            history: History, out: Path, spec: ModelSpec, cfg: TrainConfig, resumed_epoch: int | None,
            fit_seconds: float) -> tuple[dict[str, Any], list[str], dict[str, float]]:
    """After fit: average the top-k checkpoints into the model, validate it, write final.pt and summary.json."""
    world = trainer.world_size

    # -- the final model: the average of the top-k checkpoints, computed once and shared with every rank
    ranked = sorted(top_k.best_k_models.items(), key=lambda kv: -float(kv[1]))
    paths = [str(p) for p, _ in ranked if Path(p).exists()] if trainer.is_global_zero else []
    state = None
    if trainer.is_global_zero:
        state = average_checkpoints(paths) if paths else {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    state = trainer.strategy.broadcast(state, src=0)
    paths = trainer.strategy.broadcast(paths, src=0)
    model.load_state_dict(state)
    val_avg: dict[str, float] = {}
    if getattr(dm, "val_dataloader", None) is not None:
        results = trainer.validate(module, datamodule=dm, verbose=False)
        if results:
            val_avg = {k: float(v) for k, v in results[0].items()}

    epochs = history.epochs
    best = max((e["val_acc"] for e in epochs if e["val_acc"] is not None), default=None)
    summary = {
        "model": spec.name, "epochs": len(epochs), "max_epochs": cfg.max_epochs,
        # triggered before max_epochs (a trigger in the last epoch shortens nothing)
        "stopped_early": bool(0 < stopper.stopped_epoch < cfg.max_epochs - 1),
        "stopped_epoch": int(stopper.stopped_epoch) if stopper.stopped_epoch > 0 else None,
        "best_val_acc": best,
        "best_epoch": next((e["epoch"] for e in epochs if e["val_acc"] == best), None) if best is not None else None,
        "val_acc_averaged": val_avg.get("val_acc"), "val_loss_averaged": val_avg.get("val_loss"),
        "n_checkpoints_averaged": len(paths),
        "averaged": [{"path": str(Path(p).relative_to(out)) if Path(p).is_relative_to(out) else p,
                      "epoch": int(torch.load(p, map_location="cpu", weights_only=False, mmap=True).get("epoch", -1)),
                      "val_acc": float(top_k.best_k_models[p]) if p in top_k.best_k_models else None} for p in paths],
        "train_loss": [e["train_loss"] for e in epochs], "val_loss": [e["val_loss"] for e in epochs],
        "val_acc": [e["val_acc"] for e in epochs], "lr": [e["lr"] for e in epochs],
        "history": epochs, "resumed_from_epoch": resumed_epoch, "world_size": world,
        "fit_seconds": round(fit_seconds, 2), "seed": cfg.seed,
    }
    final = out / FINAL
    if trainer.is_global_zero:
        torch.save(model.state_dict(), final)
        write_json(out / SUMMARY, summary)
    trainer.strategy.barrier()
    return summary, list(paths), val_avg


def read_summary(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``summary.json`` of a finished run."""
    path = Path(out_dir) / SUMMARY
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the run in {out_dir} has not finished (resume it with --resume)")
    return json.loads(path.read_text())


def read_run_config(out_dir: str | os.PathLike) -> TrainConfig:
    """The :class:`TrainConfig` a run was trained with (the ``train`` section of its ``config.json``; the whole
    :class:`~merlib.config.Config` is ``merlib.config.load_config(out_dir)``)."""
    path = Path(out_dir) / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {out_dir} is not a merlib training run folder")
    train = json.loads(path.read_text()).get("train")
    if not train:
        raise ValueError(f"{path} has no train section: {out_dir} holds the settings of a run that trained nothing")
    return TrainConfig.from_dict(train)


def find_runs(runs_dir: str | os.PathLike, names: Sequence[str] | None = None) -> dict[str, Path]:
    """Finished runs below ``runs_dir`` (``<runs_dir>/<model>/final.pt`` + ``config.json``, as ``merlib
    reproduce`` writes ``outputs/runs``): ``{model name: run folder}`` in Table II order.

    With ``names``, only those models, and a ``FileNotFoundError`` listing any that have no finished run.
    """
    from .models.mer import TABLE_II_ORDER

    root = Path(runs_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no runs folder {root}; train with `merlib reproduce` (outputs/runs) or `merlib train`")
    found: dict[str, Path] = {}
    for sub in sorted(p for p in root.iterdir() if (p / FINAL).exists() and (p / CONFIG).exists()):
        name = _recorded_model(json.loads((sub / CONFIG).read_text())) or sub.name
        found.setdefault(name, sub)
    order = list(TABLE_II_ORDER) + sorted(set(found) - set(TABLE_II_ORDER))
    found = {n: found[n] for n in order if n in found}
    if names is not None:
        missing = [n for n in names if n not in found]
        if missing:
            raise FileNotFoundError(f"{root} has no finished run of {', '.join(missing)} (found: "
                                    f"{', '.join(found) or 'none'}); train them or leave them out")
        found = {n: found[n] for n in names}
    return found


def load_final(out_dir: str | os.PathLike, model_name: str | None = None, size: str | None = None) -> nn.Module:
    """Rebuild a run's model (name and size from its ``config.json``) with the averaged weights of ``final.pt``."""
    out = Path(out_dir)
    record = json.loads((out / CONFIG).read_text()) if (out / CONFIG).exists() else {}
    name = model_name or _recorded_model(record)
    size = size or (record.get("train") or {}).get("size", "paper")
    if name is None:
        raise ValueError(f"{out} has no config.json naming a model; pass model_name")
    if not (out / FINAL).exists():
        raise FileNotFoundError(f"{out / FINAL} does not exist: the run has not finished")
    model = build_model(name, size)
    model.load_state_dict(torch.load(out / FINAL, map_location="cpu", weights_only=True))
    return model.eval()


# ------------------------------------------------------------------------------------------------ CLI


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` a ``merlib train`` command line asks for."""
    devices: int | str = args.devices
    if isinstance(devices, str) and devices.lstrip("-").isdigit():
        devices = int(devices)
    overrides: dict[str, Any] = {"seed": args.seed, "devices": devices, "accelerator": args.accelerator,
                                 "num_nodes": args.num_nodes, "progress": not args.no_progress,
                                 "audio_weights": args.audio_weights, "video_weights": args.video_weights,
                                 "init_audio": getattr(args, "init_audio", None),
                                 "init_video": getattr(args, "init_video", None)}
    for name in ("max_epochs", "batch_size", "num_workers", "precision"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    return TrainConfig.quick_for(args.model, **overrides) if args.quick else TrainConfig.paper(**overrides)


def _check_weight_paths(cfg: TrainConfig) -> None:
    """Refuse a missing, empty or truncated weights file before the data is prepared."""
    from .models.checkpoints import check_checkpoint_file

    for option, value in (("--audio-weights", cfg.audio_weights), ("--video-weights", cfg.video_weights)):
        if value and value != "kinetics400":
            if not Path(value).exists():
                raise FileNotFoundError(f"{option} {value} does not exist; check the path")
            check_checkpoint_file(value)
    for option, value in (("--init-audio", cfg.init_audio), ("--init-video", cfg.init_video)):
        if value and not Path(value).exists():
            raise FileNotFoundError(f"{option} {value} does not exist; give a finished run folder or its final.pt")
        if value and Path(value).is_file():
            check_checkpoint_file(value)


def run_train_command(args: argparse.Namespace) -> int:
    """Handler of ``merlib train``: prepare the data, train, print where everything is."""
    from .datasets import prepare_corpora

    cfg = config_from_args(args)
    spec = get_spec(args.model)
    check_run_dir(args.out, spec.name, args.resume)  # before hours of data preparation, not after
    _check_weight_paths(cfg)
    rank = _env_int("RANK", "SLURM_PROCID") or 0
    # Under torchrun/SLURM every rank runs this; only rank 0 builds the corpora (concurrent builds of one cache
    # would collide) and leaves their paths in OUT for the others. The paths depend only on these arguments, so
    # a marker left by an earlier run with the same arguments is as good; the other ranks read the data only
    # after DDP's start-up, which waits for rank 0, i.e. after the builds.
    launch_id = json.dumps([str(Path(args.data_root).resolve()), cfg.seed, cfg.frame_settings().cache_fields(),
                            args.ace_root, str(args.cache_dir), spec.uses_video])
    marker = Path(args.out) / ".data_ready.json"
    if rank == 0:
        corpora = prepare_corpora(args.data_root, seed=cfg.seed, frame_settings=cfg.frame_settings(),
                                  ace_root=args.ace_root, cache_dir=args.cache_dir, video=spec.uses_video,
                                  progress=cfg.progress)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(marker, {"launch": launch_id, "reverberant": str(corpora.reverberant),
                             "frames": str(corpora.frames) if corpora.frames else None})
    else:
        from .datasets import CorpusPaths

        deadline = time.time() + 6 * 3600
        while True:
            ready = json.loads(marker.read_text()) if marker.exists() else {}
            if ready.get("launch") == launch_id:
                corpora = CorpusPaths(Path(ready["reverberant"]), ready["frames"])
                break
            if time.time() > deadline:
                raise TimeoutError(f"rank {rank}: rank 0 did not prepare the data within 6 h ({marker} missing); "
                                   "is OUT on a file system every node sees?")
            time.sleep(2)
    result = train(spec.name, corpora, cfg, args.out, resume=args.resume)
    if rank == 0:
        acc = result.val_acc_averaged
        print(f"{spec.name}: {result.epochs} epochs{' (stopped early)' if result.stopped_early else ''}, best val acc "
              f"{result.best_val_acc if result.best_val_acc is None else f'{result.best_val_acc:.3f}'}, averaged "
              f"{len(result.averaged)} checkpoints → val acc {acc if acc is None else f'{acc:.3f}'}; "
              f"weights {result.final_path}, summary {result.out_dir / SUMMARY}")
    return 0
