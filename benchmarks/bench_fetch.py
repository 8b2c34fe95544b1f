"""Fetch throughput and resume overhead of `merlib fetch`, against a local Zenodo-like server on 127.0.0.1.

    .venv/bin/python benchmarks/bench_fetch.py                      # ~200 MB archive, 5 repeats
    .venv/bin/python benchmarks/bench_fetch.py --mb 20 --repeats 1 --out /tmp/b.json   # a fast smoke run

Builds a ~``--mb`` MB zip in RAVDESS's audio layout (``Actor_XX/03-01-…wav`` members of random bytes, stored
uncompressed like real wav archives) under a temporary folder, serves it with
:class:`merlib.data.mirror.ZenodoMirror`, and measures (median of ``--repeats``):

* ``raw_http``   — reading the response and throwing it away (the ceiling this machine's loopback allows);
* ``download``   — :func:`merlib.data.fetch.download`: write to disk and compute the md5 while reading;
* ``extract``    — :func:`merlib.data.fetch.extract_archive` of the verified archive (atomic rename);
* ``fetch``      — the whole :func:`merlib.data.fetch.fetch` (records API, download, md5, extract, state);
* ``resume_in_run``  — ``fetch`` with the connection cut at half the archive, resumed in the same run;
* ``resume_next_run`` — the same cut without retries (the run fails), then a second run that resumes;
* ``noop``       — a repeated ``fetch`` of what is already there (no network request).

Resume overhead = resumed time − uninterrupted ``fetch`` time; it includes re-hashing the partial file.
Every measurement starts after ``os.sync()``, so the write-back of one does not slow the next.
Prints a table and writes JSON (date, machine, load average, settings, seconds, MB/s) to ``--out``.
Loopback numbers measure merlib's own cost, not a network: real downloads from Zenodo are network-bound.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
import urllib.request
import zipfile
from datetime import date
from pathlib import Path

from merlib.data import fetch as F
from merlib.data.media import write_json
from merlib.data.mirror import ZenodoMirror
from merlib.data.ravdess import clip_items

KEY = "Audio_Speech_Actors_01-24.zip"
RECORD = F.RECORDS["ravdess"]


def make_archive(path: Path, mb: int) -> int:
    """A stored zip of ~``mb`` MB: 2 MB 'wav' members of random bytes under RAVDESS names."""
    names = [f"Actor_{it.actor:02d}/{it.filename(3)}" for a in range(1, 25) for it in clip_items(a)]
    member = 2 * 2**20
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(max(1, mb * 2**20 // member)):
            zf.writestr(names[i % len(names)] if i < len(names) else f"extra/{i}.wav", os.urandom(member))
    return path.stat().st_size


def timed(fn) -> float:
    os.sync()  # start each measurement with no dirty pages of the previous one waiting to be written
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=200, help="archive size in MB")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--work-dir", type=Path, default=None, help="where to build and fetch (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_fetch.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="merlib-bench-fetch-", dir=args.work_dir))
    quiet = lambda s: None  # noqa: E731
    try:
        archive = work / KEY
        size = make_archive(archive, args.mb)
        mb = size / 1e6
        times: dict[str, list[float]] = {k: [] for k in ("raw_http", "download", "extract", "fetch", "resume_in_run",
                                                         "resume_next_run", "noop")}
        load_before = os.getloadavg()
        with ZenodoMirror({RECORD: {KEY: archive}}) as mirror:
            record = F.parse_record(mirror.record_json(RECORD), mirror.url)
            remote = record.files[0]

            def raw() -> None:
                with urllib.request.urlopen(remote.url) as resp:
                    while resp.read(F.CHUNK):
                        pass

            for r in range(args.repeats):
                run = work / f"run{r}"
                times["raw_http"].append(timed(raw))
                dest = run / "dl" / KEY
                times["download"].append(timed(lambda: F.download(remote, dest, progress=False, log=quiet)))
                times["extract"].append(timed(lambda: F.extract_archive(dest, run / "dl", "x")))
                shutil.rmtree(run / "dl")

                def go(to: Path, **kw) -> F.FetchResult:
                    return F.fetch("ravdess", to, zenodo_url=mirror.url, progress=False, log=quiet,
                                   retry_wait=0.0, **kw)

                times["fetch"].append(timed(lambda: go(run / "full")))
                times["noop"].append(timed(lambda: go(run / "full")))
                shutil.rmtree(run / "full")

                mirror.cut_after(KEY, size // 2)
                times["resume_in_run"].append(timed(lambda: go(run / "in_run", retries=1)))
                shutil.rmtree(run / "in_run")

                def next_run() -> None:
                    mirror.cut_after(KEY, size // 2)
                    try:
                        go(run / "next", retries=0)
                    except F.FetchError:
                        pass
                    go(run / "next", retries=0)

                times["resume_next_run"].append(timed(next_run))
                shutil.rmtree(run)
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "archive_mb": round(mb, 1), "repeats": args.repeats,
        "seconds_median": {k: round(v, 3) for k, v in med.items()},
        "seconds_all": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "mb_per_s": {k: round(mb / med[k], 1) for k in ("raw_http", "download", "extract", "fetch")},
        "resume_overhead_s": {"in_run": round(med["resume_in_run"] - med["fetch"], 3),
                              "next_run": round(med["resume_next_run"] - med["fetch"], 3)},
    }
    print(f"archive {mb:.1f} MB, median of {args.repeats} on {result['machine']}")
    for k, v in med.items():
        rate = f"{result['mb_per_s'][k]:8.1f} MB/s" if k in result["mb_per_s"] else ""
        print(f"  {k:<16} {v:8.3f} s  {rate}")
    print(f"  resume overhead: in the run {result['resume_overhead_s']['in_run']:+.3f} s, "
          f"next run {result['resume_overhead_s']['next_run']:+.3f} s")
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
