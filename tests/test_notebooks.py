"""Every numbered notebook executes with papermill in quick mode (what `make reproduce` runs).

Each runs into a temporary copy with a temporary OUT_DIR, never over the source, sharing the session's
quick synthetic corpus through MERLIB_CACHE (set in conftest). Notebook-specific checks on the numbers a
notebook records in metrics.json live in NOTEBOOK_CHECKS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from merlib.reproduce import execute_notebook, notebook_paths


def _check_00(m: dict) -> None:
    assert m["n_clips"] == 128 and m["n_actors"] == 8
    assert m["split"]["val"] and m["split"]["test"]
    assert m["audio_sample_rate"] == 48000 and m["video_fps"] == 30


NOTEBOOK_CHECKS = {"00_data_tour": _check_00}


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_executes_in_quick_mode(path: Path, tmp_path: Path, quick_corpus: Path):
    executed = execute_notebook(path, tmp_path, quick=True, seed=0, cell_timeout=300)
    nb = json.loads(executed.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    metrics_file = tmp_path / path.stem / "metrics.json"
    assert metrics_file.exists(), f"{path.name} must record its key numbers with merlib.reporting.record_metrics"
    check = NOTEBOOK_CHECKS.get(path.stem)
    if check:
        check(json.loads(metrics_file.read_text()))
