"""The video branch's costs: per-item decoding vs the decode-once frame cache, and R(2+1)D-18 throughput.

Notebook: 05_r2plus1d_video.ipynb (the pipeline and the model); this script only measures them.

One command::

    python benchmarks/bench_video.py --out outputs/bench_video.json          # CPU, and CUDA (bf16) if present
    python benchmarks/bench_video.py --clips 4 --steps 1 --out /tmp/b.json   # a fast smoke run

1. **Data.** Renders ``--clips`` synthetic clips at RAVDESS's 1280×720, 30 fps, ``--seconds`` long (H.264, as
   the real files; kept under ``--work-dir`` for the next run), then measures, on one process:

   * *per item* — what the reference does for every item of every epoch: decode the whole mp4 to RGB and
     apply its transform (:func:`merlib.data.video.load_clip_like_reference`), plus the augmentation for
     training items: clips/s;
   * *cache build* — :func:`merlib.data.video.build_frame_cache` from scratch with ``--workers`` processes
     (a one-off cost): clips/s;
   * *from the cache* — :class:`merlib.data.video.VideoFrames` items (load the uint8 ``.npy``, normalise;
     with and without the training augmentation), over ``--epochs`` passes: clips/s;
   * the cache's bytes per clip (and the mp4's, for scale). The target is ≥ 20× more clips/s from the cache.

   Loading runs with one torch thread, as in DataLoader workers (torch sets that in every worker); on a
   shared machine extra intra-op threads mostly add contention to these small tensors.

2. **Model.** :class:`merlib.models.video.VideoClassifier` inference (``eval``, ``no_grad``) and a training
   step (forward, cross-entropy, backward, Adam) in clips/s: on CPU at full size (batch ``--batch``:
   8×224×224 inference, 8×180×180 training — the reference's eval and crop sizes) and quick size (4×64×64,
   4×51×51); on CUDA the same with bf16 autocast (batch ``--gpu-batch``).

Prints a table and writes every number, the load average before/after and the versions to ``--out``.
Synthetic cartoon frames compress far better than real footage (≈ 80 kB per 3.5 s clip vs several MB for
RAVDESS), so decoding is cheaper here than on the real corpus: the per-item figure is an upper bound.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from _common import bf16_autocast, clips_per_second, machine_info, pick_devices

from merlib.data.media import write_json


def render_clips(folder: Path, n: int, seconds: float, fps: int = 30) -> list:
    """``n`` synthetic 1280×720 clips in RAVDESS layout under ``folder`` (reused when present)."""
    from merlib.data.media import write_av
    from merlib.data.ravdess import Clip, clip_items
    from merlib.data.synthetic.face import render_face_video

    items = [m for a in (1, 2) for m in clip_items(a)][: 2 * 60]
    items = [items[(i * 7) % len(items)] for i in range(n)]  # a spread of actors and emotions
    clips = []
    for meta in items:
        path = folder / f"Video_Speech_Actor_{meta.actor:02d}" / f"Actor_{meta.actor:02d}" / meta.filename(1)
        if not path.exists():
            frames = render_face_video(meta.actor, meta.emotion, meta.intensity, round(seconds * fps),
                                       size=(1280, 720), variant=meta.statement * 10 + meta.repetition)
            write_av(path, frames, fps)
        clips.append(Clip(meta, None, path))
    return clips


def bench_data(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from merlib.data.video import (
        FrameSettings, VideoFrames, build_frame_cache, load_clip_like_reference, read_cache_report,
    )

    work = Path(args.work_dir)
    t0 = time.perf_counter()
    clips = render_clips(work / f"corpus-1280x720-{args.seconds:g}s", args.clips, args.seconds)
    render_s = time.perf_counter() - t0
    settings = FrameSettings()  # the paper's: 8 frames, 224×224

    import torch

    from merlib.data.video import train_augmentation

    # data loading runs in DataLoader workers, which torch limits to one thread each; do the same here
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    augment = train_augmentation(settings)
    load_clip_like_reference(clips[0].video_path, settings)  # warm-up: first-call costs are not per item
    t0 = time.perf_counter()
    for clip in clips:
        load_clip_like_reference(clip.video_path, settings)
    per_item = len(clips) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for clip in clips:
        augment(load_clip_like_reference(clip.video_path, settings).transpose(0, 1))
    per_item_train = len(clips) / (time.perf_counter() - t0)

    cache_dir = work / "frames"
    shutil.rmtree(cache_dir, ignore_errors=True)
    t0 = time.perf_counter()
    folder = build_frame_cache(clips, cache_dir, settings, workers=args.workers, progress=False)
    build = len(clips) / (time.perf_counter() - t0)
    report = read_cache_report(folder)

    rates = {}
    for name, train in (("eval", False), ("train", True)):
        data = VideoFrames(clips, folder, settings, train=train)
        t0 = time.perf_counter()
        for _ in range(args.epochs):
            for i in range(len(data)):
                data[i]
        rates[name] = args.epochs * len(data) / (time.perf_counter() - t0)
    torch.set_num_threads(threads)
    return {
        "clips": len(clips), "resolution": "1280x720", "seconds_per_clip": args.seconds,
        "render_or_reuse_s": round(render_s, 1),
        "mp4_bytes_per_clip": float(np.mean([c.video_path.stat().st_size for c in clips])),
        "per_item_decode_clips_per_s": per_item, "per_item_decode_train_aug_clips_per_s": per_item_train,
        "data_torch_threads": 1,
        "cache_build_clips_per_s": build, "cache_build_workers": report.last_build["workers"],
        "cache_read_clips_per_s": rates["eval"], "cache_read_train_aug_clips_per_s": rates["train"],
        "cache_bytes_per_clip": report.bytes_per_clip(),
        "speedup_per_epoch": rates["eval"] / per_item,
        "speedup_per_epoch_with_augmentation": rates["train"] / per_item_train,
    }


def bench_model(device: str, size: str, batch: int, steps: int, warmup: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from merlib.models.video import VideoClassifier

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    t, eval_hw, train_hw = (8, 224, 180) if size == "full" else (4, 64, 51)
    torch.manual_seed(0)
    model = VideoClassifier().to(dev)
    x_eval = torch.randn(batch, 3, t, eval_hw, eval_hw, device=dev)
    x_train = torch.randn(batch, 3, t, train_hw, train_hw, device=dev)
    y = torch.randint(0, 8, (batch,), device=dev)

    model.eval()

    def infer() -> None:
        with torch.no_grad(), bf16_autocast(cuda):
            model(x_eval)

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    infer_rate = clips_per_second(infer, batch, steps, warmup, cuda)
    infer_mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with bf16_autocast(cuda):
            loss = F.cross_entropy(model(x_train).float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    train_rate = clips_per_second(step, batch, steps, warmup, cuda)
    row = {"device": device, "size": size, "batch": batch, "frames": t, "eval_hw": eval_hw, "train_hw": train_hw,
           "dtype": "bf16 autocast" if cuda else "float32", "infer_clips_per_s": infer_rate,
           "train_clips_per_s": train_rate, "steps": steps, "warmup": warmup}
    if cuda:
        row.update(gpu=torch.cuda.get_device_name(dev), infer_peak_mb=infer_mb,
                   train_peak_mb=torch.cuda.max_memory_allocated() / 2**20)
    return row


def main(argv: list[str] | None = None) -> int:
    from merlib.config import default_cache_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.5, help="clip length (RAVDESS: ~3.5 s)")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the cache when timing reads")
    parser.add_argument("--workers", type=int, default=0, help="cache build processes (0 = all cores)")
    parser.add_argument("--work-dir", default=str(default_cache_dir() / "bench_video"),
                        help="where the rendered clips (kept) and the benchmark's cache (rebuilt) live")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto = CPU, plus CUDA when available")
    parser.add_argument("--batch", type=int, default=2, help="CPU batch")
    parser.add_argument("--gpu-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="timed iterations per model measurement")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads for the model measurements (0 = torch's default)")
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args(argv)
    args.workers = args.workers or None

    import torch

    load_before = os.getloadavg()
    result: dict[str, Any] = {}
    if not args.skip_data:
        d = result["data"] = bench_data(args)
        print(f"frames: {d['clips']} clips of {d['resolution']}, {d['seconds_per_clip']} s, paper settings "
              f"(8 frames, 224×224)")
        print(f"  {'per item (decode whole mp4 + transform)':44} {d['per_item_decode_clips_per_s']:9.2f} clips/s")
        print(f"  {'per item, train (+ augmentation)':44} {d['per_item_decode_train_aug_clips_per_s']:9.2f} clips/s")
        print(f"  {'cache build (once, %d workers)' % d['cache_build_workers']:44} "
              f"{d['cache_build_clips_per_s']:9.2f} clips/s")
        print(f"  {'from the cache (eval)':44} {d['cache_read_clips_per_s']:9.1f} clips/s  "
              f"→ {d['speedup_per_epoch']:.0f}× per epoch")
        print(f"  {'from the cache (train, augmented)':44} {d['cache_read_train_aug_clips_per_s']:9.1f} clips/s  "
              f"→ {d['speedup_per_epoch_with_augmentation']:.0f}× per epoch")
        print(f"  cache {d['cache_bytes_per_clip'] / 1e6:.2f} MB per clip (mp4 {d['mp4_bytes_per_clip'] / 1e6:.2f} MB)")
    if not args.skip_model:
        if args.threads:
            torch.set_num_threads(args.threads)
        devices = pick_devices(args.device, "bench_video")
        rows = []
        for device in devices:
            for size in ("full", "quick"):
                batch = args.gpu_batch if device == "cuda" else (args.batch if size == "full" else 8)
                rows.append(bench_model(device, size, batch, args.steps, args.warmup))
                print(f"  done {device} {size}", file=sys.stderr)
        result["model"] = rows
        header = f"{'device':6} {'size':6} {'batch':>5} {'input (eval / train)':>26} {'infer clips/s':>14} {'train clips/s':>14}"
        print(f"R(2+1)D-18 video-only model (32.29 M parameters), {torch.get_num_threads()} CPU thread(s)")
        print(header)
        print("-" * len(header))
        for r in rows:
            shape = f"{r['frames']}×{r['eval_hw']}² / {r['frames']}×{r['train_hw']}²"
            print(f"{r['device']:6} {r['size']:6} {r['batch']:>5} {shape:>26} {r['infer_clips_per_s']:>14.2f} "
                  f"{r['train_clips_per_s']:>14.2f}")
    info = machine_info(load_before)
    write_json(args.out, {"settings": vars(args), "machine": info, **result})
    print(f"load average before/after: {load_before} / {info['loadavg_after']} on {os.cpu_count()} cores; "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
