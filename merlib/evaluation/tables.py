"""Per-room results, the paper's Table II, the claims table and the reports that ``merlib evaluate`` writes.

Notebook: 06_fusion_training.ipynb (the per-room table, Table II and the claims); 07_tsne_and_confusion.ipynb
draws the confusion matrices and per-class scores computed here.

This module turns :class:`~merlib.evaluation.predictions.Predictions` into the paper's numbers, with the
intervals of :mod:`merlib.evaluation.intervals`:

- :func:`evaluate_rooms` (one model, every room) and :func:`evaluate_models` (the grid) compute the accuracy
  and both intervals (per clip, per actor) in one long table;
- :func:`table2` lays them out like the paper's Table II (:func:`results_from_frame` picks the interval),
  :func:`paper_table2` is the published table itself, :func:`compare_with_paper` puts the published numbers
  (:mod:`merlib.paper_results`) beside ours, :func:`write_table` writes CSV + Markdown;
- :func:`claims_table` tests the paper's two claims (more microphones, fusion) as paired differences;
- :func:`confusion` and :func:`per_class_metrics` for the analysis notebook;
- ``merlib evaluate PRED_DIR`` (:func:`add_evaluate_parser`, :func:`evaluate_predictions_dir`) does all of it
  for a folder of predictions.

Units: every accuracy and interval here is in **percent**, like the paper's tables.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..paper_results import MODEL_LABELS, MODEL_NAMES, ROOM_NAMES, TABLE_I, TABLE_II, PublishedCI
from .intervals import PAPER_ALPHA, PAPER_BOOTSTRAPS, AccuracyCI, accuracy_ci, paired_difference
from .predictions import Predictions, load_predictions_dir, room_name

__all__ = [
    "FUSION_PARTS",
    "MISSING",
    "MULTI_MIC_PAIRS",
    "add_evaluate_parser",
    "claims_table",
    "class_names",
    "compare_with_paper",
    "confusion",
    "evaluate_models",
    "evaluate_predictions_dir",
    "evaluate_rooms",
    "paper_table2",
    "per_class_metrics",
    "results_from_frame",
    "table2",
    "to_markdown",
    "write_table",
]

#: Printed in a table cell that has no result.
MISSING = "—"


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
# the paper's claims as paired differences
# ------------------------------------------------------------------------------------------------------------


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
# confusion matrix and per-class scores
# ------------------------------------------------------------------------------------------------------------


def class_names(num_classes: int) -> list[str]:
    """Names of ``num_classes`` classes: the RAVDESS emotions for 8, else the class indices as text."""
    from ..data.ravdess import EMOTIONS

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
    from ..errors import check_output_dir

    out = check_output_dir(Path(out_dir) if out_dir is not None else Path(pred_dir))
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
