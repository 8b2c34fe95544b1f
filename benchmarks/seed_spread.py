"""How much a quick model's test accuracy moves with its training seed alone (same corpus, split and rooms).

Module: merlib/training.py (the quick recipe); this script only measures it.

One command::

    python benchmarks/seed_spread.py --model video --seeds 1 2 --out benchmarks/results/seed_spread_video.json

For each seed it trains ``--model`` with :meth:`TrainConfig.quick_for` (``seed`` changes the initial weights,
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


def _worker(model: str, seed: int, corpus_seed: int, out: Path) -> dict:
    from merlib.data.synthetic import ensure_corpus
    from merlib.datasets import MERDataModule, prepare_corpora
    from merlib.evaluation import predict
    from merlib.training import TrainConfig, train

    corpus = ensure_corpus("quick", seed=corpus_seed, progress=False)
    cfg = TrainConfig.quick_for(model, seed=seed, progress=False)
    paths = prepare_corpora(corpus, seed=corpus_seed, frame_settings=cfg.frame_settings(), progress=False,
                            video=_reads_video(model))
    t0 = time.time()
    result = train(model, paths if _reads_video(model) else paths.reverberant, cfg, out)
    test = predict(result.model, MERDataModule(paths, model, batch_size=16).loader("test", "matched"))
    return {"model": model, "seed": seed, "matched_accuracy": round(test.accuracy, 1),
            "best_val_acc": result.best_val_acc, "seconds": round(time.time() - t0)}


def _reads_video(model: str) -> bool:
    from merlib.models.mer import get_spec

    return get_spec(model).uses_video


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="video")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--corpus-seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        print(json.dumps(_worker(args.model, args.worker, args.corpus_seed, args.run_dir)))
        return
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="seed-spread-") as tmp:
        procs = [subprocess.Popen([sys.executable, __file__, "--model", args.model, "--corpus-seed",
                                   str(args.corpus_seed), "--worker", str(s), "--run-dir", f"{tmp}/seed{s}"],
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
