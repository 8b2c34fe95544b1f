"""Accuracy with the paper's bootstrap confidence interval, and paired differences between two models.

Notebook: 06_fusion_training.ipynb (the per-room table and the paper's claims).

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

:func:`paired_difference` scores two models on the *same* resampled test sets, which is the test for "A beats
B" (two separate intervals are not: the hard clips are hard for both models).

Units: every accuracy and interval here is in **percent**, like the paper's tables.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from .predictions import Predictions

__all__ = [
    "PAPER_ALPHA",
    "PAPER_BOOTSTRAPS",
    "AccuracyCI",
    "DifferenceCI",
    "accuracy_ci",
    "bootstrap_accuracies",
    "paired_difference",
]

#: The paper's interval: alpha = 25 → percentiles 12.5 and 87.5 (a 75 % interval).
PAPER_ALPHA = 25.0
#: The paper's number of bootstrap test sets.
PAPER_BOOTSTRAPS = 1000


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
