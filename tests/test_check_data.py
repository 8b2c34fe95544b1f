"""`merlib check-data`: a complete and a broken RAVDESS tree, ACE Mobile trees, the synthetic corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from merlib.cli import main
from merlib.data import ace
from merlib.data.check import check_data, file_problem
from merlib.data.ravdess import clip_items

SR = 48000


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    """One tiny wav, full-AV mp4 and video-only mp4, copied under every name (fast and valid)."""
    from merlib.data.media import copy_video_stream, write_av

    d = tmp_path_factory.mktemp("media")
    sf.write(d / "a.wav", np.zeros(SR // 50, np.float32), SR, subtype="PCM_16")
    frames = np.full((4, 32, 32, 3), 90, np.uint8)
    write_av(d / "av.mp4", frames, 30, audio=np.zeros(4800, np.float32), sample_rate=SR)
    copy_video_stream(d / "av.mp4", d / "v.mp4")
    return {"wav": (d / "a.wav").read_bytes(), "av": (d / "av.mp4").read_bytes(), "v": (d / "v.mp4").read_bytes()}


def _write_ravdess(root: Path, media: dict[str, bytes], items, video: bool = True) -> None:
    for it in items:
        a = root / "Audio_Speech_Actors_01-24" / f"Actor_{it.actor:02d}"
        a.mkdir(parents=True, exist_ok=True)
        (a / it.filename(3)).write_bytes(media["wav"])
        if video:
            v = root / f"Video_Speech_Actor_{it.actor:02d}" / f"Actor_{it.actor:02d}"
            v.mkdir(parents=True, exist_ok=True)
            (v / it.filename(1)).write_bytes(media["av"])
            (v / it.filename(2)).write_bytes(media["v"])


def _write_ace(root: Path, channels: int = 3) -> None:
    for room in ace.ACE_ROOMS:
        for pos in (1, 2):
            path = root / "ACE_Corpus_RIRN_Mobile" / "Mobile" / room.relative_path(pos)
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, np.zeros((480, channels), np.float32), SR, subtype="FLOAT")


@pytest.fixture(scope="module")
def good(tmp_path_factory, media) -> Path:
    root = tmp_path_factory.mktemp("good")
    _write_ravdess(root, media, [it for a in (1, 2) for it in clip_items(a)])
    return root


def test_complete_tree_for_the_actors_asked(good, capsys):
    report = check_data(good, actors="1-2")
    assert report.ok and report.ace is None
    r = report.ravdess
    assert r.video and r.per_actor[1] == {"speech wav": 60, "audio-video mp4": 60, "video-only mp4": 60}
    assert not r.missing and not r.broken and not r.bad_names
    assert main(["check-data", str(good), "--actors", "1-2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "COMPLETE: RAVDESS is usable" in out and "60 / 60" in out


def test_missing_actors_are_listed_per_folder(good, capsys):
    report = check_data(good)  # all 24 actors expected
    assert not report.ok and len(report.ravdess.missing) == 22 * 180
    text = report.summary(max_items=100)
    assert "Audio_Speech_Actors_01-24/Actor_03/: all 60 speech wavs of actor 03" in text
    assert "Video_Speech_Actor_24/Actor_24/: all 60 video-only mp4s of actor 24" in text
    assert "INCOMPLETE" in text
    assert main(["check-data", str(good), "--no-progress"]) == 1


def test_broken_tree_reports_each_problem(good, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(good, root)
    wavs = root / "Audio_Speech_Actors_01-24" / "Actor_01"
    vids = root / "Video_Speech_Actor_02" / "Actor_02"
    gone = wavs / "03-01-05-02-01-01-01.wav"
    gone.unlink()
    cut = vids / "01-01-03-01-02-02-02.mp4"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    garbage = wavs / "03-01-08-02-02-02-01.wav"
    garbage.write_bytes(b"RIFF" + (10_000).to_bytes(4, "little") + b"WAVE" + b"\0" * 20)
    stereo = wavs / "03-01-02-01-01-01-01.wav"
    sf.write(stereo, np.zeros((100, 2), np.float32), SR)
    (wavs / "notes.wav").write_bytes(b"x")
    (wavs / "03-02-01-01-01-01-01.wav").write_bytes(good.joinpath(
        "Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav").read_bytes())  # a song file
    (root / "extra").mkdir()
    shutil.copy(wavs / "03-01-01-01-01-01-01.wav", root / "extra")  # a duplicate

    report = check_data(root, actors=[1, 2])
    r = report.ravdess
    assert not report.ok
    assert r.missing == ["Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.wav"]
    broken = {p.name: why for p, why in r.broken}
    assert set(broken) == {cut.name, garbage.name, stereo.name}
    assert "truncated" in broken[cut.name] and "truncated" in broken[garbage.name]
    assert "2 channel(s)" in broken[stereo.name]
    assert [p.name for p, _ in r.bad_names] == ["notes.wav"]
    text = report.summary()
    assert "03-01-05-02-01-01-01.wav" in text and "ignored 1 song file" in text and "1 duplicate" in text
    assert r.per_actor[1]["speech wav"] == 59


def test_audio_only_copy_is_complete_with_a_note(media, tmp_path):
    _write_ravdess(tmp_path, media, clip_items(5), video=False)
    report = check_data(tmp_path, actors="5")
    assert report.ok and not report.ravdess.video
    assert "--video" in report.summary()


def test_ace_mobile_good_and_broken_next_to_ravdess(good, tmp_path):
    root = tmp_path / "both"
    shutil.copytree(good, root)
    _write_ace(root)
    report = check_data(root, actors="1-2")
    assert report.ok and report.ace.mobile == root / "ACE_Corpus_RIRN_Mobile" / "Mobile"
    assert not report.ravdess.bad_names  # the ACE wavs are not taken for RAVDESS files
    assert "RAVDESS and ACE Mobile are usable" in report.summary()

    mobile = report.ace.mobile
    (mobile / ace.get_room("Office 1").relative_path(2)).unlink()
    two = mobile / ace.get_room("Lobby").relative_path(1)
    sf.write(two, np.zeros((480, 2), np.float32), SR)
    report = check_data(root, actors="1-2")
    assert not report.ok
    assert report.ace.missing == [mobile / "Office_1" / "2" / "Mobile_502_2_RIR.wav"]
    broken = [(p.name, why) for p, why in report.ace.broken]
    assert broken == [("Mobile_EE_lobby_1_RIR.wav", "2 channel(s), expected 3")]
    assert "12 of 14 RIRs" in report.summary()


def test_nothing_found(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("hi")
    assert main(["check-data", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "found neither RAVDESS" in out and "merlib fetch ravdess" in out
    assert main(["check-data", str(tmp_path / "absent")]) == 2


def test_synthetic_corpus_is_checked_against_its_own_settings(media, tmp_path):
    from merlib.data.synthetic.corpus import CorpusSpec, corpus_items

    spec = CorpusSpec.preset("quick")
    _write_ravdess(tmp_path, media, corpus_items(spec))
    (tmp_path / "merlib_synth.json").write_text(json.dumps({"spec": spec.to_dict(), "complete": True}))
    report = check_data(tmp_path)
    assert report.ok and report.ravdess.actors == list(range(1, 17))
    assert report.ravdess.expected_per_actor[1] == 16
    assert "synthetic corpus (quick" in report.summary()
    assert not check_data(tmp_path, actors="1").ok  # against real RAVDESS: 16 of 60


def test_deep_decoding(good, tmp_path):
    path = next((good / "Video_Speech_Actor_01" / "Actor_01").glob("01-*.mp4"))
    assert file_problem(path, "av", deep=True) is None
    assert file_problem(path, "video", deep=True) is None
    assert "no audio stream" in file_problem(path.with_name("02" + path.name[2:]), "av")


@pytest.mark.slow
def test_the_quick_synthetic_corpus_passes(quick_corpus):
    report = check_data(quick_corpus)
    assert report.ok, report.summary()
    assert len(report.ravdess.actors) == 16
