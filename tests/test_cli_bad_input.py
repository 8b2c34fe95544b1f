"""The whole command line against what users really give it: mistyped paths, files where folders belong,
downloads that stopped half-way, garbage, wrong formats, interrupted builds and a full disk.

Every case asserts the exit status (2 for bad input, 0 for a build that finished and named what it skipped),
that the message names the file, that no traceback is printed, and that nothing half-built looks complete.
Most cases call ``merlib.cli.main`` in-process (an uncaught exception fails the test, so "no traceback"
holds); the interrupted builds and the traceback check run the real ``python -m merlib`` in a subprocess.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from merlib.cli import main

SR = 16000


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``merlib ARGV`` in-process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv: str, names: str | Path) -> str:
    """Assert ``merlib ARGV`` refuses with status 2 and one line on stderr that names ``names``."""
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert str(names) in err and "Traceback" not in err, err
    assert err.startswith(f"merlib {argv[0]}: error: ") and err.count("\n") == 1, err
    return err


def tiny_corpus(root: Path, actors=(1, 2, 3, 4, 5, 6), emotions=(2, 5), seconds: float = 0.5) -> Path:
    """RAVDESS-named audio-only wavs: ``actors`` × ``emotions`` clips of noise."""
    rng = np.random.default_rng(0)
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for emotion in emotions:
            x = 0.1 * rng.standard_normal(int(seconds * SR)).astype(np.float32)
            sf.write(folder / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav", x, SR)
    return root


def wav(root: Path, actor: int, emotion: int) -> Path:
    return root / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"


def manifest_ids(build: Path) -> set[str]:
    import csv

    with open(build / "manifest.csv", newline="") as fh:
        return {row["clip_id"] for row in csv.DictReader(fh)}


# ------------------------------------------------------------------------------------------ paths and names


def test_mistyped_and_misplaced_paths(capsys, tmp_path: Path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    corpus = tiny_corpus(tmp_path / "corpus")
    refused(capsys, "scan", tmp_path / "nope", names=tmp_path / "nope")
    refused(capsys, "scan", a_file, names=a_file)
    refused(capsys, "reverb", tmp_path / "nope", "--out", tmp_path / "rev", names=tmp_path / "nope")
    refused(capsys, "train", "audio_rev_sc", "--data-root", tmp_path / "nope", "--out", tmp_path / "run",
            names=tmp_path / "nope")
    refused(capsys, "evaluate", tmp_path / "nope", names=tmp_path / "nope")
    refused(capsys, "check-data", tmp_path / "nope", names=tmp_path / "nope")
    refused(capsys, "check-weights", tmp_path / "nope.ckpt", names=tmp_path / "nope.ckpt")
    err = refused(capsys, "check-weights", corpus, names=corpus)
    assert "folder" in err
    refused(capsys, "book", "--outputs", tmp_path / "nope", names=tmp_path / "nope")
    refused(capsys, "reproduce", "--quick", "--no-notebooks", "--ravdess", tmp_path / "nope",
            "--out", tmp_path / "out", names=tmp_path / "nope")


def test_every_command_that_writes_refuses_a_bad_output_path(capsys, tmp_path: Path):
    corpus = tiny_corpus(tmp_path / "corpus")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    below_a_file = a_file / "sub"
    for bad in (a_file, below_a_file):
        refused(capsys, "synth", bad, "--quick", names=a_file)
        refused(capsys, "reverb", corpus, "--out", bad, names=a_file)
        refused(capsys, "train", "audio_rev_sc", "--data-root", corpus, "--out", bad, names=a_file)
        refused(capsys, "reproduce", "--quick", "--no-notebooks", "--out", bad, names=a_file)
        refused(capsys, "book", "--outputs", tmp_path, "--out", bad, names=a_file)
        refused(capsys, "evaluate", tmp_path, "--out", bad, names=a_file)
        refused(capsys, "fetch", "ace", "--to", bad, "--zenodo-url", "http://127.0.0.1:9", names=a_file)
    assert a_file.read_text() == "keep me"  # never overwritten
    # a folder holding something else: merlib synth writes only into an empty folder or its own build
    refused(capsys, "synth", corpus, "--quick", names=corpus)
    assert sorted(p.name for p in corpus.iterdir()) == [f"Actor_{a:02d}" for a in range(1, 7)]
    # a folder holding other files is not a book folder, nor a main-job folder
    refused(capsys, "reproduce", "--quick", "--no-notebooks", "--out", corpus, names=corpus)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: an unwritable folder cannot be made as root")
def test_an_unwritable_output_folder(capsys, tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        refused(capsys, "synth", locked / "corpus", "--quick", names=locked)
        refused(capsys, "reverb", tiny_corpus(tmp_path / "c"), "--out", locked, names=locked)
    finally:
        locked.chmod(0o700)


def test_an_unwritable_output_folder_whoever_runs(capsys, tmp_path: Path, monkeypatch):
    """The same refusal where the tests run as root (CI): the permission check is what root cannot fail."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    err = refused(capsys, "synth", locked / "corpus", "--quick", names=locked)
    assert "permission" in err
    refused(capsys, "train", "audio_rev_sc", "--data-root", tmp_path, "--out", locked / "run", names=locked)


def test_names_outside_ravdess_ranges_are_listed_as_skipped(capsys, tmp_path: Path):
    corpus = tiny_corpus(tmp_path / "corpus")
    folder = corpus / "Actor_03"
    bad = {"03-01-02-01-01-01-25.wav": "actor code 25", "03-01-02-01-01-01-00.wav": "actor code 00",
           "03-01-09-01-01-01-03.wav": "emotion code 09", "03-01-02-03-01-01-03.wav": "intensity code 03",
           "03-01-02-01-03-01-03.wav": "statement code 03", "03-01-02-01-01-03-03.wav": "repetition code 03",
           "04-01-02-01-01-01-03.wav": "modality code 04", "03-03-02-01-01-01-03.wav": "vocal channel code 03",
           "03-01-01-02-01-01-03.wav": "strong", "03-01-02-01-01-03.wav": "seven two-digit fields"}
    for name in bad:
        sf.write(folder / name, np.zeros(800, np.float32), SR)
    code, out, err = run(capsys, "scan", corpus)
    assert code == 0 and not err
    assert f"skipped {len(bad)} file(s)" in out
    for name, why in bad.items():
        line = next(line for line in out.splitlines() if name in line)
        assert why in line, line
    assert "12 clips from 6 actors" in out  # the misnamed files are in no clip


# ------------------------------------------------------------------------------------ bad files in a build


def test_reverb_skips_unreadable_files_names_them_and_retries_them(capsys, tmp_path: Path):
    corpus = tiny_corpus(tmp_path / "corpus")
    garbage, empty, truncated = wav(corpus, 1, 2), wav(corpus, 2, 5), wav(corpus, 4, 2)
    garbage.write_bytes(b"<html>404 Not Found</html>")
    empty.write_bytes(b"")
    truncated.write_bytes(truncated.read_bytes()[:30])  # a download cut inside the header
    # a 44.1 kHz stereo file is not bad: it is read, averaged and resampled like any RAVDESS wav
    odd = wav(corpus, 3, 5)
    sf.write(odd, 0.1 * np.random.default_rng(1).standard_normal((22050, 2)).astype(np.float32), 44100)
    code, out, err = run(capsys, "reverb", corpus, "--out", tmp_path / "rev", "--workers", "1", "--no-progress")
    assert code == 0 and "Traceback" not in err
    build = next((tmp_path / "rev").glob("reverb-*"))
    failed = json.loads((build / "failed.json").read_text())
    assert {v["audio"] for v in failed.values()} == {str(garbage), str(empty), str(truncated)}
    for path in (garbage, empty, truncated):
        assert str(path) in err  # named in the warning too
    assert "failed.json" in err and "3 clip(s)" in err and "3 clip(s) left out" in out
    ids = manifest_ids(build)
    assert not ids & set(failed) and len(ids) == 12 - 3
    assert "01-05-01-01-01-03" in ids  # the 44.1 kHz stereo clip
    assert sf.info(str(next(build.rglob("01-05-01-01-01-03.flac")))).samplerate == SR
    # the files are fixed (downloaded again): the next build takes them in and drops failed.json
    tiny_corpus(tmp_path / "fresh")
    for path in (garbage, empty, truncated):
        path.write_bytes(wav(tmp_path / "fresh", *[int(path.stem[-2:]), int(path.stem.split("-")[2])]).read_bytes())
    code, _, err = run(capsys, "reverb", corpus, "--out", tmp_path / "rev", "--workers", "1", "--no-progress")
    assert code == 0 and not err
    assert not (build / "failed.json").exists() and len(manifest_ids(build)) == 12


def test_a_corpus_with_no_readable_name(capsys, tmp_path: Path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "speech.wav").write_bytes(b"RIFF")
    (folder / "Actor_01.zip").write_bytes(b"PK")
    err = refused(capsys, "reverb", folder, "--out", tmp_path / "rev", names=folder)
    assert "merlib scan" in err
    assert not (tmp_path / "rev").exists() or not any((tmp_path / "rev").rglob("manifest.csv"))


def test_a_full_disk_stops_the_build_cleanly_and_a_rerun_finishes_it(capsys, tmp_path: Path, monkeypatch):
    import merlib.data.reverberant as reverberant

    corpus = tiny_corpus(tmp_path / "corpus")
    real_write = reverberant.write_audio
    calls = {"n": 0}

    def full_after_five(path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(reverberant, "write_audio", full_after_five)
    err = refused(capsys, "reverb", corpus, "--out", tmp_path / "rev", "--workers", "1", "--no-progress",
                  names="No space left on device")
    assert "resumes" in err and str(tmp_path / "rev") in err
    build = next((tmp_path / "rev").glob("reverb-*"))
    assert not (build / "manifest.csv").exists()  # a build that did not finish has no manifest
    assert len(list(build.rglob("*.flac"))) == 5 and not list(build.rglob("*.part*"))
    monkeypatch.setattr(reverberant, "write_audio", real_write)
    code, _, _ = run(capsys, "reverb", corpus, "--out", tmp_path / "rev", "--workers", "1", "--no-progress")
    assert code == 0 and len(manifest_ids(build)) == 12


def test_unreadable_videos_are_left_out_of_training_by_name(tmp_path: Path):
    """The frame cache follows the same rule; a video model's data module leaves those clips out, by name."""
    import warnings

    from merlib.data.media import write_av
    from merlib.data.ravdess import scan
    from merlib.data.video import FrameSettings, build_frame_cache
    from merlib.datasets import CorpusPaths, MERDataModule
    from merlib.data.reverberant import build_reverberant_corpus

    corpus = tiny_corpus(tmp_path / "corpus")
    rng = np.random.default_rng(0)
    for path in corpus.rglob("03-*.wav"):
        frames = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
        write_av(path.with_name("01" + path.name[2:-4] + ".mp4"), frames, 30)
    broken = corpus / "Actor_02" / "01-01-05-01-01-01-02.mp4"
    broken.write_bytes(broken.read_bytes()[:200])  # cut mid-download
    rev = build_reverberant_corpus(corpus, tmp_path / "rev", workers=1, progress=False)
    with pytest.warns(RuntimeWarning, match=str(broken)):
        frames = build_frame_cache(scan(corpus).complete(), tmp_path / "frames",
                                   FrameSettings.quick(face_crop=False), workers=1, progress=False)
    assert set(json.loads((frames / "failed.json").read_text())) == {"01-05-01-01-01-02"}
    dm = MERDataModule(CorpusPaths(rev, frames), "video", batch_size=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = dm.rows
    assert any(str(broken) in str(w.message) for w in caught)
    assert "01-05-01-01-01-02" not in {r["clip_id"] for r in rows} and dm.skipped_clips == ["01-05-01-01-01-02"]
    assert len(dm.dataset("train")) > 0


# ------------------------------------------------------------------------------------------ checkpoints


def test_checkpoints_truncated_empty_garbage_and_ddp_prefixed(capsys, tmp_path: Path):
    from merlib.models.checkpoints import load_reference_checkpoint
    from merlib.models.mer import build_model

    model = build_model("audio_rev_sc", "quick")
    state = model.state_dict()
    good = tmp_path / "final.pt"
    torch.save(state, good)
    cases = {"empty.pt": b"", "truncated.ckpt": good.read_bytes()[: good.stat().st_size // 2],
             "garbage.ckpt": b"<html>Rate limit exceeded</html>"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        err = refused(capsys, "check-weights", tmp_path / name, names=tmp_path / name)
        assert ("truncated" in err or "empty" in err) if name != "garbage.ckpt" else "not a PyTorch checkpoint" in err
        with pytest.raises(ValueError, match=name):
            load_reference_checkpoint(model, tmp_path / name)
    # DistributedDataParallel's state dict: every key behind `module.`
    ddp = tmp_path / "ddp.pt"
    torch.save({"module." + k: v for k, v in state.items()}, ddp)
    code, out, err = run(capsys, "check-weights", ddp, "--no-load")
    assert code == 0 and "merlib" in out, out + err
    fresh = build_model("audio_rev_sc", "quick")
    report = load_reference_checkpoint(fresh, ddp)
    assert not report.missing and all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())
    refused(capsys, "train", "audio_rev_sc", "--data-root", tmp_path, "--out", tmp_path / "run",
            "--audio-weights", tmp_path / "truncated.ckpt", names=tmp_path / "truncated.ckpt")


# ------------------------------------------------------------------------------------- interrupted builds


def _as_from_a_terminal() -> None:
    """In the child before exec: Ctrl-C as in an interactive shell — SIGINT neither ignored nor blocked, whatever
    the test process inherited or set (a disposition of SIG_IGN and the signal mask survive fork and exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _merlib(*argv, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "merlib", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_as_from_a_terminal, **kwargs)


def _interrupt_when(proc: subprocess.Popen, ready, timeout: float = 120) -> tuple[str, str]:
    """Send Ctrl-C once ``ready()``; returns the command's (stdout, stderr). The pipes are read while it stops,
    so a command with much to print cannot block on a full pipe."""
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the build never got going"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C, as a user would
    return proc.communicate(timeout=60)


@pytest.mark.slow
def test_interrupted_synth_is_refused_by_name_until_finished(capsys, tmp_path: Path):
    out = tmp_path / "synth"
    proc = _merlib("synth", out, "--quick", "--workers", "1", "--no-progress")
    _, err = _interrupt_when(proc, lambda: len(list(out.rglob("*.wav"))) >= 3)
    assert proc.returncode == 130 and "Traceback" not in err and "resumes" in err, err
    assert not list(out.rglob("*.part*"))  # every file it left is whole
    err = refused(capsys, "scan", out, names=out)
    assert "did not finish" in err and "merlib synth" in err
    refused(capsys, "reverb", out, "--out", tmp_path / "rev", names=out)
    assert not (tmp_path / "rev").exists()


@pytest.mark.slow
def test_interrupted_reverb_leaves_no_manifest_and_resumes(capsys, tmp_path: Path):
    corpus = tiny_corpus(tmp_path / "corpus", actors=tuple(range(1, 9)), emotions=(2, 3, 4, 5, 6), seconds=2.0)
    rev = tmp_path / "rev"
    proc = _merlib("reverb", corpus, "--out", rev, "--workers", "1", "--no-progress")
    _, err = _interrupt_when(proc, lambda: len(list(rev.rglob("*.flac"))) >= 4)
    assert proc.returncode == 130 and "Traceback" not in err, err
    build = next(rev.glob("reverb-*"))
    assert not (build / "manifest.csv").exists()
    done = {p: p.stat().st_mtime_ns for p in build.rglob("*.flac") if p.with_suffix(".json").exists()}
    assert done
    # the training side refuses the unfinished build by name
    from merlib.data.reverberant import read_manifest

    with pytest.raises(FileNotFoundError, match="unfinished"):
        read_manifest(build)
    code, out, _ = run(capsys, "reverb", corpus, "--out", rev, "--workers", "1", "--no-progress")
    assert code == 0 and len(manifest_ids(build)) == 40
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in done.items())  # what was finished is kept as it was


def test_an_interrupted_frame_cache_is_refused_by_its_readers(tmp_path: Path):
    from merlib.data.video import BUILD_FILE, FrameSettings, VideoFrames, build_frame_cache
    from merlib.data.media import write_av
    from merlib.data.ravdess import scan
    from merlib.errors import DataError

    corpus = tiny_corpus(tmp_path / "corpus", actors=(1, 2))
    for path in corpus.rglob("03-*.wav"):
        write_av(path.with_name("01" + path.name[2:-4] + ".mp4"), np.zeros((6, 32, 32, 3), np.uint8), 30)
    clips = scan(corpus).complete()
    cache = build_frame_cache(clips, tmp_path / "frames", FrameSettings.quick(face_crop=False), workers=1,
                              progress=False)
    assert len(VideoFrames(clips, cache)) == 4
    (cache / BUILD_FILE).unlink()  # as a build killed before it finished leaves it
    with pytest.raises(DataError, match="unfinished"):
        VideoFrames(clips, cache)


# ------------------------------------------------------------------------------------- the boundary itself


def test_a_bug_keeps_its_traceback_and_debug_shows_every_traceback(capsys, tmp_path: Path, monkeypatch):
    import merlib.data.ravdess as ravdess

    corpus = tiny_corpus(tmp_path / "corpus")

    def broken_scan(*_a, **_k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ravdess, "scan", broken_scan)
    with pytest.raises(ZeroDivisionError):  # not a user error: not swallowed into one line
        main(["scan", str(corpus)])
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError):  # a user error, but --debug asks for the traceback
        main(["--debug", "scan", str(tmp_path / "nope")])
    with pytest.raises(FileNotFoundError):
        main(["scan", str(tmp_path / "nope"), "--debug"])
    proc = subprocess.run([sys.executable, "-m", "merlib", "scan", str(tmp_path / "nope")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and str(tmp_path / "nope") in proc.stderr
