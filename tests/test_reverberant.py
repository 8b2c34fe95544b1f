"""The reverberant corpus builder: contents, determinism, resume after a kill, refusing mixed settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from merlib.data.ace import TEST_ROOM_NAMES
from merlib.data.media import read_audio
from merlib.data.ravdess import actor_split
from merlib.data.reverberant import MANIFEST_COLUMNS, ReverbConfig, build_reverberant_corpus, read_manifest


@pytest.fixture(scope="module")
def small_build(quick_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("reverb")
    return build_reverberant_corpus(quick_corpus, out, ReverbConfig(seed=0), workers=2, progress=False,
                                    max_clips_per_actor=2)


def test_manifest_has_every_condition_with_the_right_files(small_build, quick_corpus):
    rows = read_manifest(small_build)
    header = (small_build / "manifest.csv").read_text().splitlines()[0].split(",")
    assert header == MANIFEST_COLUMNS
    split = actor_split(range(1, 17), seed=0)
    by_cond: dict[str, list] = {}
    for row in rows:
        by_cond.setdefault(row["condition"], []).append(row)
        assert row["split"] == split.of(int(row["actor"]))
    assert set(by_cond) == {"clean", "reverberant", "matched", *TEST_ROOM_NAMES}
    assert len(by_cond["clean"]) == 32  # 2 clips of each of the 16 actors
    assert {r["split"] for r in by_cond["reverberant"]} == {"train", "val"}
    for room in TEST_ROOM_NAMES:
        assert {r["split"] for r in by_cond[room]} == {"test"} and len(by_cond[room]) == 6  # 3 test actors
        assert {r["rir_source"] for r in by_cond[room]} == {"simulated ACE-like"}
    clean_by_id = {r["clip_id"]: r for r in by_cond["clean"]}
    for row in rows[::5]:
        info = sf.info(row["path"])
        assert info.samplerate == 16000 and info.subtype == "PCM_24" and info.format == "FLAC"
        assert info.channels == (1 if row["condition"] == "clean" else 3)
        assert info.frames == sf.info(clean_by_id[row["clip_id"]]["path"]).frames  # full clip length
    assert {r["split"] for r in by_cond["matched"]} == {"test"} and len(by_cond["matched"]) == 6
    assert {r["rir_source"] for r in by_cond["matched"]} == {"simulated paper scene"}
    for row in by_cond["reverberant"] + by_cond["matched"]:
        t60, measured = float(row["t60_target"]), float(row["t60_measured"])
        assert 0.5 <= t60 <= 0.85 and 0.8 < measured / t60 < 1.2
        assert 0.2 <= float(row["distance"]) <= float(row["critical_distance"])
        assert float(row["snr_db"]) == 20.0


def test_clean_copy_is_the_source_audio_at_16k(small_build, quick_corpus):
    row = next(r for r in read_manifest(small_build) if r["condition"] == "clean")
    wav = next(quick_corpus.rglob(f"03-{row['clip_id']}.wav"))
    np.testing.assert_allclose(read_audio(row["path"], None), read_audio(wav, 16000), atol=2e-4)


def test_reverberant_audio_is_convolved_and_noisy(small_build):
    rows = read_manifest(small_build)
    rev = next(r for r in rows if r["condition"] == "reverberant")
    clean = next(r for r in rows if r["condition"] == "clean" and r["clip_id"] == rev["clip_id"])
    y = read_audio(rev["path"], None, mono=False)
    x = read_audio(clean["path"], None)
    assert y.shape[0] == 3 and not np.allclose(y[0], y[1])  # three different microphones
    silence = y[:, :1600]  # the first 100 ms: before speech starts, only noise
    assert np.all(silence.std(axis=1) > 1e-4)
    assert np.corrcoef(np.abs(y[0]), np.abs(x))[0, 1] > 0.3


def test_same_seed_same_bytes_other_seed_other_rooms(small_build, quick_corpus, tmp_path):
    again = build_reverberant_corpus(quick_corpus, tmp_path, ReverbConfig(seed=0), workers=1, progress=False,
                                     max_clips_per_actor=2)
    assert again.name == small_build.name
    assert (again / "manifest.csv").read_text() == (small_build / "manifest.csv").read_text()
    for row in read_manifest(small_build)[::7]:
        rel = Path(row["path"]).relative_to(small_build)
        assert (again / rel).read_bytes() == Path(row["path"]).read_bytes()
    other = build_reverberant_corpus(quick_corpus, tmp_path, ReverbConfig(seed=1, include_clean=False),
                                     workers=1, progress=False, max_clips_per_actor=1)
    assert other.name != small_build.name


def test_refuses_a_folder_built_with_other_settings(small_build, quick_corpus):
    cfg_file = small_build / "reverb_config.json"
    original = cfg_file.read_text()
    try:
        cfg_file.write_text(original.replace('"snr_db": 20.0', '"snr_db": 5.0'))
        with pytest.raises(ValueError, match="other settings"):
            build_reverberant_corpus(quick_corpus, small_build.parent, ReverbConfig(seed=0), progress=False,
                                     max_clips_per_actor=2)
    finally:
        cfg_file.write_text(original)


@pytest.mark.slow
def test_killed_build_resumes_to_an_identical_corpus(small_build, quick_corpus, tmp_path):
    """SIGKILL a `merlib reverb` process part-way, run it again, compare with an uninterrupted build."""
    cmd = [sys.executable, "-m", "merlib", "reverb", str(quick_corpus), "--out", str(tmp_path), "--seed", "0",
           "--max-clips-per-actor", "2", "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    build = tmp_path / small_build.name
    deadline = time.time() + 120
    while time.time() < deadline and len(list(build.rglob("*.json"))) < 12:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (build / "manifest.csv").exists(), "the build finished before it could be interrupted"
    assert len(list(build.rglob("*.flac"))) >= 10
    with pytest.raises(FileNotFoundError, match="unfinished"):
        read_manifest(build)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    assert (build / "manifest.csv").read_text() == (small_build / "manifest.csv").read_text()
    ours = sorted(p.relative_to(build) for p in build.rglob("*.flac"))
    assert ours == sorted(p.relative_to(small_build) for p in small_build.rglob("*.flac"))
    for rel in ours:
        assert (build / rel).read_bytes() == (small_build / rel).read_bytes()
    assert not list(build.rglob("*.part*"))
