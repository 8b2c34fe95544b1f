"""Cost of the analyses of notebook 07 (merlib.analysis, merlib.widgets) at quick and paper scale.

Notebook: 07_tsne_and_confusion.ipynb (the analyses); this script only measures them.

One command::

    python benchmarks/bench_analysis.py --out benchmarks/results/analysis.json
    python benchmarks/bench_analysis.py --clips 300 --skip-paper --out /tmp/a.json   # a fast smoke run

It measures, on the CPU (and CUDA when present, for the model forward passes):

* **t-SNE + neighbour accuracy** on RAVDESS-sized sets (``--clips`` rows, 1440 = all of RAVDESS speech)
  of each representation's width: the flattened log-mel (401·64 = 25 664), the pooled frames of paper-size
  video (3·8·16·16 = 6 144) and the fused paper embedding (1 536) — random features, so only the time means
  anything;
* **robustness sweep**: seconds per clip and point (RIR simulation + reverberation + the models) at a dry
  (T60 0.3 s) and a long (1.2 s) room, with the four quick models of the notebook;
* **acoustic lab**: seconds per control change with the four quick models, and with paper-size Sum PE + MER
  Sum PE (random weights), i.e. how interactive the lab is with real models on this machine.

It prints each figure and writes them, the machine's load average and the versions to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import best_time, machine_info

from merlib.data.media import write_json


def _clips(n: int, frames: int, size: int):
    import torch

    from merlib.analysis import EvalClip

    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    return [EvalClip(f"c{i}", i % 8, 1 + i % 3, (0.1 * rng.standard_normal(64000)).astype(np.float32),
                     torch.randn(3, frames, size, size, generator=g)) for i in range(n)]


def bench_tsne(n: int) -> dict[str, Any]:
    from merlib.analysis import neighbour_accuracy, tsne_2d

    rng = np.random.default_rng(0)
    labels, actors = rng.integers(0, 8, n), rng.integers(1, 25, n)
    out = {}
    for name, dim in (("audio_input", 401 * 64), ("video_input", 3 * 8 * 16 * 16), ("fused", 1536)):
        x = rng.standard_normal((n, dim)).astype(np.float32)
        t_tsne = best_time(lambda: tsne_2d(x, seed=0))
        t_nn = best_time(lambda: neighbour_accuracy(x, labels, groups=actors))
        out[name] = {"dims": dim, "tsne_s": round(t_tsne, 2), "neighbour_accuracy_s": round(t_nn, 2)}
        print(f"t-SNE {name:12s} {n} × {dim}: {t_tsne:.1f} s, neighbour accuracy {t_nn:.2f} s", flush=True)
    return out


def bench_sweep(clips: int) -> dict[str, Any]:
    import torch

    from merlib.analysis import SweepConfig, robustness_sweep
    from merlib.models.mer import build_model

    torch.manual_seed(0)
    models = {m: build_model(m, "quick") for m in ("audio_rev_sc", "audio_avg_mel", "audio_sum_pe", "mer_sum_pe")}
    data = _clips(clips, 4, 32)
    out = {}
    for t60 in (0.3, 1.2):
        cfg = SweepConfig(t60s=(t60,), distance_ratios=())
        t = best_time(lambda: robustness_sweep(models, data, cfg))
        out[f"t60_{t60}"] = {"clips": clips, "seconds": round(t, 2), "s_per_clip_point": round(t / clips, 3)}
        print(f"robustness sweep, T60 {t60} s: {t / clips:.3f} s per clip and point (4 quick models)", flush=True)
    return out


def bench_lab(size: str, device: str) -> dict[str, Any]:
    import torch

    from merlib.models.mer import build_model
    from merlib.widgets import AcousticLab

    torch.manual_seed(0)
    names = ("audio_rev_sc", "audio_avg_mel", "audio_sum_pe", "mer_sum_pe") if size == "quick" else \
        ("audio_sum_pe", "mer_sum_pe")
    frames, px = (4, 32) if size == "quick" else (8, 224)
    models = {m: build_model(m, size) for m in names}
    lab = AcousticLab(_clips(2, frames, px), models, device=device)
    steps = [("t60", 1.0), ("distance", 2.0), ("num_mics", 1), ("length", 8.0), ("t60", 0.4)]
    times = []
    for key, value in steps:
        t = time.perf_counter()
        lab.controls[key].value = value
        times.append(time.perf_counter() - t)
    res = {"models": list(names), "device": device, "median_update_s": round(float(np.median(times)), 2),
           "max_update_s": round(max(times), 2)}
    print(f"lab update, {size} models on {device}: median {res['median_update_s']} s, max {res['max_update_s']} s",
          flush=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/analysis.json"))
    p.add_argument("--clips", type=int, default=1440, help="rows of the t-SNE sets (1440 = RAVDESS speech)")
    p.add_argument("--sweep-clips", type=int, default=16, help="clips per sweep point (16 = the quick test set)")
    p.add_argument("--skip-paper", action="store_true", help="leave out the paper-size lab")
    p.add_argument("--lab-only", action="store_true", help="only the acoustic lab's update latency")
    args = p.parse_args()

    import torch

    import merlib

    load_before = os.getloadavg()
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "merlib": merlib.__version__}
    if not args.lab_only:
        result["tsne"] = bench_tsne(args.clips)
        result["sweep"] = bench_sweep(args.sweep_clips)
    result["lab"] = {"quick_cpu": bench_lab("quick", "cpu")}
    if not args.skip_paper:
        result["lab"]["paper_cpu"] = bench_lab("paper", "cpu")
        if torch.cuda.is_available():
            result["lab"]["paper_cuda"] = bench_lab("paper", "cuda")
    result["machine"] = machine_info(load_before)
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
