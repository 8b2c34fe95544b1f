"""Small helpers notebooks and runs use to record their key numbers (``metrics.json``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .data.media import write_json


def _jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become ``null`` so the file is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    elif hasattr(value, "item") and callable(value.item) and getattr(value, "numel", lambda: 2)() == 1:
        value = value.item()  # a one-element torch tensor
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record_metrics(out_dir: str | os.PathLike, **metrics: Any) -> Path:
    """Merge ``metrics`` into ``out_dir/metrics.json`` (created if missing) and return its path.

    Notebooks call this for the few numbers a reader or a test should check, e.g.
    ``record_metrics(OUT_DIR, n_clips=128, mean_t60=0.61)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(_jsonable(metrics))
    write_json(path, current, sort_keys=True)
    return path
