"""The main job: ``merlib reproduce --quick`` (what ``make reproduce`` runs).

For now it builds the quick synthetic corpus and executes every numbered notebook with papermill in quick
mode into ``outputs/`` (executed notebooks under ``outputs/notebooks/``, each notebook's figures and
``metrics.json`` under ``outputs/<notebook>/``). Later stages (reverberant corpus, training grid) are added
here as they land. The tests execute notebooks through :func:`execute_notebook` too, so CI runs exactly
what users run.
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


def reproduce(out_dir: str | os.PathLike = "outputs", quick: bool = True, seed: int = 0) -> dict[str, Any]:
    """Run the main job and return a summary (also written to ``out_dir/reproduce.json``)."""
    from .config import preset, save_config
    from .data.synthetic import ensure_corpus

    if not quick:
        raise NotImplementedError(
            "full-size reproduction needs the training stages of later issues; use --quick for now"
        )
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = preset("quick", seed=seed)
    summary: dict[str, Any] = {"seed": seed, "quick": quick, "stages": {}}
    t0 = time.time()
    corpus = ensure_corpus("quick", seed=seed)
    cfg.data.root = str(corpus)
    save_config(cfg, out)
    summary["corpus"] = str(corpus)
    summary["stages"]["synthetic_corpus_s"] = round(time.time() - t0, 1)
    summary["notebooks"] = {}
    for nb in notebook_paths():
        t = time.time()
        print(f"executing {nb.name} …", flush=True)
        executed = execute_notebook(nb, out, quick=quick, seed=seed, parameters={"DATA_ROOT": None})
        summary["notebooks"][nb.stem] = {"executed": str(executed), "seconds": round(time.time() - t, 1)}
    summary["total_s"] = round(time.time() - t0, 1)
    (out / "reproduce.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
