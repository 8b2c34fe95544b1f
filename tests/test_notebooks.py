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


def _check_07(m: dict) -> None:
    keys = {"audio_input", "video_input", "inputs", "audio", "video", "fused"}
    assert m["corpus"] == "synthetic" and m["n_tsne_clips"] == 128 and set(m["tsne_keys"]) == keys
    for scores in (m["emotion_neighbour_accuracy"], m["speaker_neighbour_accuracy"]):
        assert set(scores) == keys and all(0 <= v <= 100 for v in scores.values())
    # the synthetic faces are drawn per actor: raw frames find the speaker far better than the emotion
    assert m["speaker_neighbour_accuracy"]["video_input"] > 2 * m["emotion_neighbour_accuracy"]["video_input"]
    assert len(m["test_rooms"]) == 7 and m["n_test_clips"] == 16
    assert set(m["test_accuracy"]) == {"audio_rev_sc", "audio_avg_mel", "audio_sum_pe", "mer_sum_pe"}
    assert all(a % 6.25 == 0 for rooms in m["test_accuracy"].values() for a in rooms.values())  # k/16 clips
    assert m["mer_focus_confusion_row_sums"] == [100.0] * 8
    assert len(m["robustness"]) == 4 * (4 + 3) and all(r["low"] <= r["accuracy"] <= r["high"] for r in m["robustness"])
    assert m["lab_updates"] == 4 and m["lab_audio_bytes"] > 100_000
    assert all(abs(s - 1) < 1e-5 for when in m["lab_probability_sums"].values() for s in when.values())
    assert {"tsne.png", "confusion.png", "room_accuracy.png", "robustness.png"} <= set(m["figures"])
    # training drew the phone inside the critical distance; the test rooms' published positions lie farther out
    assert m["distance_over_dc"]["training rooms"] <= 1.0 and len(m["distance_over_dc"]) == 8
    assert max(m["distance_over_dc"].values()) > 1.0


NOTEBOOK_CHECKS = {"07_tsne_and_confusion": _check_07, "06_fusion_training": _check_06, "05_r2plus1d_video": _check_05, "00_data_tour": _check_00, "02_reverberant_corpus": _check_02, "03_mel_and_specaugment": _check_03,
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


@pytest.mark.notebooks
@pytest.mark.slow
def test_notebook_07_analyses_the_runs_and_predictions_it_is_given(tmp_path: Path, quick_corpus: Path):
    """What `merlib reproduce` does: 07 loads the grid's models (RUNS_DIR) and predictions (PREDICTIONS_DIR)."""
    from merlib.datasets import prepare_corpora
    from merlib.evaluation import predict_rooms, save_predictions
    from merlib.reproduce import notebook_parameters
    from merlib.training import TrainConfig, train

    nb = next(p for p in notebook_paths() if p.stem == "07_tsne_and_confusion")
    assert {"RUNS_DIR", "PREDICTIONS_DIR", "DATA_ROOT", "ACE_ROOT"} <= notebook_parameters(nb)
    cfg = TrainConfig.quick(max_epochs=1, limit_train_batches=1, top_k=1, progress=False)
    paths = prepare_corpora(quick_corpus, seed=0, frame_settings=cfg.frame_settings(), progress=False)
    runs, preds = tmp_path / "runs", tmp_path / "predictions"
    for name in ("audio_rev_sc", "audio_avg_mel", "audio_sum_pe", "mer_sum_pe"):
        model = train(name, paths, cfg, runs / name).model
        for pred in predict_rooms(model, name, paths).values():
            save_predictions(pred, preds, model=name)
    execute_notebook(nb, tmp_path / "out", quick=True, seed=0, cell_timeout=300,
                     parameters={"RUNS_DIR": str(runs), "PREDICTIONS_DIR": str(preds)})
    m = json.loads((tmp_path / "out" / nb.stem / "metrics.json").read_text())
    assert m["models_source"] == f"loaded from {runs}" and m["predictions_source"] == f"loaded from {preds}"
    assert not (tmp_path / "out" / nb.stem / "runs").exists()  # nothing trained
    _check_07(m)
