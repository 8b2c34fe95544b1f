"""merlib.widgets: the acoustic lab builds headless, and each control change re-simulates and re-classifies."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch

from merlib.acoustics import drr_db
from merlib.analysis import EvalClip
from merlib.models.mer import build_model
from merlib.widgets import AcousticLab, LabSettings, lab_scene

PNG = b"\x89PNG\r\n\x1a\n"


def test_lab_scene_geometry():
    scene = lab_scene(6.0, 4.0, 2.9, 0.7, 1.5)
    assert scene.distance == pytest.approx(np.linalg.norm(scene.mics.mean(0) - scene.src))
    assert scene.distance == 1.5 and scene.t60 == 0.7
    assert np.allclose(scene.src, [2.0, 2.0, 1.75]) and np.allclose(scene.mics[:, 2], 1.6)
    assert np.all(scene.mics[:, :2] >= 0.1) and np.all(scene.mics[:, :2] <= scene.room_dim[:2] - 0.1)
    assert scene.critical_distance == pytest.approx(0.0566 * np.sqrt(6 * 4 * 2.9 / 0.7), rel=2e-3)
    # too far straight ahead: the phone is turned until it fits, then refused when nothing fits
    turned = lab_scene(6.0, 6.0, 2.9, 0.7, 4.2)
    assert turned.distance == 4.2 and abs(turned.array_center[1] - 3.0) > 1.0
    with pytest.raises(ValueError, match="does not fit"):
        lab_scene(6.0, 4.0, 2.9, 0.7, 5.9)
    with pytest.raises(ValueError, match="height difference"):
        lab_scene(6.0, 4.0, 2.9, 0.7, 0.1)
    with pytest.raises(ValueError):
        lab_scene(12.0, 12.0, 5.0, 0.15, 1.0)  # too dry for Sabine in a room this large


def _clips(n: int = 2, frames: int = 4, size: int = 32) -> list[EvalClip]:
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        t = np.arange(32000) / 16000
        tone = np.sin(2 * np.pi * (150 + 60 * i) * t) * (rng.random(32000) > 0.3)
        out.append(EvalClip(f"01-01-0{i + 1}-01-01-01-03", i, 3, (0.2 * tone).astype(np.float32),
                            torch.randn(3, frames, size, size, generator=g)))
    return out


@pytest.fixture(scope="module")
def lab():
    torch.manual_seed(0)
    models = {name: build_model(name, "quick") for name in ("audio_rev_sc", "audio_sum_pe", "mer_sum_pe")}
    return AcousticLab(_clips(), models, LabSettings(length=6.0, width=4.5, t60=0.5, distance=1.0), seed=0)


def _check(lab: AcousticLab, mics: int) -> None:
    r = lab.result
    assert r.error is None
    assert r.reverberant.shape == (mics, 32000) and r.rirs.shape[0] == mics
    audio, fs = sf.read(io.BytesIO(r.audio_wav))
    assert fs == 16000 and audio.shape == (32000,) and 0.8 < np.abs(audio).max() <= 0.91
    assert r.figure_png[:8] == PNG and r.probabilities_png[:8] == PNG
    assert lab.audio.value == r.audio_wav and lab.figure.value == r.figure_png
    assert set(r.probabilities) == {"audio_rev_sc", "audio_sum_pe", "mer_sum_pe"}
    for p in r.probabilities.values():
        assert p.shape == (8,) and np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_lab_builds_headless(lab):
    assert lab.updates == 1
    _check(lab, 3)
    bundle = lab._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in (bundle[0] if isinstance(bundle, tuple) else bundle)
    assert "d / d<sub>c</sub>" in lab.status.value


def test_callbacks_follow_the_room_the_distance_and_the_microphones(lab):
    start = lab.result
    lab.controls["length"].value = 9.0
    assert lab.updates == 2 and lab.result.scene.room_dim[0] == 9.0
    _check(lab, 3)

    lab.controls["t60"].value = 1.2
    _check(lab, 3)
    assert lab.result.scene.t60 == 1.2 and lab.result.rirs.shape[1] > start.rirs.shape[1]  # a longer tail
    assert not np.allclose(lab.result.probabilities["audio_sum_pe"], start.probabilities["audio_sum_pe"])

    near = lab.result
    lab.controls["distance"].value = 3.0
    _check(lab, 3)
    assert lab.result.scene.distance == 3.0
    # farther from the source: less direct sound against the same reverberant field
    assert drr_db(lab.result.rirs[0], 16000) < drr_db(near.rirs[0], 16000) - 3

    before = lab.result.probabilities
    lab.controls["num_mics"].value = 1
    _check(lab, 1)
    assert np.allclose(lab.result.probabilities["audio_rev_sc"], before["audio_rev_sc"], atol=1e-6)  # reads mic 1 only
    assert lab.models["audio_sum_pe"].num_mics == 3 and lab.models["mer_sum_pe"].audio.num_mics == 3  # restored

    lab.controls["clip"].value = 1
    _check(lab, 1)
    assert lab.updates == 6


def test_impossible_settings_are_reported_and_keep_the_last_sound(lab):
    lab.controls["distance"].value = 1.0
    lab.controls["length"].value = 4.0
    lab.controls["width"].value = 3.0
    assert lab.result.error is None
    audio, figure = lab.audio.value, lab.figure.value
    lab.controls["distance"].value = 5.5
    assert lab.result.error and "does not fit" in lab.result.error and "does not fit" in lab.status.value
    assert lab.audio.value == audio and lab.figure.value == figure  # the panel keeps the last good state
    lab.controls["distance"].value = 1.0
    assert lab.result.error is None and "d / d<sub>c</sub>" in lab.status.value


def test_a_video_model_needs_frames():
    clips = [EvalClip("x", 0, 1, np.zeros(16000, np.float32))]
    with pytest.raises(ValueError, match="frames"):
        AcousticLab(clips, {"mer_sum_pe": build_model("mer_sum_pe", "quick")})
    with pytest.raises(ValueError, match="at least one clip"):
        AcousticLab([], {})
    only_sound = AcousticLab(clips, {})
    assert only_sound.result.probabilities == {} and only_sound.result.audio_wav[:4] == b"RIFF"


def test_the_video_half_is_computed_once_per_clip_and_changes_nothing(lab):
    """The controls change only the audio: the lab keeps each clip's video embedding (MER) and video logits,
    and what it shows equals the models run on the whole clip."""
    from merlib.models.mer import forward_logits

    lab.controls["num_mics"].value = 3
    lab.controls["clip"].value = 0
    r = lab.result
    clip = lab.clips[0]
    model = lab.models["mer_sum_pe"]
    with torch.no_grad():
        direct = forward_logits(model, "mer_sum_pe", {"waveform": torch.from_numpy(r.reverberant)[None],
                                                       "video": clip.video[None]}).softmax(-1)[0].numpy()
    assert np.allclose(r.probabilities["mer_sum_pe"], direct, atol=1e-5)
    assert ("mer_sum_pe", clip.clip_id) in lab._video_cache
    cached = len(lab._video_cache)
    lab.controls["t60"].value = 0.8
    assert len(lab._video_cache) == cached  # the same clip: nothing new to compute
