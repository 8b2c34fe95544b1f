"""The built-in synthetic RAVDESS: format, determinism, resume, and learnable-but-not-trivial signal."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from merlib.data.media import read_audio, read_video, video_info
from merlib.data.ravdess import EMOTIONS
from merlib.data.synthetic import CorpusSpec, corpus_items, generate_corpus, render_clip
from merlib.data.synthetic.baselines import corpus_baselines
from merlib.data.synthetic.corpus import MARKER, paths_for


def test_quick_corpus_layout_names_and_counts(quick_scan):
    clips = quick_scan.complete()
    assert len(clips) == 256 and not quick_scan.missing_partner and not quick_scan.skipped
    assert quick_scan.actors == list(range(1, 17))
    per_actor = Counter(c.meta.actor for c in clips)
    assert set(per_actor.values()) == {16}
    per_emotion = Counter(c.meta.emotion for c in clips)
    assert per_emotion == {e: 32 for e in EMOTIONS}
    sets = {a: sorted(c.clip_id[:-3] for c in clips if c.meta.actor == a) for a in range(1, 17)}
    assert all(s == sets[1] for s in sets.values())  # every actor has the same clip set
    for c in clips:
        assert c.audio_path.parent.name == f"Actor_{c.meta.actor:02d}"
        assert c.audio_path.parent.parent.name == "Audio_Speech_Actors_01-24"
        assert c.video_path.parent.parent.name == f"Video_Speech_Actor_{c.meta.actor:02d}"
        assert (c.video_path.parent / ("02" + c.video_path.name[2:])).exists()


def test_quick_corpus_formats_decode_back(quick_scan):
    clips = quick_scan.complete()
    for clip in clips[::16]:
        info = sf.info(str(clip.audio_path))
        assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "PCM_16")
        assert 2.5 < info.duration < 5.0
        v = video_info(clip.video_path)
        assert (v["video_codec"], v["audio_codec"], v["audio_rate"], v["audio_channels"]) == ("h264", "aac", 48000, 1)
        assert (v["width"], v["height"], v["fps"]) == (320, 180, 30.0)
        assert abs(v["frames"] / 30 - info.duration) < 0.1  # picture and sound last as long
        vo = video_info(clip.video_path.parent / ("02" + clip.video_path.name[2:]))
        assert vo["audio_codec"] is None and vo["frames"] == v["frames"]
        wav = read_audio(clip.audio_path, 16000)
        aac = read_audio(clip.video_path, 16000)
        n = min(len(wav), len(aac))
        assert np.corrcoef(wav[2000 : n - 2000], aac[2000 : n - 2000])[0, 1] > 0.8  # same speech in both files
        frames = read_video(clip.video_path).frames
        assert frames.shape[1:] == (180, 320, 3)
        change = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
        # the face moves: H.264 may merge an odd pair of near-still frames, never a run of them
        assert (change > 0).mean() >= 0.95 and not np.any((change[:-1] == 0) & (change[1:] == 0))


def test_marker_records_spec_and_other_settings_are_refused(quick_corpus, tmp_path):
    info = json.loads((quick_corpus / MARKER).read_text())
    assert info["complete"] and info["spec"]["seed"] == 0 and info["n_clips"] == 256 and info["actors"] == list(range(1, 17))
    with pytest.raises(ValueError, match="already holds a synthetic corpus"):
        generate_corpus(quick_corpus, CorpusSpec.preset("quick", seed=1), progress=False)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate_corpus(tmp_path, CorpusSpec.preset("quick"), progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_clips_are_deterministic_for_a_seed():
    meta = corpus_items(CorpusSpec.preset("quick"))[5]
    spec = CorpusSpec.preset("quick", seed=0, resolution=(160, 90))
    a1, f1 = render_clip(meta, spec)
    a2, f2 = render_clip(meta, spec)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(f1, f2)
    a3, _ = render_clip(meta, CorpusSpec.preset("quick", seed=1, resolution=(160, 90)))
    assert len(a3) != len(a1) or not np.array_equal(a1, a3)


def test_interrupted_build_resumes_to_identical_files(tmp_path, monkeypatch):
    """A build stopped part-way leaves only whole files; running it again finishes the same corpus."""
    import merlib.data.synthetic.corpus as corpus

    spec = CorpusSpec.preset("quick", seed=0, resolution=(160, 90))
    items = [m for m in corpus_items(spec) if m.actor in (1, 2)][:6]
    monkeypatch.setattr(corpus, "corpus_items", lambda s: items)
    reference = generate_corpus(tmp_path / "ref", spec, workers=1, progress=False)

    real_write_av, calls = corpus.write_av, {"n": 0}

    def dying_write_av(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("simulated interruption")
        return real_write_av(*args, **kwargs)

    monkeypatch.setattr(corpus, "write_av", dying_write_av)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus(tmp_path / "run", spec, workers=1, progress=False)
    partial = tmp_path / "run"
    assert not json.loads((partial / MARKER).read_text())["complete"]
    assert not [p for p in partial.rglob("*") if ".part" in p.name]  # no half-written file left behind
    monkeypatch.setattr(corpus, "write_av", real_write_av)
    generate_corpus(partial, spec, workers=1, progress=False)
    assert json.loads((partial / MARKER).read_text())["kept"] == 3
    for meta in items:
        for ref_file, new_file in zip(paths_for(reference, meta), paths_for(partial, meta)):
            if ref_file.suffix == ".wav":
                assert ref_file.read_bytes() == new_file.read_bytes()
            else:
                np.testing.assert_array_equal(read_video(ref_file).frames, read_video(new_file).frames)


@pytest.mark.slow
def test_emotion_is_learnable_but_not_trivial(quick_scan, record_property):
    """Leave-one-actor-out baselines on the quick corpus (chance 12.5 %): see baselines.py."""
    results = corpus_baselines(quick_scan.complete())
    acc = {k: round(v.accuracy, 3) for k, v in results.items()}
    record_property("baselines", acc)
    print("LOAO baselines:", acc)
    assert 0.30 <= acc["audio"] <= 0.90, acc
    assert 0.30 <= acc["video"] <= 0.90, acc
    assert acc["colour"] <= 0.30, acc
    assert acc["sentence"] >= 0.90, acc
