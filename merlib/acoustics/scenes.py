"""The paper's training-room protocol: random shoebox rooms, T60s, sources and a 3-mic phone near the source.

Notebook: 01_rir_simulation.ipynb

Protocol (paper Sec. IV-A, docs/room-acoustics.md §7): L, W ~ U[3, 8] m with max/min ≤ 1.6 (rejection sampling),
H = 2.9 m; T60 ~ U[0.5, 0.85] s; source at 1.75 m height, ≥ 0.5 m from the walls; microphones at 1.6 m; source-array
distance ~ U[0.2, d_c] with d_c the critical distance. The array is the ACE "Mobile" phone geometry
(:data:`merlib.acoustics.MOBILE_GEOMETRY`), centred, with a random yaw.

Decisions where the paper is silent (docs/room-acoustics.md §9), all fields of :class:`PaperSceneConfig`:

- "distance" is measured from the source to the **array centre** (the centroid of the three microphones);
- the diffuse tail starts at ``att2t(15 dB, T60)`` and the RIR lasts ``att2t(60 dB, T60) = T60``;
- a placement whose microphones come closer than 0.1 m to a wall is redrawn (azimuth and yaw first, then
  the source position and distance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .geometry import MOBILE_GEOMETRY, place_array
from .theory import SPEED_OF_SOUND, att2t, beta_from_t60, critical_distance, drr_theory_db, t2n


@dataclass(eq=False)
class Scene:
    """One room, one source and one microphone array, with everything needed to simulate its RIRs.

    ``distance`` is the 3-D source-to-array-centre distance in metres, ``critical_distance`` the room's d_c
    (γ = 1). ``beta`` are the six wall reflection coefficients (``beta_from_t60``), ``yaw`` the array rotation
    in radians. ``name`` labels the scene (e.g. ``"Office 1 (simulated ACE-like)"``).
    """

    room_dim: np.ndarray
    t60: float
    src: np.ndarray
    mics: np.ndarray
    distance: float
    critical_distance: float
    beta: np.ndarray
    yaw: float = 0.0
    array_center: np.ndarray | None = None
    fs: int = 16000
    att_diff_db: float = 15.0
    att_max_db: float = 60.0
    c: float = SPEED_OF_SOUND
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def volume(self) -> float:
        return float(np.prod(self.room_dim))

    @property
    def t_diff(self) -> float:
        """Diffuse-onset time (s): the ISM is replaced by the noise tail after an ``att_diff_db`` energy drop."""
        return att2t(self.att_diff_db, self.t60)

    @property
    def t_max(self) -> float:
        """RIR length (s): ``att_max_db`` of decay (60 dB → T60)."""
        return att2t(self.att_max_db, self.t60)

    @property
    def nb_img(self) -> list[int]:
        """Images per axis covering every path up to ``t_diff``."""
        return t2n(self.t_diff, self.room_dim, self.c)

    @property
    def drr_theory_db(self) -> float:
        """Diffuse-field DRR 20·log10(d_c/d) in dB."""
        return drr_theory_db(self.distance, self.critical_distance)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able description (lists and floats)."""
        out = {
            "name": self.name,
            "room_dim": np.asarray(self.room_dim).tolist(),
            "t60": float(self.t60),
            "src": np.asarray(self.src).tolist(),
            "mics": np.asarray(self.mics).tolist(),
            "distance": float(self.distance),
            "critical_distance": float(self.critical_distance),
            "beta": np.asarray(self.beta).tolist(),
            "yaw": float(self.yaw),
            "fs": int(self.fs),
            "att_diff_db": float(self.att_diff_db),
            "att_max_db": float(self.att_max_db),
            "c": float(self.c),
        }
        if self.array_center is not None:
            out["array_center"] = np.asarray(self.array_center).tolist()
        if self.meta:
            out["meta"] = dict(self.meta)
        return out


@dataclass
class PaperSceneConfig:
    """Parameters of the paper's room sampler (defaults: the paper, plus docs/room-acoustics.md §9)."""

    length_range: tuple[float, float] = (3.0, 8.0)  # L and W, metres
    max_aspect: float = 1.6
    height: float = 2.9
    t60_range: tuple[float, float] = (0.5, 0.85)
    src_wall_margin: float = 0.5
    src_height: float = 1.75
    mic_height: float = 1.6
    min_distance: float = 0.2
    mic_wall_margin: float = 0.1
    geometry: np.ndarray = field(default_factory=lambda: MOBILE_GEOMETRY.copy())
    gamma: float = 1.0
    fs: int = 16000
    att_diff_db: float = 15.0
    att_max_db: float = 60.0
    c: float = SPEED_OF_SOUND
    max_placement_tries: int = 100


def mics_clear_of_walls(mics: np.ndarray, room_dim: np.ndarray, margin: float) -> bool:
    """Whether every microphone is at least ``margin`` m from the four side walls (the array lies flat)."""
    xy = np.asarray(mics)[:, :2]
    return bool(np.all(xy >= margin) and np.all(xy <= np.asarray(room_dim)[None, :2] - margin))


def sample_paper_scene(rng: np.random.Generator, cfg: PaperSceneConfig | None = None) -> Scene:
    """Draw one training scene following the paper's protocol (module docstring). Deterministic given ``rng``."""
    cfg = cfg or PaperSceneConfig()
    lo, hi = cfg.length_range
    while True:  # rejection sampling of the aspect ratio
        length, width = rng.uniform(lo, hi, size=2)
        if max(length, width) / min(length, width) <= cfg.max_aspect:
            break
    room = np.array([length, width, cfg.height])
    t60 = float(rng.uniform(*cfg.t60_range))
    d_c = critical_distance(float(np.prod(room)), t60, cfg.gamma, cfg.c)
    dz = cfg.src_height - cfg.mic_height
    if cfg.min_distance <= abs(dz) or cfg.min_distance > d_c:
        raise ValueError(
            f"distance range [{cfg.min_distance}, {d_c:.3f}] m is empty or shorter than the height difference {dz} m"
        )
    m = cfg.mic_wall_margin
    for _ in range(10_000):
        src = np.array(
            [
                rng.uniform(cfg.src_wall_margin, length - cfg.src_wall_margin),
                rng.uniform(cfg.src_wall_margin, width - cfg.src_wall_margin),
                cfg.src_height,
            ]
        )
        distance = float(rng.uniform(cfg.min_distance, d_c))
        dh = math.sqrt(distance**2 - dz**2)
        for _ in range(cfg.max_placement_tries):
            phi = rng.uniform(0.0, 2.0 * math.pi)
            yaw = float(rng.uniform(0.0, 2.0 * math.pi))
            center = src + np.array([dh * math.cos(phi), dh * math.sin(phi), -dz])
            mics = place_array(cfg.geometry, center, yaw)
            if mics_clear_of_walls(mics, room, m):
                return Scene(
                    room_dim=room,
                    t60=t60,
                    src=src,
                    mics=mics,
                    distance=distance,
                    critical_distance=d_c,
                    beta=beta_from_t60(room, t60, c=cfg.c),
                    yaw=yaw,
                    array_center=center,
                    fs=cfg.fs,
                    att_diff_db=cfg.att_diff_db,
                    att_max_db=cfg.att_max_db,
                    c=cfg.c,
                    name="paper training scene",
                )
    raise RuntimeError("could not place the array inside the room after 10000 source draws")  # pragma: no cover


def with_distance(scene: Scene, distance: float, azimuth: float = 0.0) -> Scene:
    """A copy of ``scene`` with the array moved to ``distance`` m from the source (array centre at the mic
    height, at ``azimuth`` rad), keeping its yaw and geometry. Raises ``ValueError`` if a mic leaves the room."""
    dz = float(scene.src[2] - np.mean(scene.mics[:, 2]))
    if distance <= abs(dz):
        raise ValueError(f"distance {distance} m must exceed the source-mic height difference {abs(dz):.3f} m")
    dh = math.sqrt(distance**2 - dz**2)
    center = np.asarray(scene.src) + np.array([dh * math.cos(azimuth), dh * math.sin(azimuth), -dz])
    offsets = scene.mics - scene.mics.mean(axis=0, keepdims=True)
    mics = offsets + center[None, :]
    if np.any(mics <= 0) or np.any(mics >= scene.room_dim[None, :]):
        raise ValueError(f"array at {distance} m, azimuth {azimuth:.2f} rad leaves the room {scene.room_dim.tolist()}")
    return replace(scene, mics=mics, distance=float(distance), array_center=center)
