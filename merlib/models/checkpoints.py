"""Load the authors' and HTS-AT's checkpoints into merlib models, and write merlib models back in their layout.

Notebook: 04_multichannel_htsat.ipynb

The reference checkpoints are PyTorch-Lightning files ``{"state_dict": {...}, ...}`` whose keys carry the
prefix ``sed_model.`` (docs/design.md §5; names and shapes in ``docs/mmer_state_dict_keys.tsv``). Rules applied
by :func:`load_reference_checkpoint`, for every checkpoint key (after removing ``sed_model.``):

* ``spectrogram_extractor.stft.conv_real.weight`` / ``conv_imag.weight`` — the reference computes its STFT
  as a convolution with these kernels; merlib uses :func:`torch.stft`. They are *checked* against the
  standard Hann-windowed DFT kernels (a mismatch raises) and skipped; :func:`export_reference_state_dict`
  regenerates them.
* ``…relative_position_index`` and ``…attn_mask`` — fixed by the architecture; checked against the
  model's own buffers (a mismatch raises: the checkpoint was built with another window or grid) and
  skipped.
* ``logmel_extractor.melW`` — loaded when ``filterbank="checkpoint"`` (the default, and what the reference
  did: its fine-tuned checkpoints carry the 32 kHz AudioSet filterbank); kept as merlib's when
  ``filterbank="model"``.
* keys the model declares as sized by the class count (``tscam_conv``, ``head``, a classifier's last layer)
  are skipped when their shapes differ — the 527-class head of the HTS-AT AudioSet checkpoints.
* keys that map to nothing in the model (the video and fusion keys of a multimodal checkpoint loaded into
  the audio model, say) are skipped with the reason "not part of <Model>".
* every other key is loaded, including ``bn0``'s running statistics; any other shape mismatch raises an
  error naming the key and both shapes.
The returned :class:`LoadReport` lists what was loaded, what was skipped and why, and which of the model's
entries the checkpoint did not provide (left as initialised).

Extending to a new model type
-----------------------------
The loader knows nothing about particular models. A model class declares how its names map onto the
reference's by a method ``reference_layout(self) -> ReferenceLayout``: a list of ``(merlib_prefix,
reference_prefix)`` pairs (longest match wins; a pair may name a whole key) and the keys sized by the class
count. Layouts of submodules compose with :meth:`ReferenceLayout.nested` and ``+``. For example the
multimodal model, whose reference keeps the audio trunk at the top level, the video encoder under
``video_encoder.`` and the fusion head under ``classifier.``::

    def reference_layout(self) -> ReferenceLayout:
        return (
            self.audio.reference_layout().nested("audio.", "")
            + ReferenceLayout(prefixes=(("video.", "video_encoder."),))
            + ReferenceLayout(prefixes=(("classifier.", "classifier."),),
                              class_head=("classifier.linear2.weight", "classifier.linear2.bias"))
        )

A model without ``reference_layout`` is loaded under its own names (identity), which is also how merlib's
own state dicts load: a checkpoint key that is already one of the model's names is taken as is.

Identifying a file
------------------
:func:`identify_checkpoint` (``merlib check-weights PATH``) tells from key names and shapes what a file is —
the HTS-AT AudioSet checkpoint, the authors' audio / video / multimodal checkpoints, merlib's ``final.pt``
and Lightning ``.ckpt`` files, torchvision's R(2+1)D-18 — infers the HTS-AT size and class count, and tries
loading it into each Table II model it fits, keeping the :class:`LoadReport` of each try.

Golden check
------------
:func:`golden_fill`, :func:`golden_waveforms`, :func:`golden_video` and :func:`read_key_table` implement the
fill recipe and inputs of ``docs/reference-model.md`` §3 for any model with a reference layout, so the
tests of every model compare against the reference's stored outputs the same way.
"""

from __future__ import annotations

import os
import pickle
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError

__all__ = [
    "ReferenceLayout",
    "LoadReport",
    "load_reference_checkpoint",
    "export_reference_state_dict",
    "read_state_dict",
    "read_key_table",
    "golden_fill",
    "golden_waveforms",
    "golden_video",
    "REFERENCE_PREFIX",
    "identify_checkpoint",
    "CheckpointInfo",
    "LoadAttempt",
    "KINDS",
]

REFERENCE_PREFIX = "sed_model."
_STFT_REAL = "spectrogram_extractor.stft.conv_real.weight"
_STFT_IMAG = "spectrogram_extractor.stft.conv_imag.weight"
_MELW_REF = "logmel_extractor.melW"
_DERIVED_SUFFIXES = ("relative_position_index", "attn_mask")


@dataclass(frozen=True)
class ReferenceLayout:
    """How a model's state-dict names correspond to the reference implementation's.

    Attributes:
        prefixes: ``(merlib_prefix, reference_prefix)`` pairs. A name is translated by the pair whose prefix
            (on the side being translated from) is the longest match; the rest of the name is kept.
            ``("", "")`` means "same names". A pair may also name one whole key.
        class_head: merlib keys whose shapes follow the number of classes; a checkpoint entry of another
            shape is skipped (reported) instead of raising.
    """

    prefixes: tuple[tuple[str, str], ...] = (("", ""),)
    class_head: tuple[str, ...] = ()

    def nested(self, merlib_prefix: str, reference_prefix: str) -> "ReferenceLayout":
        """This layout for a submodule at ``merlib_prefix`` whose reference keys sit under ``reference_prefix``."""
        return ReferenceLayout(
            prefixes=tuple((merlib_prefix + m, reference_prefix + r) for m, r in self.prefixes),
            class_head=tuple(merlib_prefix + k for k in self.class_head),
        )

    def __add__(self, other: "ReferenceLayout") -> "ReferenceLayout":
        return ReferenceLayout(self.prefixes + other.prefixes, self.class_head + other.class_head)

    @staticmethod
    def _translate(key: str, pairs: Iterable[tuple[str, str]]) -> str | None:
        best: tuple[str, str] | None = None
        for src, dst in pairs:
            if key.startswith(src) and (best is None or len(src) > len(best[0])):
                best = (src, dst)
        return None if best is None else best[1] + key[len(best[0]) :]

    def to_merlib(self, reference_key: str) -> str | None:
        """The merlib name of a reference key (without ``sed_model.``), or None when no prefix matches."""
        return self._translate(reference_key, ((r, m) for m, r in self.prefixes))

    def to_reference(self, merlib_key: str) -> str | None:
        """The reference name (without ``sed_model.``) of a merlib key, or None when no prefix matches."""
        return self._translate(merlib_key, self.prefixes)


def _layout(model: nn.Module) -> ReferenceLayout:
    get = getattr(model, "reference_layout", None)
    return get() if callable(get) else ReferenceLayout()


@dataclass
class LoadReport:
    """What :func:`load_reference_checkpoint` did.

    Attributes:
        source: the file name, or ``"<dict>"``.
        loaded: merlib keys that received a checkpoint value.
        skipped: checkpoint key (``sed_model.`` removed) → why it was not loaded.
        missing: the model's state-dict keys that the checkpoint did not provide (left unchanged;
            derived buffers — relative-position indices, shift masks — are not listed).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def skipped_by_reason(self) -> dict[str, list[str]]:
        """The skipped keys grouped by reason."""
        groups: dict[str, list[str]] = {}
        for key, reason in self.skipped.items():
            groups.setdefault(reason, []).append(key)
        return groups

    def summary(self, max_keys: int = 6) -> str:
        """A readable multi-line summary (at most ``max_keys`` names per group)."""

        def names(keys: Sequence[str]) -> str:
            shown = ", ".join(keys[:max_keys])
            return shown + (f", … (+{len(keys) - max_keys})" if len(keys) > max_keys else "")

        lines = [f"checkpoint {self.source}: loaded {len(self.loaded)} entries, skipped {len(self.skipped)}, "
                 f"missing {len(self.missing)}"]
        for reason, keys in self.skipped_by_reason().items():
            lines.append(f"  skipped {len(keys)} ({reason}): {names(keys)}")
        if self.missing:
            lines.append(f"  missing {len(self.missing)} (left as initialised): {names(self.missing)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def read_state_dict(
    path_or_dict: str | os.PathLike | Mapping[str, Any], trusted: bool = False
) -> tuple[dict[str, Any], str]:
    """The flat state dict of a checkpoint (path or dict, Lightning ``{"state_dict": …}`` or bare) and its
    source name; the ``sed_model.`` prefix is removed from the keys that carry it.

    Files are read with ``torch.load(weights_only=True)``; a Lightning file holding other pickled objects
    needs ``trusted=True`` (full unpickling — only for files you trust).
    """
    if isinstance(path_or_dict, Mapping):
        raw: Any = path_or_dict
        source = "<dict>"
    else:
        path = Path(path_or_dict)
        source = str(path)
        raw = _load_file(path, trusted)
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"checkpoint {source} is a {type(raw).__name__}, not a state dict or "
                              "{'state_dict': …}; is it a checkpoint of a model?")
    out: dict[str, Any] = {}
    for key, value in strip_wrapper_prefixes(raw).items():
        name = key[len(REFERENCE_PREFIX) :] if key.startswith(REFERENCE_PREFIX) else key
        out[name] = value
    return out, source


#: Prefixes that wrappers put before every key of a model's state dict: DistributedDataParallel and
#: DataParallel (``module.``), ``torch.compile`` (``_orig_mod.``).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_wrapper_prefixes(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the wrapper prefixes of :data:`WRAPPER_PREFIXES` removed, when *every* key carries one
    (a model saved as ``ddp_model.state_dict()`` instead of ``ddp_model.module.state_dict()``)."""
    out = dict(state)
    changed = True
    while changed and out:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(isinstance(k, str) and k.startswith(prefix) for k in out):
                out = {k[len(prefix):]: v for k, v in out.items()}
                changed = True
    return out


def strip_lightning_model_prefix(tensors: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Remove ``model.`` when every key carries it — merlib's Lightning module holds the network as ``.model`` —
    but not from a video encoder's own keys (``model.stem.…``, its torchvision trunk). Returns the entries and
    whether the prefix was removed."""
    strip = bool(tensors) and all(k.startswith("model.") for k in tensors) and not any(
        k.startswith("model.stem.") for k in tensors)
    return ({k[len("model."):]: v for k, v in tensors.items()} if strip else dict(tensors)), strip


def _check_stft_kernel(key: str, value: torch.Tensor, source: str) -> None:
    from merlib.features import dft_kernels

    if value.dim() != 3 or value.shape[1] != 1 or value.shape[0] != value.shape[2] // 2 + 1:
        raise CheckpointError(
            f"checkpoint {source}: {key!r} has shape {tuple(value.shape)}, not an STFT kernel (n_fft//2+1, 1, n_fft)"
        )
    real, imag = dft_kernels(value.shape[2])
    expected = real if key.endswith(_STFT_REAL) else imag
    err = (value.float().cpu() - expected).abs().max().item()
    if err > 1e-4:
        raise CheckpointError(
            f"checkpoint {source}: {key!r} differs from the standard Hann-windowed DFT kernel by up to {err:.3g}; "
            f"merlib computes the STFT with torch.stft and cannot reproduce a modified STFT"
        )


def load_reference_checkpoint(
    model: nn.Module,
    path_or_dict: str | os.PathLike | Mapping[str, Any],
    filterbank: Literal["checkpoint", "model"] = "checkpoint",
    trusted: bool = False,
) -> LoadReport:
    """Load a reference (authors' or HTS-AT) or merlib checkpoint into ``model`` by the rules of docs/design.md §5.

    Args:
        model: any merlib model; its ``reference_layout()`` (if any) maps the names.
        path_or_dict: a ``.ckpt``/``.pt`` path or a state dict, with or without ``{"state_dict": …}`` and
            the ``sed_model.`` prefix.
        filterbank: ``"checkpoint"`` loads ``logmel_extractor.melW`` (the reference's behaviour; the
            HTS-AT AudioSet and fine-tuned checkpoints carry the 32 kHz bank), ``"model"`` keeps merlib's.
        trusted: allow full unpickling of a file that holds more than tensors (see :func:`read_state_dict`).

    Returns:
        a :class:`LoadReport`. Raises ``ValueError`` on a shape mismatch outside the class head (naming the
        key and both shapes) and when a checked entry (STFT kernels, position index, shift mask) differs.
    """
    if filterbank not in ("checkpoint", "model"):
        raise CheckpointError(f"filterbank must be 'checkpoint' or 'model', got {filterbank!r}")
    state, source = read_state_dict(path_or_dict, trusted=trusted)
    layout = _layout(model)
    own = model.state_dict()
    class_head = set(layout.class_head)
    model_name = type(model).__name__
    report = LoadReport(source=source)
    to_load: dict[str, torch.Tensor] = {}

    for key, value in state.items():
        if not torch.is_tensor(value):
            report.skipped[key] = "not a tensor"
            continue
        if key.endswith((_STFT_REAL, _STFT_IMAG)):
            _check_stft_kernel(key, value, source)
            report.skipped[key] = "STFT kernel: checked equal to the Hann DFT kernel; merlib uses torch.stft"
            continue
        target = layout.to_merlib(key)
        if (target is None or target not in own) and key in own:
            target = key  # already a merlib name (merlib's own checkpoints)
        if target is None or target not in own:
            report.skipped[key] = f"not part of {model_name}"
            continue
        mine = own[target]
        if key.endswith(_DERIVED_SUFFIXES):
            if value.shape != mine.shape or not torch.allclose(value.to(mine), mine):
                raise CheckpointError(
                    f"checkpoint {source}: {key!r} (shape {tuple(value.shape)}) differs from {model_name}'s "
                    f"{target!r} (shape {tuple(mine.shape)}): the checkpoint was built with another window size "
                    f"or token grid; build the model with the checkpoint's architecture"
                )
            report.skipped[key] = "derived buffer: checked equal to merlib's"
            continue
        if target.rsplit(".", 1)[-1] == "melW" and filterbank == "model":
            report.skipped[key] = "filterbank='model': merlib's filterbank kept"
            continue
        if value.shape != mine.shape:
            if target in class_head and value.dim() == mine.dim() and value.shape[0] != mine.shape[0]:
                # one reason for the whole head, so the report groups it: the class count is the leading dim
                report.skipped[key] = (
                    f"class head: the checkpoint has {value.shape[0]} classes, the model {mine.shape[0]}"
                )
                continue
            raise CheckpointError(
                f"checkpoint {source}: {key!r} has shape {tuple(value.shape)} but {model_name}'s {target!r} has "
                f"shape {tuple(mine.shape)}; build the model with the checkpoint's architecture (num_classes, "
                f"embed_dim, depths, …)"
            )
        to_load[target] = value
        report.loaded.append(target)

    result = model.load_state_dict(to_load, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # every target was checked against state_dict()
    report.missing = [
        k for k in own
        if k not in to_load and not k.endswith(_DERIVED_SUFFIXES)
        and not (k.rsplit(".", 1)[-1] == "melW" and filterbank == "model")
    ]
    return report


def export_reference_state_dict(model: nn.Module, prefix: str = REFERENCE_PREFIX) -> dict[str, torch.Tensor]:
    """``model``'s state in the reference's layout: reference names with ``prefix`` (``sed_model.``).

    Every state-dict entry is renamed by the model's ``reference_layout()``; for every
    :class:`~merlib.features.LogMel` the STFT kernels the reference stores next to its filterbank
    (``spectrogram_extractor.stft.conv_real/conv_imag.weight``) are regenerated. Tensors are detached
    copies on the CPU. Wrap the result as ``{"state_dict": …}`` for a Lightning-style file.
    """
    from merlib.features import LogMel, dft_kernels

    layout = _layout(model)
    out: dict[str, torch.Tensor] = {}
    for path, module in model.named_modules():
        if isinstance(module, LogMel):
            mel_key = f"{path}.melW" if path else "melW"
            ref = layout.to_reference(mel_key)
            if ref is None or not ref.endswith(_MELW_REF):
                raise CheckpointError(
                    f"{type(model).__name__}.reference_layout() maps {mel_key!r} to {ref!r}, not to a "
                    f"'{_MELW_REF}' key; add a ({mel_key!r}, '…{_MELW_REF}') pair"
                )
            base = ref[: -len(_MELW_REF)]
            real, imag = dft_kernels(module.n_fft)
            out[prefix + base + _STFT_REAL] = real
            out[prefix + base + _STFT_IMAG] = imag
    for key, value in model.state_dict().items():
        ref = layout.to_reference(key)
        if ref is None:
            raise CheckpointError(
                f"{type(model).__name__}.reference_layout() has no prefix for {key!r}; add a pair covering it"
            )
        out[prefix + ref] = value.detach().cpu().clone()
    return out


# ------------------------------------------------------------------------------------------- golden check


def read_key_table(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """``mmer_state_dict_keys.tsv`` (columns key, shape, kind) as ``{key: shape}``, in file order."""
    table: dict[str, tuple[int, ...]] = {}
    lines = Path(path).read_text().splitlines()
    if not lines or lines[0].split("\t")[:2] != ["key", "shape"]:
        raise CheckpointError(f"{path}: expected a header 'key<TAB>shape<TAB>kind'")
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        key, shape, *_ = line.split("\t")
        inner = shape.strip().strip("()").strip()
        try:
            table[key] = tuple(int(s) for s in inner.split(",") if s.strip())
        except ValueError as err:
            raise CheckpointError(f"{path}:{n}: cannot read shape {shape!r} of {key!r}") from err
    return table


def _recipe_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    r = torch.randn(shape, generator=g)
    if key.endswith("running_mean"):
        return -30 + 2 * r if key == "bn0.running_mean" else 0.1 * r
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if key.endswith("weight") and len(shape) == 1:
        return 1 + 0.1 * r
    if key.endswith("bias"):
        return 0.1 * r
    return 0.02 * r


def golden_fill(
    model: nn.Module,
    melW: torch.Tensor | np.ndarray,
    key_table: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, torch.Tensor]:
    """A reference-layout state dict (no ``sed_model.`` prefix) filled by the recipe of ``docs/reference-model.md`` §3.

    The keys are those of :func:`export_reference_state_dict` for ``model`` — the reference keys this model
    owns. Entries the recipe leaves "as constructed" (``relative_position_index``, ``attn_mask``,
    ``spectrogram_extractor.*``) come from that export, ``num_batches_tracked`` is 0, ``…melW`` is
    ``melW`` (the npz's ``melW_32k``); the rest is drawn from ``torch.Generator().manual_seed(crc32(key))``.
    When ``key_table`` (from :func:`read_key_table`) is given, every key must appear in it with the same
    shape, so a naming or shape error in the model shows up here.
    """
    constructed = export_reference_state_dict(model, prefix="")
    out: dict[str, torch.Tensor] = {}
    for key, value in constructed.items():
        shape = tuple(value.shape)
        if key_table is not None:
            if key not in key_table:
                raise KeyError(f"golden_fill: {type(model).__name__} exports {key!r}, which the key table lacks")
            if tuple(key_table[key]) != shape:
                raise CheckpointError(
                    f"golden_fill: {key!r} has shape {shape} in {type(model).__name__} but "
                    f"{tuple(key_table[key])} in the key table"
                )
        if key.endswith(_DERIVED_SUFFIXES + (_STFT_REAL, _STFT_IMAG)):
            out[key] = value.clone()
        elif key.endswith("num_batches_tracked"):
            out[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith(_MELW_REF):
            out[key] = torch.as_tensor(np.asarray(melW), dtype=torch.float32).clone()
        else:
            out[key] = _recipe_value(key, shape)
    return out


def golden_waveforms(num_mics: int, batch: int = 2) -> torch.Tensor:
    """The recipe's audio input ``(2, C, 64000)``: noise (seed 1234) plus a 220 Hz sine at 16 kHz."""
    g = torch.Generator().manual_seed(1234)
    t = torch.arange(64000) / 16000
    return (0.1 * torch.randn(batch, num_mics, 64000, generator=g) + 0.3 * torch.sin(2 * torch.pi * 220 * t)).float()


def golden_video(batch: int = 2) -> torch.Tensor:
    """The recipe's video input ``(2, 3, 8, 224, 224)`` (B, channels, frames, H, W), seed 5678."""
    return torch.randn(batch, 3, 8, 224, 224, generator=torch.Generator().manual_seed(5678))


# ------------------------------------------------------------------------------------------- identifying
#
# `merlib check-weights PATH` (identify_checkpoint): what a checkpoint file is, from its key names and
# shapes alone, and whether it loads into each Table II model. Kinds told apart:
#
#   htsat_audioset        HTS-AT AudioSet (RetroCirce): sed_model.* audio trunk, 527-class tscam_conv/head
#   reference_audio       the authors' fine-tuned audio model: the same keys, K (8) classes
#   reference_video       the authors' video-only model: video_encoder.model.* + classifier.*
#   reference_multimodal  the authors' MER model: audio trunk + video_encoder.* + classifier.*
#   merlib_audio / merlib_video / merlib_mer   merlib's final.pt (plain) or Lightning .ckpt (keys under model.)
#   merlib_video_encoder  a merlib VideoEncoder state dict (model.stem.…)
#   torchvision_r2plus1d  torchvision's R(2+1)D-18 (stem.…, layer1-4.…, a 400-way Kinetics fc)
#
# The microphone count and mode (Avg mel / Sum PE) leave no trace in the weights, so an audio checkpoint
# loads into all four audio models alike (and each multimodal checkpoint into all four MER models).

KINDS: dict[str, str] = {
    "htsat_audioset": "HTS-AT AudioSet checkpoint (audio tagging, 527 classes)",
    "reference_audio": "the authors' fine-tuned audio model (HTS-AT)",
    "reference_video": "the authors' video-only model (R(2+1)D-18 + classifier)",
    "reference_multimodal": "the authors' multimodal MER model (HTS-AT + R(2+1)D-18 + fusion head)",
    "merlib_audio": "merlib audio model (HTSAT)",
    "merlib_video": "merlib video-only model (VideoClassifier)",
    "merlib_mer": "merlib multimodal model (MER)",
    "merlib_video_encoder": "merlib R(2+1)D-18 video encoder (VideoEncoder)",
    "torchvision_r2plus1d": "torchvision R(2+1)D-18 (Kinetics-400 classifier head)",
    "unknown": "not a checkpoint of any model merlib knows",
}
_AUDIO_SPECS = ("audio_clean_sc", "audio_rev_sc", "audio_avg_mel", "audio_sum_pe")
_MER_SPECS = ("mer_clean_sc", "mer_rev_sc", "mer_avg_mel", "mer_sum_pe")


@dataclass
class LoadAttempt:
    """One try of :func:`identify_checkpoint`: the checkpoint loaded into ``part`` of the ``models``
    (Table II names, which share one architecture); ``report`` on success, ``error`` otherwise."""

    models: tuple[str, ...]
    part: str
    ok: bool
    report: LoadReport | None = None
    error: str | None = None

    def describe(self) -> str:
        head = f"{', '.join(self.models)} ({self.part})"
        if not self.ok:
            return f"  does not load: {head}\n      {self.error}"
        r = self.report
        assert r is not None
        new_head = all(k.rsplit(".", 2)[-2] in ("tscam_conv", "head", "linear2") for k in r.missing) and any(
            reason.startswith("class head") for reason in r.skipped.values())
        status = "loads" if not r.missing else "loads (new class head)" if new_head else "loads partially"
        lines = [f"  {status}: {head}: {len(r.loaded)} entries loaded, {len(r.skipped)} skipped, "
                 f"{len(r.missing)} left as initialised"]
        for reason, keys in r.skipped_by_reason().items():
            lines.append(f"      skipped {len(keys)}: {reason}")
        if r.missing:
            groups: dict[str, int] = {}
            for k in r.missing:  # by module; by top-level name when that is still a long list
                groups[k.rsplit(".", 1)[0]] = groups.get(k.rsplit(".", 1)[0], 0) + 1
            if len(groups) > 6:
                groups = {}
                for k in r.missing:
                    groups[k.split(".")[0]] = groups.get(k.split(".")[0], 0) + 1
            lines.append("      not in the checkpoint: " + ", ".join(f"{g}.* ({n})" for g, n in groups.items()))
        return "\n".join(lines)


@dataclass
class CheckpointInfo:
    """What :func:`identify_checkpoint` found; ``summary()`` is what ``merlib check-weights`` prints.

    Attributes:
        path: the file.
        container: ``"Lightning-style {'state_dict': …}"`` or ``"plain state dict"``.
        extras: the container's other top-level entries (epoch, global_step, versions, optimizer state …).
        naming: whose key names: ``"reference (sed_model.)"``, ``"merlib"``, ``"merlib Lightning (model.)"``,
            ``"torchvision"``.
        kind: a key of :data:`KINDS`; ``description`` its text.
        n_tensors, n_values: tensor entries and their total number of elements (parameters and buffers).
        num_classes: the classifier's output size (None when there is none).
        size: ``"paper"``, ``"quick"`` or ``"custom"`` for the HTS-AT trunk (None without one); ``audio_arch``
            the inferred :class:`~merlib.models.htsat.HTSATConfig` fields.
        filterbank: which mel filterbank ``melW`` holds, when present.
        loads: one :class:`LoadAttempt` per model family tried.
        notes: anything else worth saying.
    """

    path: Path
    container: str
    extras: dict[str, Any]
    naming: str
    kind: str
    n_tensors: int
    n_values: int
    num_classes: int | None = None
    size: str | None = None
    audio_arch: dict[str, Any] | None = None
    filterbank: str | None = None
    loads: list[LoadAttempt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return KINDS[self.kind]

    def summary(self) -> str:
        lines = [f"{self.path}", f"  identified as: {self.description}",
                 f"  format: {self.container}, {self.naming} key names"]
        if self.extras:
            lines.append("  also holds: " + ", ".join(
                f"{k}={v}" if isinstance(v, (int, float, str)) else k for k, v in self.extras.items()))
        lines.append(f"  {self.n_tensors} tensors, {self.n_values:,} values (parameters and buffers)")
        if self.num_classes is not None:
            lines.append(f"  classes: {self.num_classes}")
        if self.audio_arch is not None:
            a = self.audio_arch
            lines.append(f"  HTS-AT size: {self.size} (embed_dim {a['embed_dim']}, depths {a['depths']}, heads "
                         f"{a['num_heads']}, window {a['window_size']}, mlp_ratio {a['mlp_ratio']:g}; "
                         f"{a['embed_dim'] * 2 ** (len(a['depths']) - 1)}-d embedding)")
        if self.filterbank:
            lines.append(f"  mel filterbank: {self.filterbank}")
        if self.loads:
            lines.append("  into merlib models (merlib.models.mer.build_model):")
            lines += [attempt.describe() for attempt in self.loads]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def check_checkpoint_file(path: str | os.PathLike) -> Path:
    """The cheap checks of a checkpoint file, without reading its tensors: it exists, is a file, is not empty,
    and is a whole ``torch.save`` zip (or a legacy pickle). Raises ``FileNotFoundError`` or
    :class:`~merlib.errors.CheckpointError` naming the file and the fix."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist" + (" (it is a folder: give the .ckpt/.pt file in it)"
                                                                     if path.is_dir() else "; check the path"))
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): a download or copy that did not finish; "
                              "fetch or copy it again")
    if head[:2] == b"PK" and not zipfile.is_zipfile(path):  # torch.save's zip, cut before its central directory
        raise CheckpointError(f"checkpoint {path} is truncated ({size} bytes: its zip directory is missing): a "
                              "download or copy that did not finish; fetch or copy it again")
    if head[:2] != b"PK" and head[:1] != b"\x80":  # torch.save: a zip, or (legacy) a pickle
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (neither torch.save's zip format nor a pickle); "
                              "give a .ckpt / .pt / .pth file")
    return path


def _load_file(path: Path, trusted: bool) -> Any:
    """``torch.load`` of a checkpoint file, with a clear :class:`CheckpointError` for a file that is empty,
    truncated (a download that stopped half-way), not a checkpoint, or holding more than tensors."""
    check_checkpoint_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"checkpoint {path} holds objects other than tensors and plain containers "
                              f"({str(err)[:200]}); if you trust the file, pass --trusted (trusted=True) to "
                              "unpickle it fully") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} could not be read ({str(err)[:200]}): a truncated download? "
                              "Fetch or copy it again") from err


def _htsat_arch(state: Mapping[str, Any], prefix: str) -> tuple[dict[str, Any], str]:
    """The HTS-AT architecture under ``prefix`` from the shapes, and ``"paper"``/``"quick"``/``"custom"``."""
    from .htsat import HTSATConfig

    embed_dim = int(state[prefix + "patch_embed.proj.weight"].shape[0])
    blocks: dict[int, set[int]] = {}
    for key in state:
        parts = key[len(prefix):].split(".") if key.startswith(prefix + "layers.") else []
        if len(parts) > 3 and parts[2] == "blocks":
            blocks.setdefault(int(parts[1]), set()).add(int(parts[3]))
    stages = sorted(blocks)
    depths = tuple(len(blocks[i]) for i in stages)
    table = [state[f"{prefix}layers.{i}.blocks.0.attn.relative_position_bias_table"] for i in stages]
    heads = tuple(int(t.shape[1]) for t in table)
    window = int(round((table[0].shape[0] ** 0.5 + 1) / 2)) if table else 8
    fc1 = state.get(f"{prefix}layers.0.blocks.0.mlp.fc1.weight")
    mlp_ratio = float(fc1.shape[0] / fc1.shape[1]) if fc1 is not None else 4.0
    arch = {"embed_dim": embed_dim, "depths": depths, "num_heads": heads, "window_size": window, "mlp_ratio": mlp_ratio}
    size = "custom"
    for name, cfg in (("paper", HTSATConfig.paper()), ("quick", HTSATConfig.quick())):
        if all(getattr(cfg, k) == v for k, v in arch.items()):
            size = name
    return arch, size


def _filterbank(melW: torch.Tensor) -> str:
    from merlib.features import empty_filters, slaney_mel_filterbank

    banks = {
        "the 32 kHz AudioSet bank (fmin 50, fmax 14000 at 32 kHz: what the reference's fine-tuned checkpoints "
        "carry; ≈25–7000 Hz on 16 kHz audio)": slaney_mel_filterbank(32000),
        "the 16 kHz bank with fmax 14000 (9 empty filters; merlib's default)": slaney_mel_filterbank(16000),
        "the 16 kHz bank with fmax 8000": slaney_mel_filterbank(16000, fmax=8000.0),
    }
    melW = melW.float()
    for text, bank in banks.items():
        if melW.shape == bank.shape and torch.allclose(melW, bank, rtol=1e-4, atol=1e-6):
            return text
    return f"a custom bank {tuple(melW.shape)} ({len(empty_filters(melW))} empty filters)"


def _classify(state: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, naming) from key names; ``state`` has ``sed_model.`` removed."""
    keys = set(state)
    if {"audio.patch_embed.proj.weight", "video.model.stem.0.weight"} <= keys:
        return "merlib_mer", "merlib"
    if "encoder.model.stem.0.weight" in keys:
        return "merlib_video", "merlib"
    if "model.stem.0.weight" in keys:
        return "merlib_video_encoder", "merlib"
    if "stem.0.weight" in keys and "layer4.1.conv2.0.0.weight" in keys:
        return "torchvision_r2plus1d", "torchvision"
    if "patch_embed.proj.weight" in keys and "logmel.melW" in keys:
        return "merlib_audio", "merlib"
    audio = "patch_embed.proj.weight" in keys
    video = "video_encoder.model.stem.0.weight" in keys
    if audio and video:
        return "reference_multimodal", "reference"
    if video:
        return "reference_video", "reference"
    if audio:
        head = state.get("tscam_conv.weight")
        return ("htsat_audioset" if head is not None and head.shape[0] == 527 else "reference_audio"), "reference"
    return "unknown", "unknown"


def _try(models: tuple[str, ...], part: str, build: Any, state: Mapping[str, Any]) -> LoadAttempt:
    try:
        target = build()
        report = load_reference_checkpoint(target, dict(state))
    except ValueError as err:
        return LoadAttempt(models, part, False, error=str(err))
    if not report.loaded:
        return LoadAttempt(models, part, False, error="no entry of the checkpoint belongs to this model")
    return LoadAttempt(models, part, True, report=report)


def identify_checkpoint(path: str | os.PathLike, try_load: bool = True, trusted: bool = False) -> CheckpointInfo:
    """Identify a checkpoint file and (``try_load``) load it into every Table II model it fits.

    Reads the file with ``torch.load(map_location="cpu", weights_only=True)`` (``trusted=True`` unpickles
    fully), tells its kind from key names and shapes (see :data:`KINDS`), infers the HTS-AT size from the
    shapes (``"paper"``, ``"quick"`` or ``"custom"``) and the class count from the classifier, then builds the
    matching merlib models at that size and loads the weights by :func:`load_reference_checkpoint`'s rules,
    keeping each :class:`LoadReport` (skipped and missing keys). An audio checkpoint is tried in the four audio
    models and as the audio branch of the four MER models; a video one in the video model and as the MER
    video branch; a multimodal one in the four MER models.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not a checkpoint
    (naming it and what to do).
    """
    path = Path(path)
    raw = _load_file(path, trusted)
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path} holds a {type(raw).__name__}, not a state dict or a Lightning checkpoint "
                         "{'state_dict': …}; is it a checkpoint of a model?")
    container = "plain state dict"
    extras: dict[str, Any] = {}
    if isinstance(raw.get("state_dict"), Mapping):
        container = "Lightning-style {'state_dict': …}"
        extras = {k: v for k, v in raw.items() if k != "state_dict"}
        extras = {k: (v if isinstance(v, (int, float, str)) else type(v).__name__) for k, v in extras.items()}
    state, _ = read_state_dict(raw)  # also removes DDP's module. / torch.compile's _orig_mod.
    tensors = {k: v for k, v in state.items() if torch.is_tensor(v)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors (top-level keys: {', '.join(map(str, list(raw)[:8]))}); "
                         "it is not a model checkpoint")
    sed = any(str(k).startswith(REFERENCE_PREFIX) for k in strip_wrapper_prefixes(raw.get("state_dict") or raw))
    tensors, lightning_model = strip_lightning_model_prefix(tensors)
    kind, naming = _classify(tensors)
    if naming == "reference" and sed:
        naming = "reference (sed_model.)"
    if lightning_model:
        naming = "merlib Lightning (model.)"
    info = CheckpointInfo(path, container, extras, naming, kind, len(tensors),
                          sum(int(v.numel()) for v in tensors.values()))
    if kind == "unknown":
        info.notes.append("key names match no merlib, reference or torchvision model; first keys: "
                          + ", ".join(list(tensors)[:5]))
        return info

    audio_prefix = {"merlib_mer": "audio.", "merlib_audio": "", "htsat_audioset": "", "reference_audio": "",
                    "reference_multimodal": ""}.get(kind)
    if audio_prefix is not None:
        info.audio_arch, info.size = _htsat_arch(tensors, audio_prefix)
        for mel_key in (audio_prefix + "logmel.melW", audio_prefix + "logmel_extractor.melW"):
            if mel_key in tensors:
                info.filterbank = _filterbank(tensors[mel_key])
    head = next((tensors[k] for k in ("classifier.linear2.weight", "tscam_conv.weight", "fc.weight",
                                        "audio.tscam_conv.weight") if k in tensors), None)
    info.num_classes = int(head.shape[0]) if head is not None and kind != "merlib_video_encoder" else None
    if kind == "htsat_audioset":
        info.notes.append("pre-trained on AudioSet at 32 kHz; fine-tune from it with build_model(…, "
                          "audio_weights=PATH) or `merlib train … --audio-weights PATH` (its 527-class head is "
                          "skipped)")
    if kind in ("reference_audio", "reference_multimodal", "merlib_audio", "merlib_mer", "htsat_audioset"):
        info.notes.append("the microphone count and mode (single channel, Avg mel, Sum PE) are not stored in the "
                          "weights: the same file loads into each; the authors' file names say which it is")
    if kind == "torchvision_r2plus1d":
        info.notes.append("Kinetics-400 pre-training: VideoEncoder(weights=PATH) or --video-weights PATH use it "
                          "(its 400-way Kinetics fc is dropped: merlib's fc is 512 → 768); torchvision's own "
                          "cached copy is --video-weights kinetics400")
    if try_load:
        info.loads = _load_attempts(kind, tensors, info)
    return info


def _load_attempts(kind: str, state: Mapping[str, torch.Tensor], info: CheckpointInfo) -> list[LoadAttempt]:
    from .htsat import HTSATConfig
    from .mer import build_model

    size = "paper" if info.size in (None, "paper") else "quick"
    cfg = None
    if info.audio_arch is not None:
        cfg = HTSATConfig.paper(**{k: v for k, v in info.audio_arch.items()})
    classes = 8 if info.num_classes in (None, 527, 400) else info.num_classes
    attempts: list[LoadAttempt] = []

    def model(name: str):
        return lambda: build_model(name, size, num_classes=classes, audio_config=cfg)

    if kind in ("htsat_audioset", "reference_audio", "merlib_audio"):
        attempts.append(_try(_AUDIO_SPECS, f"whole model, {info.size} size", model(_AUDIO_SPECS[0]), state))
        attempts.append(_try(_MER_SPECS, "audio branch; video branch and fusion head not in this file",
                             lambda: model(_MER_SPECS[0])().audio, state))
    elif kind in ("reference_multimodal", "merlib_mer"):
        attempts.append(_try(_MER_SPECS, f"whole model, {info.size} size", model(_MER_SPECS[0]), state))
    else:  # a video checkpoint: into the video model, and as the MER video branch
        if kind == "torchvision_r2plus1d":
            trunk = {"model." + k: v for k, v in state.items() if not k.startswith("fc.")}
        elif kind == "merlib_video":
            trunk = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
        else:  # reference_video (the layout maps video_encoder.model.*) or a VideoEncoder state
            trunk = dict(state)
        whole = (dict(state) if kind in ("reference_video", "merlib_video")
                 else {"encoder." + k: v for k, v in trunk.items()})
        # R(2+1)D-18's stem starts with 45 channels; merlib's quick video network with fewer
        stem = next((v for k, v in state.items() if k.endswith("stem.0.weight")), None)
        video_size = "quick" if stem is not None and stem.shape[0] != 45 else "paper"
        attempts.append(_try(("video",), ("whole model" if kind in ("reference_video", "merlib_video") else
                                          "encoder; classifier head not in this file") + f", {video_size} size",
                             lambda: build_model("video", video_size, num_classes=classes), whole))
        branch = lambda: build_model(_MER_SPECS[0], video_size, num_classes=classes).video  # noqa: E731
        attempts.append(_try(_MER_SPECS, "video branch; audio branch and fusion head not in this file",
                             branch, trunk))
    return attempts
