"""Time the synthetic corpus build and score its leave-one-actor-out baselines.

    .venv/bin/python benchmarks/bench_synth.py --size quick            # ≤ 60 s target on 2 cores
    .venv/bin/python benchmarks/bench_synth.py --size full --no-baselines   # ≤ 20 min target on 2 cores

Builds into a fresh temporary folder (never the cache), prints a table, and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from merlib.data.media import write_json
from merlib.data.ravdess import scan
from merlib.data.synthetic import CorpusSpec, generate_corpus
from merlib.data.synthetic.baselines import corpus_baselines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=("quick", "full"), default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", default=None, help="WxH")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res = tuple(int(v) for v in args.resolution.split("x")) if args.resolution else None
    spec = CorpusSpec.preset(args.size, args.seed, res)
    tmp = Path(tempfile.mkdtemp(prefix="merlib-bench-synth-"))
    try:
        t0 = time.perf_counter()
        root = generate_corpus(tmp / "corpus", spec, workers=args.workers, progress=True)
        build_s = time.perf_counter() - t0
        files = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".wav", ".mp4")]
        n_clips = len(scan(root).complete())
        result = {
            "date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "size": args.size, "seed": args.seed, "resolution": list(spec.resolution),
            "workers": args.workers or os.cpu_count(), "clips": n_clips, "build_s": round(build_s, 1),
            "s_per_clip": round(build_s / n_clips, 3),
            "mb_total": round(sum(p.stat().st_size for p in files) / 1e6, 1),
        }
        if not args.no_baselines:
            t1 = time.perf_counter()
            base = corpus_baselines(scan(root).complete())
            result["baselines_loao"] = {k: round(v.accuracy, 3) for k, v in base.items()}
            result["baselines_s"] = round(time.perf_counter() - t1, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for k, v in result.items():
        print(f"{k:>16}: {v}")
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
