"""Every numbered notebook executes with papermill in quick mode (what `make reproduce` runs).

Each runs into a temporary copy with a temporary OUT_DIR, never over the source, sharing the session's
quick synthetic corpus through MERLIB_CACHE (set in conftest). Notebook-specific checks on the numbers a
notebook records in metrics.json live in NOTEBOOK_CHECKS.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from merlib.data.ravdess import EMOTIONS
from merlib.predict import window_starts
from merlib.reproduce import execute_notebook, notebook_paths


CHANCE = 100 / 8
FLOOR = 2 * CHANCE  # held-out accuracy floor of every trained model: chance plus 12.5 points
CLEAN_TRAINED = {"audio_clean_sc", "mer_clean_sc"}


def _check_00(m: dict) -> None:
    assert m["n_clips"] == 256 and m["n_actors"] == 16
    assert m["split"]["val"] and m["split"]["test"]
    assert m["audio_sample_rate"] == 48000 and m["video_fps"] == 30


def _check_01(m: dict) -> None:
    # the simulated rooms decay at the T60 they were asked for: T30 fitted on the RIRs within 10 % of the target
    assert 0.9 < m["t30_ratio_mean"] < 1.1 and 0.8 < m["t30_ratio_min"] and m["t30_ratio_max"] < 1.2
    assert all(0.8 < r < 1.2 for r in m["scene_t30_over_t60"])


def _check_02(m: dict) -> None:
    # clean copies, train/val scenes (13 actors), matched + 7 rooms × the 3 test actors' 48 clips
    assert m["n_files"] == 256 + 13 * 16 + 8 * 48
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
    assert m["cache_clips"] == 256 and m["cache_failed"] == 0
    assert m["train_loss_last_epoch"] < m["train_loss_first_epoch"]
    # the video model learned: unseen actors well above chance, not one class for everything
    assert m["n_test_clips"] == 48 and m["test_accuracy"] >= FLOOR and m["val_accuracy"] > 0.1875
    assert m["test_top_class_share"] < 0.5


def _held_out_floors(test_accuracy: dict, top_share: dict, models) -> None:
    for model in models:
        assert test_accuracy[model]["matched"] >= FLOOR, (model, test_accuracy[model])
        assert top_share[model]["matched"] < 0.5, (model, top_share[model])


def _check_06(m: dict) -> None:
    models = set(m["models"])
    assert {"audio_rev_sc", "audio_sum_pe", "video", "mer_sum_pe"} <= models
    assert m["mer_parameters_paper"] == 61_638_669 and m["final_equals_average_max_diff"] == 0
    assert all(1 <= n <= 3 for n in m["n_checkpoints_averaged"].values())
    assert m["conditions"][0] == "Lecture 1" and "matched" in m["conditions"] and m["n_test_clips"] == 48
    for model in models:  # curves for every model, one point per epoch; validation above chance
        assert len(m["curves"][model]["val_acc"]) == len(m["curves"][model]["train_acc"]) == m["epochs"][model]
        assert m["val_acc_averaged"][model] > 0.1875, (model, m["val_acc_averaged"][model])
    # the clean-trained models are reported, not floored: their drop in reverberant rooms is one of the paper's points
    _held_out_floors(m["test_accuracy"], m["test_top_class_share"], models - CLEAN_TRAINED)
    claims = {(c["claim"], c["model"], c["condition"]) for c in m["claims"]}
    assert ("multi-microphone", "audio_sum_pe", "matched") in claims and ("fusion", "mer_sum_pe", "matched") in claims
    assert all(c["low"] <= c["difference"] <= c["high"] for c in m["claims"])


def _check_07(m: dict) -> None:
    keys = {"audio_input", "video_input", "inputs", "audio", "video", "fused"}
    assert m["corpus"] == "synthetic" and m["n_tsne_clips"] == 176 + 32 + 48 and set(m["tsne_keys"]) == keys
    assert m["n_neighbour_clips"] == 32 + 48  # held-out actors only
    for scores in (m["emotion_neighbour_accuracy"], m["speaker_neighbour_accuracy"]):
        assert set(scores) == keys and all(0 <= v <= 100 for v in scores.values())
    # the synthetic faces are drawn per actor: raw frames find the speaker far better than the emotion
    assert m["speaker_neighbour_accuracy"]["video_input"] > 2 * m["emotion_neighbour_accuracy"]["video_input"]
    assert len(m["test_rooms"]) == 7 and m["n_test_clips"] == 48
    analysed = {"audio_rev_sc", "audio_avg_mel", "audio_sum_pe", "mer_sum_pe"}
    assert analysed <= set(m["test_accuracy"])
    assert all(round(a * 48 / 100, 6) % 1 == 0 for rooms in m["test_accuracy"].values() for a in rooms.values())
    _held_out_floors(m["test_accuracy"], m["top_class_share"], analysed)
    assert m["mer_focus_confusion_row_sums"] == pytest.approx([100.0] * 8)
    assert len(m["robustness"]) == 4 * (4 + 3) and all(r["low"] <= r["accuracy"] <= r["high"] for r in m["robustness"])
    assert m["lab_updates"] == 4 and m["lab_audio_bytes"] > 100_000
    assert all(abs(s - 1) < 1e-5 for when in m["lab_probability_sums"].values() for s in when.values())
    assert {"tsne.png", "confusion.png", "room_accuracy.png", "robustness.png", "own_clip.png"} <= set(m["figures"])
    # "your own clip": three joined test clips through merlib.predict, the 3-channel file to Sum PE
    own = m["own_clip"]
    assert own["model"] == "audio_sum_pe" and [s[2] for s in own["segments"]] == ["happy", "sad", "angry"]
    assert own["windows"] == len(window_starts(own["duration_s"], hop_s=own["hop_s"])) > 10
    assert own["duration_s"] == pytest.approx(own["segments"][-1][1], abs=1e-3)
    assert all(abs(s - 1) < 1e-5 for s in own["window_probability_sums"]) and own["prediction"] in EMOTIONS
    # training drew the phone inside the critical distance; the test rooms' published positions lie farther out
    assert m["distance_over_dc"]["training rooms"] <= 1.0 and len(m["distance_over_dc"]) == 8  # + the 7 rooms
    assert max(m["distance_over_dc"].values()) > 1.0


NOTEBOOK_CHECKS = {"00_data_tour": _check_00, "01_rir_simulation": _check_01, "02_reverberant_corpus": _check_02,
                   "03_mel_and_specaugment": _check_03, "04_multichannel_htsat": _check_04, "05_r2plus1d_video": _check_05,
                   "06_fusion_training": _check_06, "07_tsne_and_confusion": _check_07}
#: Notebooks that analyse trained models get the session's quick grid, as `merlib reproduce` passes its own.
USES_GRID = {"05_r2plus1d_video", "06_fusion_training", "07_tsne_and_confusion"}


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_executes_in_quick_mode(path: Path, tmp_path: Path, quick_corpus: Path, executed_notebooks: Path,
                                        request):
    parameters = {"SHOW_SOLUTIONS": True}  # as `merlib reproduce` runs them: every exercise's solution executes
    if path.stem in USES_GRID:
        from merlib.reproduce import notebook_parameters

        assert {"RUNS_DIR"} <= notebook_parameters(path)
        grid, _ = request.getfixturevalue("quick_grid")
        parameters = {"RUNS_DIR": str(grid / "runs")}
        if "PREDICTIONS_DIR" in notebook_parameters(path):
            parameters["PREDICTIONS_DIR"] = str(grid / "predictions")
    executed = execute_notebook(path, tmp_path, quick=True, seed=0, cell_timeout=300, parameters=parameters)
    nb = json.loads(executed.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # figures drawn inline even where the environment picks another backend (the tests set MPLBACKEND=Agg)
    figures = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    assert figures >= 2, f"{path.name} shows {figures} figures: does its first cell start with %matplotlib inline?"
    shutil.copy2(executed, executed_notebooks / path.name)  # for the book test at the end of this module
    metrics_file = tmp_path / path.stem / "metrics.json"
    assert metrics_file.exists(), f"{path.name} must record its key numbers with merlib.reporting.record_metrics"
    metrics = json.loads(metrics_file.read_text())
    if path.stem == "07_tsne_and_confusion":  # analysed what it was given, trained nothing
        assert metrics["models_source"] == f"loaded from {grid / 'runs'}"
        assert not (tmp_path / path.stem / "runs").exists()
    NOTEBOOK_CHECKS[path.stem](metrics)


def test_every_notebook_has_checks():
    assert {p.stem for p in notebook_paths()} == set(NOTEBOOK_CHECKS)


# ---------------------------------------------------------------------------------------------- teaching structure


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_exercises_solutions_and_predictions(path: Path):
    """At least two numbered exercises, each followed by its solution behind SHOW_SOLUTIONS, and one
    "predict before you run" prompt just before a code cell; the math next to the code from notebook 01 on."""
    cells = _cells(path)
    params = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assert re.search(r"^SHOW_SOLUTIONS = False", _text(params), flags=re.M)
    exercises = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                 and re.match(r"\*\*Exercise \d+\.\*\*", _text(c))]
    assert len(exercises) >= 2, f"{path.name}: {len(exercises)} exercises"
    numbers = [int(re.match(r"\*\*Exercise (\d+)", _text(cells[i])).group(1)) for i in exercises]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    for i in exercises:
        after = cells[i + 1]
        assert after["cell_type"] == "code" and _text(after).startswith("if SHOW_SOLUTIONS:"), (path.name, i)
    prompts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
               and _text(c).startswith("**Predict before you run.**")]
    assert prompts and all(cells[i + 1]["cell_type"] == "code" for i in prompts), path.name
    if not path.stem.startswith("00"):
        display = sum(_text(c).count("$$") // 2 for c in cells if c["cell_type"] == "markdown")
        assert display >= 2, f"{path.name}: {display} display equations"
    for c in cells:  # committed without outputs, every cell with an id
        assert c.get("id") and (c["cell_type"] != "code" or (c["outputs"] == [] and c["execution_count"] is None))


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.browser
def test_the_book_of_the_executed_notebooks(executed_notebooks: Path, chromium: str, tmp_path: Path):
    """`make book` on what the notebook tests above executed, read in headless Chromium: every chapter loads,
    its figures decode and show, its formulas typeset without error, nothing is fetched from the network."""
    from merlib.book import browse_book, build_book, missing_chapters

    missing = missing_chapters(executed_notebooks)
    if missing:
        pytest.skip(f"needs every notebook executed by test_notebook_executes_in_quick_mode first; missing {missing}")
    report = build_book(executed_notebooks, tmp_path / "book")
    assert [p.file for p in report.chapters] == [p.with_suffix(".html").name for p in notebook_paths()]
    shots = tmp_path / "screenshots"
    pages = browse_book(tmp_path / "book", shots, chromium=chromium)
    print(f"screenshots of the book: {shots}")
    for p in pages:
        assert p["status"] == 200 and not p["failed_requests"] and not p["page_errors"], p["file"]
        assert not p["broken_links"], (p["file"], p["broken_links"])
        assert all(i["complete"] and min(i["natural"]) > 0 for i in p["images"]), p["file"]
        assert all(min(i["box"]) > 0 for i in p["images"] if i["shown"]), p["file"]
        assert p["math_errors"] == 0 and p["raw_display_math"] == 0, p["file"]
        assert abs(p["math"] - p["expected"]["n_equations"]) <= max(2, p["expected"]["n_equations"] // 50), p["file"]
        if p["kind"] == "chapter":
            assert len(p["images"]) == p["expected"]["n_images"] >= 2, p["file"]
            assert p["solutions"] >= 2 and len(p["screenshots"]) == 2, p["file"]
            if not p["file"].startswith("00"):
                assert p["math"] >= 5, p["file"]
