"""What every benchmark script shares: picking devices, one process per measurement, the machine record.

The scripts run as ``python benchmarks/bench_x.py`` (their folder is first on ``sys.path``), so they import
this file as ``_common``. Results are written with :func:`merlib.data.media.write_json` (atomic).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from typing import Any


def pick_devices(choice: str, script: str) -> list[str]:
    """``"auto"`` → the CPU, plus CUDA when torch sees it; ``"cpu"``/``"cuda"`` → that one (CUDA asked for but
    missing is an error naming ``script``)."""
    import torch

    devices = ["cpu", "cuda"] if choice == "auto" else [choice]
    if "cuda" in devices and not torch.cuda.is_available():
        if choice == "cuda":
            raise SystemExit(f"{script}: --device cuda asked for, but torch sees no CUDA device")
        devices.remove("cuda")
    return devices


def run_isolated(script: str, spec: dict[str, Any], what: str) -> dict[str, Any]:
    """Run ``script --worker <spec>`` in a fresh Python and return the JSON it prints last: one process per
    measurement, because ``ru_maxrss`` is a per-process peak. ``what`` names the measurement in errors."""
    proc = subprocess.run([sys.executable, script, "--out", os.devnull, "--worker", json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{os.path.basename(script)}: {what} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine_info(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """Versions, cores, torch threads, the GPU (if any) and the load average before and now."""
    import torch

    return {
        "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB (Linux reports ``ru_maxrss`` in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def best_time(fn, repeat: int = 1, warmup: int = 0) -> float:
    """The shortest of ``repeat`` timed calls of ``fn`` (seconds), after ``warmup`` untimed ones."""
    import time

    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bf16_autocast(cuda: bool):
    """bf16 autocast on a GPU (how merlib trains there); full precision on the CPU."""
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)


def clips_per_second(fn, batch: int, steps: int, warmup: int, cuda: bool) -> float:
    """Call ``fn`` ``warmup`` times untimed, then ``steps`` times timed (synchronising CUDA around the timed
    part); each call handles ``batch`` clips."""
    import time

    import torch

    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)
