"""Time the full 1440-clip reverberant corpus build (target: ≤ 5 min on 2 cores).

    .venv/bin/python benchmarks/bench_reverb_corpus.py --workers 2 --out benchmarks/results/reverb_corpus.json

The build's cost does not depend on what is said, so the 1440-clip source corpus is assembled by copying the
quick synthetic corpus's 48 kHz wavs under all 24 actors × 60 RAVDESS names (audio only) in a temporary
folder; the build then runs exactly as on the real corpus: 1260 train/val clips each in its own simulated
room, 180 test clips × 7 stand-in rooms, 1440 clean copies.
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
from merlib.data.ravdess import clip_items, scan
from merlib.data.reverberant import ReverbConfig, build_reverberant_corpus, read_manifest
from merlib.data.synthetic import ensure_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--actors", type=int, default=24)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sources = [c.audio_path for c in scan(ensure_corpus("quick")).complete()]
    tmp = Path(tempfile.mkdtemp(prefix="merlib-bench-reverb-"))
    try:
        k = 0
        for actor in range(1, args.actors + 1):
            folder = tmp / "src" / "Audio_Speech_Actors_01-24" / f"Actor_{actor:02d}"
            folder.mkdir(parents=True)
            for item in clip_items(actor):
                shutil.copy(sources[k % len(sources)], folder / item.filename(3))
                k += 1
        t0 = time.perf_counter()
        build = build_reverberant_corpus(tmp / "src", tmp / "out", ReverbConfig(seed=0), workers=args.workers)
        seconds = time.perf_counter() - t0
        rows = read_manifest(build)
        size = sum(p.stat().st_size for p in build.rglob("*.flac"))
        result = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                  "clips": k, "files": len(rows), "workers": args.workers, "build_s": round(seconds, 1),
                  "files_per_s": round(len(rows) / seconds, 1), "gb": round(size / 1e9, 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for key, value in result.items():
        print(f"{key:>12}: {value}")
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
