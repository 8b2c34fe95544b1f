"""Training throughput of the multimodal model (MER Sum PE) at paper size, split into data loading and compute.

Notebook: 06_fusion_training.ipynb (the training recipe); this script only measures it.

One command::

    python benchmarks/bench_training.py --out outputs/bench_training.json        # CPU batch 4, and GPU batch 32 if present
    python benchmarks/bench_training.py --device cpu --steps 2 --out /tmp/b.json

What one step is: the recipe of :mod:`merlib.training` at paper size — HTS-AT Sum PE on 3 microphones + R(2+1)D-18
on 8 frames (training crops of 180×180) + the fusion head; forward, cross-entropy, backward, gradient clipping at
1.0, fused Adam step; bf16 autocast on a GPU. The data are real items of :class:`merlib.datasets.MERDataModule`:
the quick synthetic corpus's reverberant build (3-channel FLAC) and a paper-size frame cache (8 × 224²), with the
training augmentation, served by ``--workers`` DataLoader worker processes.

Per device it reports, over ``--steps`` timed steps after ``--warmup`` warm-up steps:

* ``data_s`` — seconds per step spent waiting for the next batch (the loader's workers run in parallel with
  the compute, so this is what loading *adds*);
* ``compute_s`` — seconds per step of forward + backward + optimizer (CUDA synchronised);
* ``clips_per_s`` — batch / (data_s + compute_s), the end-to-end training throughput;
* ``loader_clips_per_s`` — the loader alone (no model), how fast the workers can produce clips;
* peak memory — CPU: the process's peak resident set (``ru_maxrss``; each device runs in its own subprocess);
  GPU: ``torch.cuda.max_memory_allocated``.

The corpora are built under ``$MERLIB_CACHE`` (default ``~/.cache/merlib``) on first use. The JSON in ``--out``
also holds the load average before and after (the numbers are only comparable on an otherwise idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _common import machine_info, peak_rss_mb, pick_devices, run_isolated

from merlib.data.media import write_json


def _prepare(seed: int) -> dict[str, str]:
    from merlib.data.synthetic import ensure_corpus
    from merlib.data.video import FrameSettings
    from merlib.datasets import prepare_corpora

    corpus = ensure_corpus("quick", seed=seed, progress=False)
    paths = prepare_corpora(corpus, seed=seed, frame_settings=FrameSettings.paper(), progress=False)
    return {"reverberant": str(paths.reverberant), "frames": str(paths.frames)}


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from merlib.datasets import CorpusPaths, MERDataModule
    from merlib.models.mer import build_model, count_parameters, forward_logits

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    result: dict[str, Any] = dict(spec)
    result["rss_baseline_mb"] = peak_rss_mb()
    name, b = "mer_sum_pe", spec["batch"]
    dm = MERDataModule(CorpusPaths(spec["reverberant"], spec["frames"]), name, batch_size=b,
                       num_workers=spec["workers"], pin_memory=cuda)
    n_steps = spec["warmup"] + spec["steps"]

    # the loader alone: how fast can the workers produce augmented clips?
    loader = dm.train_dataloader()
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    t0 = time.perf_counter()
    got = 0
    for _ in range(max(2, spec["steps"])):
        try:
            got += len(next(it)["label"])
        except StopIteration:
            break
    result["loader_clips_per_s"] = got / (time.perf_counter() - t0)
    del it, loader

    model = build_model(name, "paper").to(device).train()
    result["parameters"] = count_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=0.0, fused=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    data_t, comp_t = [], []
    loader = dm.train_dataloader()
    it = iter(loader)
    for step in range(n_steps):
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        inputs = {k: batch[k].to(device, non_blocking=True) for k in ("waveform", "video", "label")}
        t1 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = forward_logits(model, name, inputs)
        loss = F.cross_entropy(logits.float(), inputs["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if cuda:
            torch.cuda.synchronize(device)
        t2 = time.perf_counter()
        if step >= spec["warmup"]:
            data_t.append(t1 - t0)
            comp_t.append(t2 - t1)
    data_s = sum(data_t) / len(data_t)
    comp_s = sum(comp_t) / len(comp_t)
    result.update(data_s=data_s, compute_s=comp_s, clips_per_s=b / (data_s + comp_s),
                  compute_clips_per_s=b / comp_s, loss=float(loss))
    result["peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else peak_rss_mb()
    result["peak_kind"] = "cuda max_memory_allocated" if cuda else "process ru_maxrss"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto = CPU, plus CUDA when available")
    parser.add_argument("--cpu-batch", type=int, default=4)
    parser.add_argument("--gpu-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per device")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--gpu-workers", type=int, default=8, help="DataLoader workers for the GPU run")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0

    devices = pick_devices(args.device, "bench_training")
    t_prep = time.time()
    data = _prepare(args.seed)
    print(f"data ready in {time.time() - t_prep:.1f} s: {data['reverberant']}, frames {data['frames']}", file=sys.stderr)
    load_before = os.getloadavg()
    rows = []
    for device in devices:
        cuda = device == "cuda"
        spec = dict(device=device, batch=args.gpu_batch if cuda else args.cpu_batch, steps=args.steps,
                    warmup=args.warmup, workers=args.gpu_workers if cuda else args.workers,
                    threads=args.threads, **data)
        rows.append(run_isolated(__file__, spec, device))
        print(f"  done {device}", file=sys.stderr)

    header = (f"{'device':6} {'batch':>5} {'workers':>7} {'data s/step':>11} {'compute s/step':>14} "
              f"{'clips/s':>8} {'loader clips/s':>14} {'peak MB':>8}")
    print(f"MER Sum PE (paper size, {rows[0]['parameters']:,} parameters), {args.steps} timed steps after "
          f"{args.warmup} warm-up; CPU peak = process RSS (baseline ≈ {rows[0]['rss_baseline_mb']:.0f} MB), "
          "GPU peak = allocated, bf16 autocast")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['device']:6} {r['batch']:>5} {r['workers']:>7} {r['data_s']:>11.3f} {r['compute_s']:>14.3f} "
              f"{r['clips_per_s']:>8.2f} {r['loader_clips_per_s']:>14.1f} {r['peak_mb']:>8.0f}")
    info = machine_info(load_before)
    write_json(args.out, {"settings": vars(args), "machine": info, "data": data, "results": rows})
    print(f"load average before/after: {load_before} / {info['loadavg_after']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
