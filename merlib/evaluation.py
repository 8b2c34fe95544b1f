"""Evaluation: accuracy with the paper's bootstrap interval, per-room results and the layout of Table II.

Notebook: 06_fusion_training.ipynb (the per-room table); 07_tsne_and_confusion.ipynb draws the confusion
matrices and per-class scores computed here.

The paper reports, for every model and test room, the accuracy on the 180 test clips and a **75 % bootstrap
confidence interval**: the ``confidence-intervals`` package's
``evaluate_with_conf_int(predictions, accuracy_score, labels, alpha=25)`` — 1000 test sets drawn with
replacement from the clips, the interval running from the 12.5th to the 87.5th percentile of their
accuracies. :func:`accuracy_ci` is that computation (a test checks it against the package call value for
value). Two things it adds:

- **Per-actor resampling** (``actors=...``, the package's ``conditions``): draw actors with replacement,
  then clips within each drawn actor. Clips of one actor are not independent — a model that fails on one
  voice or face fails on most of that actor's clips — so with 3 test actors the per-clip interval is too
  narrow; the package's own README recommends conditioning on the speaker for emotion tasks. Two traits
  of the package's draw, kept as they are so the numbers match it: an actor drawn twice contributes the
  *same* resample of its clips twice (so even with no actor effect the interval is ~1.35× the per-clip one
  for 6 actors), and every actor's clips are resampled with the same ``random_state`` (the same relative
  positions for actors with equal clip counts).
- **Seeds.** The package draws test set *i* with ``random_state=i`` (i = 0 … 999), so its interval is
  already deterministic. ``seed=0`` keeps exactly those draws (the paper's numbers); ``seed=s`` uses
  ``random_state = s·B + i`` so different seeds never share a draw.

Units: every accuracy and interval here is in **percent**, like the paper's tables.

The rest of the module turns a model's outputs into those numbers:

- :func:`predict` runs a model over a DataLoader of batch dicts and returns :class:`Predictions`
  (logits, labels, actors, clip ids, condition of every clip);
- :func:`save_predictions` / :func:`load_predictions_dir` store them as ``predictions_<model>_<room>.npz``;
- :func:`evaluate_rooms` (one model, every room) and :func:`evaluate_models` (the grid) compute the intervals;
- :func:`table2` lays them out like the paper's Table II, :func:`compare_with_paper` puts the published
  numbers (:mod:`merlib.paper_results`) beside ours, :func:`write_table` writes CSV + Markdown;
- :func:`confusion` and :func:`per_class_metrics` for the analysis notebook;
- ``merlib evaluate PRED_DIR`` (:func:`add_evaluate_parser`) does all of it for a folder of predictions.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .paper_results import MODEL_LABELS, MODEL_NAMES, ROOM_NAMES, TABLE_I, TABLE_II, PublishedCI

__all__ = [
    "AccuracyCI",
    "Predictions",
    "MODEL_NAMES",
    "MODEL_LABELS",
    "MODEL_INPUTS",
    "ROOM_NAMES",
    "accuracy_ci",
    "bootstrap_accuracies",
    "DifferenceCI",
    "paired_difference",
    "claims_table",
    "MULTI_MIC_PAIRS",
    "FUSION_PARTS",
    "predict",
    "predict_rooms",
    "save_predictions",
    "load_predictions",
    "load_predictions_dir",
    "predictions_filename",
    "room_name",
    "evaluate_rooms",
    "evaluate_models",
    "results_from_frame",
    "table2",
    "paper_table2",
    "compare_with_paper",
    "to_markdown",
    "write_table",
    "class_names",
    "confusion",
    "per_class_metrics",
    "evaluate_predictions_dir",
    "add_evaluate_parser",
]

#: The paper's interval: alpha = 25 → percentiles 12.5 and 87.5 (a 75 % interval).
PAPER_ALPHA = 25.0
#: The paper's number of bootstrap test sets.
PAPER_BOOTSTRAPS = 1000
#: Printed in a table cell that has no result.
MISSING = "—"

#: What each Table II model's ``forward`` takes from a batch (see :func:`predict`).
MODEL_INPUTS: dict[str, tuple[str, ...]] = {
    name: ("video",) if name == "video" else ("waveform",) if name.startswith("audio_") else ("waveform", "video")
    for name in MODEL_NAMES
}


# ------------------------------------------------------------------------------------------------------------
# accuracy with a bootstrap interval
# ------------------------------------------------------------------------------------------------------------


class AccuracyCI(NamedTuple):
    """Accuracy and its bootstrap interval in **percent**, and the number of clips ``n`` it was measured on."""

    accuracy: float
    low: float
    high: float
    n: int

    @property
    def width(self) -> float:
        """``high - low`` in percentage points."""
        return self.high - self.low

    def format(self, decimals: int = 1) -> str:
        """``"69.4 [65.6, 73.3]"``: accuracy [low, high] in percent, rounded to ``decimals``.

        (The paper truncated instead of rounding: its 65.5 is 65.56 % — see :mod:`merlib.paper_results`.)
        """
        return f"{self.accuracy:.{decimals}f} [{self.low:.{decimals}f}, {self.high:.{decimals}f}]"

    def __str__(self) -> str:
        return self.format()


def _as_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one value per clip (a 1-D array), got shape {arr.shape}")
    return arr


def _condition_codes(actors: np.ndarray) -> np.ndarray:
    # The package wants integer conditions; np.unique keeps their sort order, so the codes give exactly the
    # draws the package would make from integer actor IDs, and strings ("Actor_01") work as well.
    return np.unique(actors, return_inverse=True)[1].astype(np.int64)


class _Draws(NamedTuple):
    flat: np.ndarray  # the clip indices of every bootstrap set, one set after another
    starts: np.ndarray  # where each set begins in ``flat``
    sizes: np.ndarray  # clips in each set


@functools.lru_cache(maxsize=8)
def _bootstrap_indices(n: int, num_bootstraps: int, seed: int, conditions: tuple[int, ...] | None) -> _Draws:
    """The clip indices of every bootstrap set, drawn by the package's own ``get_bootstrap_indices``.

    They depend only on the number of clips, the actors' order and the seed — not on the predictions — so
    they are cached: the nine models of one room share them (a per-actor draw costs ~2 ms). Per actor, a set
    holds all clips of the drawn actors, so its size varies when actors have different clip counts.
    """
    from confidence_intervals import get_bootstrap_indices

    cond = None if conditions is None else np.asarray(conditions, dtype=np.int64)
    sets = [np.asarray(get_bootstrap_indices(n, cond, random_state=seed * num_bootstraps + i), dtype=np.int64)
            for i in range(num_bootstraps)]
    sizes = np.array([len(s) for s in sets], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    draws = _Draws(np.concatenate(sets), starts, sizes)
    for arr in draws:
        arr.setflags(write=False)
    return draws


def bootstrap_accuracies(
    predictions: Any,
    labels: Any,
    actors: Any | None = None,
    num_bootstraps: int = PAPER_BOOTSTRAPS,
    seed: int = 0,
) -> np.ndarray:
    """The accuracy (fraction, 0–1) of each of the ``num_bootstraps`` resampled test sets.

    The sets are the ones ``confidence_intervals.Bootstrap`` draws (``get_bootstrap_indices`` with
    ``random_state = seed·num_bootstraps + i``), per actor when ``actors`` is given. The accuracy of each set
    is computed in one vectorised step; it equals ``sklearn.metrics.accuracy_score`` on that set exactly
    (both are a count of hits divided by n), which is what makes 1000 resamples × 63 table cells cheap.
    """
    preds = _as_1d("predictions", predictions)
    y = _as_1d("labels", labels)
    if preds.shape != y.shape:
        raise ValueError(f"predictions ({preds.shape[0]} clips) and labels ({y.shape[0]} clips) differ in length")
    if preds.size == 0:
        raise ValueError("no clips to evaluate: predictions and labels are empty")
    if num_bootstraps < 1:
        raise ValueError(f"num_bootstraps must be at least 1, got {num_bootstraps}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (it offsets the package's random_state), got {seed}")
    conditions = None
    if actors is not None:
        a = _as_1d("actors", actors)
        if a.shape != y.shape:
            raise ValueError(f"actors ({a.shape[0]} values) must give one actor per clip ({y.shape[0]} clips)")
        conditions = tuple(int(c) for c in _condition_codes(a))
    draws = _bootstrap_indices(int(y.size), int(num_bootstraps), int(seed), conditions)
    hits = np.add.reduceat((preds == y)[draws.flat].astype(np.int64), draws.starts)
    return hits / draws.sizes


def accuracy_ci(
    predictions: Any,
    labels: Any,
    actors: Any | None = None,
    alpha: float = PAPER_ALPHA,
    num_bootstraps: int = PAPER_BOOTSTRAPS,
    seed: int = 0,
) -> AccuracyCI:
    """Accuracy with the paper's bootstrap confidence interval, in percent.

    Args:
        predictions: predicted class per clip (e.g. ``logits.argmax(1)``), shape (N,).
        labels: true class per clip, shape (N,).
        actors: actor of each clip. ``None`` (the paper): resample clips. Given: resample actors, then clips
            within each drawn actor (the package's ``conditions``) — the honest interval when errors
            cluster by actor.
        alpha: the interval runs from the ``alpha/2`` to the ``100 - alpha/2`` percentile; the paper's 25
            gives 12.5–87.5, a 75 % interval.
        num_bootstraps: resampled test sets (the paper's 1000).
        seed: ``0`` reproduces the package's draws (and so the paper's intervals) exactly.

    Returns:
        ``AccuracyCI(accuracy, low, high, n)`` in percent. With the defaults this equals
        ``evaluate_with_conf_int(predictions, accuracy_score, labels, alpha=25)`` × 100.
    """
    from confidence_intervals import get_conf_int

    if not 0 < alpha < 100:
        raise ValueError(f"alpha must be between 0 and 100 (the paper's 25 gives a 75 % interval), got {alpha}")
    preds = _as_1d("predictions", predictions)
    y = _as_1d("labels", labels)
    values = bootstrap_accuracies(preds, y, actors, num_bootstraps=num_bootstraps, seed=seed)
    low, high = get_conf_int(values, alpha)
    center = float(np.mean(preds == y))
    return AccuracyCI(100.0 * center, 100.0 * float(low), 100.0 * float(high), int(y.size))


class DifferenceCI(NamedTuple):
    """A paired accuracy difference ``A − B`` in percentage points, its bootstrap interval, the clips ``n`` it
    was measured on, and ``p_not_better``: the share of resampled test sets in which A was not better than B
    (``A − B ≤ 0``), a one-sided bootstrap p-value for "A beats B"."""

    difference: float
    low: float
    high: float
    n: int
    p_not_better: float

    @property
    def verdict(self) -> str:
        """``"for"`` when the whole interval lies above 0, ``"against"`` when below, else ``"inconclusive"``."""
        return "for" if self.low > 0 else "against" if self.high < 0 else "inconclusive"

    def format(self, decimals: int = 1) -> str:
        """``"+6.2 [+2.1, +10.4]"``."""
        return f"{self.difference:+.{decimals}f} [{self.low:+.{decimals}f}, {self.high:+.{decimals}f}]"

    def __str__(self) -> str:
        return self.format()


def paired_difference(
    a: Predictions,
    b: Predictions,
    by: str = "clip",
    alpha: float = PAPER_ALPHA,
    num_bootstraps: int = PAPER_BOOTSTRAPS,
    seed: int = 0,
) -> DifferenceCI:
    """Accuracy of ``a`` minus accuracy of ``b`` on the *same* clips, with a paired bootstrap interval.

    Each resampled test set is drawn once and both models are scored on it, so the interval is that of the
    difference itself. Two models tested on the same clips make correlated errors (the hard clips are hard
    for both), which is why comparing their two separate intervals is not the test: overlapping intervals
    can hide a consistent difference, and the paired draws see it. ``by="actor"`` resamples actors, then
    clips within them, as :func:`accuracy_ci` does with ``actors``.

    The clips are matched by ``clip_id``; ``ValueError`` when the two sets differ.
    """
    if by not in ("clip", "actor"):
        raise ValueError(f"by must be 'clip' or 'actor', got {by!r}")
    if len(a) != len(b) or set(a.clip_ids.tolist()) != set(b.clip_ids.tolist()):
        raise ValueError(f"a paired comparison needs the same clips: {len(a)} vs {len(b)} clips, "
                         f"{len(set(a.clip_ids.tolist()) ^ set(b.clip_ids.tolist()))} not shared")
    order = {cid: i for i, cid in enumerate(b.clip_ids.tolist())}
    b = b.subset(np.array([order[cid] for cid in a.clip_ids.tolist()], dtype=np.int64))
    if not np.array_equal(a.labels, b.labels):
        raise ValueError("the two predictions give different labels to the same clip ids")
    actors = a.actors if by == "actor" else None
    kw = dict(num_bootstraps=num_bootstraps, seed=seed)
    diffs = 100.0 * (bootstrap_accuracies(a.predicted, a.labels, actors, **kw)
                     - bootstrap_accuracies(b.predicted, b.labels, actors, **kw))
    from confidence_intervals import get_conf_int

    low, high = get_conf_int(diffs, alpha)
    return DifferenceCI(a.accuracy - b.accuracy, float(low), float(high), len(a), float(np.mean(diffs <= 0)))


#: The paper's first claim: more microphones beat the reverberant single channel (model, its baseline).
MULTI_MIC_PAIRS: tuple[tuple[str, str], ...] = (
    ("audio_avg_mel", "audio_rev_sc"), ("audio_sum_pe", "audio_rev_sc"),
    ("mer_avg_mel", "mer_rev_sc"), ("mer_sum_pe", "mer_rev_sc"),
)
#: The paper's second claim: fusion beats the better of its parts (MER model, its audio part).
FUSION_PARTS: tuple[tuple[str, str], ...] = (
    ("mer_clean_sc", "audio_clean_sc"), ("mer_rev_sc", "audio_rev_sc"),
    ("mer_avg_mel", "audio_avg_mel"), ("mer_sum_pe", "audio_sum_pe"),
)


def claims_table(
    predictions: Mapping[str, Mapping[str, Predictions]],
    alpha: float = PAPER_ALPHA,
    num_bootstraps: int = PAPER_BOOTSTRAPS,
    seed: int = 0,
) -> pd.DataFrame:
    """The paper's two claims as paired differences, per test condition: one row per (condition, comparison).

    * ``multi-microphone``: Avg mel and Sum PE minus the reverberant single channel (audio and MER);
    * ``fusion``: each MER model minus the better of its audio part and the video model *in that condition*
      (picking the better part on the test clips favours the baseline: a conservative test).

    Columns: ``condition, claim, model, baseline, difference, low, high`` (per-clip paired interval),
    ``actor_low, actor_high`` (per-actor), ``p_not_better``, ``n`` and ``verdict`` (``for`` / ``against`` /
    ``inconclusive`` from the per-clip interval). Percentage points. The rows of one model pair in different
    rooms are *not* independent confirmations: they are the same clips and the same trained weights heard
    through different rooms, so a lucky or unlucky training run moves them all together.
    """
    preds = {m: {room_name(c): p for c, p in rooms.items()} for m, rooms in predictions.items()}
    conditions = _ordered_rooms(c for rooms in preds.values() for c in rooms)
    rows = []

    def add(condition: str, claim: str, model: str, baseline: str) -> None:
        a, b = preds[model][condition], preds[baseline][condition]
        clip = paired_difference(a, b, "clip", alpha, num_bootstraps, seed)
        actor = paired_difference(a, b, "actor", alpha, num_bootstraps, seed)
        rows.append({"condition": condition, "claim": claim, "model": model, "baseline": baseline,
                     "difference": clip.difference, "low": clip.low, "high": clip.high, "actor_low": actor.low,
                     "actor_high": actor.high, "p_not_better": clip.p_not_better, "n": clip.n,
                     "verdict": clip.verdict})

    def has(model: str, condition: str) -> bool:
        return condition in preds.get(model, {})

    for condition in conditions:
        for model, base in MULTI_MIC_PAIRS:
            if has(model, condition) and has(base, condition):
                add(condition, "multi-microphone", model, base)
        for model, audio in FUSION_PARTS:
            if not (has(model, condition) and has(audio, condition) and has("video", condition)):
                continue
            better = max((audio, "video"), key=lambda m: preds[m][condition].accuracy)
            add(condition, "fusion", model, better)
    columns = ["condition", "claim", "model", "baseline", "difference", "low", "high", "actor_low", "actor_high",
               "p_not_better", "n", "verdict"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------------------------
# predictions
# ------------------------------------------------------------------------------------------------------------


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


_BATCH_KEYS = ("label", "actor", "clip_id", "condition")
_MODEL_CLASS_INPUTS = {"MER": ("waveform", "video"), "HTSAT": ("waveform",), "VideoClassifier": ("video",)}


def _infer_inputs(model: Any) -> tuple[str, ...]:
    declared = getattr(model, "inputs", None)
    if declared is not None:
        return tuple(declared)
    name = type(model).__name__
    if name in _MODEL_CLASS_INPUTS:
        return _MODEL_CLASS_INPUTS[name]
    raise ValueError(f"cannot tell which batch entries {name}.forward takes; pass inputs=('waveform',) "
                     "(audio), ('video',) (video) or ('waveform', 'video') (MER)")


def _logits_of(output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):  # AudioOutput, MEROutput and other NamedTuples
        return output.logits
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    raise TypeError(f"the model returned {type(output).__name__}; predict() needs a logits tensor or an "
                    "object with a .logits field")


def _to_list(value: Any) -> list:
    if hasattr(value, "detach"):
        return value.detach().cpu().reshape(-1).tolist()
    if isinstance(value, (str, bytes)):
        return [value]
    return list(value)


def _autocast_dtype(autocast: Any) -> Any:
    import torch

    if autocast is None or autocast is False:
        return None
    if isinstance(autocast, torch.dtype):
        return autocast
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "16": torch.float16}
    if str(autocast).lower() in names:
        return names[str(autocast).lower()]
    raise ValueError(f"autocast must be None, a torch dtype or one of {sorted(names)}, got {autocast!r}")


def predict(
    model: Any,
    loader: Iterable[Mapping[str, Any]],
    inputs: Sequence[str] | None = None,
    device: Any = "cpu",
    autocast: Any = None,
    progress: bool = False,
) -> Predictions:
    """Run ``model`` over every batch of ``loader`` in eval mode and collect its :class:`Predictions`.

    The batch protocol (what merlib's datasets yield, collated by the default ``collate_fn``)::

        {"waveform": (B, C, 64000) float, "video": (B, 3, T, H, W) float,
         "label": (B,) int, "actor": (B,) int, "clip_id": [B str], "condition": [B str]}

    Args:
        model: called as ``model(*[batch[k] for k in inputs])`` — ``model(waveform)`` for the audio models
            (output ``.logits``), ``model(video)`` for the video model (a logits tensor),
            ``model(waveform, video)`` for MER (output ``.logits``). It is moved to ``device`` and put in
            eval mode for the pass; its train/eval mode is restored afterwards.
        loader: an iterable of batch dicts (a ``torch.utils.data.DataLoader``).
        inputs: batch keys passed to ``forward`` in order. ``None``: the model's ``inputs`` attribute if it
            has one, else by class (``HTSAT`` → waveform, ``VideoClassifier`` → video, ``MER`` → both);
            :data:`MODEL_INPUTS` gives them for the Table II names.
        device: where the forward pass runs (``"cpu"``, ``"cuda"``, a ``torch.device``).
        autocast: ``None`` (full precision) or a dtype — ``torch.bfloat16``/``"bf16"`` on a GPU. Logits are
            returned as float32 either way.
        progress: show a tqdm bar.
    """
    import torch

    keys = tuple(inputs) if inputs is not None else _infer_inputs(model)
    if not keys:
        raise ValueError("inputs is empty; name the batch entries forward takes, e.g. ('waveform',)")
    device = torch.device(device)
    dtype = _autocast_dtype(autocast)
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "to"):
        model = model.to(device)
    if hasattr(model, "eval"):
        model.eval()
    iterator: Iterable = loader
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(loader, desc="predict", unit="batch")
    logits, meta = [], {k: [] for k in _BATCH_KEYS}
    try:
        with torch.inference_mode():
            for b, batch in enumerate(iterator):
                missing = [k for k in (*keys, *_BATCH_KEYS) if k not in batch]
                if missing:
                    raise KeyError(f"batch {b} has no {', '.join(map(repr, missing))} (it has "
                                   f"{', '.join(map(repr, batch))}); predict() needs the model inputs {keys} and "
                                   f"{_BATCH_KEYS} for scoring — add them to the dataset's items")
                args = [batch[k].to(device, non_blocking=True) for k in keys]
                if dtype is not None:
                    with torch.autocast(device_type=device.type, dtype=dtype):
                        out = _logits_of(model(*args))
                else:
                    out = _logits_of(model(*args))
                logits.append(out.detach().float().cpu().numpy())
                n = logits[-1].shape[0]
                for k in _BATCH_KEYS:
                    values = _to_list(batch[k])
                    if len(values) != n:
                        raise ValueError(f"batch {b}: {k!r} has {len(values)} entries for {n} clips")
                    meta[k].extend(values)
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    if not logits:
        raise ValueError("the loader yielded no batches; is the test split empty?")
    return Predictions(np.concatenate(logits), np.asarray(meta["label"]), np.asarray(meta["actor"]),
                       np.asarray(meta["clip_id"], dtype=str), np.asarray(meta["condition"], dtype=str))


def predict_rooms(
    model: Any,
    name: str,
    corpus: Any,
    clean: bool = False,
    device: Any = "cpu",
    batch_size: int = 16,
    autocast: Any = None,
) -> dict[str, Predictions]:
    """A Table II model's :class:`Predictions` in every test room of a prepared corpus: ``{room: Predictions}``.

    Args:
        model: the network; ``name``: its Table II name (which inputs it reads, how many microphones).
        corpus: a :class:`merlib.datasets.CorpusPaths` (or a reverberant build folder for the audio models).
        clean: also the clean test set, as ``"clean"`` — only for models that read one microphone (or none):
            a clean recording has a single channel.
        device, batch_size, autocast: as in :func:`predict`.

    The video model's input does not depend on the room, so it is run once and its predictions are labelled
    with each room (the paper prints its result once for the same reason).
    """
    from .datasets import MERDataModule
    from .models.mer import get_spec

    spec = get_spec(name)
    if clean and spec.num_mics > 1:
        raise ValueError(f"{name} reads {spec.num_mics} microphones; the clean test set has one (clean=False)")
    dm = MERDataModule(corpus, spec, batch_size=batch_size)
    conditions = dm.test_conditions() + (["clean"] if clean else [])
    out: dict[str, Predictions] = {}
    for condition in conditions:
        ids = [r["clip_id"] for r in dm.select("test", condition)]
        once = next(iter(out.values()), None) if not spec.uses_audio else None
        if once is not None and once.clip_ids.tolist() == ids:
            out[condition] = Predictions(once.logits, once.labels, once.actors, once.clip_ids,
                                         np.full(len(once), condition))
            continue
        out[condition] = predict(model, dm.loader("test", condition), inputs=MODEL_INPUTS[spec.name],
                                 device=device, autocast=autocast)
    return out


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
    """``predictions_<model>_<condition>.npz`` with the condition as a slug: ``predictions_mer_sum_pe_lecture_1.npz``."""
    return f"predictions_{model}_{_slug(condition) or 'all'}.npz"


def save_predictions(pred: Predictions, path: str | os.PathLike, model: str | None = None) -> Path:
    """Write ``pred`` to an ``.npz`` (arrays logits, labels, actors, clip_ids, conditions, and model).

    ``path`` may be a file, or a folder — an existing one, or with ``model`` given a path without a suffix,
    created if needed: then the file is named by :func:`predictions_filename` (``model`` required). The model name is stored inside the file, so :func:`load_predictions_dir` never has
    to split it from the room in the file name. Strings are stored as unicode arrays (no pickle).
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


# ------------------------------------------------------------------------------------------------------------
# per-room evaluation and the Table II layout
# ------------------------------------------------------------------------------------------------------------


def _ordered_rooms(rooms: Iterable[str]) -> list[str]:
    """The seven Table II rooms in the paper's order, then any other conditions in order of appearance."""
    seen = list(dict.fromkeys(rooms))
    return list(ROOM_NAMES) + [r for r in seen if r not in ROOM_NAMES]


def evaluate_rooms(
    results: Mapping[str, Predictions] | Predictions,
    alpha: float = PAPER_ALPHA,
    num_bootstraps: int = PAPER_BOOTSTRAPS,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy and both intervals for one model in every room.

    Args:
        results: ``{condition: Predictions}`` (conditions such as ``"Lecture 1"`` or ``"lecture_1"``), or one
            :class:`Predictions` spanning several conditions.

    Returns:
        One row per room (the seven Table II rooms first, in the paper's order, then other conditions) with
        columns ``room, accuracy, low, high, n`` (the paper's per-clip interval) and ``actor_low, actor_high,
        n_actors`` (per-actor resampling), all in percent.
    """
    if isinstance(results, Predictions):
        results = results.by_condition()
    by_room = {room_name(c): p for c, p in results.items()}
    rows = []
    for room in _ordered_rooms(by_room):
        if room not in by_room:
            continue
        p = by_room[room]
        clip = accuracy_ci(p.predicted, p.labels, alpha=alpha, num_bootstraps=num_bootstraps, seed=seed)
        actor = accuracy_ci(p.predicted, p.labels, p.actors, alpha=alpha, num_bootstraps=num_bootstraps, seed=seed)
        rows.append({"room": room, "accuracy": clip.accuracy, "low": clip.low, "high": clip.high, "n": clip.n,
                     "actor_low": actor.low, "actor_high": actor.high, "n_actors": len(np.unique(p.actors))})
    columns = ["room", "accuracy", "low", "high", "n", "actor_low", "actor_high", "n_actors"]
    return pd.DataFrame(rows, columns=columns)


def evaluate_models(
    predictions: Mapping[str, Mapping[str, Predictions] | Predictions],
    alpha: float = PAPER_ALPHA,
    num_bootstraps: int = PAPER_BOOTSTRAPS,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`evaluate_rooms` for every model: ``{model: {room: Predictions}}`` → one long table with a
    ``model`` column first (models in Table II order, then others)."""
    order = [m for m in MODEL_NAMES if m in predictions] + [m for m in predictions if m not in MODEL_NAMES]
    frames = [evaluate_rooms(predictions[m], alpha, num_bootstraps, seed).assign(model=m) for m in order]
    if not frames:
        raise ValueError("no predictions to evaluate")
    df = pd.concat(frames, ignore_index=True)
    return df[["model"] + [c for c in df.columns if c != "model"]]


def results_from_frame(df: pd.DataFrame, interval: str = "clip") -> dict[str, dict[str, AccuracyCI]]:
    """The ``{model: {room: AccuracyCI}}`` that :func:`table2` takes, from :func:`evaluate_models`' table.

    ``interval="clip"`` takes the paper's per-clip interval, ``"actor"`` the per-actor one.
    """
    if interval not in ("clip", "actor"):
        raise ValueError(f"interval must be 'clip' (the paper's) or 'actor', got {interval!r}")
    lo, hi = ("low", "high") if interval == "clip" else ("actor_low", "actor_high")
    out: dict[str, dict[str, AccuracyCI]] = {}
    for row in df.itertuples(index=False):
        out.setdefault(row.model, {})[row.room] = AccuracyCI(float(row.accuracy), float(getattr(row, lo)),
                                                             float(getattr(row, hi)), int(row.n))
    return out


def _paper_cell(model: str, room: str) -> PublishedCI | None:
    if model in TABLE_II and room in TABLE_II[model]:
        return TABLE_II[model][room]
    return TABLE_I.get(room, {}).get(model)


def table2(
    results: Mapping[str, Mapping[str, AccuracyCI]],
    paper: bool = False,
    decimals: int = 1,
) -> pd.DataFrame:
    """Results in the layout of the paper's Table II: cells ``"acc [low, high]"`` in percent.

    Rows: the seven ACE rooms in the paper's order (then any other condition found, e.g. ``"clean"``);
    columns: video; audio clean-SC, rev-SC, Avg mel, Sum PE; MER clean-SC, rev-SC, Avg mel, Sum PE (headings
    from :data:`MODEL_LABELS`; models not in Table II are appended under their own names). A cell with no
    result reads ``"—"``.

    Args:
        results: ``{model: {room: AccuracyCI}}`` (:func:`results_from_frame` builds it).
        paper: put the published cell right of each of ours, in a column ``"<heading> (paper)"``.
        decimals: decimals of our numbers (the published ones are printed as published).
    """
    results = {m: {room_name(r): ci for r, ci in rooms.items()} for m, rooms in results.items()}
    models = list(MODEL_NAMES) + [m for m in results if m not in MODEL_NAMES]
    rooms = _ordered_rooms(r for m in results.values() for r in m)
    data: dict[str, list[str]] = {}
    for m in models:
        label = MODEL_LABELS.get(m, m)
        data[label] = [results[m][r].format(decimals) if r in results.get(m, {}) else MISSING for r in rooms]
        if paper:
            cells = [_paper_cell(m, r) for r in rooms]
            data[f"{label} (paper)"] = [str(c) if c is not None else MISSING for c in cells]
    return pd.DataFrame(data, index=pd.Index(rooms, name="room"))


def paper_table2() -> pd.DataFrame:
    """The paper's Table II itself, in the same layout as :func:`table2` (values as published)."""
    data = {MODEL_LABELS[m]: [str(TABLE_II[m][r]) for r in ROOM_NAMES] for m in MODEL_NAMES}
    return pd.DataFrame(data, index=pd.Index(list(ROOM_NAMES), name="room"))


def compare_with_paper(results: Mapping[str, Mapping[str, AccuracyCI]] | pd.DataFrame) -> pd.DataFrame:
    """Ours and the paper's numbers side by side, one row per (model, room) we have.

    Takes ``{model: {room: AccuracyCI}}`` or :func:`evaluate_models`' table (whose per-actor columns are
    kept). Adds ``paper_accuracy, paper_low, paper_high`` (NaN where the paper has no cell),
    ``difference`` (ours − paper, percentage points) and ``overlap`` (whether the two intervals overlap;
    ``<NA>`` without a published interval).
    """
    if isinstance(results, pd.DataFrame):
        df = results.copy()
    else:
        df = pd.DataFrame([{"model": m, "room": room_name(r), "accuracy": ci.accuracy, "low": ci.low,
                            "high": ci.high, "n": ci.n} for m, rooms in results.items() for r, ci in rooms.items()])
        if df.empty:
            raise ValueError("no results to compare")
    cells = [_paper_cell(m, r) for m, r in zip(df["model"], df["room"])]
    df["paper_accuracy"] = [c.accuracy if c else math.nan for c in cells]
    df["paper_low"] = [c.low if c and c.low is not None else math.nan for c in cells]
    df["paper_high"] = [c.high if c and c.high is not None else math.nan for c in cells]
    df["difference"] = df["accuracy"] - df["paper_accuracy"]
    df["overlap"] = pd.array([None if math.isnan(pl) else bool(lo <= ph and pl <= hi)
                              for lo, hi, pl, ph in zip(df["low"], df["high"], df["paper_low"], df["paper_high"])],
                             dtype="boolean")
    return df


def _md_cell(value: Any) -> str:
    if isinstance(value, float):
        text = "" if math.isnan(value) else f"{value:.2f}"
    else:
        text = "" if value is None or value is pd.NA else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, index: bool | None = None) -> str:
    """A GitHub pipe table of ``df`` (written here so ``tabulate`` is not needed); floats get 2 decimals.

    ``index=None`` includes the index only when it is named (as :func:`table2`'s ``room`` is).
    """
    show_index = df.index.name is not None if index is None else index
    header = ([str(df.index.name or "")] if show_index else []) + [str(c) for c in df.columns]
    rows = [([_md_cell(i)] if show_index else []) + [_md_cell(v) for v in row]
            for i, row in zip(df.index, df.itertuples(index=False))]
    numeric = ([False] if show_index else []) + [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(
    df: pd.DataFrame, out_dir: str | os.PathLike, name: str, caption: str | None = None
) -> tuple[Path, Path]:
    """Write ``df`` as ``out_dir/name.csv`` and ``out_dir/name.md`` (``caption`` as a paragraph above the
    Markdown table). The index is written when it is named. Returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    df.to_csv(csv_path, index=df.index.name is not None)
    md = to_markdown(df)
    md_path.write_text((caption.strip() + "\n\n" if caption else "") + md, encoding="utf-8")
    return csv_path, md_path


# ------------------------------------------------------------------------------------------------------------
# confusion matrix and per-class scores
# ------------------------------------------------------------------------------------------------------------


def class_names(num_classes: int) -> list[str]:
    """Names of ``num_classes`` classes: the RAVDESS emotions for 8, else the class indices as text."""
    from .data.ravdess import EMOTIONS

    return list(EMOTIONS) if num_classes == len(EMOTIONS) else [str(k) for k in range(num_classes)]


def confusion(predictions: Predictions, num_classes: int | None = None) -> np.ndarray:
    """Row-normalised confusion matrix in percent: entry (i, j) is the share of class-i clips predicted j.

    Rows follow the class index (0 neutral … 7 surprised) and sum to 100; a class with no clips gets a row
    of NaN (not zeros, which would read as "never recognised").
    """
    from sklearn.metrics import confusion_matrix

    k = int(num_classes or predictions.logits.shape[1])
    counts = confusion_matrix(predictions.labels, predictions.predicted, labels=np.arange(k)).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, 100.0 * counts / totals, np.nan)


def per_class_metrics(predictions: Predictions, num_classes: int | None = None) -> pd.DataFrame:
    """Precision, recall and F1 per emotion (percent, sklearn) with the support (clips of that class).

    Indexed by emotion name; NaN where a score is undefined (no clips predicted, or none of that class).
    """
    from sklearn.metrics import precision_recall_fscore_support

    k = int(num_classes or predictions.logits.shape[1])
    p, r, f, s = precision_recall_fscore_support(predictions.labels, predictions.predicted, labels=np.arange(k),
                                                 zero_division=np.nan)
    return pd.DataFrame({"precision": 100 * p, "recall": 100 * r, "f1": 100 * f, "support": s},
                        index=pd.Index(class_names(k), name="emotion"))


# ------------------------------------------------------------------------------------------------------------
# merlib evaluate
# ------------------------------------------------------------------------------------------------------------

_CAPTION = ("Accuracy (%) [75 % bootstrap interval: percentiles {lo:g}–{hi:g} of {b} resampled test sets, "
            "resampling {what}].")


def evaluate_predictions_dir(
    pred_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    alpha: float = PAPER_ALPHA,
    num_bootstraps: int = PAPER_BOOTSTRAPS,
    seed: int = 0,
) -> dict[str, Path]:
    """Evaluate every ``predictions_<model>_<room>.npz`` in ``pred_dir`` and write the tables to ``out_dir``
    (default ``pred_dir``). What ``merlib evaluate`` runs.

    Writes ``per_room.csv/.md`` (every model × room: accuracy, both intervals, the paper's cell, the
    difference), ``table2.csv/.md`` (the paper's layout and interval), ``table2_actor.csv/.md`` (per-actor
    intervals), ``table2_vs_paper.csv/.md`` (each of our columns beside the published one) and, when the
    models it compares are there, ``claims.csv/.md`` (:func:`claims_table`). Returns
    ``{name: path}`` of the files written.
    """
    out = Path(out_dir) if out_dir is not None else Path(pred_dir)
    preds = load_predictions_dir(pred_dir)
    long = evaluate_models(preds, alpha=alpha, num_bootstraps=num_bootstraps, seed=seed)
    lo, hi = alpha / 2, 100 - alpha / 2
    clip_caption = _CAPTION.format(lo=lo, hi=hi, b=num_bootstraps, what="clips (the paper's method)")
    actor_caption = _CAPTION.format(lo=lo, hi=hi, b=num_bootstraps, what="actors, then clips within each actor")
    written: dict[str, Path] = {}
    tables = {
        "per_room": (compare_with_paper(long), "One row per model and room; accuracy, low, high: per-clip "
                                               "interval; actor_low, actor_high: per-actor interval; paper_*: "
                                               "the published Table II (percent)."),
        "table2": (table2(results_from_frame(long, "clip")), clip_caption),
        "table2_actor": (table2(results_from_frame(long, "actor")), actor_caption),
        "table2_vs_paper": (table2(results_from_frame(long, "clip"), paper=True),
                            clip_caption + " Columns marked (paper): the published Table II."),
    }
    claims = claims_table(preds, alpha=alpha, num_bootstraps=num_bootstraps, seed=seed)
    if len(claims):
        tables["claims"] = (claims, "The paper's two claims as paired accuracy differences (percentage points) on "
                            f"the same test clips: low/high the {hi - lo:g} % paired bootstrap interval over clips, "
                            "actor_low/actor_high over actors; p_not_better: share of resampled test sets where "
                            "the model did not beat its baseline. Rooms share clips and weights: not independent.")
    for name, (df, caption) in tables.items():
        csv_path, md_path = write_table(df, out, name, caption)
        written[f"{name}.csv"], written[f"{name}.md"] = csv_path, md_path
    return written


def _cmd_evaluate(args: argparse.Namespace) -> int:
    written = evaluate_predictions_dir(args.pred_dir, args.out, alpha=args.alpha,
                                       num_bootstraps=args.bootstraps, seed=args.seed)
    print(written["table2.md"].read_text(encoding="utf-8"))
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``merlib evaluate PRED_DIR [--out DIR] [--alpha 25] [--bootstraps 1000] [--seed 0]`` to a CLI's
    subparsers; the handler is in ``args.func``. Returns the new parser."""
    p = subparsers.add_parser(
        "evaluate", help="per-room accuracy with bootstrap intervals and the paper's Table II layout",
        description="Read predictions_<model>_<room>.npz (merlib.evaluation.save_predictions) from PRED_DIR "
                    "and write per_room, table2, table2_actor and table2_vs_paper as CSV and Markdown.")
    p.add_argument("pred_dir", type=Path, help="folder holding predictions_<model>_<room>.npz files")
    p.add_argument("--out", type=Path, default=None, help="where the tables go (default: PRED_DIR)")
    p.add_argument("--alpha", type=float, default=PAPER_ALPHA, help="interval = percentiles alpha/2..100-alpha/2 "
                                                                     "(default 25: the paper's 75%% interval)")
    p.add_argument("--bootstraps", type=int, default=PAPER_BOOTSTRAPS, help="resampled test sets (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="0 reproduces the confidence-intervals package's draws")
    p.set_defaults(func=_cmd_evaluate)
    return p
