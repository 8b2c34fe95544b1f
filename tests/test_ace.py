"""ACE test rooms: the room table, the loader on a fake tree in the real layout, and the simulated stand-ins."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from merlib.acoustics import MOBILE_GEOMETRY, measure_t60, pair_distances, truncate_at_noise_floor
from merlib.data import ace

SR = 48000
PUBLISHED_T60 = {"Lecture 1": 0.638, "Lecture 2": 1.220, "Lobby": 0.646, "Meeting 1": 0.437, "Meeting 2": 0.371,
                 "Office 1": 0.332, "Office 2": 0.390}
PUBLISHED_DISTANCE_POS1 = {"Office 1": 1.25, "Office 2": 0.90, "Meeting 1": 1.41, "Meeting 2": 1.65, "Lecture 1": 0.90,
                           "Lecture 2": 2.51, "Lobby": 1.43}


def _fake_rir(t60, rng, channels=3, seconds=0.6):
    n = int(seconds * SR)
    h = rng.standard_normal((channels, n)) * 10.0 ** (-3.0 * np.arange(n) / (t60 * SR))
    h[:, 0] = 0.0
    for c in range(channels):
        h[c, 100 + 2 * c] = 4.0  # direct path, a few samples apart like the phone's mics
    return (0.2 * h).astype(np.float32)


@pytest.fixture(scope="module")
def fake_ace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ace")
    rng = np.random.default_rng(0)
    for room in ace.ACE_ROOMS:
        for pos in (1, 2):
            path = root / "Mobile" / room.folder / str(pos) / f"Mobile_{room.code}_{pos}_RIR.wav"
            path.parent.mkdir(parents=True)
            sf.write(path, _fake_rir(0.4, rng).T, SR, subtype="FLOAT")
    return root


def test_room_table():
    assert ace.TEST_ROOM_NAMES == ("Lecture 1", "Lecture 2", "Lobby", "Meeting 1", "Meeting 2", "Office 1", "Office 2")
    assert {r.name: r.t60 for r in ace.ACE_ROOMS} == PUBLISHED_T60
    assert ace.CODE_TO_FOLDER == {"508": "Lecture_Room_1", "403a": "Lecture_Room_2", "EE_lobby": "Building_Lobby",
                                  "503": "Meeting_Room_1", "611": "Meeting_Room_2", "502": "Office_1", "803": "Office_2"}
    assert all(ace.FOLDER_TO_CODE[f] == c for c, f in ace.CODE_TO_FOLDER.items())
    for room in ace.ACE_ROOMS:
        assert room.horizontal_distance(1) == pytest.approx(PUBLISHED_DISTANCE_POS1[room.name], abs=0.01)
        assert room.horizontal_distance(2) > room.horizontal_distance(1)
        assert ace.get_room(room.code) is room and ace.get_room(room.folder) is room and ace.get_room(room.key) is room
    assert ace.get_room("Lecture 2").relative_path(1) == Path("Lecture_Room_2/1/Mobile_403a_1_RIR.wav")
    assert ace.get_room("502").critical_distance == pytest.approx(0.68, abs=0.01)
    with pytest.raises(KeyError, match="known"):
        ace.get_room("Kitchen")
    with pytest.raises(ValueError, match="position"):
        ace.get_room("502").relative_path(3)


def test_loader_resolves_all_14_paths_and_resamples(fake_ace):
    for pos in (1, 2):
        rirs = ace.load_ace_rirs(fake_ace, position=pos)
        assert list(rirs) == list(ace.TEST_ROOM_NAMES)
        for name, h in rirs.items():
            room = ace.get_room(name)
            assert ace.ace_rir_path(fake_ace, room, pos) == fake_ace / "Mobile" / room.folder / str(pos) / (
                f"Mobile_{room.code}_{pos}_RIR.wav")
            assert h.shape[0] == 3 and h.dtype == np.float32
            assert abs(h.shape[1] - int(0.6 * SR) / 3) <= 1
    native = ace.load_ace_rir(fake_ace, "Office 1", 1, sample_rate=None)
    assert native.shape == (3, int(0.6 * SR))


def test_loader_accepts_archive_folder_names(fake_ace, tmp_path):
    nested = tmp_path / "ACE_Corpus_RIRN_Mobile"
    nested.mkdir()
    os.symlink(fake_ace / "Mobile", nested / "Mobile")
    assert ace.load_ace_rir(tmp_path, "Lobby").shape[0] == 3
    assert ace.load_ace_rir(fake_ace / "Mobile", "Lobby").shape[0] == 3


def test_measured_rooms_from_a_root(fake_ace):
    rooms = ace.test_room_rirs(fake_ace, position=1)
    assert [r.name for r in rooms] == list(ace.TEST_ROOM_NAMES)
    for r in rooms:
        assert r.source == ace.MEASURED_LABEL and not r.simulated and r.path.is_file()
        assert r.rirs.shape[0] == 3 and r.sample_rate == 16000
        assert r.t60_measured == pytest.approx(0.4, rel=0.1)


def test_missing_file_names_it_and_the_layout(tmp_path):
    (tmp_path / "Mobile" / "Office_1" / "1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        ace.load_ace_rir(tmp_path, "Office 1")
    assert "Mobile_502_1_RIR.wav" in str(err.value) and str(tmp_path) in str(err.value)
    with pytest.raises(FileNotFoundError, match="Mobile"):
        ace.load_ace_rirs(tmp_path / "nowhere")


def test_malformed_and_two_channel_files(tmp_path):
    bad = tmp_path / "Mobile" / "Office_1" / "1" / "Mobile_502_1_RIR.wav"
    bad.parent.mkdir(parents=True)
    bad.write_text("not a wav file")
    with pytest.raises(ValueError, match="Mobile_502_1_RIR.wav"):
        ace.load_ace_rir(tmp_path, "Office 1")
    two = tmp_path / "Mobile" / "Office_2" / "1" / "Mobile_803_1_RIR.wav"
    two.parent.mkdir(parents=True)
    sf.write(two, _fake_rir(0.4, np.random.default_rng(1), channels=2).T, SR)
    with pytest.raises(ValueError, match="2 channel"):
        ace.load_ace_rir(tmp_path, "Office 2")


def test_other_sample_rate_warns_and_resamples(tmp_path):
    path = tmp_path / "Mobile" / "Building_Lobby" / "1" / "Mobile_EE_lobby_1_RIR.wav"
    path.parent.mkdir(parents=True)
    sf.write(path, np.zeros((3200, 3), dtype=np.float32) + 0.1, 32000)
    with pytest.warns(UserWarning, match="32000"):
        h = ace.load_ace_rir(tmp_path, "Lobby")
    assert h.shape == (3, 1600)


def test_simulated_standins():
    rooms = ace.test_room_rirs(seed=0)
    again = ace.test_room_rirs(seed=0)
    other = ace.test_room_rirs(seed=1)
    assert [r.name for r in rooms] == list(ace.TEST_ROOM_NAMES)
    for r, r2, r3 in zip(rooms, again, other):
        assert r.simulated and r.source == "simulated ACE-like"
        assert "simulated ACE-like" in r.display_name and "simulated ACE-like" in r.scene.name
        assert np.array_equal(r.rirs, r2.rirs) and not np.array_equal(r.rirs, r3.rirs)
        assert r.rirs.shape[0] == 3 and r.rirs.dtype == np.float32 and r.sample_rate == 16000
        s = r.scene
        np.testing.assert_allclose(s.room_dim, r.room.dims)
        assert s.src[2] == 1.5 and np.all(s.mics[:, 2] == 1.19)
        np.testing.assert_allclose(s.src[:2], r.room.source_xy)
        np.testing.assert_allclose(s.mics.mean(axis=0)[:2], r.room.mobile_xy[1])
        long_axis = s.mics[2] - s.mics[1]  # the 8.93 cm ch2–ch3 pair lies along x
        assert abs(long_axis[0]) == pytest.approx(0.0893029) and abs(long_axis[1]) < 1e-12
        np.testing.assert_allclose(pair_distances(s.mics), pair_distances(MOBILE_GEOMETRY), atol=1e-12)
        assert r.t60 == PUBLISHED_T60[r.name]
        assert r.t60_measured / r.t60 == pytest.approx(1.0, abs=0.15)
        assert r.distance == pytest.approx(math.hypot(r.room.horizontal_distance(1), 0.31))
        assert all(p["ok"] for p in ace.check_tdoa_bound(r.rirs, 16000))
    far = ace.test_room_rirs(position=2)
    assert all(f.distance > n.distance and f.drr_db < n.drr_db for f, n in zip(far, rooms))


ACE_ROOT = os.environ.get("MERLIB_ACE_ROOT")


@pytest.mark.skipif(not ACE_ROOT, reason="real-ACE check: set MERLIB_ACE_ROOT to an extracted ACE Mobile download")
@pytest.mark.slow
def test_real_ace_geometry_and_t60():
    """On the real corpus: direct-path TDOAs respect MOBILE_GEOMETRY at 48 kHz, and T30 is near the published T60."""
    for pos in (1, 2):
        for room in ace.ACE_ROOMS:
            h = ace.load_ace_rir(ACE_ROOT, room, pos, sample_rate=None)
            assert all(p["ok"] for p in ace.check_tdoa_bound(h, SR)), (room.name, pos)
            t30 = np.mean([measure_t60(truncate_at_noise_floor(ch, SR), SR) for ch in h])
            assert t30 == pytest.approx(room.t60, rel=0.25), (room.name, pos)
