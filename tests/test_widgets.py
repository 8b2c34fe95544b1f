"""merlib.widgets: the acoustic lab builds headless, and each control change re-simulates and re-classifies."""

from __future__ import annotations

import html
import io
import re

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


# -- the layout: readable from 1000 to 1920 px ------------------------------------------------------------------


def _px(size: str) -> int:
    assert size.endswith("px"), size
    return int(size[:-2])


def test_the_layout_keeps_labels_readouts_and_the_status_whole(lab):
    """What keeps the panel readable in JupyterLab at any width from 1000 to 1920 px: the control column never
    shrinks (a box's overflow is clipped, so a squeezed column cut labels and readouts), the right-hand column takes
    what is left and may shrink, the status wraps inside it, and the row wraps on a narrow page. The browser test
    in tests/test_jupyterlab.py measures the result in JupyterLab."""
    from merlib.widgets import CONTROL_WIDTH, LABEL_WIDTH

    top, figure, probabilities = lab.panel.children
    controls, right = top.children
    assert top.layout.flex_flow == "row wrap" and top.layout.width == "100%"
    # the control column: a fixed width it is never squeezed below
    assert controls.layout.flex == "0 0 auto" and controls.layout.width == controls.layout.min_width == CONTROL_WIDTH
    # labels as wide as the longest description at JupyterLab's 13 px widget font (at most 7.5 px a character),
    # and room beside them for a slider and its widest readout (JupyterLab's readout is at most 142 px wide)
    longest = max(len(c.description) for c in lab.controls.values())
    assert _px(LABEL_WIDTH) >= 7.5 * longest
    assert _px(CONTROL_WIDTH) >= _px(LABEL_WIDTH) + 8 + 100 + 142
    for name, control in lab.controls.items():
        assert control in controls.children, name
        # the column (a flex column) stretches each control to its width: "100%" plus the margins would overflow
        assert control.style.description_width == LABEL_WIDTH and control.layout.width == "auto", name
    assert lab.upload.layout.width == "auto"  # the button shows its whole text
    # the right-hand column: flexible, may shrink to nothing (its text wraps), beside the controls while 300 px
    # are left and below them otherwise
    assert right.layout.flex == "1 1 300px" and right.layout.min_width == "0"
    assert lab.status in right.children and lab.status.layout.min_width == "0" and lab.status.layout.width == "auto"
    assert "white-space: normal" in lab.status.value and "overflow-wrap: anywhere" in lab.status.value
    listen = right.children[1]
    assert listen.layout.flex_flow == "row wrap" and all(p.layout.min_width == "0" for p in listen.children)
    # the figures shrink to the page's width
    assert figure.layout.max_width == probabilities.layout.max_width == "100%"


# -- your own sound --------------------------------------------------------------------------------------------


def _stereo_wav(seconds: float = 2.0, fs: int = 48000) -> bytes:
    """A 48 kHz stereo wav: 440 Hz on the left, 1000 Hz on the right."""
    t = np.arange(int(seconds * fs)) / fs
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1000 * t)], axis=1)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), fs, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _upload(lab: AcousticLab, name: str, data: bytes, kind: str = "audio/wav") -> None:
    """Choose a file in the upload button, as ipywidgets 8's front end reports it."""
    import datetime

    lab.upload.value = ({"name": name, "type": kind, "size": len(data), "content": memoryview(data),
                         "last_modified": datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)},)


def test_load_clip_prepares_a_sound_as_the_corpus_clips():
    from merlib.widgets import load_clip

    clip = load_clip(_stereo_wav(), "me.wav")
    assert clip.clip_id == "me.wav" and clip.label is None and clip.actor is None and clip.video is None
    assert clip.emotion == "unknown"
    assert clip.waveform.dtype == np.float32 and clip.waveform.shape == (64000,)  # 4 s at 16 kHz
    assert not np.any(clip.waveform[32000:])  # 2 s of sound, zero-padded
    spectrum = np.abs(np.fft.rfft(clip.waveform[:32000]))  # 0.5 Hz bins at 16 kHz
    assert {int(np.argmax(spectrum[600:1000])) + 600, int(np.argmax(spectrum[1600:2400])) + 1600} == {880, 2000}
    # longer sounds are cut to 4 s; mp3 and ogg decode too
    for fmt, subtype in (("MP3", "MPEG_LAYER_III"), ("OGG", "VORBIS")):
        buf = io.BytesIO()
        sf.write(buf, 0.3 * np.sin(np.arange(6 * 44100) / 7.0).astype(np.float32), 44100, format=fmt, subtype=subtype)
        assert load_clip(buf.getvalue(), f"long.{fmt.lower()}").waveform.shape == (64000,)


def test_load_clip_reads_the_sound_of_an_mp4(tmp_path):
    from merlib.data.media import write_av
    from merlib.widgets import load_clip

    t = np.arange(48000 * 2) / 48000
    write_av(tmp_path / "talk.mp4", np.zeros((4, 32, 32, 3), np.uint8), 2, 0.3 * np.sin(2 * np.pi * 300 * t))
    for source in (tmp_path / "talk.mp4", (tmp_path / "talk.mp4").read_bytes()):
        clip = load_clip(source, "talk.mp4")
        assert clip.waveform.shape == (64000,) and np.abs(clip.waveform[:30000]).max() > 0.1


def test_your_own_sound_becomes_the_clip_and_every_model_runs_on_it(lab):
    lab.controls["num_mics"].value = 3
    lab.controls["clip"].value = 0
    before, n_clips = lab.result, len(lab.clips)
    _upload(lab, "my voice.wav", _stereo_wav())
    r = lab.result
    assert lab.upload_error is None and r is not before and r.error is None
    assert len(lab.clips) == n_clips + 1 and r.settings.clip == n_clips == lab.controls["clip"].value
    assert lab.clips[-1].clip_id == "my voice.wav" and lab.clips[-1].label is None
    assert ("my voice.wav · your sound, emotion unknown", n_clips) in lab.controls["clip"].options
    # the room heard the new sound: 16 kHz, 4 s
    clean, fs = sf.read(io.BytesIO(r.clean_wav))
    assert fs == 16000 and clean.shape == (64000,) and r.reverberant.shape == (3, 64000)
    # the audio models ran on it and changed their minds; MER reads the face, which a sound has not
    assert set(r.probabilities) == {"audio_rev_sc", "audio_sum_pe"} and r.not_run == ["mer_sum_pe"]
    for name, p in r.probabilities.items():
        assert p.shape == (8,) and p.sum() == pytest.approx(1.0, abs=1e-5)
        assert not np.allclose(p, before.probabilities[name], atol=1e-4), name
    assert r.probabilities_png[:8] == PNG and lab.probability_image.value == r.probabilities_png
    assert "no face video" in lab.status.value and "d / d<sub>c</sub>" in lab.status.value
    assert lab.upload.value == ()  # cleared, so that the same file can be chosen again
    # the controls keep working on it, and the same file again selects it rather than adding it twice
    lab.controls["t60"].value = 0.9
    assert lab.result.settings.clip == n_clips and lab.result.error is None
    lab.controls["clip"].value = 0
    _upload(lab, "my voice.wav", _stereo_wav())
    assert len(lab.clips) == n_clips + 1 and lab.controls["clip"].value == n_clips
    # headless, without the button; another sound of the same name is added under a new name
    lab.add_clip_file(_stereo_wav(1.0), name="my voice.wav")
    assert lab.clips[-1].clip_id == "my voice.wav (2)" and lab.result.settings.clip == len(lab.clips) - 1


@pytest.mark.parametrize("name, data, why", [
    ("notes.wav", b"these are my notes, not a sound\n" * 20, "cannot decode notes.wav as audio"),
    ("empty.wav", b"", "empty.wav is empty (0 bytes)"),
    ("cut.wav", _stereo_wav()[:44], "cut.wav holds no samples (truncated?)"),
    ("cut.flac", b"fLaC\x00\x00\x00\x22", "cannot decode cut.flac as audio"),
    ("quiet.wav", _stereo_wav()[:44] + bytes(4000), "are silent"),
    ("fake.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(100), "cannot decode fake.mp4"),
])
def test_a_file_that_cannot_be_used_is_reported_and_keeps_the_clip(lab, name, data, why):
    from merlib.errors import MediaError

    lab.controls["clip"].value = 1
    before, n_clips, updates = lab.result, len(lab.clips), lab.updates
    _upload(lab, name, data)
    assert why in lab.upload_error and why in html.unescape(lab.status.value) and "⚠" in lab.status.value
    assert "Traceback" not in lab.status.value and "/tmp" not in lab.upload_error  # names the user's file only
    assert lab.result is before and lab.updates == updates and lab.controls["clip"].value == 1
    assert len(lab.clips) == n_clips and lab.upload.value == ()
    with pytest.raises(MediaError, match=re.escape(why)):
        lab.add_clip_file(data, name=name)
    assert lab.result is before
