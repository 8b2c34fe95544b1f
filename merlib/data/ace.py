"""The paper's seven test rooms: measured ACE "Mobile" RIRs, or simulated ACE-like stand-ins.

Notebook: 01_rir_simulation.ipynb (and 02_reverberant_corpus.ipynb)

The paper tests on RIRs of the ACE corpus (Eaton et al., IEEE/ACM TASLP 24(10), 2016; Zenodo record
6257551) recorded with the 3-microphone "Mobile" phone at the near position (position 1) in seven rooms.
merlib never ships ACE audio (its licence is CC BY or CC BY-ND, see docs/room-acoustics.md §5.5): download
``ACE_Corpus_RIRN_Mobile.tbz2``, extract it, and pass the folder to :func:`load_ace_rirs` or
:func:`test_room_rirs`. The expected layout (docs/room-acoustics.md §5.1) is::

    <root>/Mobile/<RoomFolder>/<pos>/Mobile_<code>_<pos>_RIR.wav      pos ∈ {1, 2}, 3 channels, 48 kHz

(``<root>`` may also be the ``Mobile`` folder itself or hold ``ACE_Corpus_RIRN_Mobile/Mobile``.)

Without a download, :func:`test_room_rirs` returns **simulated ACE-like** stand-ins (docs/design.md §10), labelled so
wherever they appear (``TestRoom.source`` and ``TestRoom.display_name``):

- a shoebox of each room's published dimensions; Office 2 (L-shaped, a 113×79 cm notch) and the Lobby (the
  recording corner of a larger coupled space) are simulated as their bounding boxes;
- the published full-band T60 (Sabine β, merlib's simulator with the paper's 15 dB / 60 dB settings);
- the loudspeaker at the published (x, y) and 1.5 m height (ACE does not publish it);
- the phone lying flat at 1.19 m, centred at the published position, its long axis along x. The long axis
  is taken as the direction of the 8.93 cm ch2–ch3 pair of :data:`MOBILE_GEOMETRY` (the larger extent),
  i.e. the geometry rotated by −90°.

Drawing coordinates (cm, origin at the top-left corner, x down, y right) are used directly as x, y in metres
with z up. For Meeting 2, position 2 uses (200, 399) cm, consistent with the published 2.65 m distance (the
drawing's label reads (439, 200)).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..acoustics.geometry import MOBILE_GEOMETRY, pair_distances, place_array
from ..acoustics.measure import drr_db, measure_t60, truncate_at_noise_floor
from ..acoustics.scenes import Scene
from ..acoustics.theory import SPEED_OF_SOUND, beta_from_t60, critical_distance
from .media import resample

#: Sample rate of the ACE RIR files (third-party loaders; checked against each file's header).
ACE_SAMPLE_RATE = 48000
#: Channels of the ACE "Mobile" recordings.
MOBILE_CHANNELS = 3
#: Height of the Mobile phone in ACE (drawings: Lin8Ch, Mobile, Crucif and EM32 at 119 cm).
MOBILE_HEIGHT = 1.19
#: Loudspeaker height assumed for the stand-ins (not published by ACE; docs/design.md §10).
SOURCE_HEIGHT = 1.5
#: Yaw putting the phone's long axis (the 8.93 cm ch2–ch3 pair, along +y in MOBILE_GEOMETRY) along x.
STANDIN_YAW = -math.pi / 2
#: Label of everything simulated in place of ACE measurements.
SIMULATED_LABEL = "simulated ACE-like"
MEASURED_LABEL = "ACE measured"


@dataclass(frozen=True)
class AceRoom:
    """One ACE room (docs/room-acoustics.md §5.3). Lengths in metres; ``source_xy`` and ``mobile_xy[pos]`` in room
    coordinates (the drawings' cm / 100); ``t60`` is the paper's full-band T60 in seconds."""

    key: str
    name: str
    code: str
    folder: str
    dims: tuple[float, float, float]
    t60: float
    source_xy: tuple[float, float]
    mobile_xy: dict[int, tuple[float, float]]
    split: str  # ACE challenge split: "eval" or "dev"
    note: str = ""

    @property
    def volume(self) -> float:
        return float(np.prod(self.dims))

    @property
    def critical_distance(self) -> float:
        """Diffuse-field d_c of the (bounding-box) room at its published T60."""
        return critical_distance(self.volume, self.t60)

    def horizontal_distance(self, position: int = 1) -> float:
        """Published loudspeaker-phone distance in the horizontal plane (m)."""
        sx, sy = self.source_xy
        mx, my = self.mobile_xy[_check_position(position)]
        return math.hypot(mx - sx, my - sy)

    def rir_filename(self, position: int = 1) -> str:
        return f"Mobile_{self.code}_{_check_position(position)}_RIR.wav"

    def relative_path(self, position: int = 1) -> Path:
        """Path of the RIR below the ``Mobile`` folder: ``<folder>/<pos>/Mobile_<code>_<pos>_RIR.wav``."""
        return Path(self.folder) / str(_check_position(position)) / self.rir_filename(position)


def _cm(x: float, y: float) -> tuple[float, float]:
    return (x / 100.0, y / 100.0)


#: The seven rooms, in the order of the paper's Table II.
ACE_ROOMS: tuple[AceRoom, ...] = (
    AceRoom("lecture_1", "Lecture 1", "508", "Lecture_Room_1", (6.93, 9.73, 3.00), 0.638,
            _cm(365, 373), {1: _cm(280, 344), 2: _cm(107, 352)}, "eval"),
    AceRoom("lecture_2", "Lecture 2", "403a", "Lecture_Room_2", (13.60, 9.29, 2.94), 1.220,
            _cm(603, 314), {1: _cm(509, 547), 2: _cm(393, 547)}, "eval",
            "drawing length 1355.6 cm; the table's 13.60 m is used"),
    AceRoom("lobby", "Lobby", "EE_lobby", "Building_Lobby", (4.47, 5.13, 3.18), 0.646,
            _cm(198, 61), {1: _cm(233, 200), 2: _cm(225, 349)}, "dev",
            "recording corner of a larger coupled space; stand-in = this corner as a closed shoebox"),
    AceRoom("meeting_1", "Meeting 1", "503", "Meeting_Room_1", (6.61, 5.11, 2.95), 0.437,
            _cm(139.4, 125.9), {1: _cm(273.6, 82), 2: _cm(395.6, 85)}, "eval"),
    AceRoom("meeting_2", "Meeting 2", "611", "Meeting_Room_2", (10.30, 9.07, 2.63), 0.371,
            _cm(465, 407), {1: _cm(300, 399), 2: _cm(200, 399)}, "eval",
            "position 2 drawn as (439, 200) cm, read as (200, 399) to match the published 2.65 m"),
    AceRoom("office_1", "Office 1", "502", "Office_1", (3.32, 4.83, 2.95), 0.332,
            _cm(104, 206), {1: _cm(229, 215), 2: _cm(215, 369)}, "dev"),
    AceRoom("office_2", "Office 2", "803", "Office_2", (3.22, 5.10, 2.94), 0.390,
            _cm(141, 173), {1: _cm(125, 262), 2: _cm(205, 416)}, "eval",
            "L-shaped (113x79 cm notch); stand-in = its bounding box"),
)
ROOMS_BY_KEY: dict[str, AceRoom] = {r.key: r for r in ACE_ROOMS}
#: Test-condition names, one per room (the reverberant corpus' ``condition`` column).
TEST_ROOM_NAMES: tuple[str, ...] = tuple(r.name for r in ACE_ROOMS)
#: Room code -> ACE folder name, and back.
CODE_TO_FOLDER: dict[str, str] = {r.code: r.folder for r in ACE_ROOMS}
FOLDER_TO_CODE: dict[str, str] = {r.folder: r.code for r in ACE_ROOMS}


def _check_position(position: int) -> int:
    if position not in (1, 2):
        raise ValueError(f"ACE Mobile position must be 1 (near, the paper's) or 2 (far), got {position!r}")
    return int(position)


def get_room(room: str | AceRoom) -> AceRoom:
    """Look a room up by key (``"lecture_1"``), name (``"Lecture 1"``), code (``"508"``) or folder."""
    if isinstance(room, AceRoom):
        return room
    for r in ACE_ROOMS:
        if room in (r.key, r.name, r.code, r.folder):
            return r
    raise KeyError(f"unknown ACE room {room!r}; known: {', '.join(r.name + ' (' + r.code + ')' for r in ACE_ROOMS)}")


# ------------------------------------------------------------------------------------------------------------
# measured RIRs
# ------------------------------------------------------------------------------------------------------------


def mobile_dir(root: str | os.PathLike) -> Path:
    """The ``Mobile`` folder of an ACE download: ``root/Mobile``, ``root/ACE_Corpus_RIRN_Mobile/Mobile`` or
    ``root`` itself when it is named ``Mobile``."""
    root = Path(root).expanduser()
    candidates = [root / "Mobile", root / "ACE_Corpus_RIRN_Mobile" / "Mobile"]
    if root.name == "Mobile":
        candidates.insert(0, root)
    for cand in candidates:
        if cand.is_dir():
            return cand
    raise FileNotFoundError(
        f"no ACE 'Mobile' folder under {root} (looked for {', '.join(str(c) for c in candidates)}). Extract "
        "ACE_Corpus_RIRN_Mobile.tbz2 from https://zenodo.org/records/6257551 and pass the folder holding "
        "'Mobile/' (expected files like Mobile/Lecture_Room_1/1/Mobile_508_1_RIR.wav)."
    )


def ace_rir_path(root: str | os.PathLike, room: str | AceRoom, position: int = 1) -> Path:
    """Expected path of one Mobile RIR: ``<root>/Mobile/<folder>/<pos>/Mobile_<code>_<pos>_RIR.wav``."""
    return mobile_dir(root) / get_room(room).relative_path(position)


def load_ace_rir(
    root: str | os.PathLike, room: str | AceRoom, position: int = 1, sample_rate: int | None = 16000
) -> np.ndarray:
    """One room's measured Mobile RIRs as float32 (3, L), resampled to ``sample_rate`` (``None``: native).

    Checks the header first (``soundfile.info``): 3 channels, and the rate it declares (resampling from that
    rate with ``scipy.signal.resample_poly``; a rate other than ACE's 48 kHz gives a warning). A missing or
    unreadable file raises an error naming the file and the expected layout.
    """
    import soundfile as sf

    r = get_room(room)
    path = ace_rir_path(root, r, position)
    if not path.is_file():
        raise FileNotFoundError(
            f"ACE RIR for {r.name} (code {r.code}), position {position} not found: expected {path} "
            f"(layout <root>/Mobile/<RoomFolder>/<pos>/Mobile_<code>_<pos>_RIR.wav)"
        )
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile's error for anything that is not a readable sound file
        raise ValueError(f"ACE RIR {path} is not a readable WAV file ({exc}); re-extract it from the ACE archive") from exc
    if info.channels != MOBILE_CHANNELS:
        raise ValueError(
            f"ACE RIR {path} has {info.channels} channel(s); the Mobile phone has {MOBILE_CHANNELS}. "
            f"Is this the right file (expected {r.relative_path(position)} under Mobile/)?"
        )
    if info.samplerate != ACE_SAMPLE_RATE:
        warnings.warn(f"ACE RIR {path} is at {info.samplerate} Hz, not ACE's {ACE_SAMPLE_RATE} Hz; resampling from "
                      f"the header's rate", stacklevel=2)
    try:
        data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    except Exception as exc:
        raise ValueError(f"ACE RIR {path} could not be decoded ({exc})") from exc
    if data.shape[0] == 0:
        raise ValueError(f"ACE RIR {path} holds no samples")
    x = data.T
    if sample_rate is not None:
        x = resample(x, sr, sample_rate)  # scipy.signal.resample_poly, e.g. 48 kHz -> 16 kHz by 1/3
    return np.ascontiguousarray(x, dtype=np.float32)


def load_ace_rirs(
    root: str | os.PathLike, position: int = 1, sample_rate: int | None = 16000
) -> dict[str, np.ndarray]:
    """The seven rooms' measured Mobile RIRs {room name: float32 (3, L)} at ``sample_rate`` (48 kHz → 16 kHz
    by default), in the order of :data:`ACE_ROOMS`. See :func:`load_ace_rir` for the checks."""
    _check_position(position)
    return {r.name: load_ace_rir(root, r, position, sample_rate) for r in ACE_ROOMS}


def check_tdoa_bound(rirs: np.ndarray, fs: float, geometry: np.ndarray = MOBILE_GEOMETRY,
                     c: float = SPEED_OF_SOUND) -> list[dict[str, Any]]:
    """Check a set of array RIRs (C, L) against the array geometry: the direct-path (peak) time differences
    must satisfy |Δn_ij| ≤ ceil(d_ij/c·fs) + 1 for every pair (docs/room-acoustics.md §5.4). Returns one dict
    per pair."""
    peaks = np.argmax(np.abs(np.asarray(rirs)), axis=-1)
    d = pair_distances(geometry)
    out = []
    for i in range(len(peaks)):
        for j in range(i + 1, len(peaks)):
            bound = int(math.ceil(d[i, j] / c * fs)) + 1
            dn = int(peaks[j] - peaks[i])
            out.append({"pair": (i, j), "delta_samples": dn, "bound": bound, "ok": abs(dn) <= bound})
    return out


# ------------------------------------------------------------------------------------------------------------
# simulated stand-ins
# ------------------------------------------------------------------------------------------------------------


def standin_scene(room: str | AceRoom, position: int = 1, sample_rate: int = 16000) -> Scene:
    """The simulated ACE-like scene of one room (module docstring): bounding-box shoebox at the published T60,
    loudspeaker at 1.5 m, phone flat at 1.19 m at the published position, long axis along x."""
    r = get_room(room)
    dims = np.array(r.dims, dtype=np.float64)
    src = np.array([*r.source_xy, SOURCE_HEIGHT])
    center = np.array([*r.mobile_xy[_check_position(position)], MOBILE_HEIGHT])
    mics = place_array(MOBILE_GEOMETRY, center, STANDIN_YAW)
    return Scene(
        room_dim=dims,
        t60=r.t60,
        src=src,
        mics=mics,
        distance=float(np.linalg.norm(center - src)),
        critical_distance=r.critical_distance,
        beta=beta_from_t60(dims, r.t60),
        yaw=STANDIN_YAW,
        array_center=center,
        fs=int(sample_rate),
        name=f"{r.name} ({SIMULATED_LABEL})",
        meta={"room": r.key, "code": r.code, "position": position, "source": SIMULATED_LABEL, "note": r.note},
    )


@dataclass
class TestRoom:
    """One test condition: a room's 3-channel RIRs at ``sample_rate`` plus what the manifest records.

    ``name`` is the plain room name used as the test condition (``"Lecture 1"``); ``source`` says where the
    RIRs come from (``"ACE measured"`` or ``"simulated ACE-like"``) and ``display_name`` carries it for plots
    and tables. ``t60`` is the published T60; ``t60_measured`` and ``drr_db`` are measured on these RIRs
    (means over channels; T30, after a noise-floor cut for measured RIRs). ``distance`` is the 3-D distance
    from the loudspeaker to the phone centre with the stand-in heights (1.5 m and 1.19 m).
    """

    __test__ = False  # not a pytest test class despite its name

    room: AceRoom
    position: int
    rirs: np.ndarray
    sample_rate: int
    source: str
    t60_measured: float
    drr_db: float
    scene: Scene | None = None
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.room.name

    @property
    def display_name(self) -> str:
        return f"{self.room.name} ({self.source})"

    @property
    def simulated(self) -> bool:
        return self.source == SIMULATED_LABEL

    @property
    def t60(self) -> float:
        return self.room.t60

    @property
    def critical_distance(self) -> float:
        return self.room.critical_distance

    @property
    def distance(self) -> float:
        sx, sy = self.room.source_xy
        mx, my = self.room.mobile_xy[self.position]
        return math.sqrt((mx - sx) ** 2 + (my - sy) ** 2 + (SOURCE_HEIGHT - MOBILE_HEIGHT) ** 2)


def _measured_t60(rirs: np.ndarray, fs: float, measured: bool) -> float:
    vals = []
    for h in rirs:
        x = truncate_at_noise_floor(h, fs) if measured else h
        vals.append(measure_t60(x, fs))
    vals = np.asarray(vals, dtype=np.float64)
    return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")


def _room_generator_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), 3, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def simulated_test_rooms(position: int = 1, seed: int = 0, sample_rate: int = 16000, backend: str = "merlib",
                         device=None) -> list[TestRoom]:
    """The seven simulated ACE-like stand-ins (module docstring); deterministic for ``seed``."""
    import torch

    from ..acoustics.simulate import simulate_scene

    out = []
    for i, r in enumerate(ACE_ROOMS):
        scene = standin_scene(r, position, sample_rate)
        gen = torch.Generator().manual_seed(_room_generator_seed(seed, i))
        rirs = simulate_scene(scene, backend=backend, generator=gen, device=device).cpu().numpy()
        out.append(TestRoom(r, position, rirs, sample_rate, SIMULATED_LABEL,
                            t60_measured=_measured_t60(rirs, sample_rate, measured=False),
                            drr_db=float(np.mean(drr_db(rirs, sample_rate))), scene=scene))
    return out


def test_room_rirs(root: str | os.PathLike | None = None, position: int = 1, seed: int = 0,
                   sample_rate: int = 16000, backend: str = "merlib", device=None) -> list[TestRoom]:
    """The seven test rooms' 3-channel RIRs at ``sample_rate``, in the order of :data:`ACE_ROOMS`.

    With ``root`` (an ACE download, see :func:`mobile_dir`) the measured Mobile RIRs of ``position``;
    without it the simulated ACE-like stand-ins, deterministic for ``seed``. Each :class:`TestRoom` says which
    (``source``).
    """
    if root is None:
        return simulated_test_rooms(position, seed, sample_rate, backend, device)
    rooms = []
    for r in ACE_ROOMS:
        rirs = load_ace_rir(root, r, position, sample_rate)
        rooms.append(TestRoom(r, position, rirs, sample_rate, MEASURED_LABEL,
                              t60_measured=_measured_t60(rirs, sample_rate, measured=True),
                              drr_db=float(np.mean(drr_db(rirs, sample_rate))),
                              path=ace_rir_path(root, r, position)))
    return rooms


test_room_rirs.__test__ = False  # keep pytest from collecting it when a test module imports it
