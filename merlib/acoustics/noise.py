"""Spatially-white AR(1) noise, mixing at a target SNR, and reverberating clean speech with multichannel RIRs.

Notebook: 01_rir_simulation.ipynb

The paper adds "spatially-white noise with SNR of 20 dB ... synthesized by applying an auto-regressive filter
of order 1 to a white Gaussian noise, emphasizing lower frequencies". It does not give the AR coefficient;
merlib's default is a = 0.9 (+25.6 dB from Nyquist to DC). Details and statistics: docs/room-acoustics.md §6.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy.signal import fftconvolve, lfilter

SnrMode = Literal["mean", "per_channel", "ref"]


def ar1_noise(channels: int, samples: int, a: float = 0.9, rng: np.random.Generator | None = None) -> np.ndarray:
    """Independent stationary AR(1) noise per channel, unit variance, float64 (C, N).

    x[n] = a·x[n−1] + w[n] with w ~ N(0, 1 − a²) and a stationary N(0, 1) start, so every sample has
    variance 1 and the PSD is (1 − a²)/|1 − a·e^{−jω}|² (low-frequency emphasis for a > 0).
    """
    if not -1.0 < a < 1.0:
        raise ValueError(f"AR(1) coefficient must satisfy |a| < 1 for a stationary process, got {a}")
    if channels < 1 or samples < 1:
        raise ValueError(f"need at least one channel and one sample, got ({channels}, {samples})")
    rng = rng if rng is not None else np.random.default_rng()
    x0 = rng.standard_normal(channels)
    w = rng.standard_normal((channels, samples)) * np.sqrt(1.0 - a * a)
    y, _ = lfilter([1.0], [1.0, -a], w, axis=-1, zi=(a * x0)[:, None])
    return y


def _power(x: np.ndarray, how: str, frame: int, active_db: float) -> np.ndarray:
    """Per-channel power: whole-signal mean square, or the mean square over active frames (energy VAD)."""
    if how == "total":
        return np.mean(x**2, axis=-1)
    if how != "active":
        raise ValueError(f"speech_power must be 'total' or 'active', got {how!r}")
    n = (x.shape[-1] // frame) * frame
    if n == 0:
        return np.mean(x**2, axis=-1)
    fr = np.mean(x[:, :n].reshape(x.shape[0], -1, frame) ** 2, axis=-1)  # (C, frames)
    ref = fr.mean(axis=0)  # frames are selected jointly for all channels
    active = ref >= ref.max() * 10.0 ** (active_db / 10.0)
    return fr[:, active].mean(axis=-1)


def mix_at_snr(
    speech: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    mode: SnrMode = "mean",
    speech_power: Literal["total", "active"] = "total",
    frame: int = 320,
    active_db: float = -40.0,
) -> np.ndarray:
    """Return ``speech + g·noise`` (C, N) with the gain chosen for the target SNR.

    - ``"mean"`` (default): one gain for all channels, so the noise keeps the same power on every
      microphone (spatially white); the SNR of the channel-averaged powers is exactly ``snr_db``.
    - ``"per_channel"``: each channel exactly at ``snr_db``.
    - ``"ref"``: one gain, set by channel 0.

    ``speech_power="active"`` measures the speech power over frames of ``frame`` samples within
    ``active_db`` of the loudest (RAVDESS clips have leading and trailing silence); the default uses the
    whole signal.
    """
    s = np.asarray(speech, dtype=np.float64)
    v = np.asarray(noise, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if v.ndim == 1:
        v = v[None, :]
    if s.shape != v.shape:
        raise ValueError(f"speech {s.shape} and noise {v.shape} must have the same (C, N) shape")
    ps = _power(s, speech_power, frame, active_db)
    pn = np.mean(v**2, axis=-1)
    if np.any(pn <= 0):
        raise ValueError("noise has zero power on at least one channel; cannot scale it to an SNR")
    k = 10.0 ** (snr_db / 10.0)
    if mode == "mean":
        g = np.full(s.shape[0], np.sqrt(ps.mean() / (pn.mean() * k)))
    elif mode == "per_channel":
        g = np.sqrt(ps / (pn * k))
    elif mode == "ref":
        g = np.full(s.shape[0], np.sqrt(ps[0] / (pn[0] * k)))
    else:
        raise ValueError(f"mode must be 'mean', 'per_channel' or 'ref', got {mode!r}")
    out = s + g[:, None] * v
    return out.astype(np.result_type(np.asarray(speech).dtype, np.float32), copy=False)


def reverberate(
    clean,
    rirs,
    snr_db: float | None = 20.0,
    rng: np.random.Generator | None = None,
    *,
    ar_coef: float = 0.9,
    mode: SnrMode = "mean",
    speech_power: Literal["total", "active"] = "total",
) -> np.ndarray:
    """Convolve a mono clip with C RIRs and add spatially-white AR(1) noise at ``snr_db`` (``None``: no noise).

    Alignment and cut: channel c is ``fftconvolve(clean, rirs[c])[:N]`` — the output has the clean clip's
    length N and starts at sample 0 of the full convolution. The propagation delay (d/c, a few ms for the
    paper's scenes) is therefore kept, and the reverberant tail that rings on after the clip ends is dropped.
    The SNR is measured on this truncated reverberant signal. Returns float32 (C, N).
    """
    x = np.asarray(clean.detach().cpu().numpy() if torch.is_tensor(clean) else clean, dtype=np.float64)
    h = np.asarray(rirs.detach().cpu().numpy() if torch.is_tensor(rirs) else rirs, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"clean must be a mono signal (N,), got shape {x.shape}")
    if h.ndim != 2:
        raise ValueError(f"rirs must be (C, L), got shape {h.shape}")
    y = fftconvolve(x[None, :], h, axes=-1)[:, : x.size]
    if snr_db is not None:
        y = mix_at_snr(y, ar1_noise(h.shape[0], x.size, ar_coef, rng), snr_db, mode=mode, speech_power=speech_power)
    return y.astype(np.float32)
