"""How close HTS-AT's matrix products run to this CPU's best: the ceiling on any fp32 inference speed-up.

Module: merlib/models/htsat.py; this script only measures it (issue 15: inference of audio Sum PE is bound by
its matrix products).

One command::

    python benchmarks/bench_gemm.py --out benchmarks/results/gemm.json

It records every ``nn.Linear`` call of one paper-size audio Sum PE inference (3 microphones, batch 8, 4 s)
— input rows M, inner size K, output size N — then times each distinct shape alone with ``F.linear`` (as
the model calls it) and a large square product (M = N = K = 2048), the practical fp32 peak of this CPU and
thread count. It also times the whole inference. Printed per shape: calls per inference, milliseconds,
GFLOP/s and the share of the square product's GFLOP/s. The sum over calls says how much of an inference is
matrix products and how fast they already run, hence the most any fp32 rewrite that keeps these products
could gain: ``inference / (inference − GEMM time + GEMM time × share)``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import best_time, machine_info

from merlib.cpu import tune_allocator
from merlib.data.media import write_json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    args = p.parse_args()
    load = os.getloadavg()
    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    from merlib.models.mer import build_model

    torch.manual_seed(0)
    model = build_model("audio_sum_pe", "paper").eval()
    x = torch.randn(8, 3, 64000) * 0.1
    shapes: Counter = Counter()

    def record(module, inputs, output):
        a = inputs[0]
        shapes[(int(a.numel() // a.shape[-1]), int(a.shape[-1]), int(module.out_features))] += 1

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    with torch.inference_mode():
        model(x)
    for h in hooks:
        h.remove()
    with torch.inference_mode():
        infer_s = best_time(lambda: model(x), args.repeat, warmup=2)

    def gemm_time(m: int, k: int, n: int) -> float:
        a, w, b = torch.randn(m, k), torch.randn(n, k), torch.randn(n)
        with torch.inference_mode():
            return best_time(lambda: F.linear(a, w, b), args.repeat, warmup=2)

    peak_s = gemm_time(2048, 2048, 2048)
    peak = 2 * 2048**3 / peak_s / 1e9
    rows, total = [], 0.0
    print(f"square 2048³ product: {peak:.1f} GFLOP/s (the practical fp32 peak here); one inference "
          f"{infer_s * 1e3:.0f} ms")
    print(f"{'M':>7} {'K':>5} {'N':>5} {'calls':>5} {'ms/call':>8} {'GFLOP/s':>8} {'of peak':>7}")
    for (m, k, n), calls in sorted(shapes.items(), key=lambda kv: -kv[0][0] * kv[0][1] * kv[0][2] * kv[1]):
        s = gemm_time(m, k, n)
        gflops = 2 * m * k * n / s / 1e9
        total += s * calls
        rows.append({"M": m, "K": k, "N": n, "calls": calls, "ms": round(s * 1e3, 3), "gflops": round(gflops, 1),
                     "share_of_peak": round(gflops / peak, 3)})
        print(f"{m:>7} {k:>5} {n:>5} {calls:>5} {s * 1e3:8.2f} {gflops:8.1f} {gflops / peak:7.0%}")
    flops = sum(2 * r["M"] * r["K"] * r["N"] * r["calls"] for r in rows)
    at_peak = flops / peak / 1e9
    ceiling = infer_s / (infer_s - total + at_peak)
    print(f"linear layers: {total * 1e3:.0f} ms of {infer_s * 1e3:.0f} ms per inference ({total / infer_s:.0%}); "
          f"at the square product's rate they would take {at_peak * 1e3:.0f} ms")
    print(f"ceiling of an fp32 speed-up from the linear layers alone: {ceiling:.2f}x")
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": "python benchmarks/bench_gemm.py",
              "peak_gflops": round(peak, 1), "inference_ms": round(infer_s * 1e3, 1),
              "linear_ms": round(total * 1e3, 1), "linear_ms_at_peak": round(at_peak * 1e3, 1),
              "speedup_ceiling_from_linear": round(ceiling, 3), "shapes": rows, "machine": machine_info(load)}
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
