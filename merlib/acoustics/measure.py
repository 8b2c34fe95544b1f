"""Measuring an RIR: Schroeder energy decay curve, T20/T30 reverberation time, direct-to-reverberant ratio.

Notebook: 01_rir_simulation.ipynb

Following ISO 3382 (docs/room-acoustics.md §4): the response starts at the first sample within 20 dB of its peak; the
Schroeder backward integral gives the energy decay curve (EDC); a least-squares line fitted between −5 dB
and −35 dB (T30) or −25 dB (T20) gives the decay rate, extrapolated to 60 dB. The DRR compares the energy
within ±2.5 ms of the direct-path peak with everything after it.

Simulated RIRs are noise-free, so no noise-floor compensation is done. For measured RIRs (ACE) cut the
response where its EDC meets the noise floor first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _np(h) -> np.ndarray:
    return np.asarray(h.detach().cpu().numpy() if torch.is_tensor(h) else h, dtype=np.float64)


def onset_index(h: np.ndarray, threshold_db: float = -20.0) -> int:
    """First sample where h² reaches ``threshold_db`` relative to its maximum (ISO 3382-1 onset)."""
    e = _np(h) ** 2
    peak = e.max()
    if peak <= 0:
        raise ValueError("the impulse response is all zeros")
    return int(np.argmax(e >= peak * 10.0 ** (threshold_db / 10.0)))


def energy_decay_curve(h, fs: float | None = None, onset: bool = True) -> np.ndarray:
    """Schroeder EDC in dB (0 dB at the start) of a 1-D response, from its ISO onset when ``onset``."""
    x = _np(h).reshape(-1)
    if onset:
        x = x[onset_index(x) :]
    edc = np.cumsum((x**2)[::-1])[::-1]
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(edc / edc[0])


@dataclass
class DecayFit:
    """A straight-line fit to an EDC: ``edc_db ≈ intercept_db + slope_db_per_s · t`` on samples ``[i0, i1)``
    (counted from the onset ``onset``); ``t60`` = −60/slope."""

    t60: float
    slope_db_per_s: float
    intercept_db: float
    i0: int
    i1: int
    onset: int


def fit_decay(h, fs: float, decay_db: float = 30.0, start_db: float = -5.0) -> DecayFit:
    """Fit the EDC of a 1-D response between ``start_db`` and ``start_db − decay_db``.

    Returns ``t60 = nan`` when the EDC never falls that far (too little dynamic range).
    """
    x = _np(h).reshape(-1)
    n0 = onset_index(x)
    edc = energy_decay_curve(x[n0:], onset=False)
    stop_db = start_db - decay_db
    i0 = int(np.argmax(edc <= start_db))
    below = edc <= stop_db
    if not below.any() or edc[i0] > start_db:
        return DecayFit(float("nan"), float("nan"), float("nan"), i0, i0, n0)
    i1 = int(np.argmax(below)) + 1
    if i1 - i0 < 2:
        return DecayFit(float("nan"), float("nan"), float("nan"), i0, i1, n0)
    t = np.arange(i0, i1) / fs
    slope, intercept = np.polyfit(t, edc[i0:i1], 1)
    return DecayFit(float(-60.0 / slope), float(slope), float(intercept), i0, i1, n0)


def measure_t60(h, fs: float, decay_db: float = 30.0, start_db: float = -5.0):
    """Reverberation time (s) from the Schroeder EDC: T30 by default (``decay_db=20`` gives T20).

    ``h`` is (..., N) (numpy or torch); returns a float for 1-D input, else an array of shape ``h.shape[:-1]``.
    A channel whose EDC does not reach ``start_db − decay_db`` gives ``nan``.
    """
    x = _np(h)
    if x.ndim == 1:
        return fit_decay(x, fs, decay_db, start_db).t60
    flat = x.reshape(-1, x.shape[-1])
    return np.array([fit_decay(row, fs, decay_db, start_db).t60 for row in flat]).reshape(x.shape[:-1])


def drr_db(h, fs: float, window_ms: float = 2.5):
    """Direct-to-reverberant ratio in dB: energy within ±``window_ms`` of the peak |h| vs all energy after it.

    ``h`` is (..., N); returns a float for 1-D input, else an array of shape ``h.shape[:-1]`` (for an array,
    report channel 0 and the mean, docs/room-acoustics.md §4.2).
    """
    x = _np(h)
    w = int(round(window_ms * 1e-3 * fs))
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty(flat.shape[0])
    for i, row in enumerate(flat):
        nd = int(np.argmax(np.abs(row)))
        e = row**2
        direct = e[max(0, nd - w) : nd + w + 1].sum()
        reverb = e[nd + w + 1 :].sum()
        out[i] = 10.0 * np.log10(direct / reverb) if reverb > 0 else float("inf")
    return float(out[0]) if x.ndim == 1 else out.reshape(x.shape[:-1])


def truncate_at_noise_floor(h, fs: float, tail_fraction: float = 0.1, smooth_ms: float = 10.0) -> np.ndarray:
    """Cut a measured 1-D RIR where its smoothed energy envelope first falls to the noise floor (a simple
    Lundeby-style truncation before ``measure_t60`` on recorded responses, docs/room-acoustics.md §4.1 step 5).

    The noise power is the mean square of the last ``tail_fraction`` of the response; the cut is the first
    sample after the peak where the ``smooth_ms`` moving-average energy reaches it. Without the cut, the
    floor flattens the EDC and inflates T30.
    """
    x = _np(h).reshape(-1)
    n_tail = max(1, int(len(x) * tail_fraction))
    noise = float(np.mean(x[-n_tail:] ** 2))
    win = max(1, int(round(smooth_ms * 1e-3 * fs)))
    env = np.convolve(x**2, np.ones(win) / win, mode="same")
    peak = int(np.argmax(np.abs(x)))
    after = np.flatnonzero(env[peak:] <= noise)
    cut = peak + int(after[0]) if after.size else len(x)
    return x[:cut]
