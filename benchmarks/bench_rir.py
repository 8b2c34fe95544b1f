"""Time RIR simulation of the paper's training scenes: merlib's backend (1 process, N workers, GPU) vs pyroomacoustics.

    .venv/bin/python benchmarks/bench_rir.py --out outputs/bench_rir.json
    .venv/bin/python benchmarks/bench_rir.py --n-scenes 20 --pra-scenes 10      # a quick look

All methods simulate the same seeded paper scenes (merlib.acoustics.sample_paper_scene, 3 microphones,
fs = 16 kHz, t_diff = att2t(15 dB), t_max = T60). pyroomacoustics runs its full image-source model up to the
order covering T60 (no tail), the cross-check backend. Targets on 2 CPU cores: ≥ 5 scenes/s in one process and
≥ 10 scenes/s with two worker processes. The load average before and after is recorded because other jobs on
a shared machine change these numbers a lot.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import torch

from merlib.acoustics import measure_t60, sample_paper_scene, simulate_scene
from merlib.data.media import write_json


def _scenes(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return [sample_paper_scene(rng) for _ in range(n)]


def _simulate(job):
    """Worker: simulate scene i with generator seed i; return its index and a checksum of the RIRs."""
    i, scene, backend, device = job
    h = simulate_scene(scene, backend=backend, generator=torch.Generator().manual_seed(i), device=device)
    if h.is_cuda:
        torch.cuda.synchronize()
    h = h.cpu().numpy()
    return i, hashlib.sha1(h.tobytes()).hexdigest(), float(np.mean(measure_t60(h, scene.fs)) / scene.t60)


def _init_worker() -> None:
    torch.set_num_threads(1)


def _time_serial(scenes, backend, device=None):
    _simulate((0, scenes[0], backend, device))  # warm-up (imports, caches, CUDA context)
    t0 = time.perf_counter()
    out = [_simulate((i, s, backend, device)) for i, s in enumerate(scenes)]
    return time.perf_counter() - t0, out


def _time_workers(scenes, workers):
    with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
        list(pool.map(_simulate, [(0, scenes[0], "merlib", None)] * workers))  # start and warm every worker
        t0 = time.perf_counter()
        out = list(pool.map(_simulate, [(i, s, "merlib", None) for i, s in enumerate(scenes)], chunksize=4))
        return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-scenes", type=int, default=100)
    ap.add_argument("--pra-scenes", type=int, default=None, help="pyroomacoustics on the first N scenes (default all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    scenes = _scenes(args.n_scenes, args.seed)
    load_before = os.getloadavg()
    rows = []

    def add(method, n, seconds, results, note=""):
        ratios = [r[2] for r in results]
        rows.append({"method": method, "scenes": n, "seconds": round(seconds, 2), "scenes_per_s": round(n / seconds, 2),
                     "t30_over_t60_median": round(float(np.median(ratios)), 3),
                     "t30_over_t60_range": [round(float(min(ratios)), 3), round(float(max(ratios)), 3)], "note": note})
        print(f"  {method:<34} {n:>4} scenes  {seconds:7.2f} s  {n / seconds:7.2f} scenes/s", flush=True)

    print(f"{len(scenes)} paper scenes, seed {args.seed}; load average {load_before[0]:.2f} on {os.cpu_count()} cores")
    t, single = _time_serial(scenes, "merlib")
    add("merlib, 1 process (cpu)", len(scenes), t, single, "torch intra-op threads: 1 (CPU_NUM_THREADS)")
    t, multi = _time_workers(scenes, args.workers)
    add(f"merlib, {args.workers} worker processes (cpu)", len(scenes), t, multi)
    identical = [a[1] for a in single] == [b[1] for b in sorted(multi)]
    if torch.cuda.is_available():
        t, gpu = _time_serial(scenes, "merlib", "cuda")
        add("merlib, 1 process (cuda)", len(scenes), t, gpu, torch.cuda.get_device_name(0))
    else:
        print("  merlib on GPU: skipped, no CUDA device on this machine")
    n_pra = min(args.pra_scenes or len(scenes), len(scenes))
    t, pra = _time_serial(scenes[:n_pra], "pyroomacoustics")
    add("pyroomacoustics full ISM, 1 process", n_pra, t, pra, "no diffuse tail; order covering T60")
    load_after = os.getloadavg()

    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "seed": args.seed,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "workers_output_identical_to_single_process": identical,
        "results": rows,
        "targets": {"one_process_scenes_per_s": 5, "two_workers_scenes_per_s": 10},
    }
    print(f"\n{'method':<36} {'scenes/s':>9} {'T30/T60 median [range]':>28}")
    for r in rows:
        rng_txt = f"{r['t30_over_t60_median']:.3f} [{r['t30_over_t60_range'][0]:.3f}, {r['t30_over_t60_range'][1]:.3f}]"
        print(f"{r['method']:<36} {r['scenes_per_s']:>9.2f} {rng_txt:>28}")
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (1 min) on {os.cpu_count()} cores; "
          f"worker output identical to single process: {identical}")
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
