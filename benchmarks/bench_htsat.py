"""Throughput and peak memory of the multi-channel HTS-AT (merlib.models.htsat).

Notebook: 04_multichannel_htsat.ipynb (the model); this script only measures it.

One command::

    python benchmarks/bench_htsat.py --out outputs/bench_htsat.json            # CPU, and CUDA if present
    python benchmarks/bench_htsat.py --size quick --steps 2 --out /tmp/b.json  # a fast smoke run

For every device × microphone count (C = 1, 3) × mode (Avg mel, Sum PE) it measures, at batch 8 on 4 s
clips from the waveform on (log-mel included):

* inference — ``model.eval()``, ``torch.no_grad()``: clips per second;
* a training step — forward, cross-entropy, backward, Adam step, in ``model.train()`` (SpecAugment and
  stochastic depth on): clips per second;
* peak memory — on CPU the process's peak resident set (``resource.getrusage().ru_maxrss``; each
  configuration runs in its own subprocess so peaks do not mix; the figure includes the ~0.3–0.5 GB of
  Python + torch itself, reported separately as ``rss_baseline_mb``); on CUDA
  ``torch.cuda.max_memory_allocated`` for each phase. CUDA runs use bf16 autocast.

It prints a table and writes all numbers, the machine's load average and the versions to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from _common import bf16_autocast, clips_per_second, machine_info, peak_rss_mb, pick_devices, run_isolated

from merlib.data.media import write_json


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from merlib.models.htsat import HTSAT, HTSATConfig

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    cfg = HTSATConfig.quick() if spec["size"] == "quick" else HTSATConfig.paper()
    model = HTSAT(num_mics=spec["mics"], mode=spec["mode"], num_classes=8, config=cfg).to(device)
    b = spec["batch"]
    x = 0.1 * torch.randn(b, spec["mics"], 64000, device=device)
    y = torch.randint(0, 8, (b,), device=device)
    result: dict[str, Any] = dict(spec)
    result["rss_baseline_mb"] = peak_rss_mb()

    # inference
    model.eval()
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def infer() -> None:
        with torch.no_grad(), bf16_autocast(cuda):
            model(x)

    result["infer_clips_per_s"] = clips_per_second(infer, b, spec["steps"], spec["warmup"], cuda)
    result["infer_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb()

    # training step
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with bf16_autocast(cuda):
            loss = F.cross_entropy(model(x).logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    result["train_clips_per_s"] = clips_per_second(step, b, spec["steps"], spec["warmup"], cuda)
    result["train_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb()
    if cuda:
        result["gpu"] = torch.cuda.get_device_name(device)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto = CPU, plus CUDA when available")
    parser.add_argument("--size", choices=["paper", "quick"], default="paper")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed iterations per measurement")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0

    devices = pick_devices(args.device, "bench_htsat")
    load_before = os.getloadavg()
    rows = []
    for device in devices:
        for mics in (1, 3):
            for mode in ("avg_mel", "sum_pe"):
                spec = dict(device=device, mics=mics, mode=mode, size=args.size, batch=args.batch,
                            steps=args.steps, warmup=args.warmup, threads=args.threads)
                rows.append(run_isolated(__file__, spec, f"configuration {spec}"))
                print(f"  done {device} C={mics} {mode}", file=sys.stderr)

    header = f"{'device':6} {'C':>2} {'mode':8} {'infer clips/s':>14} {'train clips/s':>14} " \
             f"{'infer peak MB':>14} {'train peak MB':>14}"
    print(f"HTS-AT ({args.size}) batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up; "
          f"CPU peaks are process RSS (baseline ≈ {rows[0]['rss_baseline_mb']:.0f} MB), CUDA peaks allocated")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['device']:6} {r['mics']:>2} {r['mode']:8} {r['infer_clips_per_s']:>14.2f} "
              f"{r['train_clips_per_s']:>14.2f} {r['infer_peak_mb']:>14.0f} {r['train_peak_mb']:>14.0f}")
    info = machine_info(load_before)
    write_json(args.out, {"settings": vars(args), "machine": info, "results": rows})
    print(f"load average before/after: {load_before} / {info['loadavg_after']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
