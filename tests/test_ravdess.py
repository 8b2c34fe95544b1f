"""RAVDESS names, layouts, pairing and the actor split."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from merlib.data.media import write_audio, write_av
from merlib.data.ravdess import EMOTIONS, actor_split, clip_items, parse_filename, scan, sex_of


def test_parse_all_fields_from_a_full_path():
    f = parse_filename(Path("/corpus/Actor_05/03-01-06-02-01-02-05.wav"))
    assert (f.modality, f.vocal_channel, f.emotion, f.label, f.intensity, f.statement, f.repetition, f.actor, f.sex) == (
        3, 1, "fearful", 5, 2, 1, 2, 5, "male")
    assert f.clip_id == "01-06-02-01-02-05"
    assert parse_filename("01-01-08-01-02-01-24.mp4").sex == "female"
    assert parse_filename("01-01-08-01-02-01-24.mp4").emotion == "surprised"
    assert [parse_filename(f"03-01-{e:02d}-01-01-01-01.wav").emotion for e in range(1, 9)] == list(EMOTIONS)


@pytest.mark.parametrize(
    "name, field",
    [
        ("03-01-09-01-01-01-01.wav", "emotion code 09"),
        ("04-01-01-01-01-01-01.wav", "modality code 04"),
        ("03-03-01-01-01-01-01.wav", "vocal channel code 03"),
        ("03-01-02-03-01-01-01.wav", "intensity code 03"),
        ("03-01-01-02-01-01-01.wav", "no strong-intensity neutral"),
        ("03-01-02-01-03-01-01.wav", "statement code 03"),
        ("03-01-02-01-01-03-01.wav", "repetition code 03"),
        ("03-01-02-01-01-01-00.wav", "actor code 00"),
        ("03-01-02-01-01.wav", "seven two-digit fields"),
        ("notes.wav", "seven two-digit fields"),
    ],
)
def test_invalid_names_raise_naming_file_and_field(name, field):
    with pytest.raises(ValueError) as err:
        parse_filename(f"/somewhere/{name}")
    assert name in str(err.value) and field in str(err.value)


def test_sixty_clips_per_actor_with_the_published_structure():
    items = clip_items(3)
    assert len(items) == 60 and len({i.clip_id for i in items}) == 60
    per_emotion = {e: sum(i.emotion == e for i in items) for e in EMOTIONS}
    assert per_emotion == {e: 4 if e == "neutral" else 8 for e in EMOTIONS}


@pytest.fixture(scope="module")
def tiny_media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    sr = 48000
    audio = (0.2 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr)).astype(np.float32)
    write_audio(d / "a.wav", audio, sr)
    frames = np.full((6, 36, 64, 3), 200, np.uint8)
    write_av(d / "v.mp4", frames, 30, audio, sr)
    return d


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)


def test_scan_official_layout_pairs_and_reports(tmp_path, tiny_media):
    root = tmp_path / "RAVDESS"
    for actor in (1, 2):
        for item in clip_items(actor)[:3]:
            _place(tiny_media / "a.wav", root / "Audio_Speech_Actors_01-24" / f"Actor_{actor:02d}" / item.filename(3))
            vdir = root / f"Video_Speech_Actor_{actor:02d}" / f"Actor_{actor:02d}"
            _place(tiny_media / "v.mp4", vdir / item.filename(1))
            _place(tiny_media / "v.mp4", vdir / item.filename(2))
    # an audio take without its video, a video without audio, a song, a stray file and a bad name
    _place(tiny_media / "a.wav", root / "Audio_Speech_Actors_01-24" / "Actor_01" / "03-01-05-02-02-02-01.wav")
    _place(tiny_media / "v.mp4", root / "Video_Speech_Actor_02" / "Actor_02" / "01-01-07-02-02-02-02.mp4")
    _place(tiny_media / "a.wav", root / "Audio_Song_Actors_01-24" / "Actor_01" / "03-02-03-01-01-01-01.wav")
    _place(tiny_media / "a.wav", root / "Audio_Speech_Actors_01-24" / "Actor_01" / "03-01-09-01-01-01-01.wav")
    (root / "README.txt").write_text("not a clip")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))

    result = scan(root)
    assert len(result.clips) == 8 and result.actors == [1, 2]
    assert len(result.complete()) == 6
    assert {cid for cid, _ in result.missing_partner} == {"01-05-02-02-02-01", "01-07-02-02-02-02"}
    reasons = {p.name: why for p, why in result.skipped}
    assert "song" in reasons["03-02-03-01-01-01-01.wav"]
    assert "emotion code 09" in reasons["03-01-09-01-01-01-01.wav"]
    clip = result.complete()[0]
    assert clip.audio_path.name.startswith("03-") and clip.video_path.name.startswith("01-")
    assert clip.audio_path.name[3:] == clip.video_path.name[3:].replace(".mp4", ".wav")
    assert "missing a partner" in result.report()
    assert len(scan(root, speech_only=False).clips) == 9
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written into the corpus


def test_scan_flat_folder(tmp_path, tiny_media):
    for item in clip_items(4)[:2]:
        _place(tiny_media / "a.wav", tmp_path / item.filename(3))
        _place(tiny_media / "v.mp4", tmp_path / item.filename(1))
    result = scan(tmp_path)
    assert len(result.complete()) == 2 and not result.missing_partner


def test_scan_missing_root_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="merlib synth"):
        scan(tmp_path / "nope")


@pytest.mark.parametrize("seed", range(6))
def test_default_split_is_19_2_3_with_the_sex_rule(seed):
    s = actor_split(range(1, 25), seed=seed)
    assert (len(s.train), len(s.val), len(s.test)) == (19, 2, 3)
    assert sorted(s.train + s.val + s.test) == list(range(1, 25))
    assert sorted(sex_of(a) for a in s.val) == ["female", "male"]
    two = "female" if seed % 2 == 0 else "male"
    assert sum(sex_of(a) == two for a in s.test) == 2
    assert actor_split(range(1, 25), seed=seed) == s  # deterministic


def test_split_changes_with_seed_and_scales_down():
    assert len({actor_split(range(1, 25), seed=s).test for s in range(8)}) > 1
    for seed in (0, 1):
        s = actor_split(range(1, 9), seed=seed)
        assert (len(s.train), len(s.val), len(s.test)) == (6, 1, 1)
        assert sex_of(s.val[0]) != sex_of(s.test[0])


def test_explicit_split_and_overlap_is_refused():
    s = actor_split(range(1, 25), val_actors=[1, 2], test_actors=[3, 4, 5])
    assert s.val == (1, 2) and s.test == (3, 4, 5) and len(s.train) == 19 and s.of(3) == "test"
    with pytest.raises(ValueError, match="more than one split"):
        actor_split(range(1, 25), val_actors=[1, 2], test_actors=[2, 3])
    with pytest.raises(ValueError, match="not in the corpus"):
        actor_split(range(1, 9), test_actors=[20])
