"""The audio front end of HTS-AT: log-mel spectrogram, SpecAugment and the 256×256 "image" fold.

Notebook: 03_mel_and_specaugment.ipynb

Everything here reproduces the front end of the authors' model (docs/design.md §4, docs/reference-model.md §1.4)
closely enough to load their checkpoints and match their outputs:

* :class:`LogMel` — 16 kHz, the first 4 s (64 000 samples, zero-padded at the end), centred STFT with a
  1024-point periodic Hann window, hop 160, reflect padding → 401 frames; power spectrum; 64 Slaney mel
  bands 50–14 000 Hz; ``10·log10(max(x, 1e-10))`` without top-dB clipping. All microphones of a batch go
  through one STFT call.
* :class:`SpecAugment` — 4 time stripes (< 64 frames) and 2 frequency stripes (< 8 bins) zeroed, one mask
  per clip shared by all its microphones, only in training mode.
* :func:`to_image` — bicubic stretch of the 401 frames to 1024, then four 256-frame chunks stacked along the
  frequency axis into a 256×256 image (row = chunk·64 + mel, column = frame in the chunk).

**The fmax quirk** (documented, not hidden). The reference asks for fmax = 14 000 Hz at a 16 kHz sampling
rate, above the 8 kHz Nyquist frequency: the top 9 of the 64 Slaney filters (indices 55–63) have no STFT
bin under them and are identically zero, so 9 mel bands are always ``10·log10(1e-10) = -100 dB``. When the
reference fine-tunes from the HTS-AT AudioSet checkpoint, that checkpoint's filterbank — designed for
32 kHz — overwrites this one; applied to 16 kHz bins every filter sits at half its design frequency
(effective ≈ 25–7 000 Hz, no empty filter). That is why the filterbank is a loadable buffer, ``melW``
(513 × 64, the reference's name and layout): :func:`merlib.models.checkpoints.load_reference_checkpoint`
can take it from a checkpoint (``filterbank="checkpoint"``, the reference's behaviour) or keep merlib's.
``LogMel(fmax=8000)`` gives a filterbank without empty bands for new work.

The empty bands are not harmless for a model trained *from scratch*: HTS-AT's ``bn0`` normalises each band with
batch statistics in training (a constant band becomes exactly 0) but with running statistics in evaluation, which
after a few dozen momentum-0.1 updates are still far from −100 dB and ~0 variance — so in evaluation those 9 bands
become values tens of standard deviations out, in a fifth of the patch tokens. Every model merlib builds without
a checkpoint therefore uses fmax 8 kHz and a cumulative ``bn0`` (:meth:`merlib.models.htsat.HTSATConfig.from_scratch`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LogMel",
    "SpecAugment",
    "slaney_mel_filterbank",
    "hann_window",
    "dft_kernels",
    "fit_length",
    "to_image",
    "empty_filters",
]


def hann_window(n_fft: int = 1024) -> torch.Tensor:
    """The periodic Hann window of length ``n_fft`` (``scipy.signal.get_window('hann', n, fftbins=True)``)."""
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float64).float()


def dft_kernels(n_fft: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's STFT convolution kernels, each ``(n_fft // 2 + 1, 1, n_fft)``.

    torchlibrosa computes the STFT as a 1-D convolution whose kernels are the Hann-windowed DFT basis:
    ``real[k, 0, n] = w[n]·cos(2πkn/N)`` and ``imag[k, 0, n] = -w[n]·sin(2πkn/N)``. merlib computes the
    same STFT with :func:`torch.stft` and uses these kernels only to check and export checkpoints
    (keys ``spectrogram_extractor.stft.conv_real.weight`` / ``conv_imag.weight``).
    """
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)
    window = np.asarray(hann_window(n_fft), dtype=np.float64)
    # Reduce k·n modulo N before the trig call: exact integer arithmetic keeps large arguments accurate.
    angle = 2.0 * np.pi * (np.outer(k, n) % n_fft) / n_fft
    real = np.cos(angle) * window[None, :]
    imag = -np.sin(angle) * window[None, :]
    return (
        torch.from_numpy(real).float().unsqueeze(1),
        torch.from_numpy(imag).float().unsqueeze(1),
    )


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels)


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def slaney_mel_filterbank(
    sample_rate: int = 16000, n_fft: int = 1024, n_mels: int = 64, fmin: float = 50.0, fmax: float = 14000.0
) -> torch.Tensor:
    """Slaney-normalised triangular mel filterbank, ``(n_fft // 2 + 1, n_mels)`` float32.

    The same construction as librosa's ``filters.mel(htk=False, norm="slaney")`` transposed, which is what
    torchlibrosa's ``LogmelFilterBank`` stores as ``melW``: ``n_mels + 2`` band edges equally spaced on the
    Slaney mel scale between ``fmin`` and ``fmax``, triangles over the STFT bin frequencies
    ``linspace(0, sr/2, n_fft//2 + 1)``, each scaled by ``2 / (f[i+2] - f[i])`` (constant area).
    Filters whose band lies above ``sample_rate / 2`` come out all zero; see :func:`empty_filters`.
    """
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_edges = np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2)
    hz_edges = _mel_to_hz_slaney(mel_edges)
    fdiff = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_edges[2 : n_mels + 2] - hz_edges[:n_mels]))[:, None]
    return torch.from_numpy(weights.T.astype(np.float32).copy())


def empty_filters(melW: torch.Tensor) -> list[int]:
    """Indices of the filters (columns of ``melW``, shape (bins, mels)) that are identically zero."""
    return [int(i) for i in torch.nonzero(~(melW != 0).any(dim=0)).flatten()]


def fit_length(waveforms: torch.Tensor, samples: int) -> torch.Tensor:
    """The first ``samples`` samples of the last axis, zero-padded at the end when shorter (reference §1.2)."""
    n = waveforms.shape[-1]
    if n >= samples:
        return waveforms[..., :samples]
    return F.pad(waveforms, (0, samples - n))


class LogMel(nn.Module):
    """Log-mel spectrogram of the reference: ``(..., N) -> (..., frames, n_mels)``.

    With the defaults and ``N = 64000`` the output is ``(..., 401, 64)`` (time, then mel). Any leading axes
    (batch, microphones) are flattened into one STFT call and restored.

    Args:
        sample_rate: sampling rate of the input, Hz (the reference works at 16 kHz).
        clip_samples: length every input is cut or zero-padded to (64 000 = 4 s); ``None`` keeps ``N``.
        n_fft: FFT size and window length (1024).
        hop_length: hop in samples (160 = 10 ms).
        n_mels, fmin, fmax: the Slaney filterbank. ``fmax=14000`` is the reference's (9 empty filters at
            16 kHz, see the module docstring); ``fmax=8000`` gives none.
        amin: floor before the logarithm (1e-10 → -100 dB).

    Buffers: ``window`` (the periodic Hann window, not saved in state dicts since it is fixed by
    ``n_fft``) and ``melW`` (the filterbank, ``(n_fft//2 + 1, n_mels)``, saved and loadable — the
    reference keeps it under ``logmel_extractor.melW``).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        clip_samples: int | None = 64000,
        n_fft: int = 1024,
        hop_length: int = 160,
        n_mels: int = 64,
        fmin: float = 50.0,
        fmax: float = 14000.0,
        amin: float = 1e-10,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.amin = amin
        self.register_buffer("window", hann_window(n_fft), persistent=False)
        self.register_buffer("melW", slaney_mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax))

    def num_frames(self, samples: int | None = None) -> int:
        """Frames produced for ``samples`` input samples (``clip_samples`` by default): ``N // hop + 1``."""
        n = samples if self.clip_samples is None else self.clip_samples
        if n is None:
            raise ValueError("LogMel.num_frames needs `samples` when clip_samples is None")
        return n // self.hop_length + 1

    def power_spectrogram(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(..., N) -> (..., frames, n_fft//2 + 1)`` power spectrum |STFT|² (after cutting/padding)."""
        if self.clip_samples is not None:
            waveforms = fit_length(waveforms, self.clip_samples)
        lead = waveforms.shape[:-1]
        flat = waveforms.reshape(-1, waveforms.shape[-1]).float()
        spec = torch.stft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )  # (M, bins, frames)
        power = spec.real.square() + spec.imag.square()
        return power.transpose(1, 2).reshape(*lead, power.shape[2], power.shape[1])

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(..., N) -> (..., frames, n_mels)`` log-mel in dB (``10·log10(max(mel, amin))``)."""
        if waveforms.shape[-1] < self.n_fft // 2 + 1 and self.clip_samples is None:
            raise ValueError(
                f"LogMel needs at least {self.n_fft // 2 + 1} samples for reflect padding, got "
                f"{waveforms.shape[-1]}; pad the input or set clip_samples"
            )
        # Always float32, also under autocast: powers span ~20 decades and bf16 would cost ~0.02 dB.
        with torch.autocast(waveforms.device.type, enabled=False):
            mel = torch.matmul(self.power_spectrogram(waveforms), self.melW.float())
            return 10.0 * torch.log10(torch.clamp(mel, min=self.amin))

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, clip_samples={self.clip_samples}, n_fft={self.n_fft}, "
            f"hop_length={self.hop_length}, n_mels={self.n_mels}, fmin={self.fmin}, fmax={self.fmax}"
        )


class SpecAugment(nn.Module):
    """Time and frequency stripe dropping (torchlibrosa's ``SpecAugmentation``), training mode only.

    Input ``(B, C, T, F)`` — batch, microphones, frames, mel bins. For every clip it draws
    ``time_stripes_num`` stripes of width ``randint(0, time_drop_width)`` (so < 64 frames) and
    ``freq_stripes_num`` of width ``randint(0, freq_drop_width)`` (< 8 bins), each starting uniformly in
    ``[0, size - width)``, and sets them to zero. The mask is drawn per clip and shared by all C
    microphones, as in the reference (its stripes index ``e[:, start:end, :]`` across channels).

    Seeding: pass ``generator`` (a CPU :class:`torch.Generator`) to the constructor or to ``forward`` for
    reproducible masks; otherwise torch's global RNG is used. In eval mode the input is returned unchanged.
    """

    def __init__(
        self,
        time_drop_width: int = 64,
        time_stripes_num: int = 4,
        freq_drop_width: int = 8,
        freq_stripes_num: int = 2,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.time_drop_width = time_drop_width
        self.time_stripes_num = time_stripes_num
        self.freq_drop_width = freq_drop_width
        self.freq_stripes_num = freq_stripes_num
        self.generator = generator

    @staticmethod
    def _stripes(
        batch: int, size: int, drop_width: int, stripes: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and width of each stripe, ``(batch, stripes)`` each, drawn like torchlibrosa's DropStripes."""
        width = torch.randint(0, drop_width, (batch, stripes), generator=generator)
        # start ~ U{0, …, size - width - 1}, torchlibrosa's randint(0, size - width); vectorised
        u = torch.rand((batch, stripes), generator=generator, dtype=torch.float64)
        start = torch.floor(u * (size - width).double()).long()
        return start, width

    def make_mask(
        self,
        batch: int,
        frames: int,
        bins: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """A boolean drop mask ``(batch, 1, frames, bins)`` (True = set to zero), one per clip."""
        gen = generator if generator is not None else self.generator
        t_start, t_width = self._stripes(batch, frames, self.time_drop_width, self.time_stripes_num, gen)
        f_start, f_width = self._stripes(batch, bins, self.freq_drop_width, self.freq_stripes_num, gen)
        t = torch.arange(frames, device=device)
        f = torch.arange(bins, device=device)

        def covered(pos: torch.Tensor, start: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
            start, width = start.to(device), width.to(device)
            inside = (pos[None, None, :] >= start[..., None]) & (pos[None, None, :] < (start + width)[..., None])
            return inside.any(dim=1)  # (batch, size)

        time_mask = covered(t, t_start, t_width)[:, :, None]
        freq_mask = covered(f, f_start, f_width)[:, None, :]
        return (time_mask | freq_mask)[:, None]

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Zero the stripes of ``x`` ``(B, C, T, F)`` in training mode; identity in eval mode."""
        if not self.training:
            return x
        if x.dim() != 4:
            raise ValueError(f"SpecAugment expects (batch, mics, frames, mels), got shape {tuple(x.shape)}")
        mask = self.make_mask(x.shape[0], x.shape[2], x.shape[3], generator=generator, device=x.device)
        return x.masked_fill(mask, 0.0)

    def extra_repr(self) -> str:
        return (
            f"time_drop_width={self.time_drop_width}, time_stripes_num={self.time_stripes_num}, "
            f"freq_drop_width={self.freq_drop_width}, freq_stripes_num={self.freq_stripes_num}"
        )


def to_image(logmel: torch.Tensor, spec_size: int = 256) -> torch.Tensor:
    """Fold a log-mel ``(B, C, T, F)`` into the HTS-AT image ``(B, C, spec_size, spec_size)``.

    HTS-AT's ``reshape_wav2img``: with ``r = spec_size // F`` (4 for 64 mels) the T frames are stretched
    by bicubic interpolation (``align_corners=True``) to ``spec_size·r`` (401 → 1024, a 2.55× stretch),
    then cut into ``r`` consecutive chunks of ``spec_size`` frames which are stacked along the frequency
    axis: ``image[row = chunk·F + mel, column = frame - chunk·spec_size]``. Each chunk covers about 1 s.
    """
    if logmel.dim() != 4:
        raise ValueError(f"to_image expects (batch, mics, frames, mels), got shape {tuple(logmel.shape)}")
    b, c, t, f = logmel.shape
    ratio = spec_size // f
    if ratio < 1 or spec_size % f:
        raise ValueError(f"to_image: spec_size {spec_size} must be a multiple of the mel count {f}")
    target_t = spec_size * ratio
    if t > target_t:
        raise ValueError(f"to_image: {t} frames do not fit a {spec_size}×{spec_size} image (at most {target_t})")
    if t < target_t:
        logmel = F.interpolate(logmel, size=(target_t, f), mode="bicubic", align_corners=True)
    x = logmel.permute(0, 1, 3, 2)  # (B, C, F, T')
    x = x.reshape(b, c, f, ratio, spec_size).permute(0, 1, 3, 2, 4)  # (B, C, chunk, F, frame)
    return x.reshape(b, c, ratio * f, spec_size)
