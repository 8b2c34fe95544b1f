"""Predictions: a model's outputs on a set of clips, and the files that hold them.

Notebook: 06_fusion_training.ipynb writes them after training; 07_tsne_and_confusion.ipynb reads them back.

- :class:`Predictions` holds, for every clip, the logits, the true label, the actor, the clip id and the test
  condition (a room name such as ``"Lecture 1"``, or ``"clean"``); it scores itself (``.accuracy``) and
  splits by condition (``.by_condition()``).
- :func:`save_predictions` writes one ``predictions_<model>_<room>.npz`` per model and condition (the name
  from :func:`predictions_filename`); the model name is stored inside the file and strings are unicode
  arrays, so no pickle is needed to read it.
- :func:`load_predictions` reads one file, :func:`load_predictions_dir` a whole folder as
  ``{model: {room: Predictions}}`` — what ``merlib evaluate`` starts from.
- :func:`room_name` maps a condition as written in file names (``"lecture_1"``) to its Table II name
  (``"Lecture 1"``).

Needs only numpy: reading a folder of predictions does not load torch.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..paper_results import MODEL_NAMES, ROOM_NAMES

__all__ = [
    "Predictions",
    "load_predictions",
    "load_predictions_dir",
    "predictions_filename",
    "room_name",
    "save_predictions",
]


@dataclass(frozen=True)
class Predictions:
    """A model's outputs on a set of clips, with what is needed to score them.

    Attributes:
        logits: (N, K) float32 class scores.
        labels: (N,) true class index (RAVDESS emotion code − 1).
        actors: (N,) actor number.
        clip_ids: (N,) clip identifiers (strings).
        conditions: (N,) test condition of each clip — a room name (``"Lecture 1"``), ``"clean"``, …
    """

    logits: np.ndarray
    labels: np.ndarray
    actors: np.ndarray
    clip_ids: np.ndarray
    conditions: np.ndarray

    def __post_init__(self) -> None:
        logits = np.asarray(self.logits, dtype=np.float32)
        if logits.ndim != 2:
            raise ValueError(f"logits must be (clips, classes), got shape {logits.shape}")
        n = logits.shape[0]
        fields = {
            "labels": np.asarray(self.labels).astype(np.int64),
            "actors": np.asarray(self.actors).astype(np.int64),
            "clip_ids": np.asarray(self.clip_ids).astype(str),
            "conditions": np.asarray(self.conditions).astype(str),
        }
        for name, arr in fields.items():
            if arr.shape != (n,):
                raise ValueError(f"Predictions.{name} has shape {arr.shape}; expected ({n},), one per row of logits")
        object.__setattr__(self, "logits", logits)
        for name, arr in fields.items():
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def predicted(self) -> np.ndarray:
        """(N,) predicted class: the arg-max of the logits."""
        return self.logits.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        """Accuracy in percent."""
        return 100.0 * float(np.mean(self.predicted == self.labels)) if len(self) else math.nan

    @property
    def top_class_share(self) -> float:
        """The share (0–1) of clips given the most frequently predicted class: near 1 for a model that answers
        one class whatever it hears, 1/K for one whose predictions are spread like balanced labels."""
        return float(np.bincount(self.predicted).max() / len(self)) if len(self) else math.nan

    @property
    def condition(self) -> str:
        """The single condition of these clips; ``ValueError`` if they mix several (use :meth:`by_condition`)."""
        names = np.unique(self.conditions)
        if len(names) != 1:
            raise ValueError(f"these predictions hold {len(names)} conditions ({', '.join(names)}); "
                             "split them with .by_condition()")
        return str(names[0])

    def subset(self, mask: np.ndarray) -> Predictions:
        """The clips selected by a boolean mask or an index array."""
        return Predictions(self.logits[mask], self.labels[mask], self.actors[mask], self.clip_ids[mask],
                           self.conditions[mask])

    def by_condition(self) -> dict[str, Predictions]:
        """Split into one :class:`Predictions` per condition, in order of first appearance."""
        names = list(dict.fromkeys(self.conditions.tolist()))
        return {name: self.subset(self.conditions == name) for name in names}

    @classmethod
    def concat(cls, parts: Sequence[Predictions]) -> Predictions:
        """Join several :class:`Predictions` (e.g. the batches of :func:`predict`)."""
        if not parts:
            raise ValueError("nothing to concatenate: the list of Predictions is empty")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("logits", "labels", "actors", "clip_ids", "conditions")))


# ------------------------------------------------------------------------------------------------------------
# saving predictions
# ------------------------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


_ROOM_ALIASES = {**{name: name for name in ROOM_NAMES}, **{_slug(name): name for name in ROOM_NAMES}}


def room_name(condition: str) -> str:
    """The Table II name of a condition: ``"lecture_1"`` and ``"Lecture 1"`` → ``"Lecture 1"``; anything
    else (``"clean"``, a custom room) is returned unchanged."""
    return _ROOM_ALIASES.get(str(condition), _ROOM_ALIASES.get(_slug(str(condition)), str(condition)))


def predictions_filename(model: str, condition: str) -> str:
    """``predictions_<model>_<condition>.npz`` with the condition as a slug:
    ``predictions_mer_sum_pe_lecture_1.npz``."""
    return f"predictions_{model}_{_slug(condition) or 'all'}.npz"


def save_predictions(pred: Predictions, path: str | os.PathLike, model: str | None = None) -> Path:
    """Write ``pred`` to an ``.npz`` (arrays logits, labels, actors, clip_ids, conditions, and model).

    ``path`` may be a file, or a folder — an existing one, or with ``model`` given a path without a suffix,
    created if needed: then the file is named by :func:`predictions_filename` (``model`` required). The model
    name is stored inside the file, so :func:`load_predictions_dir` never has to split it from the room in the
    file name. Strings are stored as unicode arrays (no pickle).
    """
    path = Path(path)
    if path.is_dir() or (model is not None and not path.suffix and not path.is_file()):
        path.mkdir(parents=True, exist_ok=True)
        if model is None:
            raise ValueError(f"{path} is a folder: pass model= so the file can be named predictions_<model>_<room>.npz")
        conds = list(dict.fromkeys(pred.conditions.tolist()))
        path = path / predictions_filename(model, conds[0] if len(conds) == 1 else "all")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:  # an open handle stops numpy from appending a second ".npz"
        np.savez(fh, logits=pred.logits, labels=pred.labels, actors=pred.actors, clip_ids=pred.clip_ids,
                 conditions=pred.conditions, model=np.asarray("" if model is None else model))
    return path


def _model_from_filename(path: Path) -> tuple[str | None, str | None]:
    stem = path.stem
    if not stem.startswith("predictions_"):
        return None, None
    rest = stem[len("predictions_"):]
    # Model and room names both contain "_": match the longest known model name.
    for name in sorted(MODEL_NAMES, key=len, reverse=True):
        if rest == name or rest.startswith(name + "_"):
            return name, rest[len(name) + 1:] or None
    return None, None


def load_predictions(path: str | os.PathLike) -> tuple[str | None, Predictions]:
    """Read a file written by :func:`save_predictions`: ``(model name or None, Predictions)``.

    Files with only ``logits, labels, actors, clip_ids`` are accepted too: the condition then comes from the
    file name (``predictions_<model>_<room>.npz``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no predictions file {path}")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("logits", "labels", "actors", "clip_ids") if k not in data.files]
        if missing:
            raise ValueError(f"{path} lacks the arrays {missing}; write it with merlib.evaluation.save_predictions")
        arrays = {k: data[k] for k in data.files}
    name_model, name_room = _model_from_filename(path)
    model = str(arrays["model"]) if "model" in arrays and str(arrays["model"]) else name_model
    if "conditions" in arrays:
        conditions = arrays["conditions"]
    elif name_room is not None:
        conditions = np.full(len(arrays["labels"]), room_name(name_room))
    else:
        raise ValueError(f"{path} has no 'conditions' array and its name is not predictions_<model>_<room>.npz; "
                         "re-save it with merlib.evaluation.save_predictions")
    return model, Predictions(arrays["logits"], arrays["labels"], arrays["actors"], arrays["clip_ids"], conditions)


def load_predictions_dir(pred_dir: str | os.PathLike) -> dict[str, dict[str, Predictions]]:
    """Every ``predictions_*.npz`` in ``pred_dir`` as ``{model: {room: Predictions}}``.

    Conditions are read clip by clip and normalised with :func:`room_name`; a (model, room) pair found in two
    files is an error naming both.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"prediction folder {pred_dir} does not exist")
    files = sorted(pred_dir.glob("predictions_*.npz"))
    if not files:
        hint = (" It holds a trained run (final.pt): write its test predictions first with "
                "merlib.evaluation.predict(...) and save_predictions(pred, folder, model=NAME).") \
            if (pred_dir / "final.pt").exists() else ""
        raise FileNotFoundError(f"no predictions_<model>_<room>.npz files in {pred_dir}.{hint}")
    out: dict[str, dict[str, Predictions]] = {}
    origin: dict[tuple[str, str], Path] = {}
    for f in files:
        model, pred = load_predictions(f)
        if model is None:
            raise ValueError(f"cannot tell the model of {f}: name it predictions_<model>_<room>.npz with a model in "
                             f"{', '.join(MODEL_NAMES)}, or save it with save_predictions(..., model=NAME)")
        for cond, part in pred.by_condition().items():
            room = room_name(cond)
            if (model, room) in origin:
                raise ValueError(f"{model} in {room!r} appears in both {origin[model, room].name} and {f.name}; "
                                 "remove one of them")
            origin[model, room] = f
            out.setdefault(model, {})[room] = part
    return out
