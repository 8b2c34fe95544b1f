"""Where the CPU time of a paper-size model goes: the PyTorch profiler on one training step and one inference
batch of audio Sum PE (3 mics, batch 8), audio Avg mel (3 mics, batch 8) and MER Sum PE (3 mics, 8×224²
frames, batch 4), with random inputs and no data loading.

One command::

    python benchmarks/profile_models.py --out benchmarks/results/profile.json     # about 2 minutes on 2 cores
    python benchmarks/profile_models.py --models audio_sum_pe --top 8            # one model

The allocator is tuned as merlib's entry points tune it (:func:`merlib.cpu.tune_allocator`;
``MERLIB_ALLOCATOR=system`` for glibc's defaults). Each (model, phase) runs once untimed (warm-up), then once under ``torch.profiler.profile`` (CPU activity,
input shapes off). It prints the top operators by *self* CPU time — the time spent in the operator itself,
not in the operators it calls — with their share of the step, and writes every table to ``--out``. Run it
alone: two cores shared with anything else change the shares.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info  # noqa: E402

from merlib.data.media import write_json  # noqa: E402

#: model → (batch, microphones, video frames or None)
CASES = {"audio_sum_pe": (8, 3, None), "audio_avg_mel": (8, 3, None), "mer_sum_pe": (4, 3, (8, 224))}


def _inputs(model_name: str) -> dict[str, Any]:
    import torch

    batch, mics, video = CASES[model_name]
    g = torch.Generator().manual_seed(0)
    items: dict[str, Any] = {"waveform": 0.1 * torch.randn(batch, mics, 64000, generator=g),
                             "label": torch.randint(0, 8, (batch,), generator=g)}
    if video:
        frames, size = video
        items["video"] = torch.randn(batch, 3, frames, size, size, generator=g)
    return items


def profile_case(model_name: str, phase: str, top: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    from merlib.models.mer import build_model, forward_logits

    torch.manual_seed(0)
    model = build_model(model_name, "paper")
    batch = _inputs(model_name)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def train_step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward_logits(model, model_name, batch), batch["label"]).backward()
        opt.step()

    def infer() -> None:
        model.eval()
        with torch.no_grad():
            forward_logits(model, model_name, batch)

    step = train_step if phase == "train" else infer
    step()  # warm-up
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    seconds = time.perf_counter() - t0
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {
        "model": model_name, "phase": phase, "batch": CASES[model_name][0], "seconds_profiled": round(seconds, 3),
        "threads": torch.get_num_threads(),
        "top": [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1000, 1), "calls": e.count,
                 "share": round(e.self_cpu_time_total / total, 4)} for e in rows],
    }


def _print(result: dict[str, Any]) -> None:
    print(f"\n{result['model']} {result['phase']} (batch {result['batch']}, {result['threads']} threads): "
          f"{result['seconds_profiled']} s under the profiler")
    print(f"  {'operator':44s} {'self ms':>9s} {'calls':>6s} {'share':>6s}")
    for row in result["top"]:
        print(f"  {row['op'][:44]:44s} {row['self_ms']:9.1f} {row['calls']:6d} {100 * row['share']:5.1f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--phases", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    parser.add_argument("--top", type=int, default=12, help="operators listed per table")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None, help="write every table here as JSON")
    args = parser.parse_args(argv)
    import torch

    from merlib.cpu import tune_allocator

    tune_allocator()  # as merlib's entry points do; MERLIB_ALLOCATOR=system profiles glibc's defaults
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()
    results = []
    for name in args.models:
        for phase in args.phases:
            results.append(profile_case(name, phase, args.top))
            _print(results[-1])
    if args.out:
        write_json(args.out, {"machine": machine_info(load), "date": time.strftime("%Y-%m-%d %H:%M"),
                              "results": results})
        print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
