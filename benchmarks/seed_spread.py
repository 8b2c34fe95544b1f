"""How much a quick model's test accuracy moves with its training seed alone (same corpus, split and rooms).

Module: merlib/training.py (the quick recipe); this script only measures it.

One command::

    python benchmarks/seed_spread.py --model video --seeds 1 2 --out benchmarks/results/seed_spread_video.json

For each seed it trains ``--model`` with :meth:`TrainConfig.quick_for` and any ``--set`` changes (``seed`` changes the initial weights,
the data order and the augmentation; the corpus, the actor split and the rooms stay those of ``--corpus-seed``)
and scores the matched-room test clips. The seeds run at the same time, one process each, as the quick grid
runs two models at a time (each trains on one thread). It prints one line per seed and writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info

from merlib.data.media import write_json


def _prepare(model: str, corpus_seed: int) -> dict:
    """Build (or reuse) the corpus, the reverberant build and the frame cache once, before the workers start:
    builds of the same cache must not run side by side."""
    from merlib.data.synthetic import ensure_corpus
    from merlib.datasets import prepare_corpora
    from merlib.training import TrainConfig

    corpus = ensure_corpus("quick", seed=corpus_seed, progress=False)
    paths = prepare_corpora(corpus, seed=corpus_seed, frame_settings=TrainConfig.quick_for(model).frame_settings(),
                            progress=False, video=_reads_video(model))
    return {"reverberant": str(paths.reverberant), "frames": str(paths.frames) if paths.frames else None}


def _worker(model: str, seed: int, data: dict, out: Path, overrides: dict) -> dict:
    from merlib.datasets import CorpusPaths, MERDataModule
    from merlib.evaluation import predict
    from merlib.training import TrainConfig, train

    paths = CorpusPaths(data["reverberant"], data["frames"])
    cfg = TrainConfig.quick_for(model, seed=seed, progress=False, **overrides)
    t0 = time.time()
    result = train(model, paths if _reads_video(model) else paths.reverberant, cfg, out)
    test = predict(result.model, MERDataModule(paths, model, batch_size=16).loader("test", "matched"))
    return {"model": model, "seed": seed, "overrides": overrides, "matched_accuracy": round(test.accuracy, 1),
            "best_val_acc": result.best_val_acc, "seconds": round(time.time() - t0)}


def _reads_video(model: str) -> bool:
    from merlib.models.mer import get_spec

    return get_spec(model).uses_video


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="video")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--corpus-seed", type=int, default=0)
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON",
                   help="TrainConfig fields to change from the quick recipe, e.g. lr=0.001 max_epochs=72")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.worker is not None:
        print(json.dumps(_worker(args.model, args.worker, json.loads(args.data), args.run_dir, overrides)))
        return
    load = os.getloadavg()
    data = json.dumps(_prepare(args.model, args.corpus_seed))
    with tempfile.TemporaryDirectory(prefix="seed-spread-") as tmp:
        procs = [subprocess.Popen([sys.executable, __file__, "--model", args.model, "--corpus-seed",
                                   str(args.corpus_seed), "--worker", str(s), "--run-dir", f"{tmp}/seed{s}",
                                   "--data", data, "--set", *args.set],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in args.seeds]
        rows = []
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"seed_spread: a worker failed:\n{err[-3000:]}")
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"{rows[-1]['model']} seed {rows[-1]['seed']}: matched {rows[-1]['matched_accuracy']} % "
                  f"(best validation {rows[-1]['best_val_acc']:.3f}), {rows[-1]['seconds']} s", flush=True)
    if args.out:
        write_json(args.out, {"date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv), "rows": rows,
                              "machine": machine_info(load)})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
