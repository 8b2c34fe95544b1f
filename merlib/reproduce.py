"""The main job: ``merlib reproduce`` — the paper's Table II grid, end to end.

``merlib reproduce --quick`` (what ``make reproduce`` runs, on two CPU cores) does, into ``outputs/``:

1. builds (or reuses) the quick synthetic RAVDESS, its reverberant corpus and its frame cache;
2. trains the nine Table II configurations (:data:`merlib.models.mer.MODEL_SPECS`) with the reference recipe
   at quick sizes (``outputs/runs/<model>/``: config, logs, checkpoints, averaged ``final.pt``);
3. predicts every test room and the clean test set (``outputs/predictions/``) and writes Table II with 75 %
   intervals next to the paper's numbers (``outputs/tables/``);
4. executes every numbered notebook with papermill in quick mode (``outputs/notebooks/``, figures and
   ``metrics.json`` in ``outputs/<notebook>/``); notebook 07 analyses the grid's models and predictions
   (``RUNS_DIR``, ``PREDICTIONS_DIR``) rather than training its own.

Without ``--quick`` it is the paper-size run for a GPU: ``--ravdess`` and ``--ace`` give the real corpora,
``--audio-weights``/``--video-weights`` the pretrained encoders. A finished model is reused, an interrupted
one resumes from its last checkpoint. The tests execute notebooks through :func:`execute_notebook` too, so
CI runs exactly what users run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_paths(directory: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb``, in order."""
    directory = Path(directory) if directory else NOTEBOOK_DIR
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {directory}; run from a source checkout of merlib (pip install -e .)"
        )
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters(path: str | os.PathLike) -> set[str]:
    """The names a notebook's ``parameters`` cell declares (papermill's own reading of it)."""
    import papermill as pm

    return set(pm.inspect_notebook(str(path)))


def execute_notebook(
    path: str | os.PathLike,
    out_root: str | os.PathLike,
    quick: bool = True,
    seed: int = 0,
    cell_timeout: int = 600,
    parameters: dict[str, Any] | None = None,
    progress: bool = False,
) -> Path:
    """Execute one notebook with papermill into ``out_root/notebooks/`` (never over the source).

    Injects ``QUICK``, ``SEED`` and ``OUT_DIR = out_root/<notebook name>`` (plus ``parameters``) after the
    cell tagged ``parameters``, runs it with the notebook folder as the working directory, and returns the
    executed notebook's path. Raises ``papermill.PapermillExecutionError`` naming the failing cell.
    """
    import papermill as pm

    path = Path(path)
    out_root = Path(out_root).resolve()
    out_nb = out_root / "notebooks" / path.name
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    params = {"QUICK": quick, "SEED": seed, "OUT_DIR": str(out_root / path.stem)}
    params.update(parameters or {})
    pm.execute_notebook(
        str(path),
        str(out_nb),
        parameters=params,
        cwd=str(path.parent),
        kernel_name="python3",
        execution_timeout=cell_timeout,
        progress_bar=progress,
        request_save_on_cell_execute=False,
    )
    return out_nb


def run_grid(
    data_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    quick: bool = True,
    seed: int = 0,
    ace_root: str | os.PathLike | None = None,
    models: list[str] | None = None,
    audio_weights: str | None = None,
    video_weights: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate the Table II grid on ``data_root``; returns per-model timings and accuracies."""
    from .datasets import prepare_corpora
    from .evaluation import evaluate_predictions_dir, predict_rooms, save_predictions
    from .models.mer import TABLE_II_ORDER, get_spec
    from .training import FINAL, LAST, TrainConfig, load_final, train

    out = Path(out_dir)
    weights = dict(seed=seed, progress=progress, audio_weights=audio_weights, video_weights=video_weights)
    # quick grid: 3 epochs per model keeps nine trainings plus all notebooks within 20 min on 2 cores
    cfg = TrainConfig.quick(max_epochs=3, patience=2, top_k=2, **weights) if quick else TrainConfig.paper(**weights)
    paths = prepare_corpora(data_root, seed=seed, frame_settings=cfg.frame_settings(), ace_root=ace_root,
                            progress=progress)
    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda" if __import__("torch").cuda.is_available() else "cpu"
    report: dict[str, Any] = {}
    for name in models or list(TABLE_II_ORDER):
        t = time.time()
        run_dir = out / "runs" / name
        if not (run_dir / FINAL).exists():
            print(f"training {name} …", flush=True)
            train(name, paths, cfg, run_dir, resume=(run_dir / "checkpoints" / LAST).exists())
        model = load_final(run_dir).to(device)
        # the clean test set is single-channel: only the single-channel and video models read it (Table I)
        preds = predict_rooms(model, name, paths, clean=get_spec(name).num_mics <= 1, device=device,
                              batch_size=cfg.batch_size, autocast="bf16" if device == "cuda" else None)
        accs = {}
        for condition, pred in preds.items():
            save_predictions(pred, pred_dir, model=name)
            accs[condition] = round(pred.accuracy, 2)
        report[name] = {"seconds": round(time.time() - t, 1), "test_accuracy": accs}
    evaluate_predictions_dir(pred_dir, out / "tables")
    return report


def reproduce(
    out_dir: str | os.PathLike = "outputs",
    quick: bool = True,
    seed: int = 0,
    ravdess: str | os.PathLike | None = None,
    ace: str | os.PathLike | None = None,
    audio_weights: str | None = None,
    video_weights: str | None = None,
    notebooks: bool = True,
) -> dict[str, Any]:
    """Run the main job and return a summary (also written to ``out_dir/reproduce.json``)."""
    from .config import preset, save_config
    from .data.synthetic import ensure_corpus

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = preset("quick" if quick else "paper", seed=seed)
    summary: dict[str, Any] = {"seed": seed, "quick": quick, "stages": {}}
    t0 = time.time()
    corpus = Path(ravdess) if ravdess else ensure_corpus("quick" if quick else "full", seed=seed)
    cfg.data.root = str(corpus)
    save_config(cfg, out)
    summary["corpus"] = str(corpus)
    summary["stages"]["corpus_s"] = round(time.time() - t0, 1)
    t = time.time()
    summary["grid"] = run_grid(corpus, out, quick=quick, seed=seed, ace_root=ace, audio_weights=audio_weights,
                               video_weights=video_weights)
    summary["stages"]["grid_s"] = round(time.time() - t, 1)
    summary["tables"] = str(out / "tables")
    summary["notebooks"] = {}
    # what the grid made, for the notebooks that can use it (07 loads the trained models instead of training)
    offered = {"DATA_ROOT": str(ravdess) if ravdess else None, "ACE_ROOT": str(ace) if ace else None,
               "RUNS_DIR": str(out / "runs"), "PREDICTIONS_DIR": str(out / "predictions")}
    for nb in notebook_paths() if notebooks else []:
        t = time.time()
        print(f"executing {nb.name} …", flush=True)
        declared = notebook_parameters(nb)
        executed = execute_notebook(nb, out, quick=quick, seed=seed,
                                    parameters={k: v for k, v in offered.items() if k in declared})
        summary["notebooks"][nb.stem] = {"executed": str(executed), "seconds": round(time.time() - t, 1)}
    summary["total_s"] = round(time.time() - t0, 1)
    (out / "reproduce.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
