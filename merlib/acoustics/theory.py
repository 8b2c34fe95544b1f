"""Diffuse-field room acoustics: Sabine absorption, wall reflection coefficients, critical distance.

Notebook: 01_rir_simulation.ipynb

All formulas follow docs/room-acoustics.md §1.2, §2.1 and §3. merlib uses the c-consistent Sabine constant
``24·ln(10)/c`` (0.16111 s/m at c = 343 m/s) everywhere; gpuRIR rounds it to 0.161 (0.07 % apart).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

SPEED_OF_SOUND = 343.0
_LN10 = math.log(10.0)


def _dims(room_dim: Sequence[float]) -> np.ndarray:
    d = np.asarray(room_dim, dtype=np.float64).reshape(-1)
    if d.shape != (3,) or not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError(f"room_dim must be three positive lengths [Lx, Ly, Lz] in metres, got {room_dim!r}")
    return d


def room_volume(room_dim: Sequence[float]) -> float:
    """Volume L·W·H in m³."""
    return float(np.prod(_dims(room_dim)))


def wall_areas(room_dim: Sequence[float]) -> np.ndarray:
    """Areas (m²) of the six walls in gpuRIR's β order [x0, x1, y0, y1, z0, z1]."""
    lx, ly, lz = _dims(room_dim)
    return np.array([ly * lz, ly * lz, lx * lz, lx * lz, lx * ly, lx * ly])


def sabine_alpha(room_dim: Sequence[float], t60: float, c: float = SPEED_OF_SOUND) -> float:
    """Uniform energy absorption coefficient α = 24·ln10·V / (c·S·T60) that gives ``t60`` by Sabine's formula.

    Raises ``ValueError`` when α ≥ 1: no wall material can make the room that dry (gpuRIR silently returns
    β = 0 instead, which gives a meaningless RIR).
    """
    if not (t60 > 0 and math.isfinite(t60)):
        raise ValueError(f"t60 must be a positive number of seconds, got {t60!r}")
    v = room_volume(room_dim)
    s = float(wall_areas(room_dim).sum())
    alpha = 24.0 * _LN10 * v / (c * s * t60)
    if alpha >= 1.0:
        raise ValueError(
            f"T60 = {t60} s is unreachable in a {list(map(float, room_dim))} m room: Sabine needs an absorption "
            f"coefficient of {alpha:.3f} >= 1. Use a longer T60 or a smaller room (the shortest reachable T60 "
            f"here is {24.0 * _LN10 * v / (c * s):.3f} s)."
        )
    return float(alpha)


def beta_from_t60(
    room_dim: Sequence[float],
    t60: float,
    abs_weights: Sequence[float] | None = None,
    c: float = SPEED_OF_SOUND,
) -> np.ndarray:
    """The six wall **reflection** (amplitude) coefficients β = sqrt(1 − α_i) giving ``t60`` by Sabine.

    Order [βx0, βx1, βy0, βy1, βz0, βz1] (x0 is the wall at x = 0), as in gpuRIR. With ``abs_weights``
    the absorptions are α_i = α·w_i/max(w) and α is solved in closed form so that Sabine's T60 equals
    ``t60`` exactly (gpuRIR minimises numerically). Raises ``ValueError`` when ``t60`` is unreachable.
    """
    if abs_weights is None:
        alpha = sabine_alpha(room_dim, t60, c)
        return np.full(6, math.sqrt(1.0 - alpha))
    w = np.asarray(abs_weights, dtype=np.float64).reshape(-1)
    if w.shape != (6,) or np.any(w < 0) or w.max() <= 0:
        raise ValueError(f"abs_weights must be 6 non-negative numbers, not all zero; got {abs_weights!r}")
    if not (t60 > 0 and math.isfinite(t60)):
        raise ValueError(f"t60 must be a positive number of seconds, got {t60!r}")
    w = w / w.max()
    sabins_needed = 24.0 * _LN10 * room_volume(room_dim) / (c * t60)
    alpha = sabins_needed / float((w * wall_areas(room_dim)).sum())
    if alpha >= 1.0:
        raise ValueError(
            f"T60 = {t60} s is unreachable in a {list(map(float, room_dim))} m room with absorption weights "
            f"{list(w)}: the most absorbing wall would need alpha = {alpha:.3f} >= 1."
        )
    return np.sqrt(1.0 - alpha * w)


def t60_from_beta(room_dim: Sequence[float], beta: Sequence[float], c: float = SPEED_OF_SOUND) -> float:
    """Sabine T60 = 24·ln10·V / (c·Σ(1 − β_i²)·S_i) of a room with reflection coefficients ``beta`` (6,).

    Returns ``inf`` for perfectly reflecting walls. This is the decay the diffuse tail is given.
    """
    b = np.asarray(beta, dtype=np.float64).reshape(-1)
    if b.shape != (6,):
        raise ValueError(f"beta must have 6 entries [x0, x1, y0, y1, z0, z1], got shape {b.shape}")
    sabins = float(((1.0 - b**2) * wall_areas(room_dim)).sum())
    if sabins <= 0:
        return math.inf
    return 24.0 * _LN10 * room_volume(room_dim) / (c * sabins)


def att2t(att_db: float, t60: float) -> float:
    """Time (s) for the energy to fall by ``att_db`` dB at a Sabine decay of ``t60``: att_db/60·t60."""
    return att_db / 60.0 * t60


def t2n(T: float, room_dim: Sequence[float], c: float = SPEED_OF_SOUND) -> list[int]:
    """Images per axis, ``ceil(2·T·c/L_d)``, so the image grid covers every path up to T seconds long."""
    return [int(math.ceil(2.0 * T * c / float(L))) for L in _dims(room_dim)]


def critical_distance(volume: float, t60: float, gamma: float = 1.0, c: float = SPEED_OF_SOUND) -> float:
    """Diffuse-field critical distance d_c = sqrt(γ·A/(16π)), A = 24·ln10·V/(c·T60) (m² Sabine).

    At d_c the direct and reverberant energies are equal; γ is the source directivity (1 = omni).
    ≈ 0.0566·sqrt(γ·V/T60). The paper draws source-array distances in [0.2, d_c].
    """
    if volume <= 0 or t60 <= 0:
        raise ValueError(f"volume and t60 must be positive, got volume={volume!r}, t60={t60!r}")
    a = 24.0 * _LN10 * volume / (c * t60)
    return math.sqrt(gamma * a / (16.0 * math.pi))


def drr_theory_db(distance: float, d_c: float) -> float:
    """Diffuse-theory direct-to-reverberant ratio 20·log10(d_c/d) in dB."""
    return 20.0 * math.log10(d_c / distance)
