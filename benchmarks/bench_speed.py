"""CPU speed of the paper-size models, this working tree against an earlier commit, side by side in one run.

Notebook: 06_fusion_training.ipynb (training and prediction); this script only measures them.

One command::

    python benchmarks/bench_speed.py --compare d75680a --out benchmarks/results/speed.json   # ~15 min, 2 cores
    python benchmarks/bench_speed.py --compare HEAD --models audio_sum_pe --steps 2           # a quick look

``--compare REV`` checks REV out into a git worktree (``outputs/bench_worktrees/REV``, made once) and runs
every measurement in a fresh Python whose ``merlib`` is that tree's or this one's, alternating between the two,
so that both see the same machine at the same time. For each model it measures, with random inputs and no
data loading, at ``--threads`` torch threads (default 2):

* a training step: ``model.train()``, forward, cross-entropy, backward, Adam (``fused=True``, as merlib's
  training uses), ``zero_grad``: clips per second;
* inference: ``model.eval()`` under ``torch.inference_mode()``: clips per second;

as the median over ``--steps`` timed calls after ``--warmup`` untimed ones, and the process's peak resident
memory. Each process starts the way merlib's entry points start: ``merlib.cpu.tune_allocator()`` when the tree
has it (``--no-allocator`` also measures this tree without it, to separate the allocator from the code).
``--bf16`` also measures this tree under CPU bf16 autocast (``merlib.cpu.autocast``), ``--compile`` under
``torch.compile`` (the compile time apart). Rows:

* ``audio_sum_pe``: audio Sum PE, 3 microphones, batch 8 (4 s clips, log-mel included);
* ``audio_avg_mel``: audio Avg mel, 3 microphones, batch 8;
* ``mer_sum_pe``: MER Sum PE, 3 microphones + 8 frames of 224×224, batch 4.

Run it alone: two cores shared with anything else make the figures meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CASES = {"audio_sum_pe": (8, 3, None), "audio_avg_mel": (8, 3, None), "mer_sum_pe": (4, 3, (8, 224))}


def _check_tree(tree: str) -> None:
    """Refuse to go on when any loaded ``merlib`` module comes from outside ``tree``."""
    root = str(Path(tree).resolve()) + os.sep
    strays = [m.__file__ for n, m in list(sys.modules.items())
              if n.split(".")[0] == "merlib" and getattr(m, "__file__", None)
              and not str(Path(m.__file__).resolve()).startswith(root)]
    if strays:
        raise SystemExit(f"merlib modules imported from outside the tree {tree}: {strays}")


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    tree = spec["tree"]
    # An editable install's finder would fill in modules the tree lacks (merlib.cpu in an older tree) from the
    # installed checkout: drop it, so that every merlib module comes from the tree (checked below).
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")
                        and "editable" not in getattr(f, "__name__", "")]
    sys.path.insert(0, tree)
    allocator = False
    if spec["allocator"] and (Path(tree) / "merlib" / "cpu.py").is_file():  # older trees have no merlib.cpu
        from merlib.cpu import tune_allocator

        allocator = tune_allocator(True)
    import resource

    import torch
    import torch.nn.functional as F

    import merlib
    from merlib.models.mer import build_model, forward_logits

    _check_tree(tree)
    torch.set_num_threads(spec["threads"])
    name, phase = spec["model"], spec["phase"]
    batch, mics, video = CASES[name]
    torch.manual_seed(0)
    model = build_model(name, "paper")
    g = torch.Generator().manual_seed(0)
    inputs: dict[str, Any] = {"waveform": 0.1 * torch.randn(batch, mics, 64000, generator=g)}
    if video:
        frames, size = video
        inputs["video"] = torch.randn(batch, 3, frames, size, size, generator=g)
    labels = torch.randint(0, 8, (batch,), generator=g)
    bf16 = spec["precision"] == "bf16"
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else (lambda: torch.autocast("cpu", enabled=False))

    if phase == "train":
        model.train()
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)

        def call() -> None:
            with cast():
                loss = F.cross_entropy(forward_logits(model, name, inputs).float(), labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    else:
        model.eval()

        def call() -> None:
            with torch.inference_mode(), cast():
                forward_logits(model, name, inputs)

    compile_s = None
    if spec.get("compile"):
        model = torch.compile(model)  # the first call compiles (inductor, C++ on the CPU)
        t0 = time.perf_counter()
        call()
        compile_s = time.perf_counter() - t0
    for _ in range(spec["warmup"]):
        call()
    times = []
    for _ in range(spec["steps"]):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    _check_tree(tree)
    median = statistics.median(times)
    return {**spec, "allocator_tuned": allocator, "compile_s": compile_s, "seconds": [round(t, 4) for t in times],
            "clips_per_s": batch / median, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run(spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": spec["tree"], "OMP_NUM_THREADS": str(spec["threads"])}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
                          capture_output=True, text=True, env=env, cwd=spec["tree"])
    if proc.returncode:
        raise SystemExit(f"bench_speed: {spec['label']} {spec['model']} {spec['phase']} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def worktree(rev: str) -> tuple[Path, str]:
    """A detached git worktree of ``rev`` under ``outputs/bench_worktrees`` (made once) and its full hash."""
    full = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                          capture_output=True, text=True)
    if full.returncode:
        raise SystemExit(f"bench_speed: --compare {rev}: not a commit of {REPO} ({full.stderr.strip()})")
    commit = full.stdout.strip()
    path = REPO / "outputs" / "bench_worktrees" / commit[:12]
    if not (path / "merlib" / "__init__.py").is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(path), commit],
                       check=True, capture_output=True, text=True)
    return path, commit


def _describe() -> str:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--compare", default=None, metavar="REV", help="a commit to measure beside this tree")
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--phases", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed calls per measurement (median taken)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="also this tree under CPU bf16 autocast")
    parser.add_argument("--no-allocator", action="store_true", help="also this tree without merlib.cpu.tune_allocator")
    parser.add_argument("--compile", action="store_true", help="also this tree under torch.compile (first call "
                        "timed apart as compile_s)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0

    variants: list[tuple[str, str, str, bool, bool]] = []  # label, tree, precision, allocator, compile
    base_label = None
    if args.compare:
        path, commit = worktree(args.compare)
        base_label = f"{commit[:7]} fp32"
        variants.append((base_label, str(path), "fp32", True, False))
    this = _describe()
    variants.append((f"{this} fp32", str(REPO), "fp32", True, False))
    if args.no_allocator:
        variants.append((f"{this} fp32, system allocator", str(REPO), "fp32", False, False))
    if args.bf16:
        variants.append((f"{this} bf16", str(REPO), "bf16", True, False))
    if args.compile:
        variants.append((f"{this} fp32, torch.compile", str(REPO), "fp32", True, True))

    sys.path.insert(0, str(REPO))
    from merlib.cpu import bf16_support

    load = os.getloadavg()
    rows = []
    for model in args.models:
        for phase in args.phases:
            for label, tree, precision, allocator, compiled in variants:
                spec = {"label": label, "tree": tree, "model": model, "phase": phase, "precision": precision,
                        "allocator": allocator, "compile": compiled, "threads": args.threads, "steps": args.steps,
                        "warmup": args.warmup}
                row = _run(spec)
                rows.append(row)
                base = next((r for r in rows if r["label"] == base_label and r["model"] == model
                             and r["phase"] == phase), None)
                ratio = f"{row['clips_per_s'] / base['clips_per_s']:.2f}×" if base else ""
                print(f"{model:14s} {phase:5s} {label:40s} {row['clips_per_s']:7.2f} clips/s  "
                      f"peak {row['peak_rss_mb'] / 1024:5.1f} GB  {ratio}"
                      + (f"  (compiled in {row['compile_s']:.0f} s)" if row.get("compile_s") else ""), flush=True)
    if args.out:
        from merlib.data.media import write_json

        sys.path.insert(0, str(HERE))
        from _common import machine_info

        native, why = bf16_support()
        write_json(args.out, {"date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv),
                              "machine": {**machine_info(load), "bf16_native": native, "bf16": why},
                              "baseline": base_label, "rows": rows})
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
