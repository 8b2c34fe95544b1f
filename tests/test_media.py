"""Decoding and encoding wav and mp4 in the formats RAVDESS uses."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from merlib.data.media import (MediaError, audio_info, copy_video_stream, read_audio, read_video, video_info,
                               write_audio, write_av)

SR = 48000


def _tone(seconds=1.0, f=300.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.25 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _moving_frames(n=12, h=36, w=64):
    frames = np.full((n, h, w, 3), 30, np.uint8)
    for i in range(n):
        frames[i, :, 4 * i : 4 * i + 8] = 220  # a bright bar moving right
    return frames


def test_wav_round_trip_and_resampling(tmp_path):
    audio = _tone()
    write_audio(tmp_path / "a.wav", audio, SR)
    info = audio_info(tmp_path / "a.wav")
    assert (info.sample_rate, info.channels, info.frames) == (SR, 1, SR)
    assert sf.info(str(tmp_path / "a.wav")).subtype == "PCM_16"
    y = read_audio(tmp_path / "a.wav", 16000)
    assert y.dtype == np.float32 and y.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 300) < 2
    np.testing.assert_allclose(read_audio(tmp_path / "a.wav", None), audio, atol=1e-4)


def test_mp4_round_trip_h264_aac(tmp_path):
    frames, audio = _moving_frames(), _tone(12 / 30)
    write_av(tmp_path / "v.mp4", frames, 30, audio, SR)
    info = video_info(tmp_path / "v.mp4")
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert (info["width"], info["height"], info["frames"], info["fps"], info["audio_rate"]) == (64, 36, 12, 30.0, SR)
    video = read_video(tmp_path / "v.mp4")
    assert video.frames.shape == (12, 36, 64, 3) and video.frames.dtype == np.uint8 and video.fps == 30
    assert np.abs(video.frames.astype(int) - frames).mean() < 8  # lossy but close
    assert np.argmax(video.frames[5, 18, :, 0]) in range(18, 30)
    picked = read_video(tmp_path / "v.mp4", indices=np.array([0, 11]))
    np.testing.assert_array_equal(picked.frames[1], video.frames[11])
    again = read_video(tmp_path / "v.mp4", indices=[11, 0, 11])  # any order, repeats allowed
    np.testing.assert_array_equal(again.frames, video.frames[[11, 0, 11]])
    with pytest.raises(MediaError, match="ends before frame 50"):
        read_video(tmp_path / "v.mp4", indices=[0, 50])
    sound = read_audio(tmp_path / "v.mp4", 16000)
    assert abs(len(sound) - 16000 * 12 / 30) < 1200  # AAC adds up to one frame of priming
    assert 0.15 < np.abs(sound).max() < 0.4


def test_video_only_copy_keeps_the_stream_bit_exact(tmp_path):
    write_av(tmp_path / "v.mp4", _moving_frames(), 30, _tone(0.4), SR)
    copy_video_stream(tmp_path / "v.mp4", tmp_path / "copy.mp4")
    assert video_info(tmp_path / "copy.mp4")["audio_codec"] is None
    np.testing.assert_array_equal(read_video(tmp_path / "copy.mp4").frames, read_video(tmp_path / "v.mp4").frames)


def test_corrupt_and_truncated_files_are_named(tmp_path):
    bad = tmp_path / "03-01-01-01-01-01-01.wav"
    bad.write_bytes(b"RIFF\x00\x00not really a wav")
    with pytest.raises(MediaError, match="03-01-01-01-01-01-01.wav"):
        read_audio(bad)
    write_av(tmp_path / "v.mp4", _moving_frames(), 30, _tone(0.4), SR)
    data = (tmp_path / "v.mp4").read_bytes()
    trunc = tmp_path / "01-01-01-01-01-01-01.mp4"
    trunc.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError, match="01-01-01-01-01-01-01.mp4"):
        read_video(trunc)


def test_writers_refuse_bad_frames_and_leave_no_partial_file(tmp_path):
    with pytest.raises(ValueError, match="even width"):
        write_av(tmp_path / "odd.mp4", np.zeros((2, 35, 64, 3), np.uint8), 30)
    with pytest.raises(ValueError, match="uint8"):
        write_av(tmp_path / "f.mp4", np.zeros((2, 36, 64, 3), np.float32), 30)
    assert list(tmp_path.iterdir()) == []
