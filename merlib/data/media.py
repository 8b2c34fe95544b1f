"""Reading and writing the corpus's media: wav with soundfile, mp4 (H.264 + AAC) with PyAV.

Notebook: 00_data_tour.ipynb

Everything returns plain numpy arrays: audio as float32 ``(N,)`` or ``(C, N)`` at the requested sample
rate, video as uint8 ``(T, H, W, 3)`` RGB frames plus the frame rate. A corrupt or truncated file raises
:class:`MediaError` naming the file; nothing here ever writes next to a file it reads.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path
from typing import Any, Iterator, Sequence

import av
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly


from ..errors import MediaError  # noqa: E402  (defined with merlib's other errors; imported from here too)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling along the last axis (float32 in, float32 out)."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(x, sr_out // g, sr_in // g, axis=-1).astype(np.float32)


#: Files decoded with PyAV (their audio track) rather than soundfile.
AV_AUDIO_SUFFIXES = (".mp4", ".m4a", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".aac")


def decode_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """All channels of a wav/flac/mp3/ogg (soundfile) or of a container's audio track (PyAV, by suffix):
    float32 ``(C, N)`` at the file's own sample rate, and that rate. Raises :class:`MediaError` naming the file
    when it cannot be decoded or holds no samples."""
    path = Path(path)
    if path.suffix.lower() in AV_AUDIO_SUFFIXES:
        data, sr = _read_audio_av(path)
    else:
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            why = getattr(err, "error_string", None) or str(err)  # libsndfile's reason, without the path again
            raise MediaError(f"cannot decode audio file {path}: {why.rstrip('.')}. Re-download or regenerate it, "
                             "or give a wav, flac, mp3, ogg or mp4 file.") from err
        data = data.T
    if data.shape[-1] == 0:
        raise MediaError(f"audio file {path} holds no samples (truncated?). Re-download or regenerate it.")
    return np.ascontiguousarray(data, dtype=np.float32), int(sr)


def read_audio(path: str | os.PathLike, sample_rate: int | None = 16000, mono: bool = True) -> np.ndarray:
    """Decode the audio of a wav/flac (soundfile) or an mp4's audio track (PyAV): :func:`decode_audio`, then

    float32 ``(N,)`` when ``mono`` (channels averaged) else ``(C, N)``, resampled to ``sample_rate``
    (``None`` keeps the file's rate; see :func:`audio_info`).
    """
    data, sr = decode_audio(path)
    if mono:
        data = data.mean(axis=0)
    return resample(data, sr, sample_rate) if sample_rate else data.astype(np.float32)


def _read_audio_av(path: Path) -> tuple[np.ndarray, int]:
    chunks = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path} has no audio track (is it a video-only '02-' file?)")
            stream = container.streams.audio[0]
            sr = stream.codec_context.sample_rate
            # planar float whatever the codec's native sample format (AAC decodes to fltp already)
            to_float = av.AudioResampler(format="fltp", rate=sr)
            for frame in container.decode(stream):
                for out in to_float.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in to_float.resample(None):
                chunks.append(out.to_ndarray())
    except av.error.FFmpegError as err:
        raise MediaError(f"cannot decode {path}: {err}. Re-download or regenerate it.") from err
    if not chunks:
        raise MediaError(f"{path} has an audio track with no decodable samples (truncated?)")
    return np.concatenate(chunks, axis=-1).astype(np.float32), sr


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Sample rate, channels and length from a wav/flac header (no decoding)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise MediaError(f"cannot read the header of {path}: {err}") from err
    return AudioInfo(info.samplerate, info.channels, info.frames)


@dataclass
class Video:
    """Decoded video: ``frames`` uint8 (T, H, W, 3) RGB and the stream's frame rate."""

    frames: np.ndarray
    fps: float

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def read_video(path: str | os.PathLike, indices: Sequence[int] | np.ndarray | None = None) -> Video:
    """Decode an mp4's video stream with PyAV into RGB frames.

    ``indices`` (frame numbers, in any order, repeats allowed) returns those frames in that order, decoding
    only as far as the last one and converting nothing else to RGB — the cheap way to take 8 frames of a
    clip. Raises :class:`MediaError` naming the file if it cannot be decoded, holds no frames, or ends before
    a wanted frame (a truncated file).
    """
    path = Path(path)
    wanted = None if indices is None else sorted(set(int(i) for i in indices))
    if wanted is not None and (not wanted or wanted[0] < 0):
        raise ValueError(f"indices must be non-negative frame numbers, got {list(indices)[:10]}")
    got: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate or stream.guessed_rate or 30)
            for i, frame in enumerate(container.decode(stream)):
                if wanted is None or i == wanted[len(got)]:
                    got[i] = frame.to_ndarray(format="rgb24")
                    if wanted is not None and len(got) == len(wanted):
                        break
    except av.error.FFmpegError as err:
        raise MediaError(f"cannot decode video {path}: {err}. Re-download or regenerate it.") from err
    if not got:
        raise MediaError(f"video {path} holds no decodable frames (truncated?). Re-download or regenerate it.")
    if wanted is not None and len(got) < len(wanted):
        raise MediaError(
            f"video {path} ends before frame {wanted[len(got)]} (its header promises more; truncated?). "
            "Re-download or regenerate it."
        )
    order = range(len(got)) if indices is None else indices
    return Video(np.stack([got[int(i)] for i in order]), fps)


def video_info(path: str | os.PathLike) -> dict:
    """Frame count, fps, size and codec names of an mp4 without decoding its frames."""
    path = Path(path)
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0] if c.streams.video else None
            a = c.streams.audio[0] if c.streams.audio else None
            return {
                "frames": v.frames if v else 0,
                "fps": float(v.average_rate) if v else None,
                "width": v.codec_context.width if v else None,
                "height": v.codec_context.height if v else None,
                "video_codec": v.codec_context.name if v else None,
                "audio_codec": a.codec_context.name if a else None,
                "audio_rate": a.codec_context.sample_rate if a else None,
                "audio_channels": a.codec_context.channels if a else None,
            }
    except av.error.FFmpegError as err:
        raise MediaError(f"cannot open {path}: {err}") from err


# ----------------------------------------------------------------------------------------------- writing


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    A crash or interruption never leaves a half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, data: Any, sort_keys: bool = False) -> None:
    """Write ``data`` as indented JSON atomically (non-JSON values such as paths are written as strings)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n")


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write ``(N,)`` or ``(C, N)`` float audio atomically (format from the extension: wav, flac)."""
    data = np.asarray(audio, dtype=np.float32)
    data = data.T if data.ndim == 2 else data
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=subtype, format=Path(path).suffix[1:].upper())


def write_av(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 48000,
    crf: int = 23,
    preset: str = "veryfast",
) -> None:
    """Encode RGB frames as H.264 (yuv420p) and, if given, mono audio as AAC into an mp4, atomically.

    The format of RAVDESS's full audio-video files. Width and height must be even (yuv420p).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3); got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 (yuv420p) needs an even width and height; got {w}x{h}")
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.options = {"crf": str(crf), "preset": preset}
            a_s = None
            if audio is not None:
                a_s = out.add_stream("aac", rate=sample_rate)
                a_s.layout = "mono"
            for img in frames:
                for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
            if a_s is not None:
                pcm = np.asarray(audio, dtype=np.float32).reshape(1, -1)
                block = 1024
                for start in range(0, pcm.shape[1], block):
                    af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, start : start + block]), format="fltp", layout="mono")
                    af.sample_rate = sample_rate
                    af.pts = start
                    af.time_base = Fraction(1, sample_rate)
                    for packet in a_s.encode(af):
                        out.mux(packet)
                for packet in a_s.encode():
                    out.mux(packet)


def copy_video_stream(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the video stream of ``src`` into a new mp4 without re-encoding (RAVDESS's ``02-`` files)."""
    with atomic_path(dst) as tmp:
        with av.open(str(src)) as inp, av.open(str(tmp), mode="w", format="mp4") as out:
            in_stream = inp.streams.video[0]
            out_stream = out.add_stream_from_template(in_stream)
            for packet in inp.demux(in_stream):
                if packet.dts is None:
                    continue
                packet.stream = out_stream
                out.mux(packet)
