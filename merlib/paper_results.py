"""The paper's published numbers as data, so merlib's results can be printed beside them.

Notebook: 06_fusion_training.ipynb

Source: Cohen, Hazan & Gannot, "Multi-Microphone and Multi-Modal Emotion Recognition in Reverberant
Environment", Table I (clean RAVDESS) and Table II (RAVDESS test actors convolved with the measured ACE
"Mobile" RIRs, near position), copied verbatim from the authors' README table
(``docs/reference-model.md`` §1.14). Everything here is in **percent**, as published.

How to read these numbers:

- The test set was 180 clips (3 actors × 60 speech clips), so every accuracy is a multiple of 1/180 = 0.56 %,
  *truncated* (not rounded) to one decimal: 77/180 = 42.78 % is printed "42.7".
- The intervals are 75 % bootstrap intervals over clips (1000 resamples, percentiles 12.5 and 87.5) from the
  ``confidence-intervals`` package — :func:`merlib.evaluation.accuracy_ci` with its defaults reproduces them
  from 180 predictions (e.g. 125/180 correct → 69.4 [65.6, 73.3]).
- One published value has two decimals (Lobby, audio Avg mel, upper bound 67.22); it is kept as printed.
- The video-only model does not see the audio, so the paper prints its result once (Lecture 1) and "*" for
  the other rooms; :data:`TABLE_II` repeats it for every room (:data:`VIDEO_SAME_FOR_ALL_ROOMS`).
- Which ACE position (1 or 2, or an average) the table reports is not stated; the paper says near field.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "PublishedCI",
    "MODEL_NAMES",
    "MODEL_LABELS",
    "ROOM_NAMES",
    "ROOM_T60_MS",
    "TABLE_I_CLEAN_MER",
    "TABLE_I",
    "TABLE_II",
    "TEST_CLIPS",
    "VIDEO_SAME_FOR_ALL_ROOMS",
    "published",
]


class PublishedCI(NamedTuple):
    """One published cell: accuracy and its 75 % bootstrap interval, all in percent, exactly as printed.

    ``low``/``high`` are ``None`` where the paper gives no interval (Table I).
    """

    accuracy: float
    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        # ``g`` prints the value as published: 60 stays "60", 67.22 stays "67.22".
        if self.low is None or self.high is None:
            return f"{self.accuracy:g}"
        return f"{self.accuracy:g} [{self.low:g}, {self.high:g}]"


#: Table II columns in the paper's order: merlib's model names.
MODEL_NAMES: tuple[str, ...] = (
    "video",
    "audio_clean_sc",
    "audio_rev_sc",
    "audio_avg_mel",
    "audio_sum_pe",
    "mer_clean_sc",
    "mer_rev_sc",
    "mer_avg_mel",
    "mer_sum_pe",
)

#: Column headings as the paper words them ("SC" = single channel; clean-SC was trained on clean audio,
#: rev-SC on reverberant audio; Avg mel and Sum PE are the two 3-microphone models).
MODEL_LABELS: dict[str, str] = {
    "video": "Video",
    "audio_clean_sc": "Audio clean-SC",
    "audio_rev_sc": "Audio rev-SC",
    "audio_avg_mel": "Audio Avg mel",
    "audio_sum_pe": "Audio Sum PE",
    "mer_clean_sc": "MER clean-SC",
    "mer_rev_sc": "MER rev-SC",
    "mer_avg_mel": "MER Avg mel",
    "mer_sum_pe": "MER Sum PE",
}

#: Table II rows in the paper's order (the same names as ``merlib.data.ace.TEST_ROOM_NAMES``).
ROOM_NAMES: tuple[str, ...] = (
    "Lecture 1",
    "Lecture 2",
    "Lobby",
    "Meeting 1",
    "Meeting 2",
    "Office 1",
    "Office 2",
)

#: The T60 (ms) printed beside each room in Table II.
ROOM_T60_MS: dict[str, int] = {
    "Lecture 1": 638,
    "Lecture 2": 1220,
    "Lobby": 646,
    "Meeting 1": 437,
    "Meeting 2": 371,
    "Office 1": 332,
    "Office 2": 390,
}

#: Clips in the paper's test set (3 actors × 60), inferred from every accuracy being a multiple of 1/180.
TEST_CLIPS = 180

#: Table I: the single-channel MER on clean RAVDESS (no interval is published for it).
TABLE_I_CLEAN_MER = PublishedCI(80.00)
#: Table I as a mapping, keyed like :data:`TABLE_II` (``condition -> model -> cell``).
TABLE_I: dict[str, dict[str, PublishedCI]] = {"clean": {"mer_clean_sc": TABLE_I_CLEAN_MER}}

#: The paper prints the video-only result once ("*" in the other rows); see the module docstring.
VIDEO_SAME_FOR_ALL_ROOMS = True

_P = PublishedCI
_VIDEO = _P(69.4, 65.5, 73.3)

# Rows are rooms, columns MODEL_NAMES after "video": audio clean-SC, rev-SC, Avg mel, Sum PE, then MER the same.
_ROWS: dict[str, tuple[PublishedCI, ...]] = {
    "Lecture 1": (_P(42.7, 38.8, 47.2), _P(60, 55.5, 64.4), _P(61.6, 57.7, 65.5), _P(61.1, 57.2, 65),
                  _P(70, 66.1, 73.8), _P(75, 71.1, 78.8), _P(77.2, 73.3, 81.1), _P(78.3, 74.4, 81.6)),
    "Lecture 2": (_P(40.5, 36.6, 45), _P(55, 50.5, 59.4), _P(60.5, 56.1, 64.4), _P(58.8, 54.9, 62.8),
                  _P(71.6, 67.7, 75.5), _P(76.1, 72.7, 79.4), _P(76.1, 72.7, 80), _P(78.3, 75, 81.6)),
    "Lobby": (_P(40.5, 36.6, 45), _P(57.2, 53.3, 61.1), _P(63.3, 59.4, 67.22), _P(69.4, 65.5, 73.3),
              _P(68.3, 64.4, 72.2), _P(73.3, 69.4, 77.2), _P(77.2, 73.3, 81.1), _P(77.7, 74.4, 81.1)),
    "Meeting 1": (_P(42.7, 38.8, 46.6), _P(57.2, 53.3, 61.1), _P(60, 56.1, 63.8), _P(61.1, 57.2, 65),
                  _P(70, 66.1, 73.8), _P(72.7, 68.8, 76.6), _P(77.2, 73.8, 81.1), _P(78.8, 75.5, 82.2)),
    "Meeting 2": (_P(38.8, 34.4, 42.7), _P(56.1, 51.6, 60.5), _P(62.7, 58.8, 66.6), _P(59.4, 55.5, 63.8),
                  _P(71.1, 67.2, 75), _P(75, 71.1, 78.8), _P(78.8, 75.5, 82.2), _P(75.5, 71.6, 78.8)),
    "Office 1": (_P(42.7, 38.3, 46.6), _P(59.4, 55, 63.3), _P(62.7, 58.8, 68.3), _P(63.3, 58.8, 67.2),
                 _P(70, 66.1, 73.8), _P(75, 71.1, 78.8), _P(77.7, 74.4, 81.6), _P(77.2, 73.8, 80.5)),
    "Office 2": (_P(47.7, 43.3, 52.2), _P(56.6, 52.2, 60.5), _P(64.4, 60.5, 68.3), _P(60.5, 56.6, 64.4),
                 _P(68.8, 65, 72.7), _P(70, 66.1, 73.8), _P(74.4, 70.5, 78.3), _P(75.5, 71.6, 78.8)),
}

#: Table II: ``TABLE_II[model][room] -> PublishedCI`` (percent), for the nine models and seven rooms.
TABLE_II: dict[str, dict[str, PublishedCI]] = {
    model: {room: (_VIDEO if model == "video" else _ROWS[room][i - 1]) for room in ROOM_NAMES}
    for i, model in enumerate(MODEL_NAMES)
}


def published(model: str, room: str) -> PublishedCI | None:
    """The paper's cell for ``model`` in ``room`` (``"clean"`` looks in Table I); ``None`` if it has none.

    Raises ``KeyError`` for a model name the paper does not have, listing the valid names.
    """
    if model not in MODEL_NAMES:
        raise KeyError(f"unknown model name {model!r}; the paper's are: {', '.join(MODEL_NAMES)}")
    if room in TABLE_I:
        return TABLE_I[room].get(model)
    return TABLE_II[model].get(room)
