"""The drawn face of the synthetic RAVDESS (merlib.data.synthetic.face).

Fast unit tests (shapes, determinism, validation, per-actor looks, intensity, motion, speech), a Haar
face-detection check, and — marked slow — the calibration that makes the corpus useful: under
leave-one-actor-out on the quick layout (8 actors × 16 clips, 320×180), a simple pixel baseline must
be clearly above chance but far from perfect, while mean frame colour alone must stay near chance.
Numbers and timings: ``python benchmarks/calibrate_face.py``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from merlib.data.synthetic.face import (
    ACTION_UNITS,
    EMOTIONS,
    EXPRESSIONS,
    Appearance,
    actor_appearance,
    contact_sheet,
    expression_peak,
    render_face_video,
)

SMALL = (320, 180)


def _env(n: int, seed: int = 0) -> np.ndarray:
    """A stand-in for the audio RMS envelope at 30 fps: silence, ~4 Hz syllables, silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 30.0
    syl = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t + rng.uniform(0, 6.3)), 0, 1) ** 0.7
    talk = (np.arange(n) > rng.uniform(0.15, 0.3) * n) & (np.arange(n) < rng.uniform(0.75, 0.9) * n)
    return (syl * talk * rng.uniform(0.6, 1.0)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- API basics


@pytest.mark.parametrize("size", [(160, 90), (320, 180), (640, 360), (1280, 720), (256, 144), (300, 170)])
def test_shape_and_dtype(size):
    frames = render_face_video(3, "happy", 1, 4, size=size)
    assert frames.shape == (4, size[1], size[0], 3)
    assert frames.dtype == np.uint8
    assert frames.flags["C_CONTIGUOUS"]


def test_default_size_is_640x360():
    assert render_face_video(1, "neutral", 1, 2).shape == (2, 360, 640, 3)


def test_deterministic_and_keyed():
    env = _env(30)
    a = render_face_video(5, "angry", 2, 30, size=SMALL, seed=1, mouth_open=env)
    b = render_face_video(5, "angry", 2, 30, size=SMALL, seed=1, mouth_open=env)
    np.testing.assert_array_equal(a, b)
    for other in (
        render_face_video(5, "angry", 2, 30, size=SMALL, seed=2, mouth_open=env),
        render_face_video(5, "angry", 2, 30, size=SMALL, seed=1, mouth_open=env, variant=1),
        render_face_video(5, "angry", 2, 30, size=SMALL, seed=1, mouth_open=_env(30, seed=9)),
    ):
        assert np.abs(a.astype(int) - other).mean() > 0.05


def test_no_global_rng_use():
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    render_face_video(2, "sad", 1, 3, size=SMALL)
    assert np.random.random() == before


def test_actor_appearance():
    a1, a2 = actor_appearance(1), actor_appearance(2)
    assert isinstance(a1, Appearance)
    assert a1.sex == "male" and a2.sex == "female"
    assert actor_appearance(1) == a1  # deterministic
    assert actor_appearance(1, seed=1) != a1
    assert a2.beard == 0.0
    assert len(a1.au_gain) == len(a1.au_rest) == len(ACTION_UNITS)
    looks = {(actor_appearance(k).skin, actor_appearance(k).hair_colour, actor_appearance(k).hair_style) for k in range(1, 25)}
    assert len(looks) == 24
    with pytest.raises(ValueError, match="actor"):
        actor_appearance(0)


def test_actors_look_different_and_sit_on_a_light_background():
    firsts = [render_face_video(k, "neutral", 1, 1, size=SMALL, mouth_open=np.zeros(1))[0] for k in range(1, 7)]
    means = np.array([f.reshape(-1, 3).mean(0) for f in firsts])
    pairwise = [np.abs(firsts[i].astype(int) - firsts[j]).mean() for i in range(6) for j in range(i + 1, 6)]
    assert min(pairwise) > 3.0
    assert np.ptp(means, axis=0).max() > 5.0  # appearance moves the mean colour
    for f in firsts:  # RAVDESS: white/light-grey wall; head and shoulders centred
        assert f[:10, :10].mean() > 200 and f[:10, -10:].mean() > 200
        assert f[-5:, 150:170].mean() < 120  # dark shirt at the bottom centre


def test_validation_messages():
    with pytest.raises(ValueError, match="emotion must be one of"):
        render_face_video(1, "joy", 1, 2)
    with pytest.raises(ValueError, match="emotion must be one of"):
        render_face_video(1, 3, 1, 2)
    with pytest.raises(ValueError, match="intensity must be 1"):
        render_face_video(1, "happy", 3, 2)
    with pytest.raises(ValueError, match="neutral has no strong intensity"):
        render_face_video(1, "neutral", 2, 2)
    with pytest.raises(ValueError, match="between 160x90 and 1280x720"):
        render_face_video(1, "happy", 1, 2, size=(100, 56))
    with pytest.raises(ValueError, match="between 160x90 and 1280x720"):
        render_face_video(1, "happy", 1, 2, size=(1920, 1080))
    with pytest.raises(ValueError, match="16:9"):
        render_face_video(1, "happy", 1, 2, size=(400, 400))
    with pytest.raises(ValueError, match="width, height"):
        render_face_video(1, "happy", 1, 2, size=(640.0, 360.0))
    with pytest.raises(ValueError, match="width, height"):
        render_face_video(1, "happy", 1, 2, size=640)
    with pytest.raises(ValueError, match="n_frames"):
        render_face_video(1, "happy", 1, 0)
    with pytest.raises(ValueError, match="onset"):
        render_face_video(1, "happy", 1, 5, onset=0.9, offset=0.5)
    with pytest.raises(ValueError, match="mouth_open"):
        render_face_video(1, "happy", 1, 5, mouth_open=np.array([0.1, np.nan, 0.2, 0.1, 0.0]))
    with pytest.raises(ValueError, match="actor"):
        render_face_video(0, "happy", 1, 5)


def test_mouth_open_is_resampled_to_n_frames():
    frames = render_face_video(1, "calm", 1, 12, size=SMALL, mouth_open=np.linspace(0, 1, 7))
    assert frames.shape[0] == 12


# ---------------------------------------------------------------------------------------------- expressions


def test_expression_table():
    assert set(EXPRESSIONS) == set(EMOTIONS)
    for emotion, aus in EXPRESSIONS.items():
        assert set(aus) <= set(ACTION_UNITS), emotion
    assert not np.any(expression_peak("neutral"))
    np.testing.assert_allclose(expression_peak("happy", 2), 1.6 * expression_peak("happy", 1))
    # neighbours share action units (confusable), distinct emotions differ
    def cos(a, b):
        pa, pb = expression_peak(a), expression_peak(b)
        return pa @ pb / np.linalg.norm(pa) / np.linalg.norm(pb)
    assert cos("fearful", "surprised") > 0.4 and cos("angry", "disgust") > 0.3
    assert cos("happy", "sad") < 0.1


def _expression_change(actor: int, emotion: str, intensity: int) -> float:
    """Mean |peak frame − first (neutral) frame| over the face, within one clip and without speech."""
    n = 24
    frames = render_face_video(actor, emotion, intensity, n, size=SMALL, mouth_open=np.zeros(n))
    face = frames[:, 30:140, 110:210].astype(float)
    return float(np.abs(face[14] - face[0]).mean())


def test_strong_intensity_moves_the_face_more_than_normal():
    cases = [(a, e) for a in range(1, 9) for e in ("happy", "surprised", "angry", "fearful", "sad")]
    normal = np.mean([_expression_change(a, e, 1) for a, e in cases])
    strong = np.mean([_expression_change(a, e, 2) for a, e in cases])
    calm = np.mean([_expression_change(a, "neutral", 1) for a in range(1, 9)])
    assert strong > 1.15 * normal > 1.15 * calm, (strong, normal, calm)


def test_time_course_ramps_in_holds_and_partly_relaxes():
    n = 60
    for actor in (2, 3):
        frames = render_face_video(actor, "surprised", 2, n, size=SMALL, mouth_open=np.zeros(n))
        face = frames[:, 30:140, 110:210].astype(float)
        d = np.abs(face - face[0]).mean(axis=(1, 2, 3))  # change from the neutral first frame
        peak = d[int(0.6 * n)]
        assert peak > 3 * d[2], d  # neutral at the start
        assert d[-1] < peak, d  # relaxing at the end


def test_consecutive_frames_differ():
    frames = render_face_video(4, "calm", 1, 40, size=SMALL, mouth_open=_env(40))
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert np.all(diffs > 0)
    assert np.median(diffs) > 0.02


def test_speech_envelope_opens_the_mouth():
    n = 30
    dark = []
    for env in (np.zeros(n), np.ones(n)):
        total = 0.0
        for actor in (1, 2, 3):
            frames = render_face_video(actor, "neutral", 1, n, size=(640, 360), mouth_open=env)
            grey = cv2.cvtColor(frames[20], cv2.COLOR_RGB2GRAY)
            total += float((grey[190:260, 280:360] < 70).mean())  # the lower face
        dark.append(total)
    assert dark[1] > dark[0] + 0.01


def test_haar_cascade_finds_the_face():
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    hits, heights = 0, []
    for actor in range(1, 9):
        for emotion in ("neutral", "happy", "surprised"):
            frame = render_face_video(actor, emotion, 1, 16, size=SMALL, mouth_open=_env(16, actor))[10]
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            found = cascade.detectMultiScale(grey, 1.1, 5, minSize=(36, 36))
            if len(found):
                hits += 1
                heights.append(max(f[3] for f in found) / SMALL[1])
    assert hits >= 0.8 * 24, hits
    assert 0.25 < np.median(heights) < 0.6  # the face takes roughly 35–45 % of the frame height


def test_contact_sheet(tmp_path):
    sheet = contact_sheet((1, 2), size=(160, 90), n_frames=20)
    assert sheet.shape == (2 * 90, 8 * 90, 3) and sheet.dtype == np.uint8
    assert cv2.imwrite(str(tmp_path / "faces.png"), sheet[..., ::-1])


# ---------------------------------------------------------------------------------------------- calibration


def _quick_clip_features(seed: int, frames_range=(95, 111)):
    """Quick-corpus layout rendered directly; the corpus baseline's face features and the colour control."""
    face, colour, labels, actors = [], [], [], []
    for actor in range(1, 9):
        for label, emotion in enumerate(EMOTIONS):
            for take, intensity in enumerate((1, 1) if emotion == "neutral" else (1, 2)):
                rng = np.random.default_rng([seed, actor, label, take])
                n = int(rng.integers(*frames_range))
                frames = render_face_video(actor, emotion, intensity, n, size=SMALL, seed=seed,
                                           mouth_open=_env(n, seed * 1000 + actor * 20 + label * 2 + take),
                                           variant=take)
                idx = np.linspace(0, n - 1, 8).round().astype(int)
                sampled = frames[idx]
                t, h, w, _ = sampled.shape
                crop = sampled[:, int(0.08 * h) : int(0.78 * h), int(0.5 * w - 0.25 * h) : int(0.5 * w + 0.25 * h)]
                grey = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (24, 24), interpolation=cv2.INTER_AREA)
                                 for f in crop]).astype(np.float32) / 255
                face.append(np.concatenate([grey[2:6].mean(0).ravel(), np.abs(np.diff(grey, axis=0)).mean(0).ravel()]))
                per_frame = frames.reshape(n, -1, 3).mean(1)
                colour.append(np.concatenate([per_frame.mean(0), per_frame.std(0)]))
                labels.append(label)
                actors.append(actor)
    return np.array(face), np.array(colour), np.array(labels), np.array(actors)


def _loao(x, y, groups) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # tol=1e-2: same accuracies as the default tolerance here, ~5x faster
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000, tol=1e-2))
    return float(np.mean(cross_val_score(model, x, y, groups=groups, cv=LeaveOneGroupOut())))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_emotion_learnable_from_pixels_but_not_from_colour(seed, record_property):
    # ~half-length clips (48–56 frames instead of ~100) keep the three seeds within ~30 s; the full-length
    # numbers are in benchmarks/calibrate_face.py and the corpus-level test (test_synthetic_corpus.py)
    face, colour, labels, actors = _quick_clip_features(seed, frames_range=(48, 57))
    acc_face, acc_colour = _loao(face, labels, actors), _loao(colour, labels, actors)
    record_property("face_loao", acc_face)
    record_property("colour_loao", acc_colour)
    print(f"seed {seed}: face baseline {acc_face:.3f}, mean-colour control {acc_colour:.3f} (chance 0.125)")
    assert 0.35 <= acc_face <= 0.85, acc_face
    assert acc_colour <= 0.25, acc_colour
