"""Microphone-array geometry: the ACE "Mobile" 3-mic phone, and placing an array in a room.

Notebook: 01_rir_simulation.ipynb

The paper records its test set with the three microphones of the ACE corpus' "Mobile" phone and trains on
simulated 3-microphone rooms, so merlib uses that phone's geometry for both (docs/room-acoustics.md §5.4 and §7).
"""

from __future__ import annotations

import numpy as np

#: ACE "Mobile" (3-mic phone) channel coordinates in metres, channel order 1, 2, 3, relative to channel 2.
#:
#: Provenance (docs/room-acoustics.md §5.4, third-party, **unverified**): taken from an open-source ACE loader;
#: the official ACE v01 arrangement PDF gives only the device position, not the intra-device geometry. It makes
#: ch1-ch2 4.5 cm, ch2-ch3 8.93 cm and ch1-ch3 10.0 cm apart. Verify it on real data with
#: :func:`merlib.data.ace.check_tdoa_bound` (direct-path TDOAs must respect these spacings).
MOBILE_GEOMETRY: np.ndarray = np.array(
    [[0.045, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0893029, 0.0]], dtype=np.float64
)
MOBILE_GEOMETRY.setflags(write=False)


def pair_distances(positions: np.ndarray) -> np.ndarray:
    """(M, M) matrix of Euclidean distances between the rows of ``positions`` (M, 3)."""
    p = np.asarray(positions, dtype=np.float64)
    return np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)


def centered(geometry: np.ndarray) -> np.ndarray:
    """The geometry shifted so that its centroid is at the origin.

    merlib measures the source-array distance to this centroid (the "array centre"), because the paper's
    "source-microphone distance" is ambiguous for an array (docs/room-acoustics.md §7).
    """
    g = np.asarray(geometry, dtype=np.float64)
    return g - g.mean(axis=0, keepdims=True)


def place_array(geometry: np.ndarray, center: np.ndarray, yaw: float = 0.0) -> np.ndarray:
    """Mic positions (M, 3): ``geometry`` centred on its centroid, rotated by ``yaw`` (rad, about +z,
    counter-clockwise from +x towards +y) and translated to ``center``. The array stays horizontal."""
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return centered(geometry) @ rot.T + np.asarray(center, dtype=np.float64)[None, :]
