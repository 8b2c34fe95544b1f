"""Multi-microphone HTS-AT: the audio model of Cohen, Hazan & Gannot (docs/design.md §5).

Notebook: 04_multichannel_htsat.ipynb

HTS-AT (Chen et al., 2022) reads a log-mel spectrogram as a 256×256 image and runs a Swin Transformer
over it; its token-semantic head turns the final 8×8 token map into clip logits. The paper feeds it C
microphones in one of two ways:

* ``mode="avg_mel"`` (**Avg mel**): each microphone's log-mel goes through the shared ``bn0``, the C
  normalised log-mels are averaged, and the rest is vanilla single-channel HTS-AT. ``num_mics=1`` is the
  single-channel model of the paper.
* ``mode="sum_pe"`` (**Sum PE**): each microphone's image goes through the shared patch embedding
  (Conv2d 1→96, kernel 4, stride 4, then LayerNorm) and the C token maps are *summed* before the Swin
  stages. (The reference crashes for Sum PE with one microphone; here it equals Avg mel with C = 1.)

Shapes for the paper configuration (B clips, C microphones, 64 000 samples = 4 s at 16 kHz):

    waveforms (B, C, 64000) ─ LogMel ─► (B, C, 401, 64) ─ bn0 per mic ─► Avg mel: mean over C → (B, 1, 401, 64)
    ─ SpecAugment (training) ─ to_image ─► (B, C', 256, 256) ─ patch_embed (shared, summed over C') ─►
    (B, 64·64, 96) ─ stage 1 (2 blocks) ─ merge ─► (B, 32·32, 192) ─ stage 2 (2) ─ merge ─► (B, 16·16, 384)
    ─ stage 3 (6) ─ merge ─► (B, 8·8, 768) ─ stage 4 (2) ─ LayerNorm ─► embedding = mean of the 64 tokens;
    tokens regrouped to (B, 768, 2, 32) ─ tscam_conv (2×3) ─► (B, K, 1, 32) ─ mean over time ─► logits.

Every Swin block attends inside 8×8 windows (64 tokens) with a learned relative-position bias; every second
block shifts the windows by 4 tokens and masks the attention between tokens that the cyclic shift brought
together. Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`, with the
relative-position bias and the shift mask passed together as its additive ``attn_mask`` (in training, where
the bias gets a gradient, the same softmax is written out: see :class:`WindowAttention`).

Two layers are written for speed on the CPU, computing what the plain forms compute (tests compare them):
the patch embedding applies its convolution weight to the flattened patches as one matrix product, and patch
merging gathers its 2×2 groups with one permute instead of four strided slices.

Module and parameter names are the reference's (``bn0``, ``patch_embed.proj``, ``layers.{i}.blocks.{j}.
attn.qkv``, ``layers.{i}.downsample.reduction``, ``norm``, ``tscam_conv``, ``head``), except that the
front end lives in ``logmel`` (reference: ``spectrogram_extractor`` and ``logmel_extractor``); see
:meth:`HTSAT.reference_layout` and :mod:`merlib.models.checkpoints`.

Parameter count (8 classes, paper sizes): 27,571,432 — the Swin trunk 27,534,360, ``bn0`` 128, the
token-semantic conv 36,872 and the unused 8×8 ``head`` 72. The paper's 28.7 M adds the reference's
1,083,456 frozen STFT and mel weights, which merlib keeps as buffers. ``head`` is constructed (so the
reference's checkpoints load one to one) but never used, and therefore frozen.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from merlib.features import LogMel, SpecAugment, to_image
from merlib.models.checkpoints import ReferenceLayout

__all__ = [
    "AudioOutput",
    "HTSATConfig",
    "HTSAT",
    "window_partition",
    "window_reverse",
    "relative_position_index",
    "shifted_window_mask",
    "count_parameters",
]

Mode = Literal["avg_mel", "sum_pe"]


class AudioOutput(NamedTuple):
    """What :class:`HTSAT` returns: clip ``logits`` (B, K) and the audio ``embedding`` (B, 768)."""

    logits: torch.Tensor
    embedding: torch.Tensor


@dataclass
class HTSATConfig:
    """Architecture and front-end settings of :class:`HTSAT`. ``paper()`` is the default.

    The front-end fields (``sample_rate`` … ``fmax``) and SpecAugment's must stay at their defaults to load
    the reference's checkpoints; ``fmax=8000`` is the documented alternative to the reference's 14 kHz.
    The image is always ``spec_size``×``spec_size`` with ``spec_size = 4·n_mels`` (256).
    """

    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1
    patch_size: int = 4
    spec_size: int = 256
    # front end (docs/design.md §4)
    sample_rate: int = 16000
    clip_samples: int = 64000
    n_fft: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    # bn0's running statistics: 0.1 is the reference's exponential average; None a cumulative average
    bn0_momentum: float | None = 0.1
    # SpecAugment (training only)
    time_drop_width: int = 64
    time_stripes_num: int = 4
    freq_drop_width: int = 8
    freq_stripes_num: int = 2

    @classmethod
    def paper(cls, **overrides: Any) -> "HTSATConfig":
        """The paper's HTS-AT (embed 96, depths 2-2-6-2, heads 4-8-16-32, window 8): 768-d embedding."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def quick(cls, **overrides: Any) -> "HTSATConfig":
        """A tiny HTS-AT for CPU tests and quick notebooks (embed 24, one block per stage): 192-d embedding.

        Same front end, image size, window and token-semantic head as the paper model. With one block per
        stage it has no shifted-window block (``HTSATConfig.quick(depths=(2, 2, 2, 2))`` adds them). About
        0.7 M parameters instead of 27.6 M. A quick model is always trained from scratch, so it takes the
        from-scratch front end (:meth:`from_scratch`: fmax 8 kHz, cumulative ``bn0``).

        Lighter regularisation than the paper's (a deviation, measured on the quick corpus): SpecAugment with 2
        time stripes of < 32 frames and 1 frequency stripe of < 8 bins instead of 4 × < 64 and 2 × < 8, and no
        stochastic depth. The paper's settings regularise a 27.6 M-parameter model fine-tuned from AudioSet;
        this one underfits with them (training accuracy ~50 % after 24 epochs) — with the lighter ones the
        single-channel model's validation accuracy rose from ~33 % to ~50 % and its validation loss fell from
        1.6 to 1.3 in the same 24 epochs.
        """
        base = cls(embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8), drop_path_rate=0.0,
                   time_drop_width=32, time_stripes_num=2, freq_stripes_num=1).from_scratch()
        return dataclasses.replace(base, **overrides)

    def from_scratch(self) -> "HTSATConfig":
        """This configuration with the front end for a model trained without a checkpoint's filterbank.

        The reference's fmax of 14 kHz at 16 kHz leaves 9 of the 64 mel filters empty (constant −100 dB).
        In training mode ``bn0`` maps those bands to exactly 0 (zero variance); in eval mode its running
        statistics — an exponential average with momentum 0.1 that starts at mean 0, variance 1 — are still
        far from −100 dB and ~0 after a few dozen updates, and map them to tens of standard deviations: a
        fifth of the patch tokens become a value training never showed. The reference never met this: it
        always fine-tuned from the AudioSet checkpoint, whose 32 kHz filterbank (≈ 25–7 000 Hz at 16 kHz)
        has no empty filter. A model trained from scratch therefore gets

        * ``fmax = 8000`` (the Nyquist frequency): no empty filter, and a band close to the one the
          reference's checkpoint filterbank actually covers;
        * ``bn0_momentum = None``: a cumulative average. ``bn0`` normalises the log-mel, which has no
          learned parameter before it, so its input distribution does not drift during training and the
          plain average of all batches is the best estimate of it; with momentum 0.1 the running mean is
          still biased by 0.9ⁿ of its initial 0 after n updates (28 % after 12).

        Loading a checkpoint (``load_reference_checkpoint``) is unaffected: its filterbank and ``bn0``
        statistics replace these, and in eval mode the momentum plays no part.
        """
        return dataclasses.replace(self, fmax=8000.0, bn0_momentum=None)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists), for YAML/JSON beside a run's outputs."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# --------------------------------------------------------------------------------------------- helpers


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """``(B, H, W, C) -> (B, nW, ws·ws, C)``: non-overlapping windows, row-major over windows and tokens."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, (h // window_size) * (w // window_size), window_size**2, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B, nW, ws·ws, C) -> (B, H, W, C)``."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def relative_position_index(window_size: int) -> torch.Tensor:
    """``(N, N)`` index into the ``(2ws-1)²`` bias table for every query/key pair of a window (N = ws²)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    flat = coords.flatten(1)  # (2, N)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()  # (N, N, 2)
    rel[:, :, 0] += window_size - 1
    rel[:, :, 1] += window_size - 1
    rel[:, :, 0] *= 2 * window_size - 1
    return rel.sum(-1)


def shifted_window_mask(h: int, w: int, window_size: int, shift_size: int) -> torch.Tensor:
    """``(nW, N, N)`` additive mask of a shifted-window block: 0 inside a region, -100 across regions.

    After the cyclic shift, windows on the bottom/right border hold tokens from up to four regions of the
    unshifted map that are not neighbours; attention between different regions is suppressed.
    (-100, not -inf, as in the reference, so its buffers compare equal.)
    """
    img = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    region = 0
    for hs in cuts:
        for ws in cuts:
            img[:, hs, ws, :] = region
            region += 1
    windows = window_partition(img, window_size).reshape(-1, window_size * window_size)
    diff = windows[:, None, :] - windows[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch of a whole sample with probability ``p`` (training only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"


# ------------------------------------------------------------------------------------------ Swin parts


class PatchEmbed(nn.Module):
    """Conv2d(1 → D, kernel = stride = patch) then LayerNorm: ``(B, 1, S, S) -> (B, (S/p)², D)``.

    A convolution whose kernel equals its stride sees each p×p patch once, so it is a matrix product of the
    flattened patches with the kernel: the forward pass cuts the image into patches (one reshape) and applies
    ``proj``'s weight as a linear layer. Same parameters, same result up to float rounding, and on the CPU
    cheaper in training than the convolution and the transpose of its output it replaces (whose backward was
    4.7 % of a paper-size training step: benchmarks/README.md).
    """

    def __init__(self, patch_size: int = 4, in_chans: int = 1, embed_dim: int = 96) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"PatchEmbed: image {h}×{w} is not a multiple of the patch size {p}")
        # (B, C, H, W) -> (B, H/p · W/p, C·p·p): patches row-major, each flattened as the kernel is (C, p, p)
        patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)
        return self.norm(F.linear(patches, self.proj.weight.flatten(1), self.proj.bias))


class Mlp(nn.Module):
    """Linear → GELU → Linear, the Swin block's feed-forward part."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative-position bias.

    ``forward(x (B, nW, N, C), mask (nW, N, N) or None) -> (B, nW, N, C)``. The bias ``(heads, N, N)`` and
    the shift mask are summed into one additive ``attn_mask`` for
    :func:`~torch.nn.functional.scaled_dot_product_attention` (scale ``head_dim**-0.5``, as the reference).
    """

    def __init__(
        self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"WindowAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """``(heads, N, N)`` bias added to every window's attention logits."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, nw, n, c = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).view(b, nw, n, 3, heads, c // heads).permute(3, 0, 1, 4, 2, 5)
        # (3, B, nW, heads, N, hd) → fold windows and heads into one axis so the mask broadcasts over B
        q, k, v = (t.reshape(b, nw * heads, n, c // heads) for t in qkv.unbind(0))
        bias = self.relative_position_bias()  # (heads, N, N)
        if mask is None:
            attn_mask = bias.unsqueeze(0).expand(nw, heads, n, n)
        else:
            attn_mask = bias.unsqueeze(0) + mask.unsqueeze(1)  # (nW, heads, N, N)
        attn_mask = attn_mask.reshape(1, nw * heads, n, n).to(q.dtype)
        if torch.is_grad_enabled() and attn_mask.requires_grad:
            # Training: the bias is learned, and PyTorch's fused CPU attention has no gradient for its mask,
            # so scaled_dot_product_attention would fall back to its reference path (which also scans every
            # row for -inf). The same softmax(q·kᵀ/√d + bias)·v written out skips those scans.
            attn = torch.matmul(q * (c // heads) ** -0.5, k.transpose(-2, -1)) + attn_mask
            attn = F.dropout(attn.softmax(dim=-1), self.attn_drop, self.training)
            out = torch.matmul(attn, v)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop if self.training else 0.0
            )  # (B, nW·heads, N, hd)
        out = out.view(b, nw, heads, n, c // heads).transpose(2, 3).reshape(b, nw, n, c)
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}"


class SwinBlock(nn.Module):
    """One Swin Transformer block: (shifted) window attention and an MLP, each pre-norm and residual.

    When the token map is no larger than the window (stage 4: 8×8 tokens, window 8) the window shrinks to
    the map and the shift is dropped, as in the reference; such blocks carry no ``attn_mask``.
    """

    def __init__(
        self, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int = 8,
        shift_size: int = 0, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
        attn_drop: float = 0.0, drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        if min(input_resolution) <= window_size:
            shift_size, window_size = 0, min(input_resolution)
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        mask = shifted_window_mask(*input_resolution, window_size, shift_size) if shift_size > 0 else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        b, length, c = x.shape
        if length != h * w:
            raise ValueError(f"SwinBlock expects {h}×{w} = {h * w} tokens, got {length}")
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        windows = self.attn(window_partition(x, self.window_size), self.attn_mask)
        x = window_reverse(windows, self.window_size, h, w)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(b, length, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, resolution={self.input_resolution}, shift_size={self.shift_size}"


class PatchMerging(nn.Module):
    """Halve the token map and double the channels: each 2×2 group → LayerNorm(4C) → Linear(4C → 2C).

    The four tokens are concatenated in the reference's (original Swin) order: (0,0), (1,0), (0,1), (1,1)
    as (row, column) offsets — the order its checkpoints' ``reduction`` weights expect.
    """

    def __init__(self, input_resolution: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        b, _, c = x.shape
        # (B, H/2, row offset, W/2, column offset, C) -> (B, H/2, W/2, column offset, row offset, C): one
        # copy that lays the four tokens out as (0,0), (1,0), (0,1), (1,1), as torch.cat of the four strided
        # slices does, without the slices' zero-filled gradients in the backward pass.
        x = x.view(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).reshape(b, -1, 4 * c)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    """One Swin stage: ``depth`` blocks alternating plain and shifted windows, then optional merging."""

    def __init__(
        self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int, window_size: int,
        mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float, drop_path: list[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(
                dim, input_resolution, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2,
                mlp_ratio, qkv_bias, drop, attn_drop, drop_path[i],
            )
            for i in range(depth)
        )
        self.downsample = PatchMerging(input_resolution, dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


# ------------------------------------------------------------------------------------------- the model


class HTSAT(nn.Module):
    """HTS-AT with C microphones combined by ``"avg_mel"`` or ``"sum_pe"`` (see the module docstring).

    Args:
        num_mics: microphones per clip, C (1 = the single-channel model).
        mode: ``"avg_mel"`` (average the bn0-normalised log-mels) or ``"sum_pe"`` (sum the per-mic patch
            embeddings).
        num_classes: K, the size of the token-semantic head (8 emotions).
        config: an :class:`HTSATConfig` (``HTSATConfig.paper()`` when omitted).
        **arch: overrides of ``config`` fields, e.g. ``embed_dim=24, depths=(1, 1, 1, 1)``.

    ``forward(waveforms (B, C, N)) -> AudioOutput(logits (B, K), embedding (B, embedding_dim))``; N is cut
    or zero-padded to ``clip_samples`` (64 000). Also :meth:`features` (normalised log-mels) and
    :meth:`forward_tokens` (from patch tokens on).
    """

    def __init__(
        self, num_mics: int = 1, mode: Mode = "avg_mel", num_classes: int = 8,
        config: HTSATConfig | None = None, **arch: Any,
    ) -> None:
        super().__init__()
        if mode not in ("avg_mel", "sum_pe"):
            raise ValueError(f"HTSAT mode {mode!r} is not one of 'avg_mel', 'sum_pe'")
        if num_mics < 1:
            raise ValueError(f"HTSAT needs num_mics >= 1, got {num_mics}")
        cfg = config if config is not None else HTSATConfig.paper()
        unknown = set(arch) - {f.name for f in dataclasses.fields(HTSATConfig)}
        if unknown:
            raise TypeError(f"HTSAT got unknown architecture option(s) {sorted(unknown)}; see HTSATConfig")
        cfg = dataclasses.replace(cfg, **{k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()})
        if len(cfg.depths) != len(cfg.num_heads):
            raise ValueError(f"HTSAT: depths {cfg.depths} and num_heads {cfg.num_heads} differ in length")
        if cfg.spec_size % cfg.n_mels:
            raise ValueError(f"HTSAT: spec_size {cfg.spec_size} must be a multiple of n_mels {cfg.n_mels}")
        self.config = cfg
        self.num_mics = num_mics
        self.mode: Mode = mode
        self.num_classes = num_classes
        stages = len(cfg.depths)
        self.embedding_dim = int(cfg.embed_dim * 2 ** (stages - 1))
        self.num_features = self.embedding_dim
        self.freq_ratio = cfg.spec_size // cfg.n_mels

        self.logmel = LogMel(
            cfg.sample_rate, cfg.clip_samples, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.fmin, cfg.fmax
        )
        self.bn0 = nn.BatchNorm2d(cfg.n_mels, momentum=cfg.bn0_momentum)
        self.spec_augment = SpecAugment(
            cfg.time_drop_width, cfg.time_stripes_num, cfg.freq_drop_width, cfg.freq_stripes_num
        )
        self.patch_embed = PatchEmbed(cfg.patch_size, 1, cfg.embed_dim)
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        grid = cfg.spec_size // cfg.patch_size
        dpr = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths)).tolist()  # linear stochastic depth
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            res = grid // 2**i
            self.layers.append(
                BasicLayer(
                    dim=cfg.embed_dim * 2**i, input_resolution=(res, res), depth=depth, num_heads=heads,
                    window_size=cfg.window_size, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
                    drop=cfg.drop_rate, attn_drop=cfg.attn_drop_rate,
                    drop_path=dpr[sum(cfg.depths[:i]) : sum(cfg.depths[: i + 1])],
                    downsample=i < stages - 1,
                )
            )
        self.final_grid = grid // 2 ** (stages - 1)  # 8
        if self.final_grid % self.freq_ratio:
            raise ValueError(
                f"HTSAT: the final {self.final_grid}×{self.final_grid} token map cannot be regrouped into "
                f"{self.freq_ratio} time chunks; use spec_size / patch_size / depths giving a multiple"
            )
        self.norm = nn.LayerNorm(self.num_features)
        self.tscam_conv = nn.Conv2d(
            self.num_features, num_classes, kernel_size=(self.final_grid // self.freq_ratio, 3), padding=(0, 1)
        )
        # Constructed by the reference but unused in the token-semantic path: kept so its checkpoints map
        # one to one (and the parameter count matches), frozen since it never receives a gradient.
        self.head = nn.Linear(num_classes, num_classes)
        self.apply(self._init_weights)
        self.head.requires_grad_(False)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # The reference's initialisation: truncated normal for linear layers, unit LayerNorms.
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # -- front end ---------------------------------------------------------------------------------

    def _check_input(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() == 2 and self.num_mics == 1:
            waveforms = waveforms.unsqueeze(1)  # (B, N) is accepted for the single-channel model
        if waveforms.dim() != 3 or waveforms.shape[1] != self.num_mics:
            raise ValueError(
                f"HTSAT(num_mics={self.num_mics}) expects waveforms (batch, {self.num_mics}, samples), got "
                f"shape {tuple(waveforms.shape)}; to use the first microphone(s) of a larger array as the "
                f"reference does, pass waveforms[:, :{self.num_mics}]"
            )
        return waveforms

    @contextlib.contextmanager
    def using_mics(self, num_mics: int) -> Iterator["HTSAT"]:
        """Let the model read ``num_mics`` microphones inside a ``with`` block (the acoustic lab's "switch a
        microphone off"): nothing in the weights depends on C, so Avg mel averages the C log-mels it gets and
        Sum PE sums C token maps. A Sum PE model trained with 3 microphones then sees token sums of another
        scale than in training — which is the point of trying it. The single-channel model is unaffected by
        the choice of C in the data pipeline (it always takes microphone 0); here it would average too.
        """
        if num_mics < 1:
            raise ValueError(f"num_mics must be >= 1, got {num_mics}")
        saved = self.num_mics
        self.num_mics = int(num_mics)
        try:
            yield self
        finally:
            self.num_mics = saved

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(B, C, N) -> (B, C, 401, 64)``: each microphone's log-mel normalised by the shared ``bn0``."""
        x = self.logmel(self._check_input(waveforms))  # (B, C, T, F)
        if self.training and x.shape[1] > 1:
            # The reference runs bn0 once per microphone: per-mic batch statistics and C running-stat
            # updates per step. Kept for faithfulness; in eval mode one call gives the same result.
            return torch.cat([self._bn0(x[:, m : m + 1]) for m in range(x.shape[1])], dim=1)
        return self._bn0(x)

    def _bn0(self, x: torch.Tensor) -> torch.Tensor:
        # BatchNorm2d over mel bins: put mels on the channel axis, (B, C, T, F) -> (B, F, T, C) and back
        return self.bn0(x.transpose(1, 3)).transpose(1, 3)

    def images(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(B, C, N) -> (B, C', 256, 256)`` the images the patch embedding sees (C' = 1 for Avg mel).

        SpecAugment is applied here in training mode (after the Avg-mel average, or to all microphones of
        a clip with one shared mask for Sum PE).
        """
        x = self.features(waveforms)
        if self.mode == "avg_mel":
            x = x.mean(dim=1, keepdim=True)
        x = self.spec_augment(x)
        return to_image(x, self.config.spec_size)

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C', S, S) -> (B, L, D)``: the shared patch embedding applied per image, token maps summed."""
        b, c, s, _ = images.shape
        tokens = self.patch_embed(images.reshape(b * c, 1, s, s))
        return tokens.view(b, c, tokens.shape[1], tokens.shape[2]).sum(dim=1)

    # -- trunk and head ----------------------------------------------------------------------------

    def _final_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens ``(B, 4096, D)`` → Swin stages → norm → regrouped map ``(B, 768, 2, 32)``."""
        x = self.pos_drop(tokens)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)  # (B, 64, 768)
        b, _, c = x.shape
        g = self.final_grid
        x = x.transpose(1, 2).reshape(b, c, g, g)  # (B, 768, 8 freq, 8 time)
        # Regroup: the 8 frequency rows are 4 time chunks × 2 frequency bins (the image fold, undone),
        # giving (B, 768, 2 freq, 32 time) with time = chunk·8 + column.
        bins = g // self.freq_ratio
        return x.reshape(b, c, self.freq_ratio, bins, g).permute(0, 1, 3, 2, 4).reshape(b, c, bins, -1)

    def forward_tokens(self, tokens: torch.Tensor) -> AudioOutput:
        """From patch tokens ``(B, 4096, D)`` to :class:`AudioOutput` (Swin stages, norm, TSCAM head)."""
        x = self._final_map(tokens)
        embedding = x.flatten(2).mean(dim=2)  # mean of the 64 final tokens
        logits = self.tscam_conv(x).flatten(2).mean(dim=2)  # (B, K, 1, 32) -> mean over time
        return AudioOutput(logits=logits, embedding=embedding)

    def token_semantic_map(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(B, C, N) -> (B, K, 32)``: the token-semantic head's class scores over 32 time steps
        (≈ 125 ms each); ``forward``'s logits are their mean over time."""
        x = self._final_map(self.embed_patches(self.images(waveforms)))
        return self.tscam_conv(x).flatten(2)

    def forward(self, waveforms: torch.Tensor) -> AudioOutput:
        """``waveforms (B, C, 64000) -> AudioOutput(logits (B, K), embedding (B, embedding_dim))``."""
        return self.forward_tokens(self.embed_patches(self.images(waveforms)))

    # -- checkpoints -------------------------------------------------------------------------------

    def reference_layout(self) -> ReferenceLayout:
        """How this model's state-dict names map onto the reference's (see :mod:`merlib.models.checkpoints`).

        Everything keeps its name except the filterbank (``logmel.melW`` ↔ ``logmel_extractor.melW``);
        ``tscam_conv`` and ``head`` are sized by the class count and skipped when a checkpoint's differs.
        """
        return ReferenceLayout(
            prefixes=(("logmel.melW", "logmel_extractor.melW"), ("", "")),
            class_head=("tscam_conv.weight", "tscam_conv.bias", "head.weight", "head.bias"),
        )

    def extra_repr(self) -> str:
        return f"num_mics={self.num_mics}, mode={self.mode!r}, num_classes={self.num_classes}"


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of ``nn.Parameter`` elements (buffers such as the STFT window and filterbank excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
