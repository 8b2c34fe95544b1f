"""The ``merlib`` command line. Each subcommand calls the same functions the notebooks use.

    merlib synth OUT_DIR [--quick | --size quick|full] [--seed N] [--resolution WxH] [--workers N]
    merlib scan DATA_ROOT                       # what a RAVDESS folder holds, and the actor split
    merlib reverb DATA_ROOT --out DIR [--seed N] [--ace-root DIR]   # the reverberant corpus
    merlib train MODEL --data-root DIR --out DIR [--quick]   # one Table II model, the reference recipe
    merlib evaluate PRED_DIR [--out DIR]        # Table II (per room, 75 % intervals) from saved predictions
    merlib reproduce --quick [--out outputs]    # the main job (what `make reproduce` runs)
    merlib book [--outputs outputs]             # the HTML book of the executed notebooks (what `make book` runs)
    merlib fetch ravdess --to DIR [--video] [--actors 1-24]   # the real RAVDESS from Zenodo, verified
    merlib fetch ace --to DIR                   # the ACE "Mobile" RIRs from Zenodo
    merlib check-data DIR [--deep]              # what a RAVDESS / ACE copy holds, and what is missing
    merlib check-weights PATH                   # what a checkpoint is, and which merlib model it loads into
    merlib predict FILE… --model RUN            # classify your own recordings (any length, any sample rate)

Bad input (a missing or unreadable file, a wrong folder, a full disk) is answered by one line naming the file
and the fix, with exit status 2; ``--debug`` shows the traceback instead. Exit statuses and the rule for bad
files inside a build: docs/design.md §11.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path


def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like 640x360, not {text!r}") from None
    return w, h


def _cmd_synth(args: argparse.Namespace) -> int:
    from .config import Config, DataConfig, save_config
    from .data.synthetic import CorpusSpec, generate_corpus

    size = "quick" if args.quick else args.size
    spec = CorpusSpec.preset(size, args.seed, args.resolution)
    t0 = time.time()
    root = generate_corpus(args.out_dir, spec, workers=args.workers, progress=not args.no_progress)
    # this run's settings: the corpus spec as its synth section; the stages it does not run stay null
    cfg = Config(preset="quick" if size == "quick" else "paper", seed=args.seed, data=DataConfig(root=str(root)),
                 synth=spec)
    save_config(cfg, root / "merlib_run")
    print(f"synthetic RAVDESS ({size}, seed {args.seed}, {spec.resolution[0]}x{spec.resolution[1]}) "
          f"ready in {root} after {time.time() - t0:.1f} s")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from .data.ravdess import actor_split, scan

    result = scan(args.data_root, speech_only=not args.include_song)
    print(result.report())
    if len(result.actors) >= 4:
        split = actor_split(result.actors, seed=args.seed)
        print(f"actor split (seed {args.seed}): train {list(split.train)}, val {list(split.val)}, test {list(split.test)}")
    return 0


def _cmd_reverb(args: argparse.Namespace) -> int:
    import json

    from .config import Config, DataConfig, read_synth_spec, save_config
    from .data.reverberant import CONFIG_FILE, FAILED_FILE, ReverbConfig, build_reverberant_corpus, read_manifest

    cfg = ReverbConfig(seed=args.seed, snr_db=args.snr_db, backend=args.backend,
                       ace_root=str(args.ace_root) if args.ace_root else None, ace_position=args.position,
                       include_clean=not args.no_clean)
    t0 = time.time()
    out = build_reverberant_corpus(args.data_root, args.out, cfg, workers=args.workers,
                                   progress=not args.no_progress, max_clips_per_actor=args.max_clips_per_actor)
    # this run's settings: the build's own (its actor split included) as the reverb section, and the corpus'
    # spec as the synth section when `merlib synth` made it; training and frames stay null
    built = ReverbConfig.from_dict(json.loads((out / CONFIG_FILE).read_text())["config"])
    synth = read_synth_spec(args.data_root)
    run_cfg = Config(preset="quick" if synth is not None and synth.size == "quick" else "paper", seed=args.seed,
                     data=DataConfig(root=str(Path(args.data_root).resolve())), synth=synth, reverb=built)
    save_config(run_cfg, out / "merlib_run")
    rows = read_manifest(out)
    rooms = "measured ACE" if args.ace_root else "simulated ACE-like stand-ins"
    print(f"reverberant corpus: {len(rows)} files in {out} (test rooms: {rooms}) after {time.time() - t0:.1f} s")
    failed = out / FAILED_FILE
    if failed.exists():
        print(f"  {len(json.loads(failed.read_text()))} clip(s) left out: their source files could not be read "
              f"(listed in {failed}); re-download them and run this command again")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    if not args.quick and not args.ravdess:
        print("merlib reproduce: without --quick give --ravdess (and --ace, weights) for the paper-size run; "
              "it builds the full synthetic corpus otherwise", file=sys.stderr)
    summary = reproduce(args.out, quick=args.quick, seed=args.seed, ravdess=args.ravdess, ace=args.ace,
                        audio_weights=args.audio_weights, video_weights=args.video_weights,
                        notebooks=not args.no_notebooks)
    print(f"done in {summary['total_s']} s. Results in {Path(args.out).resolve()}:")
    print(f"  Table II (ours, with 75 % intervals, and beside the paper): {summary['tables']}")
    print(f"  executed notebooks: {Path(args.out).resolve() / 'notebooks'}")
    for name in summary["notebooks"]:
        print(f"  {name}: figures and metrics.json in {Path(args.out).resolve() / name}")
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from .book import browse_book, build_book, missing_chapters

    from .errors import check_output_dir

    outputs = Path(args.outputs)
    out = check_output_dir(Path(args.out) if args.out else outputs / "book")
    missing = missing_chapters(outputs / "notebooks")
    if missing and args.reproduce_if_missing:
        from .reproduce import reproduce

        print(f"merlib book: {len(missing)} notebook(s) not executed yet ({', '.join(missing)}); "
              f"running the main job into {outputs} first", flush=True)
        reproduce(outputs, quick=True)
    report = build_book(outputs / "notebooks", out)
    for warning in report.warnings:
        print(f"merlib book: warning: {warning}", file=sys.stderr)
    n_img = sum(p.n_images for p in report.pages)
    n_eq = sum(p.n_equations for p in report.pages)
    print(f"book: {len(report.chapters)} chapters, {len(report.pages)} pages, {n_img} figures, {n_eq} formulas "
          f"in {report.seconds} s")
    print(f"  open {out.resolve() / 'index.html'}")
    if args.screenshots:
        pages = browse_book(out, args.screenshots)
        bad = [p["file"] for p in pages if p["status"] != 200 or p["math_errors"] or p["failed_requests"]
               or p["page_errors"] or p["broken_links"] or any(not i["natural"][0] for i in p["images"])]
        print(f"  screenshots of {len(pages)} pages in {Path(args.screenshots).resolve()}"
              + (f"; problems on {', '.join(bad)}" if bad else "; every page rendered"))
        return 1 if bad else 0
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from .data.fetch import FetchError, fetch
    from .errors import check_output_dir

    check_output_dir(args.to, "--to")  # before any download
    try:
        fetch(args.dataset, args.to, video=args.video, actors=args.actors, zenodo_url=args.zenodo_url,
              keep_archives=args.keep_archives, timeout=args.timeout, retries=args.retries,
              progress=not args.no_progress)
    except FetchError as err:
        print(f"merlib fetch {args.dataset}: {err}", file=sys.stderr)
        return 1
    return 0


def _cmd_check_data(args: argparse.Namespace) -> int:
    from .data.check import check_data

    report = check_data(args.data_dir, deep=args.deep, actors=args.actors, progress=not args.no_progress)
    print(report.summary(max_items=args.max_items))
    return 0 if report.ok else 1


def _cmd_check_weights(args: argparse.Namespace) -> int:
    from .models.checkpoints import identify_checkpoint

    info = identify_checkpoint(args.path, try_load=not args.no_load, trusted=args.trusted)
    print(info.summary())
    return 0 if info.kind != "unknown" else 1


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import run_train_command

    return run_train_command(args)


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``merlib train MODEL --data-root … --out …`` to a CLI. Its handler is
    :func:`merlib.training.run_train_command`, imported when the command runs, so that parsing any ``merlib``
    command does not load the training stack (torch, Lightning: ~4 s)."""
    from .paper_results import MODEL_NAMES

    p = subparsers.add_parser(
        "train", help="train one Table II model with the reference recipe",
        description="Train one of the paper's nine models (build or reuse the reverberant corpus and the frame "
                    "cache of DATA_ROOT first). Multi-GPU: torchrun --nproc_per_node N -m merlib train MODEL …",
    )
    p.add_argument("model", choices=list(MODEL_NAMES), help="the Table II configuration")
    p.add_argument("--data-root", required=True, type=Path, help="RAVDESS folder (real or `merlib synth`)")
    p.add_argument("--out", required=True, type=Path, help="run directory")
    p.add_argument("--quick", action="store_true",
                   help="TrainConfig.quick_for(MODEL): the quick grid's CPU recipe and quick-size models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch (default 32; quick 16)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument("--devices", default="auto", help="'auto', a count, or e.g. 2 for CPU DDP")
    p.add_argument("--accelerator", default="auto", help="auto | cpu | gpu")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers per device")
    p.add_argument("--precision", default=None,
                   help="default: bf16-mixed on a GPU, 32-true on the CPU; 'auto' adds bf16-mixed on a CPU with "
                        "native bf16 (AVX512-BF16 or AMX), where it is faster; see merlib.cpu")
    p.add_argument("--audio-weights", default=None, help="HTS-AT AudioSet checkpoint to fine-tune from")
    p.add_argument("--video-weights", default=None, help="'kinetics400' or R(2+1)D-18 weights to fine-tune from")
    p.add_argument("--init-audio", default=None, help="MER models: start the audio branch from this finished "
                                                      "audio-only run (folder or final.pt)")
    p.add_argument("--init-video", default=None, help="MER models: start the video branch from this finished "
                                                      "video-only run (folder or final.pt)")
    p.add_argument("--ace-root", default=None, help="measured ACE RIRs for the test rooms (default: stand-ins)")
    p.add_argument("--cache-dir", default=None, type=Path, help="where corpora and frames are cached")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_train)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="merlib", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of every error (default: one line for bad input)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the built-in synthetic RAVDESS corpus")
    p.add_argument("out_dir", type=Path)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="16 actors x 16 clips at 320x180 (same as --size quick)")
    group.add_argument("--size", choices=("quick", "full"), default="full")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resolution", type=_resolution, default=None, help="WxH, default 320x180 (quick) / 640x360 (full)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("scan", help="summarise a RAVDESS folder (real or synthetic)")
    p.add_argument("data_root", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--include-song", action="store_true")
    p.set_defaults(func=_cmd_scan)
    p = sub.add_parser("reverb", help="build the reverberant 3-mic corpus (train/val simulated rooms, 7 test rooms)")
    p.add_argument("data_root", type=Path, help="a RAVDESS-shaped corpus (real or `merlib synth` output)")
    p.add_argument("--out", type=Path, required=True, help="where build folders reverb-<hash> are created")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snr-db", type=float, default=20.0)
    p.add_argument("--backend", default="merlib", choices=("merlib", "gpurir", "pyroomacoustics"))
    p.add_argument("--ace-root", type=Path, default=None, help="measured ACE RIRs (default: simulated stand-ins)")
    p.add_argument("--position", type=int, default=1, choices=(1, 2), help="ACE position: 1 near (paper), 2 far")
    p.add_argument("--no-clean", action="store_true", help="skip the clean single-channel copies")
    p.add_argument("--max-clips-per-actor", type=int, default=None)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_reverb)

    from .evaluation import add_evaluate_parser

    add_train_parser(sub)
    add_evaluate_parser(sub)

    p = sub.add_parser("reproduce", help="run the main job (quick: synthetic corpus + every notebook)")
    p.add_argument("--quick", action="store_true", help="CPU-sized run on the synthetic corpus")
    p.add_argument("--out", type=Path, default=Path("outputs"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ravdess", type=Path, default=None, help="the real RAVDESS (default: the synthetic corpus)")
    p.add_argument("--ace", type=Path, default=None, help="an ACE download (default: simulated ACE-like rooms)")
    p.add_argument("--audio-weights", default=None, help="HTS-AT AudioSet checkpoint to fine-tune from")
    p.add_argument("--video-weights", default=None, help="'kinetics400' or an R(2+1)D-18 state dict")
    p.add_argument("--no-notebooks", action="store_true", help="skip executing the notebooks")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("book", help="build the HTML book of the executed notebooks (outputs/book/index.html)",
                       description="One page per numbered notebook as `merlib reproduce` executed it, the README's "
                                   "introduction as front page and docs/ as reference pages; MathJax is served "
                                   "with the book, so it reads offline.")
    p.add_argument("--outputs", type=Path, default=Path("outputs"),
                   help="the main job's output folder, holding notebooks/ (default outputs)")
    p.add_argument("--out", type=Path, default=None, help="where the book goes (default OUTPUTS/book)")
    p.add_argument("--reproduce-if-missing", action="store_true",
                   help="run the quick main job first when executed notebooks are missing (what `make book` does)")
    p.add_argument("--screenshots", type=Path, default=None,
                   help="then open every page in headless Chromium, check it rendered, save screenshots here")
    p.set_defaults(func=_cmd_book)

    p = sub.add_parser("fetch", help="download, verify and extract RAVDESS or the ACE Mobile RIRs from Zenodo",
                       description="Download (resumable), md5-check and extract a corpus from its Zenodo record "
                                   "into the layout merlib reads. A finished fetch run again does nothing.")
    p.add_argument("dataset", choices=("ravdess", "ace"))
    p.add_argument("--to", type=Path, required=True,
                   help="target folder (outside the merlib checkout, or under its data/)")
    p.add_argument("--video", action="store_true",
                   help="RAVDESS: also the per-actor audio-video archives (the bulk of the download)")
    p.add_argument("--actors", default=None, help="RAVDESS video archives of these actors, e.g. 1-3,7 (default 1-24)")
    p.add_argument("--keep-archives", action="store_true", help="keep the verified archives after extraction")
    p.add_argument("--zenodo-url", default=None,
                   help="Zenodo base URL (default $MERLIB_ZENODO_URL or https://zenodo.org)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before a connection or stalled read fails")
    p.add_argument("--retries", type=int, default=3, help="automatic resumes per archive after a dropped connection")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("check-data", help="validate a RAVDESS and/or ACE Mobile copy; list what is missing",
                       description="Counts per actor, file names, readable headers; exit 0 when complete, 1 otherwise.")
    p.add_argument("data_dir", type=Path)
    p.add_argument("--deep", action="store_true", help="decode every file completely (slow) instead of reading headers")
    p.add_argument("--actors", default=None, help="RAVDESS actors expected, e.g. 1-3,7 (default: all 24)")
    p.add_argument("--max-items", type=int, default=20, help="names listed per problem before '… and N more'")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_check_data)

    p = sub.add_parser("check-weights", help="identify a checkpoint and say which merlib model it loads into")
    p.add_argument("path", type=Path)
    p.add_argument("--no-load", action="store_true", help="only identify; do not try loading into merlib models")
    p.add_argument("--trusted", action="store_true",
                   help="allow full unpickling for a file holding more than tensors (only for files you trust)")
    p.set_defaults(func=_cmd_check_weights)

    from .predict import add_predict_parser

    add_predict_parser(sub)
    for command in sub.choices.values():  # `merlib CMD … --debug` works as well as `merlib --debug CMD …`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. The error boundary: a problem with the user's input (:mod:`merlib.errors`: data, media,
    settings, checkpoints, output folders, and the disk's own errors such as a missing file or a full disk) is
    printed as one line naming the file and the fix, with exit status 2; anything else is a bug and keeps its
    traceback. ``--debug`` shows the traceback of every error."""
    from .errors import describe, is_user_error

    args = build_parser().parse_args(argv)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        where = f" ({category.__name__} at {filename}:{lineno})" if args.debug else ""
        print(f"merlib {args.command}: warning: {message}{where}", file=sys.stderr)

    from .cpu import tune_allocator

    tune_allocator()  # large tensors reused, not faulted in again (merlib.cpu); MERLIB_ALLOCATOR=system: off
    try:
        with warnings.catch_warnings():  # warnings (files a build skipped, …) as plain lines on stderr
            warnings.showwarning = show
            return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"merlib {args.command}: interrupted; what was finished is kept, and running the same command "
              "again resumes", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug or not is_user_error(err):
            raise
        print(f"merlib {args.command}: error: {describe(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
