"""Simple baselines that check the synthetic corpus carries learnable, non-trivial emotion signal.

Notebook: 00_data_tour.ipynb

Each baseline reads the corpus through the same decoders as the real RAVDESS, builds a small feature
vector per clip and scores a standardised logistic regression with leave-one-actor-out cross-validation
(every fold tests on an actor it never saw, like the paper's actor-independent split):

- ``audio``: mean and standard deviation over time of each log-mel bin (64 bins, 16 kHz);
- ``video``: 8 evenly spaced frames, centre face region, 24×24 grey, averaged over the middle frames and
  concatenated with their frame-to-frame change;
- ``colour``: each clip's mean RGB and its spread over time — a control that must stay near chance,
  because emotion is drawn in the face, not painted as a colour;
- ``sentence``: the statement (1 or 2) from the mean log-mel of four consecutive segments of the spoken
  part — the order of the sounds, which is what tells "Kids are talking" from "Dogs are sitting".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..media import read_audio, read_video, video_info
from ..ravdess import Clip


def spoken_logmel(audio: np.ndarray, sample_rate: int = 16000, n_mels: int = 64) -> np.ndarray:
    """64-band log-mel (25 ms window, 10 ms hop) of the spoken part: leading and trailing silence cut."""
    import torch
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=512, win_length=400, hop_length=160,
                                               n_mels=n_mels, f_min=50, f_max=sample_rate // 2)
    with torch.no_grad():
        spec = mel(torch.from_numpy(np.asarray(audio, dtype=np.float32)))
    logmel = torch.log10(spec + 1e-8).numpy()
    energy = logmel.mean(0)
    active = np.flatnonzero(energy > np.percentile(energy, 30))
    return logmel[:, active[0] : active[-1] + 1]


def logmel_stats(logmel: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time of each mel bin (the emotion baseline's features)."""
    return np.concatenate([logmel.mean(1), logmel.std(1)])


def logmel_segments(logmel: np.ndarray, segments: int = 4) -> np.ndarray:
    """Mean of each mel bin over ``segments`` consecutive stretches (the sentence baseline's features)."""
    return np.concatenate([part.mean(1) for part in np.array_split(logmel, segments, axis=1)])


def video_frames(clip_path, n: int = 8) -> np.ndarray:
    """``n`` frames sampled evenly over the whole clip, uint8 (n, H, W, 3)."""
    total = video_info(clip_path)["frames"]
    idx = np.unique(np.linspace(0, total - 1, n).round().astype(int))
    return read_video(clip_path, indices=idx).frames


def face_features(frames: np.ndarray, size: int = 24) -> np.ndarray:
    """Centre crop (the face region), grey, ``size``×``size``: middle-frame average and motion energy."""
    import cv2

    t, h, w, _ = frames.shape
    crop = frames[:, int(0.08 * h) : int(0.78 * h), int(0.5 * w - 0.25 * h) : int(0.5 * w + 0.25 * h)]
    grey = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_AREA)
                     for f in crop]).astype(np.float32) / 255
    middle = grey[t // 4 : max(t // 4 + 1, 3 * t // 4)].mean(0)
    return np.concatenate([middle.ravel(), np.abs(np.diff(grey, axis=0)).mean(0).ravel()])


def colour_features(frames: np.ndarray) -> np.ndarray:
    """Mean RGB of each frame, averaged over the clip, and its standard deviation over time."""
    per_frame = frames.reshape(len(frames), -1, 3).mean(1)
    return np.concatenate([per_frame.mean(0), per_frame.std(0)])


@dataclass
class BaselineResult:
    accuracy: float
    per_fold: list[float]
    chance: float


def loao_accuracy(features: np.ndarray, labels: Sequence[int], actors: Sequence[int], C: float = 0.5) -> BaselineResult:
    """Leave-one-actor-out accuracy of a standardised logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    scores = cross_val_score(model, features, np.asarray(labels), groups=np.asarray(actors), cv=LeaveOneGroupOut())
    return BaselineResult(float(np.mean(scores)), [float(s) for s in scores], 1.0 / len(set(labels)))


def corpus_baselines(clips: Sequence[Clip]) -> dict[str, BaselineResult]:
    """All four baselines on a scanned corpus (clips need both audio and video)."""
    audio, words, face, colour, labels, statements, actors = [], [], [], [], [], [], []
    for clip in clips:
        logmel = spoken_logmel(read_audio(clip.audio_path, 16000))
        audio.append(logmel_stats(logmel))
        words.append(logmel_segments(logmel))
        frames = video_frames(clip.video_path)
        face.append(face_features(frames))
        colour.append(colour_features(frames))
        labels.append(clip.meta.label)
        statements.append(clip.meta.statement)
        actors.append(clip.meta.actor)
    audio_x, face_x, colour_x = np.array(audio), np.array(face), np.array(colour)
    return {
        "audio": loao_accuracy(audio_x, labels, actors),
        "video": loao_accuracy(face_x, labels, actors),
        "colour": loao_accuracy(colour_x, labels, actors),
        "sentence": loao_accuracy(np.array(words), statements, actors),
    }
