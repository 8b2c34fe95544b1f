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


def _check_02(m: dict) -> None:
    assert m["n_files"] == 128 + 112 + 7 * 16  # clean copies, train/val scenes, 7 rooms × test clips
    assert 0.95 < m["mean_t60_ratio"] < 1.05
    assert m["max_distance_over_dc"] <= 1.0
    assert len(m["test_rooms"]) == 7 and {r["source"] for r in m["test_rooms"].values()} == {"simulated ACE-like"}


def _check_03(m: dict) -> None:
    assert m["n_empty_filters_fmax14k"] == 9 and m["n_empty_filters_fmax8k"] == 0
    assert m["logmel_shape"] == [401, 64]


def _check_04(m: dict) -> None:
    assert m["paper_parameters"] == 27_571_432
    assert m["checkpoint_missing"] == 4
    assert m["train_loss_last_epoch"] < m["train_loss_first_epoch"]


def _check_05(m: dict) -> None:
    assert m["encoder_parameters"] == 31_694_109 and m["video_only_parameters"] == 32_290_853
    assert m["cache_clips"] == 128 and m["cache_failed"] == 0
    assert m["train_loss_last_epoch"] < m["train_loss_first_epoch"]


def _check_06(m: dict) -> None:
    assert m["n_test_rooms"] == 7 and m["mer_parameters_paper"] == 61_638_669
    assert m["final_equals_average_max_diff"] == 0
    assert all(1 <= n <= 3 for n in m["n_checkpoints_averaged"].values())


NOTEBOOK_CHECKS = {"06_fusion_training": _check_06, "05_r2plus1d_video": _check_05, "00_data_tour": _check_00, "02_reverberant_corpus": _check_02, "03_mel_and_specaugment": _check_03,
                   "04_multichannel_htsat": _check_04}


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
