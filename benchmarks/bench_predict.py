"""`merlib predict` on many short recordings: clips per second and peak memory, on the CPU.

Module: merlib/predict.py (notebook 07, "Your own clip"); this script only measures it.

One command::

    python benchmarks/bench_predict.py --out benchmarks/results/predict.json   # 100 clips, paper-size Sum PE
    python benchmarks/bench_predict.py --clips 10 --size quick --out /tmp/p.json   # a fast smoke run

It writes ``--clips`` three-microphone 16 kHz FLAC files of 4 s (harmonic "speech" with noise) and a run
folder holding a randomly initialised audio Sum PE model of ``--size`` (the speed does not depend on the
weights), then, each in a fresh process so that the peak resident set (``ru_maxrss``) is its own:

* the command itself, ``python -m merlib predict FILES… --model RUN --json OUT`` — the wall time from start to
  exit (imports, model loading, decoding, windows, the model, the output) and its peak memory;
* ``merlib.predict.predict_files`` in-process for each ``--batch-sizes`` (default 1, 8, 16), after loading the
  model and one warm-up batch — the classification alone, in clips per second.

The CPU threads are torch's default (one per core). It prints a table and writes every number, the machine's
load average and the versions to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_info, peak_rss_mb, run_isolated

from merlib.data.media import write_json


def _make_inputs(root: Path, clips: int, size: str) -> tuple[Path, list[Path]]:
    import numpy as np
    import soundfile as sf
    import torch

    from merlib.config import save_config
    from merlib.models.mer import build_model
    from merlib.training import TrainConfig, run_settings

    run = root / "run"
    run.mkdir()
    torch.manual_seed(0)
    torch.save(build_model("audio_sum_pe", size).state_dict(), run / "final.pt")
    cfg = TrainConfig.paper() if size == "paper" else TrainConfig.quick_for("audio_sum_pe")
    save_config(run_settings("audio_sum_pe", cfg), run)
    rng = np.random.default_rng(0)
    t = np.arange(64000) / 16000
    files = []
    for k in range(clips):
        f0 = 110 + 10 * (k % 12)
        x = np.stack([np.sin(2 * np.pi * f0 * (1 + 0.01 * m) * t) * 0.2 + 0.01 * rng.standard_normal(t.size)
                      for m in range(3)], axis=1)
        path = root / f"clip_{k:03d}.flac"
        sf.write(path, x.astype(np.float32), 16000)
        files.append(path)
    return run, files


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    from merlib.cpu import tune_allocator
    from merlib.predict import load_model, predict_files

    tune_allocator()  # as the command does
    files = spec["files"]
    t0 = time.perf_counter()
    loaded = load_model(spec["run"], device="cpu")
    load_s = time.perf_counter() - t0
    predict_files(files[: spec["batch"]], loaded, batch_size=spec["batch"])  # warm-up
    t0 = time.perf_counter()
    results = predict_files(files, loaded, batch_size=spec["batch"])
    seconds = time.perf_counter() - t0
    assert all(r.ok for r in results)
    return {"batch": spec["batch"], "load_s": round(load_s, 2), "seconds": round(seconds, 2),
            "clips_per_s": round(len(files) / seconds, 2), "peak_rss_mb": round(peak_rss_mb(), 1)}


def _command(run: Path, files: list[Path], out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "merlib", "predict", *map(str, files), "--model", str(run), "--json", str(out),
           "--no-progress", "--device", "cpu"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"bench_predict: merlib predict failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the first child: its own peak (KiB)
    n_ok = sum(f["ok"] for f in json.loads(out.read_text())["files"])
    return {"wall_s": round(wall, 2), "clips_per_s": round(len(files) / wall, 2), "classified": n_ok,
            "peak_rss_mb": round(peak / 1024.0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--clips", type=int, default=100)
    p.add_argument("--size", choices=("paper", "quick"), default="paper")
    p.add_argument("--batch-sizes", default="1,8,16")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        run, files = _make_inputs(Path(tmp), args.clips, args.size)
        command = _command(run, files, Path(tmp) / "out.json")  # before any other child: ru_maxrss is a maximum
        print(f"merlib predict, {args.clips} clips of 4 s, {args.size} audio Sum PE: {command['wall_s']} s wall "
              f"({command['clips_per_s']} clips/s including start-up), peak {command['peak_rss_mb']} MB", flush=True)
        rows = []
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            row = run_isolated(__file__, {"run": str(run), "files": [str(f) for f in files], "batch": batch},
                               f"predict_files at batch {batch}")
            rows.append(row)
            print(f"  predict_files batch {batch:>2}: {row['clips_per_s']:6.2f} clips/s (model load "
                  f"{row['load_s']} s), peak {row['peak_rss_mb']} MB", flush=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv), "clips": args.clips,
              "size": args.size, "merlib_predict": command, "predict_files": rows, "machine": machine_info(load)}
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
