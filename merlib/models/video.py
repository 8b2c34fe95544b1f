"""The video branch: R(2+1)D-18 encoder (768-d clip embedding) and the video-only emotion classifier.

Notebook: 05_r2plus1d_video.ipynb

The authors' video encoder (docs/design.md §5, ``docs/reference-model.md`` §1.7) is torchvision's R(2+1)D-18 —
an 18-layer 3-D ResNet whose every 3×3×3 convolution is factorised into a 1×3×3 spatial convolution, a
BatchNorm + ReLU, and a 3×1×1 temporal convolution (Tran et al., 2018) — with its 400-way Kinetics classifier
replaced by ``fc = Sequential(Dropout(0.1), Linear(512, 768))``. Input ``(B, 3, T, H, W)`` normalised frames
(see :mod:`merlib.data.video`: 8 frames of 224×224 for evaluation, 180×180 crops for training); output the
768-d embedding the fusion model concatenates with the audio one. The video-only model adds the reference's
head ``Linear(768, 768) → ReLU → Linear(768, 8)``.

Parameter counts (all trainable): trunk 31,300,125 + fc 393,984 = **31,694,109** for :class:`VideoEncoder`;
+ head 596,744 = **32,290,853** for :class:`VideoClassifier` — the reference's 32.291 M (the paper's 32.3 M).

Quick mode uses the *same* model on smaller inputs (e.g. 4 frames of 64×64, :meth:`FrameSettings.quick
<merlib.data.video.FrameSettings.quick>`): R(2+1)D ends in global average pooling, so any T ≥ 1 and
H, W ≥ 16 work and the weights do not depend on the input size — only the compute does (≈ 60× less than
8×224×224). Kinetics-400 pre-training itself used 16 frames of 112×112.

Weights, never downloaded at run time:

* ``weights=None`` — random initialisation (torchvision's);
* ``weights="kinetics400"`` — torchvision's ``R2Plus1D_18_Weights.KINETICS400_V1`` if the file is already in
  the torch hub cache (``torch.hub.get_dir()/checkpoints/r2plus1d_18-91a641e6.pth``), else an error saying
  how to fetch it once;
* ``weights=<path>`` — a file holding R(2+1)D-18 weights: torchvision's own file (any location), a merlib
  ``VideoEncoder``/``VideoClassifier`` state dict, or an authors' checkpoint (``sed_model.video_encoder.model.…``).
  The 400-way Kinetics ``fc`` is skipped; every trunk weight must be present.

Checkpoint names: :meth:`VideoEncoder.reference_layout` maps ``model.…`` onto the reference's
``video_encoder.model.…`` so :func:`merlib.models.checkpoints.load_reference_checkpoint` loads the authors'
files and :func:`~merlib.models.checkpoints.export_reference_state_dict` writes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch
from torch import nn

from .checkpoints import LoadReport, ReferenceLayout, load_reference_checkpoint, read_state_dict

__all__ = [
    "EMBEDDING_DIM",
    "VideoEncoder",
    "VideoClassifier",
    "QuickR2Plus1D",
    "ClassificationHead",
    "kinetics400_weights_path",
    "conv_parameter_counts",
    "count_parameters",
]

EMBEDDING_DIM = 768
QUICK_EMBEDDING_DIM = 192  # the quick HTS-AT's embedding width, so the quick fusion sees two equal halves
Arch = Literal["r2plus1d_18", "quick"]
ARCHS: tuple[str, ...] = ("r2plus1d_18", "quick")
_TRUNK_OUT = 512  # R(2+1)D-18's pooled feature width
DOWNLOAD_HINT = (
    'python -c "from torchvision.models.video import r2plus1d_18, R2Plus1D_18_Weights; '
    'r2plus1d_18(weights=R2Plus1D_18_Weights.KINETICS400_V1)"'
)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of ``nn.Parameter`` elements (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def kinetics400_weights_path() -> Path:
    """Where torchvision keeps the Kinetics-400 R(2+1)D-18 weights: ``torch.hub.get_dir()/checkpoints/<file>``."""
    from torchvision.models.video import R2Plus1D_18_Weights

    name = Path(urlparse(R2Plus1D_18_Weights.KINETICS400_V1.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def conv_parameter_counts(in_planes: int, out_planes: int, t: int = 3, d: int = 3) -> dict[str, int]:
    """Parameters of a full ``t×d×d`` 3-D convolution vs torchvision's (2+1)D factorisation of it.

    The factorisation is a ``1×d×d`` spatial convolution to ``M`` channels, BatchNorm (2M parameters) and
    ReLU, then a ``t×1×1`` temporal convolution, with ``M = ⌊t·d²·N_in·N_out / (d²·N_in + t·N_out)⌋`` chosen so
    that both have about the same number of parameters (no biases: BatchNorm follows). Returns
    ``{"full_3d", "spatial", "temporal", "batchnorm", "factorised", "midplanes"}``.
    """
    mid = (t * d * d * in_planes * out_planes) // (d * d * in_planes + t * out_planes)
    spatial, temporal = in_planes * mid * d * d, mid * out_planes * t
    return {"full_3d": in_planes * out_planes * t * d * d, "spatial": spatial, "temporal": temporal,
            "batchnorm": 2 * mid, "factorised": spatial + temporal + 2 * mid, "midplanes": mid}


def _check_video(video: torch.Tensor, who: str) -> None:
    if video.dim() != 5 or video.shape[1] != 3:
        raise ValueError(
            f"{who} takes video (B, 3, T, H, W) — batch, RGB, frames, height, width — got shape "
            f"{tuple(video.shape)}; merlib.data.video.VideoFrames yields (3, T, H, W) items"
        )
    if video.shape[-1] < 16 or video.shape[-2] < 16:
        raise ValueError(f"{who}: frames of {video.shape[-2]}×{video.shape[-1]} are too small; R(2+1)D needs ≥ 16×16")


class QuickR2Plus1D(nn.Module):
    """A narrow R(2+1)D for CPU runs: R(2+1)D-18's stem and residual blocks at widths 16-32-64-128, one block
    per stage (783,300 parameters instead of 31.3 M; 808,068 with the 192-d projection).

    Built from torchvision's own (2+1)D parts (``Conv2Plus1D``, ``BasicBlock``), so it computes what
    R(2+1)D-18 computes — a 1×7×7 then 3×1×1 stem, four stages of factorised 3×3×3 residual blocks, the later
    three halving space and time, global average pooling — with a quarter of the channels and half the depth.
    Why: the full network has 31.3 M parameters to fit from a few hundred clips, and on two CPU cores a
    quick run cannot afford it; this one trains in seconds per epoch and learns the synthetic faces.
    ``forward(video (B, 3, T, H, W)) -> (B, embedding)`` through ``fc`` (set by :class:`VideoEncoder`).
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), stem_mid: int = 12) -> None:
        super().__init__()
        from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D

        w0 = widths[0]
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem_mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid), nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, w0, (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(w0), nn.ReLU(inplace=True),
        )
        layers, inplanes = [], w0
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv3d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm3d(planes))
            layers.append(BasicBlock(inplanes, planes, Conv2Plus1D, stride, down))
            inplanes = planes
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.out_features = inplanes
        self.fc: nn.Module = nn.Identity()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avgpool(self.layers(self.stem(video))).flatten(1))


class VideoEncoder(nn.Module):
    """R(2+1)D-18 with ``fc = Dropout(0.1) + Linear(512, 768)``: video ``(B, 3, T, H, W)`` → ``(B, 768)``.

    Args:
        weights: ``None`` (random), ``"kinetics400"`` (torchvision's, from the local torch hub cache only) or a
            path to R(2+1)D-18 weights (see the module docstring).
        dropout: dropout before the projection (reference: 0.1).
        embedding_dim: output width (default: 768, the paper audio embedding's width; 192 for the quick arch,
            the quick audio embedding's).
        arch: ``"r2plus1d_18"`` (the paper's) or ``"quick"`` (:class:`QuickR2Plus1D`, for CPU runs).

    Attributes:
        embedding_dim: 768 by default.
        weights_report: the :class:`~merlib.models.checkpoints.LoadReport` of ``weights`` (None when random).
    """

    def __init__(self, weights: str | os.PathLike | None = None, dropout: float = 0.1,
                 embedding_dim: int | None = None, arch: Arch = "r2plus1d_18") -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"VideoEncoder arch must be one of {ARCHS}, got {arch!r}")
        if weights is not None and arch != "r2plus1d_18":
            raise ValueError(f"VideoEncoder(arch={arch!r}) is trained from scratch; pretrained weights exist only for "
                             "arch='r2plus1d_18'")
        self.arch = arch
        if arch == "r2plus1d_18":
            from torchvision.models.video import r2plus1d_18

            self.model = r2plus1d_18(weights=None)  # never downloads; pretrained weights are loaded below
            trunk_out = _TRUNK_OUT
        else:
            self.model = QuickR2Plus1D()
            trunk_out = self.model.out_features
        self.embedding_dim = int(embedding_dim or (EMBEDDING_DIM if arch == "r2plus1d_18" else QUICK_EMBEDDING_DIM))
        self.model.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(trunk_out, self.embedding_dim))
        self.weights_report: LoadReport | None = None
        if weights is not None:
            self.weights_report = self.load_trunk(weights)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        _check_video(video, type(self).__name__)
        return self.model(video)

    def reference_layout(self) -> ReferenceLayout:
        """``model.…`` here is ``video_encoder.model.…`` in the authors' checkpoints."""
        return ReferenceLayout(prefixes=(("model.", "video_encoder.model."),))

    def load_trunk(self, weights: str | os.PathLike) -> LoadReport:
        """Load R(2+1)D-18 weights (``"kinetics400"`` or a path); the projection ``fc`` is loaded only when the
        file has a 768-wide one. Raises when a trunk weight is missing, naming the file."""
        if isinstance(weights, str) and weights == "kinetics400":
            path = kinetics400_weights_path()
            if not path.is_file():
                raise FileNotFoundError(
                    f"VideoEncoder(weights='kinetics400'): torchvision's Kinetics-400 weights are not in the local "
                    f"torch hub cache ({path}); merlib never downloads at run time. Fetch them once while online "
                    f"with\n    {DOWNLOAD_HINT}\n(or copy r2plus1d_18-91a641e6.pth there, set TORCH_HOME, or pass "
                    f"its path as weights=...)"
                )
        else:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(
                    f"VideoEncoder: weights file {path} does not exist; pass None, 'kinetics400' or the path of "
                    f"R(2+1)D-18 weights"
                )
        state, _ = read_state_dict(path)
        if any(k.startswith("stem.") for k in state):
            # torchvision's own layout: trunk names without a prefix, a 400-way fc.weight/fc.bias
            state = {("model." + k): v for k, v in state.items() if not k.startswith("fc.")}
        elif any(k.startswith("encoder.model.") for k in state):  # a merlib VideoClassifier
            state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.model.")}
        report = load_reference_checkpoint(self, state)
        report.source = str(path)
        trunk_missing = [k for k in report.missing if not k.startswith("model.fc.")]
        if trunk_missing:
            raise ValueError(
                f"weights {path} lack {len(trunk_missing)} R(2+1)D-18 trunk entries ({', '.join(trunk_missing[:4])}"
                f"{', …' if len(trunk_missing) > 4 else ''}); is it an R(2+1)D-18 checkpoint?"
            )
        return report


class ClassificationHead(nn.Module):
    """The reference's ``ClassificationLayer``: ``Linear(in, hidden) → ReLU → Linear(hidden, classes)``, no dropout."""

    def __init__(self, in_features: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(in_features, hidden)
        self.linear2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(torch.relu(self.linear1(x)))


class VideoClassifier(nn.Module):
    """The video-only model: :class:`VideoEncoder` + ``Linear(768, 768) → ReLU → Linear(768, num_classes)``.

    ``forward(video (B, 3, T, H, W)) -> logits (B, num_classes)``; :meth:`embed` gives the 768-d embedding.
    32,290,853 parameters with 8 classes (the reference's video-only model). Reference checkpoint names:
    ``video_encoder.model.…`` and ``classifier.linear1/linear2.…``.
    """

    def __init__(self, weights: str | os.PathLike | None = None, num_classes: int = 8, dropout: float = 0.1,
                 arch: Arch = "r2plus1d_18") -> None:
        super().__init__()
        self.encoder = VideoEncoder(weights, dropout=dropout, arch=arch)
        self.embedding_dim = self.encoder.embedding_dim
        self.num_classes = int(num_classes)
        self.classifier = ClassificationHead(self.embedding_dim, self.embedding_dim, self.num_classes)

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """The encoder's ``(B, 768)`` embedding."""
        return self.encoder(video)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(video))

    def reference_layout(self) -> ReferenceLayout:
        return self.encoder.reference_layout().nested("encoder.", "") + ReferenceLayout(
            prefixes=(("classifier.", "classifier."),),
            class_head=("classifier.linear2.weight", "classifier.linear2.bias"),
        )

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}"

