"""Late fusion of the audio and video branches (the MER model), and the nine models of the paper's Table II.

Notebook: 06_fusion_training.ipynb

The multimodal emotion-recognition model of Cohen, Hazan & Gannot (docs/design.md §5, ``docs/reference-model.md``
§1.8) fuses *late*: each branch first summarises its whole input in one vector, and only those vectors meet::

    video (B, 3, T, H, W) ─ R(2+1)D-18 + fc ───────────► video embedding (B, 768) ─┐
    waveforms (B, C, 64000) ─ HTS-AT (Avg mel | Sum PE) ─► audio embedding (B, 768) ─┴─ concat (video first)
        ─► (B, 1536) ─ Linear(1536, 1536) ─ ReLU ─ Linear(1536, 8) ─► logits

The fusion head is the reference's ``ClassificationLayer`` (no dropout), named ``classifier.linear1`` and
``classifier.linear2`` as in the authors' checkpoints. Its hidden width equals its input width, so a quick
model (192-d audio and video embeddings) gets a 384 → 384 → 8 head from the same code.

HTS-AT's own token-semantic head (``tscam_conv``) and its unused 8×8 ``head`` are kept, so the authors'
multimodal checkpoints load one to one, but they are **frozen** inside :class:`MER`: their output is not
used, so they would receive no gradient and DistributedDataParallel would need
``find_unused_parameters=True`` (the reference ran that way). Parameter total with 8 classes at paper
size: 27,571,432 (audio) + 31,694,109 (video encoder) + 2,373,128 (fusion head) = **61,638,669**, of which
61,601,725 train (the reference: 62.722 M including its 1.08 M frozen STFT/mel weights, 61.639 M trainable).

Table II's nine configurations are declared once, in :data:`MODEL_SPECS` (training condition, number of
microphones, which inputs), and built by :func:`build_model`. Single-channel models take microphone 0 of a
multi-microphone recording (the reference used the first row of its stored waveform).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping, NamedTuple

import torch
from torch import nn

from ..paper_results import MODEL_LABELS
from .checkpoints import LoadReport, ReferenceLayout, load_reference_checkpoint
from .htsat import HTSAT, HTSATConfig
from .video import ClassificationHead, VideoClassifier, VideoEncoder

__all__ = [
    "MEROutput",
    "MER",
    "ModelSpec",
    "MODEL_SPECS",
    "TABLE_II_ORDER",
    "get_spec",
    "build_model",
    "forward_logits",
    "embeddings",
    "audio_branch",
    "init_branches",
    "count_parameters",
]

Size = Literal["paper", "quick"]


class MEROutput(NamedTuple):
    """What :class:`MER` returns: ``logits`` (B, K), ``audio_embedding`` (B, D_a), ``video_embedding`` (B, 768)."""

    logits: torch.Tensor
    audio_embedding: torch.Tensor
    video_embedding: torch.Tensor


class MER(nn.Module):
    """Late fusion: ``concat(video embedding, audio embedding) → Linear → ReLU → Linear``.

    Args:
        audio: the audio branch (any :class:`~merlib.models.htsat.HTSAT`; its number of microphones and mode
            decide what ``waveforms`` must look like). Its ``tscam_conv`` and ``head`` are frozen here
            (``requires_grad=False``): the module is modified in place.
        video: the video branch, a :class:`~merlib.models.video.VideoEncoder`.
        num_classes: K (8 emotions). The reference hard-codes 8; merlib does not.

    ``forward(waveforms (B, C, 64000), video (B, 3, T, H, W)) -> MEROutput``.
    """

    def __init__(self, audio: HTSAT, video: VideoEncoder, num_classes: int = 8) -> None:
        super().__init__()
        if not isinstance(audio, HTSAT):
            raise TypeError(f"MER's audio branch must be an HTSAT, got {type(audio).__name__}")
        if not isinstance(video, VideoEncoder):
            raise TypeError(
                f"MER's video branch must be a VideoEncoder, got {type(video).__name__}"
                + ("; pass classifier.encoder" if isinstance(video, VideoClassifier) else "")
            )
        self.audio = audio
        self.video = video
        self.num_classes = int(num_classes)
        width = video.embedding_dim + audio.embedding_dim  # 1536 at paper size
        self.classifier = ClassificationHead(width, width, self.num_classes)
        # The audio model's own classifiers are not used by the fusion model: freeze them so every trainable
        # parameter gets a gradient (DDP without find_unused_parameters).
        self.audio.tscam_conv.requires_grad_(False)
        self.audio.head.requires_grad_(False)

    def forward(self, waveforms: torch.Tensor, video: torch.Tensor) -> MEROutput:
        """``waveforms (B, C, 64000)``, ``video (B, 3, T, H, W)`` → :class:`MEROutput`."""
        if waveforms.shape[0] != video.shape[0]:
            raise ValueError(
                f"MER got {waveforms.shape[0]} waveforms but {video.shape[0]} videos; pass one of each per clip"
            )
        audio_embedding = self.audio(waveforms).embedding
        video_embedding = self.video(video)
        return MEROutput(self.fuse(audio_embedding, video_embedding), audio_embedding, video_embedding)

    def fuse(self, audio_embedding: torch.Tensor, video_embedding: torch.Tensor) -> torch.Tensor:
        """The fusion head alone: logits ``(B, K)`` from the two embeddings. Lets a caller that varies only the
        audio (the acoustic lab) compute a clip's video embedding once."""
        fused = torch.cat((video_embedding, audio_embedding), dim=1)  # video first, as the reference
        return self.classifier(fused)

    def reference_layout(self) -> ReferenceLayout:
        """Audio trunk at the top level, ``video.`` ↔ ``video_encoder.``, ``classifier.`` as is."""
        return (
            self.audio.reference_layout().nested("audio.", "")
            + self.video.reference_layout().nested("video.", "")
            + ReferenceLayout(
                prefixes=(("classifier.", "classifier."),),
                class_head=("classifier.linear2.weight", "classifier.linear2.bias"),
            )
        )

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, audio: {self.audio.num_mics} mic(s) {self.audio.mode!r}, "
                f"fused width {self.classifier.linear1.in_features}")


# ------------------------------------------------------------------------------------------ Table II


@dataclass(frozen=True)
class ModelSpec:
    """One column of Table II: what the model is, what it reads and which audio it trains on.

    Attributes:
        name: the key in :data:`MODEL_SPECS` (``"mer_sum_pe"`` …).
        title: the paper's column heading (``"MER Sum PE"`` …, :data:`merlib.paper_results.MODEL_LABELS`).
        inputs: ``("video",)``, ``("audio",)`` or ``("audio", "video")``.
        train_condition: the manifest condition of the training and validation audio: ``"clean"`` (the
            clean single-channel models) or ``"reverberant"`` (simulated rooms, 3 microphones).
        num_mics: microphones the audio branch takes (1 for single channel — microphone 0 of a 3-mic
            recording — and 3 for Avg mel and Sum PE); 0 for the video model.
        mode: how the audio branch combines microphones (``"avg_mel"`` or ``"sum_pe"``); None for video.
    """

    name: str
    title: str
    inputs: tuple[str, ...]
    train_condition: str
    num_mics: int
    mode: str | None

    @property
    def uses_audio(self) -> bool:
        return "audio" in self.inputs

    @property
    def uses_video(self) -> bool:
        return "video" in self.inputs

    @property
    def kind(self) -> str:
        """``"audio"``, ``"video"`` or ``"mer"`` (both inputs)."""
        return "mer" if self.uses_audio and self.uses_video else "video" if self.uses_video else "audio"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        return d


def _spec(name: str, inputs: tuple[str, ...], condition: str, mics: int, mode: str | None) -> ModelSpec:
    return ModelSpec(name, MODEL_LABELS.get(name, name), inputs, condition, mics, mode)


MODEL_SPECS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        _spec("video", ("video",), "reverberant", 0, None),
        _spec("audio_clean_sc", ("audio",), "clean", 1, "avg_mel"),
        _spec("audio_rev_sc", ("audio",), "reverberant", 1, "avg_mel"),
        _spec("audio_avg_mel", ("audio",), "reverberant", 3, "avg_mel"),
        _spec("audio_sum_pe", ("audio",), "reverberant", 3, "sum_pe"),
        _spec("mer_clean_sc", ("audio", "video"), "clean", 1, "avg_mel"),
        _spec("mer_rev_sc", ("audio", "video"), "reverberant", 1, "avg_mel"),
        _spec("mer_avg_mel", ("audio", "video"), "reverberant", 3, "avg_mel"),
        _spec("mer_sum_pe", ("audio", "video"), "reverberant", 3, "sum_pe"),
    )
}
"""The nine configurations of Table II, in the paper's column order. The video model trains on the
reverberant build's train/val clips; its frames do not depend on the audio condition."""

TABLE_II_ORDER: tuple[str, ...] = tuple(MODEL_SPECS)


def get_spec(name: str | ModelSpec) -> ModelSpec:
    """The :class:`ModelSpec` called ``name`` (a spec is returned unchanged)."""
    if isinstance(name, ModelSpec):
        return name
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_SPECS)}") from None


def build_model(
    name: str | ModelSpec,
    size: Size = "paper",
    num_classes: int = 8,
    audio_weights: str | os.PathLike | Mapping[str, Any] | None = None,
    video_weights: str | os.PathLike | None = None,
    audio_config: HTSATConfig | None = None,
) -> nn.Module:
    """Build one of the nine Table II models (see :data:`MODEL_SPECS`).

    Args:
        name: ``"video"``, ``"audio_clean_sc"``, ``"audio_rev_sc"``, ``"audio_avg_mel"``, ``"audio_sum_pe"``,
            ``"mer_clean_sc"``, ``"mer_rev_sc"``, ``"mer_avg_mel"`` or ``"mer_sum_pe"``.
        size: ``"paper"`` (HTS-AT 96-2-2-6-2, R(2+1)D-18) or ``"quick"`` (:meth:`HTSATConfig.quick` and the
            narrow :class:`~merlib.models.video.QuickR2Plus1D`, both trained from scratch).
        num_classes: K.
        audio_weights: an HTS-AT checkpoint to fine-tune from (e.g. ``HTSAT_AudioSet_Saved_1.ckpt``), loaded
            into the audio branch by :func:`~merlib.models.checkpoints.load_reference_checkpoint` (its
            527-class head is skipped). Ignored, with an error, for the video model.
        video_weights: ``"kinetics400"`` or a path of R(2+1)D-18 weights (see :class:`VideoEncoder`).
            An error for the audio-only models.
        audio_config: overrides the HTS-AT architecture chosen by ``size``. Without it and without
            ``audio_weights`` the audio branch gets :meth:`HTSATConfig.from_scratch`'s front end (fmax 8 kHz,
            cumulative ``bn0``): a model trained from scratch must not see the reference's empty mel bands.

    Returns:
        :class:`~merlib.models.htsat.HTSAT` (audio models), :class:`~merlib.models.video.VideoClassifier`
        (video) or :class:`MER`. The load report of ``audio_weights`` is kept as ``model.audio_weights_report``.
    """
    spec = get_spec(name)
    if size not in ("paper", "quick"):
        raise ValueError(f"size must be 'paper' or 'quick', got {size!r}")
    if audio_weights is not None and not spec.uses_audio:
        raise ValueError(f"model {spec.name!r} has no audio branch; do not pass audio_weights")
    if video_weights is not None and not spec.uses_video:
        raise ValueError(f"model {spec.name!r} has no video branch; do not pass video_weights")
    arch = "r2plus1d_18" if size == "paper" else "quick"
    if not spec.uses_audio:
        return VideoClassifier(weights=video_weights, num_classes=num_classes, arch=arch)
    config = audio_config or (HTSATConfig.quick() if size == "quick" else HTSATConfig.paper())
    if audio_config is None and audio_weights is None:
        config = config.from_scratch()  # no checkpoint filterbank: no empty mel bands (HTSATConfig.from_scratch)
    audio = HTSAT(num_mics=spec.num_mics, mode=spec.mode, num_classes=num_classes, config=config)  # type: ignore[arg-type]
    report: LoadReport | None = None
    if audio_weights is not None:
        report = load_reference_checkpoint(audio, audio_weights)
    model: nn.Module = audio if not spec.uses_video else MER(audio, VideoEncoder(weights=video_weights, arch=arch),
                                                                   num_classes)
    model.audio_weights_report = report  # type: ignore[assignment]
    return model


def _run_state(run: str | os.PathLike | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The averaged weights of a finished merlib run (its folder or ``final.pt``), or a state dict as is."""
    if isinstance(run, Mapping):
        return dict(run)
    from pathlib import Path

    path = Path(run)
    path = path / "final.pt" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: train that model first (merlib train / merlib reproduce)")
    return torch.load(path, map_location="cpu", weights_only=True)


def init_branches(model: nn.Module, audio: str | os.PathLike | Mapping[str, Any] | None = None,
                  video: str | os.PathLike | Mapping[str, Any] | None = None) -> dict[str, int]:
    """Start a :class:`MER` model's branches from finished unimodal runs (in place).

    ``audio``: the audio-only run of the same audio configuration (an :class:`HTSAT` state dict, or its run
    folder / ``final.pt``), loaded whole into ``model.audio``. ``video``: the video-only run
    (:class:`VideoClassifier`), whose ``encoder.`` weights go into ``model.video``; its classifier is not used.
    The fusion head stays freshly initialised. Raises naming the run when the shapes do not fit (e.g. a
    single-channel run for a Sum PE model of another size). Returns the number of tensors loaded per branch.
    """
    if not isinstance(model, MER):
        raise TypeError(f"init_branches takes a MER model, got {type(model).__name__}")
    loaded = {"audio": 0, "video": 0}
    if audio is not None:
        state = _run_state(audio)
        try:
            model.audio.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"the audio run {audio} does not fit this model's audio branch: {err}") from None
        loaded["audio"] = len(state)
    if video is not None:
        state = {k[len("encoder."):]: v for k, v in _run_state(video).items() if k.startswith("encoder.")}
        if not state:
            raise ValueError(f"{video} holds no video-only model (no 'encoder.' weights)")
        try:
            model.video.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"the video run {video} does not fit this model's video branch: {err}") from None
        loaded["video"] = len(state)
    return loaded


def forward_logits(model: nn.Module, spec: str | ModelSpec, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Class logits ``(B, K)`` of any Table II model for a batch of :mod:`merlib.datasets` items.

    Reads ``batch["waveform"]`` (B, C, 64000) and/or ``batch["video"]`` (B, 3, T, H, W) as the model needs;
    the training loop and the evaluation use this one function.
    """
    spec = get_spec(spec)
    if spec.uses_audio and "waveform" not in batch:
        raise KeyError(f"model {spec.name!r} needs batch['waveform']; build the dataset with audio")
    if spec.uses_video and "video" not in batch:
        raise KeyError(f"model {spec.name!r} needs batch['video']; build the dataset with a frame cache")
    if spec.uses_audio and spec.uses_video:
        return model(batch["waveform"], batch["video"]).logits
    if spec.uses_audio:
        return model(batch["waveform"]).logits
    return model(batch["video"])


def embeddings(model: nn.Module, spec: str | ModelSpec, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The embeddings a model computes for a batch: ``{"audio": …, "video": …, "logits": …}`` (those it has)."""
    spec = get_spec(spec)
    if spec.uses_audio and spec.uses_video:
        out = model(batch["waveform"], batch["video"])
        return {"audio": out.audio_embedding, "video": out.video_embedding, "logits": out.logits}
    if spec.uses_audio:
        out = model(batch["waveform"])
        return {"audio": out.embedding, "logits": out.logits}
    emb = model.embed(batch["video"])
    return {"video": emb, "logits": model.classifier(emb)}


def audio_branch(model: nn.Module) -> HTSAT | None:
    """The HTS-AT of a Table II model: the model itself (audio only), ``model.audio`` (MER), None (video)."""
    if isinstance(model, HTSAT):
        return model
    return model.audio if isinstance(model, MER) else None


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of ``nn.Parameter`` elements (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
