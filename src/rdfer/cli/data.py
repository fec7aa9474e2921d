"""Data subcommands: check-dataset, pack, synth, bench data."""

from __future__ import annotations

from rdfer.cli.options import PROGRESS, THREADS, add_bench, add_out
from rdfer.cli.preflight import expect_inputs
from rdfer.data.layouts import DATASETS, SYNTH_LAYOUTS
from rdfer.utils.ranges import bounded
from rdfer.utils.runlock import run_lock


def _add_dataset_args(parser, split: bool = False) -> None:
    parser.add_argument("--dataset", required=True, choices=DATASETS,
                        help="dataset layout: an official one, or csv (a manifest of path,label[,split])")
    parser.add_argument("--root", help="dataset root (csv: the CSV file, or use --csv)")
    parser.add_argument("--fold", type=bounded(int, 1, 5), default=1, help="DFEW/MAFW fold 1..5 (default 1)")
    parser.add_argument("--csv", dest="csv_path", help="CSV manifest (path,label[,split])")
    parser.add_argument("--classes", help="CSV only: dfew, mafw, or comma-separated class names")
    expect_inputs(parser, root="path", csv_path="file")
    if split:
        parser.add_argument("--split", default="train", help="train or test (csv: split value)")
        parser.add_argument("--skip-bad", action="store_true",
                            help="leave out bad clips with a warning instead of stopping")


def _root(args):
    from rdfer.errors import RdferError

    if args.root is None and not (args.dataset == "csv" and args.csv_path):
        raise RdferError(f"--root is required for --dataset {args.dataset}")
    return args.root


def _manifest(args):
    from rdfer.data import build_manifest

    return build_manifest(args.dataset, _root(args), args.split, fold=args.fold,
                          skip_bad=args.skip_bad, csv_path=args.csv_path, classes=args.classes)


def check_dataset_command(args) -> int:
    from rdfer.data.check import check_dataset, format_report

    report = check_dataset(args.dataset, _root(args), fold=args.fold, csv_path=args.csv_path,
                           classes=args.classes, workers=args.workers, progress=not args.no_progress)
    print(format_report(report, max_problems=args.max_problems))
    return 1 if report["problems"] else 0


def pack_command(args) -> int:
    from rdfer.data.manifest import dataset_files
    from rdfer.data.pack import write_pack

    manifest = _manifest(args)
    load_size = None if args.load_size == 0 else args.load_size
    stats = write_pack(manifest, args.out, load_size=load_size, quality=args.quality,
                       fold=args.fold, workers=args.workers, skip_bad=args.skip_bad,
                       protect=dataset_files(args.dataset, args.root), progress=not args.no_progress)
    print(f"packed {stats['clips']} clips, {stats['frames']} frames "
          f"({stats['bytes'] / 2**20:.1f} MiB, {stats['unreadable']} unreadable frames stored "
          f"empty) into {args.out}")
    print(f"read it with build_manifest('packed', {str(args.out)!r}, {manifest.split!r}) "
          f"or `rdfer bench data ... --packed {args.out}`")
    return 0


def _bench_data_settings(args) -> None:
    from rdfer.engine.settings import check_batch_bytes

    check_batch_bytes(args.batch_size, args.frames, args.load_size, ("--batch-size", "--frames", "--load-size"))


def bench_data_command(args) -> int:
    from rdfer.data import build_manifest
    from rdfer.data.bench import bench_data, format_bench

    manifest = _manifest(args)
    packed = build_manifest("packed", args.packed, args.split) if args.packed else None
    result = bench_data(manifest, clips=args.clips, workers=args.workers, frames=args.frames,
                        batch_size=args.batch_size, load_size=args.load_size, seed=args.seed,
                        packed=packed, threads=args.threads or 1)
    print(f"bench data: {manifest.dataset} {manifest.split} at {manifest.root}")
    print(format_bench(result))
    return 0


def _synth_options(args) -> dict:
    """synth's options as write_synthetic takes them (unset ones keep its defaults), checked: the validate-first
    pass calls this too."""
    from rdfer.synth import check_synth_options

    options = dict(layout=args.layout, clips=args.clips, noise=args.noise, noise_type=args.noise_type,
                   full_scale=args.full_scale, size=args.size, actors=args.actors, nuisance=args.nuisance)
    options = {key: value for key, value in options.items() if value is not None}
    check_synth_options(**options)
    return options


def synth_command(args) -> int:
    from rdfer.synth import describe_synthetic, write_synthetic

    options = dict(_synth_options(args), seed=args.seed, progress=not args.no_progress)
    # Options left unset keep write_synthetic's own defaults.
    with run_lock(args.out, "synth"):
        write_synthetic(args.out, **{key: value for key, value in options.items() if value is not None})
    print(describe_synthetic(args.out))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check-dataset", parents=[PROGRESS], help="report clips found/missing/empty/unreadable per split",
        description="Scan a dataset root split by split, decoding every frame of every clip: clips "
        "found, missing, empty, unreadable (no frame decodes), damaged (some frames do not decode or "
        "are cut short), duplicated, in both train and test; per-class counts, and (DFEW/FERV39K) the "
        "official split sizes. Exit status 1 when any problem is found.")
    _add_dataset_args(parser)
    parser.add_argument("--max-problems", type=bounded(int, 0, 1_000_000), default=30, help="problems to list (default 30)")
    parser.add_argument("--workers", type=bounded(int, 1, 256), default=None,
                        help="decoding threads (default: CPU count)")
    parser.set_defaults(func=check_dataset_command)

    parser = subparsers.add_parser(
        "pack", parents=[PROGRESS], help="pack one split into a single file for fast loading",
        description="Write every frame of one split into one file (JPEG at --load-size plus "
        "an index); read it with build_manifest('packed', FILE, split).")
    _add_dataset_args(parser, split=True)
    add_out(parser, "pack file to write", required=True, metavar="FILE")
    parser.add_argument("--load-size", type=bounded(int, 0, 2048), default=128,
                        help="side frames are stored at (default 128; 0: keep the source files' bytes)")
    parser.add_argument("--quality", type=bounded(int, 1, 100), default=90,
                        help="JPEG quality of re-encoded frames (default 90)")
    parser.add_argument("--workers", type=bounded(int, 1, 256), default=None,
                        help="encoding threads (default: CPU count)")
    parser.set_defaults(func=pack_command)

    parser = subparsers.add_parser(
        "synth", parents=[PROGRESS], help="write the synthetic DFER benchmark",
        description="Render synthetic face videos with known labels, noise and hard clips "
        "in an official dataset layout, plus DIR/ground_truth.csv.")
    add_out(parser, "folder to write the benchmark into", required=True)
    parser.add_argument("--layout", choices=SYNTH_LAYOUTS, default="dfew",
                        help="the official dataset layout to write (default dfew)")
    parser.add_argument("--clips", type=bounded(int, 1, 200_000), default=None, help="clips to render")
    parser.add_argument("--noise", type=bounded(float, 0, 1), default=0.0, help="share of train labels flipped")
    parser.add_argument("--noise-type", choices=("symmetric", "pair"), default=None,
                        help="symmetric (default): a flipped label becomes a uniformly drawn other class; "
                             "pair: its most confusable class (Fear<->Surprise, Angry<->Disgust, "
                             "Sad<->Neutral, Happy->Neutral)")
    parser.add_argument("--seed", type=bounded(int, 0, 2**32 - 1), default=0,
                        help="seed of everything drawn (default 0)")
    parser.add_argument("--full-scale", action="store_true",
                        help="DFEW's fold structure, label and frame counts")
    parser.add_argument("--size", type=bounded(int, 16, 1024), default=None, help="frame side in pixels")
    parser.add_argument("--actors", type=bounded(int, 1, 10_000), default=None,
                        help="draw each clip's person from a pool of this many actors (default: a new person per clip)")
    parser.add_argument("--nuisance", type=bounded(float, 0, 1), default=None,
                        help="0..1: how much head motion, lighting change, occlusion, subtle and distractor "
                             "expressions the clips carry (default 1, the full benchmark; lower is easier)")
    parser.set_defaults(func=synth_command, validate=_synth_options, run_kind="synth")


def register_bench(bench, subparsers) -> None:
    for parser in add_bench(bench, subparsers, "data", func=bench_data_command, parents=[THREADS],
                            help="clips/s of rdfer's loader vs a PIL reference loader",
                            description="Load the same clips with rdfer's loader (+ TrainPreset, CPU) and with a "
                                        "per-frame PIL/torchvision loader in the style of public DFER code; print "
                                        "both clips/s and their ratio. --threads: of the main process while "
                                        "timing (default 1)."):
        _add_dataset_args(parser, split=True)
        parser.add_argument("--clips", type=bounded(int, 1, 200_000), default=64, help="clips to load (default 64)")
        parser.add_argument("--workers", type=bounded(int, 0, 256), default=2,
                            help="data loading processes (default 2)")
        parser.add_argument("--frames", type=bounded(int, 1, 1024), default=64,
                            help="frames per clip (default 64, dense)")
        parser.add_argument("--batch-size", type=bounded(int, 1, 16_384), default=8,
                            help="clips per batch (default 8)")
        parser.add_argument("--load-size", type=bounded(int, 1, 2048), default=128,
                            help="side frames are decoded at (default 128)")
        parser.add_argument("--packed", help="a pack of the same split (rdfer pack) for rdfer's loader")
        expect_inputs(parser, packed="file")
        parser.set_defaults(validate=_bench_data_settings)
        parser.add_argument("--seed", type=bounded(int, 0, 2**32 - 1), default=0,
                            help="seed of the clips drawn (default 0)")
