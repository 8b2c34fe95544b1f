"""Evaluation: accuracy with the paper's bootstrap interval, per-room results and the layout of Table II.

Notebook: 06_fusion_training.ipynb (the per-room table); 07_tsne_and_confusion.ipynb draws the confusion
matrices and per-class scores computed here.

The paper reports, for every model and test room, the accuracy on the 180 test clips and a **75 % bootstrap
confidence interval** (percentiles 12.5 and 87.5 of 1000 resampled test sets). This package computes those
numbers from a model's outputs, in four parts:

- :mod:`merlib.evaluation.predictions` — :class:`Predictions` (logits, labels, actors, clip ids, condition of
  every clip) and their files: :func:`save_predictions` / :func:`load_predictions_dir` store them as
  ``predictions_<model>_<room>.npz``;
- :mod:`merlib.evaluation.inference` — :func:`predict` runs a model over a DataLoader of batch dicts and
  returns :class:`Predictions`; :func:`predict_rooms` does it for every test room of a prepared corpus;
- :mod:`merlib.evaluation.intervals` — :func:`accuracy_ci`, the paper's interval (per clip, or per actor),
  and :func:`paired_difference`, two models compared on the same clips;
- :mod:`merlib.evaluation.tables` — :func:`evaluate_rooms` (one model, every room) and
  :func:`evaluate_models` (the grid) compute the intervals; :func:`table2` lays them out like the paper's
  Table II, :func:`compare_with_paper` puts the published numbers (:mod:`merlib.paper_results`) beside ours,
  :func:`write_table` writes CSV + Markdown; :func:`claims_table` tests the paper's two claims;
  :func:`confusion` and :func:`per_class_metrics` for the analysis notebook; ``merlib evaluate PRED_DIR``
  (:func:`add_evaluate_parser`) does all of it for a folder of predictions.

Every public name is re-exported here: ``from merlib.evaluation import accuracy_ci`` works whichever module
holds it. Units: every accuracy and interval is in **percent**, like the paper's tables.
"""

from __future__ import annotations

# Besides __all__, importable from here as before the split (marked "noqa: F401"): the paper's interval settings
# and the empty-cell mark (merlib.analysis uses PAPER_ALPHA), the published tables compared against, and two
# private helpers the tests reach through ``merlib.evaluation`` (clearing the bootstrap cache, checking which
# batch entries a model class reads).
from ..paper_results import (
    MODEL_LABELS,
    MODEL_NAMES,
    ROOM_NAMES,
    TABLE_I,  # noqa: F401
    TABLE_II,  # noqa: F401
    PublishedCI,  # noqa: F401
)
from .inference import (
    MODEL_INPUTS,
    _infer_inputs,  # noqa: F401
    predict,
    predict_rooms,
)
from .intervals import (
    PAPER_ALPHA,  # noqa: F401
    PAPER_BOOTSTRAPS,  # noqa: F401
    AccuracyCI,
    DifferenceCI,
    _bootstrap_indices,  # noqa: F401
    accuracy_ci,
    bootstrap_accuracies,
    paired_difference,
)
from .predictions import (
    Predictions,
    load_predictions,
    load_predictions_dir,
    predictions_filename,
    room_name,
    save_predictions,
)
from .tables import (
    FUSION_PARTS,
    MISSING,  # noqa: F401
    MULTI_MIC_PAIRS,
    add_evaluate_parser,
    claims_table,
    class_names,
    compare_with_paper,
    confusion,
    evaluate_models,
    evaluate_predictions_dir,
    evaluate_rooms,
    paper_table2,
    per_class_metrics,
    results_from_frame,
    table2,
    to_markdown,
    write_table,
)

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
