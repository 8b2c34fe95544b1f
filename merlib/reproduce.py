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


#: Which unimodal runs start each multimodal model of the quick grid (its audio twin and the video model).
MER_INIT: dict[str, str] = {"mer_clean_sc": "audio_clean_sc", "mer_rev_sc": "audio_rev_sc",
                            "mer_avg_mel": "audio_avg_mel", "mer_sum_pe": "audio_sum_pe"}


#: The order the quick grid starts its models in (two at a time).
GRID_PRIORITY: tuple[str, ...] = ("video", "audio_sum_pe", "audio_avg_mel", "audio_rev_sc", "audio_clean_sc",
                                  "mer_sum_pe", "mer_avg_mel", "mer_rev_sc", "mer_clean_sc")


def _grid_job(name: str, paths: Any, cfg: Any, run_dir: str, pred_dir: str, quiet: bool) -> dict[str, Any]:
    """Train (or reuse, or resume) one model of the grid and predict its test conditions; runs in a worker."""
    import logging

    import torch

    from .evaluation import predict_rooms, save_predictions
    from .models.mer import get_spec
    from .training import FINAL, LAST, load_final, train

    if quiet:  # one line per model from the grid instead of Lightning's banners, tips and deprecation notes
        import warnings

        warnings.filterwarnings("ignore", module="lightning")
        warnings.filterwarnings("ignore", module="torch")
        for logger in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(logger).setLevel(logging.WARNING)
    t = time.time()
    run = Path(run_dir)
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    if not (run / FINAL).exists():
        train(name, paths, cfg, run, resume=(run / "checkpoints" / LAST).exists())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_final(run).to(device)
    # the clean test set is single-channel: only the single-channel and video models read it (Table I)
    preds = predict_rooms(model, name, paths, clean=get_spec(name).num_mics <= 1, device=device,
                          batch_size=cfg.batch_size, autocast="bf16" if device == "cuda" else None)
    accs = {}
    for condition, pred in preds.items():
        save_predictions(pred, pred_dir, model=name)
        accs[condition] = round(pred.accuracy, 2)
    return {"seconds": round(time.time() - t, 1), "test_accuracy": accs}


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
    jobs: int | None = None,
    recipe: dict[str, dict[str, Any]] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train and evaluate the Table II grid on ``data_root``; returns per-model timings and accuracies.

    ``recipe`` overrides quick settings per kind of model (``{"audio": {"max_epochs": 12}}``, on top of
    :data:`merlib.training.QUICK_GRID`; the tests train a shorter grid this way). ``cache_dir``: where the
    reverberant corpus and frame cache live (default :func:`merlib.config.default_cache_dir`).

    Quick mode (:meth:`merlib.training.TrainConfig.quick_for`) trains ``jobs`` models at a time (default: one
    per CPU core, each on one thread) and starts every multimodal model from its unimodal twins
    (:data:`MER_INIT`), so those train first. The paper-size grid trains one model at a time with the
    reference recipe from the given pretrained encoders. Finished models are reused; interrupted ones resume.
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    from .datasets import prepare_corpora
    from .evaluation import evaluate_predictions_dir
    from .models.mer import TABLE_II_ORDER, get_spec
    from .training import TrainConfig

    out = Path(out_dir)
    weights = dict(seed=seed, audio_weights=audio_weights, video_weights=video_weights)
    names = list(models or TABLE_II_ORDER)

    def config(name: str) -> TrainConfig:
        if not quick:
            return TrainConfig.paper(progress=progress, **weights)
        init = {}
        if name in MER_INIT:  # the paper's MER starts from pretrained encoders; quick MER from the grid's own
            init = {"init_audio": str(out / "runs" / MER_INIT[name]), "init_video": str(out / "runs" / "video")}
        return TrainConfig.quick_for(name, progress=False, **weights, **init,
                                     **(recipe or {}).get(get_spec(name).kind, {}))

    paths = prepare_corpora(data_root, seed=seed, frame_settings=config("video").frame_settings(),
                            ace_root=ace_root, cache_dir=cache_dir, progress=progress)
    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    needs = {n: ({MER_INIT[n], "video"} & set(names)) if quick and n in MER_INIT else set() for n in names}
    jobs = max(1, jobs or (os.cpu_count() or 1)) if quick else 1
    report: dict[str, Any] = {}
    done: set[str] = set()
    # longest first (3-microphone audio), the cheap video model early since every MER model waits for it
    pending = sorted(names, key=lambda n: GRID_PRIORITY.index(n) if n in GRID_PRIORITY else len(GRID_PRIORITY))
    running: dict[Any, str] = {}
    # spawn: a fresh interpreter per worker (no forked torch/OpenMP state)
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        while pending or running:
            for name in [n for n in pending if needs[n] <= done]:
                if len(running) >= jobs:
                    break
                pending.remove(name)
                print(f"training {name} …", flush=True)
                fut = pool.submit(_grid_job, name, paths, config(name), str(out / "runs" / name), str(pred_dir),
                                  quick)
                running[fut] = name
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = running.pop(fut)
                report[name] = fut.result()
                done.add(name)
                accs = report[name]["test_accuracy"]
                shown = ", ".join(f"{k} {v:.1f}" for k, v in list(accs.items())[:3])
                print(f"  {name}: {report[name]['seconds']:.0f} s; test accuracy % {shown} …", flush=True)
    report = {n: report[n] for n in names}
    evaluate_predictions_dir(pred_dir, out / "tables")
    return report


def check_main_job_dir(out_dir: str | os.PathLike) -> Path:
    """The main job's output folder, refused (:class:`~merlib.errors.OutputError`) when it is a file, cannot be
    written, or already holds files but no earlier main job (its ``config.yaml`` or ``reproduce.json``)."""
    from .errors import OutputError, check_output_dir

    out = check_output_dir(out_dir).resolve()
    if out.is_dir() and any(out.iterdir()) and not any((out / f).exists() for f in ("config.yaml", "reproduce.json")):
        raise OutputError(f"--out {out} holds other files and no earlier main job (no config.yaml or reproduce.json); "
                          "the main job writes many folders there: choose an empty or new folder")
    return out


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

    out = check_main_job_dir(out_dir)
    if ravdess and not Path(ravdess).is_dir():
        raise FileNotFoundError(f"--ravdess {ravdess} is not a folder; give the folder that holds the RAVDESS "
                                "download (merlib fetch ravdess --to DIR), or leave it out for the synthetic corpus")
    if ace and not Path(ace).is_dir():
        raise FileNotFoundError(f"--ace {ace} is not a folder; give the extracted ACE download (merlib fetch ace)")
    out.mkdir(parents=True, exist_ok=True)
    # the whole run's settings in one record (outputs/config.yaml): the corpus, the rooms, the frames and the
    # grid's common recipe; each model's own settings (QUICK_GRID, init_audio/init_video) are in its run folder
    cfg = preset("quick" if quick else "paper", seed=seed, reverb__ace_root=str(ace) if ace else None,
                 train__audio_weights=audio_weights, train__video_weights=video_weights, train__progress=not quick)
    summary: dict[str, Any] = {"seed": seed, "quick": quick, "stages": {}}
    t0 = time.time()
    corpus = Path(ravdess) if ravdess else ensure_corpus("quick" if quick else "full", seed=seed)
    cfg.data.root = str(corpus)
    if ravdess:
        cfg.synth = None  # the real corpus: nothing generated
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
               "RUNS_DIR": str(out / "runs"), "PREDICTIONS_DIR": str(out / "predictions"),
               # the solutions run too, so every exercise is exercised; the book folds them under "Solution"
               "SHOW_SOLUTIONS": True}
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
