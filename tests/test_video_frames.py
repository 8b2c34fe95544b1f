"""The video frame pipeline, its decode-once cache and the training augmentation (merlib.data.video).

Fixtures are tiny mp4s written here (a brightness ramp whose frame number can be read back from the pixels,
a few drawn faces, a blank clip, a corrupt file) so the tests run in seconds without the quick corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import merlib.data.video as mv
from merlib.data.media import MediaError, read_video, write_av
from merlib.data.ravdess import Clip, parse_filename
from merlib.data.synthetic.face import render_face_video
from merlib.data.video import (
    KINETICS_MEAN,
    FrameSettings,
    VideoFrames,
    build_frame_cache,
    corpus_root,
    decode_frames,
    frame_window,
    load_clip_frames,
    load_clip_like_reference,
    normalize_frames,
    read_cache_report,
    reference_transform,
    resize_frames,
    sample_indices,
    train_augmentation,
)

SMALL = FrameSettings(n_frames=8, size=32)  # the paper's pipeline, smaller frames


def _ramp(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i is uniformly grey 20 + 2i, so the frame number survives H.264 (error ≤ 1 grey level)."""
    return np.stack([np.full((h, w, 3), 20 + 2 * i, np.uint8) for i in range(n)])


def _frame_numbers(frames: np.ndarray) -> np.ndarray:
    return (frames.reshape(len(frames), -1).mean(1) - 20) / 2


def _clip(root: Path, name: str) -> Clip:
    meta = parse_filename(name)
    actor_dir = root / f"Video_Speech_Actor_{meta.actor:02d}" / f"Actor_{meta.actor:02d}"
    return Clip(meta, None, actor_dir / name)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Clip]]:
    """Five clips of two actors in RAVDESS layout: a 100-frame ramp at 10 fps, faces of different lengths."""
    root = tmp_path_factory.mktemp("corpus")
    clips = [_clip(root, "01-01-01-01-01-01-01.mp4")]
    clips[0].video_path.parent.mkdir(parents=True)
    write_av(clips[0].video_path, _ramp(100), 10)
    for name, emotion, n in [("01-01-03-02-01-01-01.mp4", "happy", 23), ("01-01-05-01-02-01-02.mp4", "angry", 17),
                             ("01-01-08-02-02-02-02.mp4", "surprised", 9), ("01-01-04-01-01-02-02.mp4", "sad", 30)]:
        clip = _clip(root, name)
        clip.video_path.parent.mkdir(parents=True, exist_ok=True)
        meta = clip.meta
        write_av(clip.video_path, render_face_video(meta.actor, emotion, meta.intensity, n, size=(160, 90)), 30)
        clips.append(clip)
    return root, clips


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ the pipeline


def test_sample_indices_are_torch_nearest_interpolation():
    for total in list(range(1, 130)) + [1000, 4097]:
        for n in (1, 3, 4, 6, 8, 16, 33):
            want = F.interpolate(torch.arange(total, dtype=torch.float32).view(1, 1, total), size=n).flatten()
            assert np.array_equal(sample_indices(total, n), want.long().numpy()), (total, n)
    assert sample_indices(105, 8).tolist() == [0, 13, 26, 39, 52, 65, 78, 91]  # a 3.5 s RAVDESS clip
    with pytest.raises(ValueError):
        sample_indices(0, 8)


def test_frames_come_from_the_whole_clip_or_the_audio_window(corpus):
    _, clips = corpus
    path = clips[0].video_path  # 100 frames at 10 fps = 10 s
    whole = load_clip_frames(path, SMALL)
    assert whole.total_frames == 100 and whole.fps == 10.0
    assert whole.indices == [0, 12, 25, 37, 50, 62, 75, 87]
    assert np.abs(_frame_numbers(whole.frames) - whole.indices).max() < 0.6  # those frames, decoded
    aligned = load_clip_frames(path, FrameSettings(n_frames=8, size=32, align_to_audio_window=True))
    assert aligned.indices == [0, 5, 10, 15, 20, 25, 30, 35]  # only the first 4 s = 40 frames
    assert np.abs(_frame_numbers(aligned.frames) - aligned.indices).max() < 0.6
    assert frame_window(100, 30.0, FrameSettings(align_to_audio_window=True)) == 100
    assert frame_window(150, 30.0, FrameSettings(align_to_audio_window=True)) == 120
    assert frame_window(150, 30.0, FrameSettings()) == 150


def test_decoding_only_the_needed_frames_equals_a_full_decode(corpus, tmp_path):
    _, clips = corpus
    full = read_video(clips[1].video_path).frames
    idx = [0, 3, 3, 11, 22]
    assert np.array_equal(decode_frames(clips[1].video_path, idx), full[idx])
    truncated = tmp_path / "01-01-03-02-01-01-01.mp4"
    truncated.write_bytes(clips[4].video_path.read_bytes()[:1500])
    with pytest.raises(MediaError, match=str(truncated.name)):
        load_clip_frames(truncated, SMALL)


@pytest.mark.parametrize("settings", [SMALL, FrameSettings(), FrameSettings(n_frames=8, size=64, antialias=False)])
def test_cached_frames_give_exactly_the_reference_transform(corpus, tmp_path, settings):
    """The cache + normalisation equals the reference's transform of the fully decoded clip."""
    _, clips = corpus
    folder = build_frame_cache(clips[1:3], tmp_path / "cache", settings, workers=1, progress=False)
    data = VideoFrames(clips[1:3], folder, settings)
    for i, clip in enumerate(clips[1:3]):
        video, label = data[i]
        assert video.shape == (3, settings.n_frames, settings.size, settings.size) and video.dtype == torch.float32
        assert label == clip.meta.label
        assert torch.allclose(video, load_clip_like_reference(clip.video_path, settings), atol=1e-6)


def test_reference_transform_and_normalisation():
    mean = np.array([round(255 * m) for m in KINETICS_MEAN], np.uint8)
    video = np.broadcast_to(mean, (12, 20, 30, 3)).copy()
    out = reference_transform(video, n_frames=4, size=16)
    assert out.shape == (3, 4, 16, 16) and out.abs().max() < 0.01  # the mean colour normalises to ≈ 0
    white = normalize_frames(np.full((2, 4, 4, 3), 255, np.uint8))
    assert torch.allclose(white[:, 0, 0, 0], (1 - torch.tensor(KINETICS_MEAN)) / torch.tensor(mv.KINETICS_STD))
    with pytest.raises(ValueError, match="uint8"):
        normalize_frames(np.zeros((2, 4, 4, 3), np.float32))


def test_resize_modes_keep_or_squash_the_aspect():
    frame = np.zeros((1, 90, 160, 3), np.uint8)
    frame[:, :, 35:125] = 255  # a white centre square, black sides
    squash = resize_frames(frame, 32)
    crop = resize_frames(frame, 32, keep_aspect="crop")
    box = resize_frames(frame, 32, keep_aspect="letterbox")
    assert squash.shape == crop.shape == box.shape == (1, 32, 32, 3)
    assert squash[0, :, 2].max() == 0 and squash[0, :, 16].min() == 255  # sides squeezed in
    assert crop[0, 1:-1, 1:-1].min() == 255  # only the white square
    assert tuple(box[0, 0, 16]) == tuple(round(255 * m) for m in KINETICS_MEAN)  # padding = mean colour
    assert box[0, 16, 16].min() == 255 and box[0, 16, 1].max() == 0
    with pytest.raises(ValueError, match="keep_aspect"):
        resize_frames(frame, 32, keep_aspect="pad")


def test_augmentation_draws_once_per_clip():
    torch.manual_seed(0)
    s = FrameSettings.paper()
    aug = train_augmentation(s)
    image = torch.randn(3, 224, 224)
    clip = image.expand(8, 3, 224, 224).clone()  # (T, C, H, W): eight identical frames
    outs = []
    for _ in range(10):
        out = aug(clip)
        assert out.shape == (8, 3, 180, 180)
        assert all(torch.equal(out[0], out[t]) for t in range(1, 8)), "frames of one clip got different draws"
        outs.append(out[0])
    assert not all(torch.equal(outs[0], o) for o in outs[1:]), "every call drew the same parameters"


def test_flip_probabilities_and_rotation_fill():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 16, 16)
    only_h = train_augmentation(FrameSettings(size=16, train_crop=16, vflip_p=0.0, rotation=0.0))
    only_v = train_augmentation(FrameSettings(size=16, train_crop=16, hflip_p=0.0, rotation=0.0))
    h = [torch.equal(only_h(x), x.flip(-1)) for _ in range(300)]
    v = [torch.equal(only_v(x), x.flip(-2)) for _ in range(300)]
    assert 55 <= sum(h) <= 125 and 55 <= sum(v) <= 125  # Binomial(300, 0.3): mean 90, sd 8
    rotate = train_augmentation(FrameSettings(size=32, train_crop=32, hflip_p=0.0, vflip_p=0.0, rotation=30.0))
    ones = torch.ones(1, 3, 32, 32)
    filled = [float((rotate(ones) == 0).float().mean()) for _ in range(50)]
    assert max(filled) > 0.05 and max(filled) < 0.25  # corners filled with 0 (the mean), never beyond ±30°


def test_dataset_applies_augmentation_only_when_training(corpus, tmp_path):
    _, clips = corpus
    s = FrameSettings.quick()
    folder = build_frame_cache(clips, tmp_path / "cache", s, workers=1, progress=False)
    evaluation = VideoFrames([c.clip_id for c in clips], folder)
    assert evaluation.settings == s and evaluation.labels == [c.meta.label for c in clips]
    assert torch.equal(evaluation[1][0], evaluation[1][0])
    assert evaluation[1][0].shape == (3, 4, 64, 64)
    torch.manual_seed(0)
    train = VideoFrames(clips, folder, s, train=True)
    a, b = train[1][0], train[1][0]
    assert a.shape == (3, 4, 51, 51) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="build one"):
        VideoFrames(clips, folder, FrameSettings.quick(n_frames=8))


# ------------------------------------------------------------------------------------------------ the cache


def test_cache_layout_and_never_writing_into_the_corpus(corpus, tmp_path):
    root, clips = corpus
    before = _tree(root)
    s = FrameSettings.quick()
    folder = build_frame_cache(clips, tmp_path / "frames", s, workers=1, progress=False)
    assert _tree(root) == before
    assert folder.parent == (tmp_path / "frames").resolve() and folder.name == s.digest(str(root.resolve()))
    assert sorted(p.name for p in folder.glob("*.npy")) == sorted(f"{c.clip_id}.npy" for c in clips)
    arr = np.load(folder / f"{clips[0].clip_id}.npy")
    assert arr.dtype == np.uint8 and arr.shape == (4, 64, 64, 3)
    meta = json.loads((folder / "settings.json").read_text())
    assert FrameSettings.from_dict(meta["settings"]) == s and meta["source"] == str(root.resolve())
    report = read_cache_report(folder)
    assert report.clips[clips[0].clip_id]["indices"] == [0, 25, 50, 75]
    assert report.failed == {} and report.last_build["written"] == len(clips)
    assert report.bytes_per_clip() == pytest.approx(4 * 64 * 64 * 3 + 128)
    # a second call keeps everything
    assert build_frame_cache(clips, tmp_path / "frames", s, workers=1, progress=False) == folder
    assert read_cache_report(folder).last_build["kept"] == len(clips)
    with pytest.raises(ValueError, match="inside the corpus"):
        build_frame_cache(clips, root / "cache", s, workers=1, progress=False)


def test_folder_names_separate_settings_and_corpora(corpus):
    root, clips = corpus
    assert corpus_root([clips[0].video_path]) == corpus_root(c.video_path for c in clips) == root.resolve()
    s = FrameSettings()
    assert s.digest("a") != s.digest("b")  # same clip ids in another corpus never share frames
    assert s.digest("a") == FrameSettings(hflip_p=0.5, rotation=10, train_crop=160).digest("a")  # augmentation only
    for other in (FrameSettings(n_frames=16), FrameSettings(size=112), FrameSettings(keep_aspect="crop"),
                  FrameSettings(face_crop=True), FrameSettings(align_to_audio_window=True), FrameSettings(antialias=False)):
        assert other.digest("a") != s.digest("a")
    assert FrameSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="no field"):
        FrameSettings.from_dict({"n_frame": 8})
    with pytest.raises(ValueError, match="train_crop"):
        FrameSettings(size=64, train_crop=180)


def test_corrupt_video_is_named_and_excluded_never_zero_filled(corpus, tmp_path):
    _, clips = corpus
    bad_root = tmp_path / "bad"
    bad = _clip(bad_root, "01-01-06-01-01-01-03.mp4")
    bad.video_path.parent.mkdir(parents=True)
    bad.video_path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    good = _clip(bad_root, "01-01-02-01-01-01-03.mp4")
    good.video_path.write_bytes(clips[1].video_path.read_bytes())
    s = FrameSettings.quick()
    with pytest.warns(RuntimeWarning, match=r"1 video\(s\) could not be decoded.*01-01-06-01-01-01-03\.mp4"):
        folder = build_frame_cache([bad, good], tmp_path / "cache", s, workers=1, progress=False)
    assert not (folder / f"{bad.clip_id}.npy").exists() and (folder / f"{good.clip_id}.npy").exists()
    failed = json.loads((folder / "failed.json").read_text())
    assert list(failed) == [bad.clip_id] and failed[bad.clip_id]["video"] == str(bad.video_path)
    with pytest.raises(KeyError, match="failed to decode"):
        VideoFrames([bad, good], folder)
    with pytest.warns(RuntimeWarning, match="left out"):
        data = VideoFrames([bad, good], folder, skip_missing=True)
    assert data.clip_ids == [good.clip_id] and data.skipped == [bad.clip_id]
    # repaired: the next build writes it and clears the failure
    bad.video_path.write_bytes(clips[2].video_path.read_bytes())
    build_frame_cache([bad, good], tmp_path / "cache", s, workers=1, progress=False)
    assert json.loads((folder / "failed.json").read_text()) == {} and (folder / f"{bad.clip_id}.npy").exists()


def test_interrupted_build_resumes_to_an_identical_cache(corpus, tmp_path, monkeypatch):
    _, clips = corpus
    s = FrameSettings.quick()
    fresh = build_frame_cache(clips, tmp_path / "a", s, workers=1, progress=False)

    real_job, calls = mv._cache_job, []

    def dies_after_two(job):
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated interruption")
        calls.append(job[0])
        return real_job(job)

    monkeypatch.setattr(mv, "_cache_job", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_frame_cache(clips, tmp_path / "b", s, workers=1, progress=False)
    partial = (tmp_path / "b").resolve() / fresh.name
    assert sorted(p.stem for p in partial.glob("*.npy")) == sorted(calls)
    assert sorted(json.loads((partial / "index.json").read_text())) == sorted(calls)
    (partial / ".01-01-01-01-01-01.xyz.part.npy").write_bytes(b"half")  # a write cut short by a kill
    monkeypatch.setattr(mv, "_cache_job", real_job)
    resumed = build_frame_cache(clips, tmp_path / "b", s, workers=1, progress=False)
    assert resumed == partial
    assert read_cache_report(resumed).last_build["kept"] == 2
    assert read_cache_report(resumed).last_build["written"] == len(clips) - 2
    a, b = _tree(fresh), _tree(resumed)
    a.pop("build.json"), b.pop("build.json")  # timings differ; everything else is byte-identical
    assert a == b


@pytest.mark.slow
def test_parallel_build_equals_serial(corpus, tmp_path):
    _, clips = corpus
    s = FrameSettings.quick(face_crop=True)
    torch.nn.functional.interpolate(torch.rand(1, 1, 64, 64), size=128)  # torch threads running before the pool
    with pytest.warns(RuntimeWarning, match="no face found in 1 of 5"):  # the grey ramp has no face
        serial = build_frame_cache(clips, tmp_path / "a", s, workers=1, progress=False)
    with pytest.warns(RuntimeWarning, match="no face found in 1 of 5"):
        parallel = build_frame_cache(clips, tmp_path / "b", s, workers=2, progress=False)
    assert read_cache_report(parallel).last_build["workers"] == 2
    a, b = _tree(serial), _tree(parallel)
    a.pop("build.json"), b.pop("build.json")
    assert a == b


def test_face_crop_and_its_counted_fallback(tmp_path):
    root = tmp_path / "corpus"
    face = _clip(root, "01-01-03-02-01-01-05.mp4")
    blank = _clip(root, "01-01-01-01-01-01-05.mp4")
    face.video_path.parent.mkdir(parents=True)
    write_av(face.video_path, render_face_video(5, "happy", 2, 12, size=(320, 180)), 30)
    write_av(blank.video_path, np.full((12, 180, 320, 3), 200, np.uint8), 30)
    s = FrameSettings.quick(face_crop=True)
    with pytest.warns(RuntimeWarning, match=r"no face found in 1 of 2 clip\(s\) \(01-01-01-01-01-05\)"):
        folder = build_frame_cache([face, blank], tmp_path / "cache", s, workers=1, progress=False)
    report = read_cache_report(folder)
    assert report.no_face == [blank.clip_id] and report.last_build["no_face"] == [blank.clip_id]
    left, top, side = report.clips[face.clip_id]["face_box"]
    assert 0 <= left and 0 <= top and left + side <= 320 and top + side <= 180 and 40 <= side <= 180
    assert 100 <= left + side / 2 <= 220  # the drawn face sits near the centre
    plain = load_clip_frames(face.video_path, FrameSettings.quick())
    cropped = np.load(folder / f"{face.clip_id}.npy")
    assert cropped.shape == plain.frames.shape and not np.array_equal(cropped, plain.frames)
    fallback = np.load(folder / f"{blank.clip_id}.npy")
    assert np.array_equal(fallback, load_clip_frames(blank.video_path, FrameSettings.quick()).frames)
