"""Subcommands: train, eval, cv, demo, bench train."""

from pathlib import Path

from rdfer.cli.options import (DEVICE, OVERRIDES, PROGRESS, THREADS, CommaList, add_bench, add_data_options,
                               add_out, config_overrides, note)
from rdfer.cli.preflight import checked_config, expect_inputs
from rdfer.data.layouts import DATASETS
from rdfer.errors import RdferError
from rdfer.utils.ranges import bounded
from rdfer.utils.runlock import run_lock


def register(subparsers) -> None:
    p = subparsers.add_parser("train", parents=[OVERRIDES, DEVICE, THREADS, PROGRESS],
                              help="train a model (the paper's recipe by default)",
                              description="Train a config into a new run folder (checkpoints, metrics, per-clip "
                                          "predictions; docs/reference/outputs.md), or continue one with --resume. "
                                          "Launch under `torchrun --nproc_per_node=N` for several GPUs (or CPU "
                                          "processes with gloo).")
    p.add_argument("--config", help="YAML config: a file, or the name of a shipped one (see configs/)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="RUN", help="new run folder to train into (this or --resume is required)")
    where.add_argument("--resume", metavar="RUN",
                       help="continue the run in RUN from its last checkpoint (with --set only for where the data "
                            "is and how it is loaded: data.root, data.num_workers, data.skip_bad, device, threads, "
                            "...)")
    p.add_argument("--skip-bad", action="store_true", help="leave out unusable clips with a warning naming each "
                                                           "(same as --set data.skip_bad=true)")
    p.set_defaults(func=train, validate=_train_config, out_kind="folder", run_kind="train")
    expect_inputs(p, resume="folder")

    p = subparsers.add_parser("eval", parents=[DEVICE, PROGRESS],
                              help="evaluate a checkpoint; write per-clip predictions and metrics",
                              description="Predict every clip of a split with a checkpoint of `rdfer train` and "
                                          "write OUT/predictions.csv, OUT/features.npy and OUT/metrics.json (WAR, "
                                          "UAR, confusion). The data defaults to the checkpoint's training data.")
    p.add_argument("--checkpoint", required=True, help="checkpoint of `rdfer train` (RUN/checkpoints/best.pt)")
    add_out(p, "folder for predictions.csv, features.npy, metrics.json", required=True)
    add_data_options(p, split="test")
    p.add_argument("--batch-size", type=bounded(int, 1, 16_384), default=32, help="clips per batch (default 32)")
    p.add_argument("--workers", type=bounded(int, 0, 256), default=2, help="data loading processes (default 2)")
    p.add_argument("--skip-bad", action="store_true", help="leave out unusable clips with a warning naming each")
    p.set_defaults(func=evaluate, run_kind="eval")
    expect_inputs(p, checkpoint="file", root="path", csv="file")

    p = subparsers.add_parser("cv", parents=[OVERRIDES, DEVICE, THREADS, PROGRESS],
                              help="5-fold cross-validation (DFEW, MAFW): each fold, mean and sample sd",
                              description="Train and test CONFIG on each official fold into OUT/fold_K, then write "
                                          "OUT/cv_summary.json and OUT/cv_summary.md (per fold, mean and sample "
                                          "standard deviation). Rerunning with the same OUT reuses finished folds.")
    p.add_argument("--config", required=True, help="YAML config: a file, or the name of a shipped one")
    add_out(p, "cross-validation folder", required=True)
    p.add_argument("--folds", action=CommaList, item_type=bounded(int, 1, 5), default=(1, 2, 3, 4, 5),
                   metavar="K,K,...", help="folds to run, comma-separated (default 1,2,3,4,5)")
    p.add_argument("--skip-bad", action="store_true", help="same as --set data.skip_bad=true")
    p.set_defaults(func=cv, validate=_cv_config, run_kind="cv")

    p = subparsers.add_parser("demo", parents=[OVERRIDES, THREADS, PROGRESS],
                              help="the whole method on the built-in synthetic benchmark (CPU, minutes)",
                              description="Render the synthetic benchmark with 20% of its training labels flipped, "
                                          "cache its frozen features, train vanilla cross-entropy and the paper's "
                                          "agreement-based reweighting on it, and write OUT/report.md comparing "
                                          "them. Rerunning with the same OUT reuses finished steps.")
    add_out(p, "demo folder (default ./demo_out)", default="demo_out")
    p.add_argument("--clips", type=bounded(int, 1, 200_000), help="synthetic clips (default: the demo's size)")
    p.set_defaults(func=demo, validate=_demo_config)


def register_bench(bench, subparsers) -> None:
    for p in add_bench(bench, subparsers, "train", func=bench_train, parents=[OVERRIDES, DEVICE],
                       help="training clips/s: synthetic tensors vs the real loader",
                       description="Time training steps of MODEL on synthetic tensors (the model alone) and on "
                                   "the real loader (a small rendered benchmark, or --root), in clips/s. Model "
                                   "options: --set model.options.KEY=VALUE."):
        p.add_argument("--model", default="rdfer_tiny", help="a name from `rdfer models` (default rdfer_tiny)")
        p.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                       help="deprecated spelling of --set model.options.KEY=VALUE")
        p.add_argument("--batch-size", type=bounded(int, 1, 16_384), default=16, help="clips per step (default 16)")
        p.add_argument("--steps", type=bounded(int, 1, 100_000), default=10, help="timed steps (default 10)")
        p.add_argument("--warmup", type=bounded(int, 0, 10_000), default=3, help="untimed steps first (default 3)")
        p.add_argument("--dataset", default="dfew", choices=DATASETS, help="dataset layout (default dfew)")
        p.add_argument("--root", help="dataset root (default: render a small synthetic one)")
        p.add_argument("--fold", type=bounded(int, 1, 5), default=1, help="DFEW/MAFW fold 1..5 (default 1)")
        p.add_argument("--workers", type=bounded(int, 0, 256), default=2, help="data loading processes (default 2)")
        p.add_argument("--amp", default="bf16", choices=("bf16", "fp16", "off"),
                       help="mixed precision on GPU (default bf16)")
        p.add_argument("--compile", action="store_true", help="torch.compile the model")
        p.set_defaults(validate=_bench_model_config)
        expect_inputs(p, root="path")


def _model_options(args, warn: bool = True) -> dict:
    """`--set model.options.KEY=VALUE` (and the deprecated `--option KEY=VALUE`) -> {key: value}."""
    from rdfer.config import parse_key_value

    options = {}
    for item in args.overrides:
        key, value = parse_key_value(item, "--set", "model.options.resample=false")
        if not key.startswith("model.options."):
            raise RdferError(f"--set {item}: bench train takes only model options (--set model.options.KEY=VALUE)")
        options[key.removeprefix("model.options.")] = value
    if args.options and warn:
        note("--option KEY=VALUE", "--set model.options.KEY=VALUE")
    options.update(parse_key_value(item, "--option", "resample=false") for item in args.options)
    return options


def _train_config(args):
    """train's config, checked (the validate-first pass calls this too)."""
    if args.resume:
        run = Path(args.resume)
        if args.config:
            raise RdferError(f"--resume {run} continues with the run's own config.yaml; --config cannot be used "
                             "with it (start a new run with --out to train another config)")
        if not run.is_dir():
            raise RdferError(f"--resume {run}: no such folder")
        return checked_config(None, config_overrides(args), resume_from=run)
    return checked_config(args.config, config_overrides(args))


def _cv_config(args):
    folds = args.folds
    if not folds or len(set(folds)) != len(folds):
        raise RdferError(f"--folds {','.join(map(str, folds))}: give distinct fold numbers 1..5")
    from rdfer.config import load_config, resolve_config_path
    from rdfer.engine.cv import check_cv

    check_cv(load_config(resolve_config_path(args.config), config_overrides(args)))  # before its data paths
    return checked_config(args.config, config_overrides(args))


def _demo_config(args):
    # The demo renders its own data: only the settings are checked, not data paths.
    return checked_config("demo", ("data.root=.", *config_overrides(args)), data_inputs=())


def _bench_model_config(args):
    from rdfer.models import model_config

    from rdfer.engine.settings import check_batch_bytes

    try:
        config = model_config(args.model, **_model_options(args, warn=False))
    except TypeError as error:
        raise RdferError(f"--set model.options: model {args.model}: {error}") from None
    check_batch_bytes(args.batch_size, config.num_frames, config.input_size,
                      ("--batch-size", "model.options.num_frames", "model.options.input_size"))
    return config


def train(args) -> int:
    from rdfer.engine import fit

    config = _train_config(args)
    if args.resume:
        run = Path(args.resume)
        final = fit(config, run, resume=True, progress=not args.no_progress)
    else:
        final = fit(config, args.out, progress=not args.no_progress)
        run = Path(args.out)
    if final and final.get("last"):
        last, best = final["last"], final["best"]
        print(f"done: last epoch {last['epoch']}: WAR {last['war']:.2f} UAR {last['uar']:.2f}; "
              f"best epoch {best['epoch']} (chosen on {best.get('selected_on', 'test WAR')}): WAR {best['war']:.2f} "
              f"UAR {best['uar']:.2f}; see {run}/final.json")
    return 0


def evaluate(args) -> int:
    from rdfer.engine import evaluate_checkpoint

    with run_lock(args.out, "eval"):
        metrics = evaluate_checkpoint(args.checkpoint, args.out, split=args.split,
                                      data_overrides=_data_overrides(args), batch_size=args.batch_size,
                                      num_workers=args.workers, device=args.device or "auto",
                                      progress=not args.no_progress)
    skipped = f" ({len(metrics['skipped'])} left out: see metrics.json)" if metrics["skipped"] else ""
    print(f"{metrics['clips']} clips{skipped}: WAR {metrics['war']:.2f} UAR {metrics['uar']:.2f}; "
          f"predictions in {Path(args.out) / 'predictions.csv'}")
    return 0


def cv(args) -> int:
    from rdfer.engine import run_cv

    run_cv(_cv_config(args), args.out, args.folds, progress=not args.no_progress)
    return 0


def _data_overrides(args) -> dict:
    skip_bad = True if getattr(args, "skip_bad", False) else None
    return {k: v for k, v in (("dataset", args.dataset), ("root", args.root), ("fold", args.fold),
                              ("csv", args.csv), ("skip_bad", skip_bad)) if v is not None}


def bench_train(args) -> int:
    from rdfer.engine.bench import bench_train as run

    run(args.model, _model_options(args), batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
        dataset=args.dataset, root=args.root, fold=args.fold, num_workers=args.workers, device=args.device or "auto",
        amp=args.amp, compile=args.compile)
    return 0


def demo(args) -> int:
    from rdfer.demo import run_demo

    run_demo(args.out, overrides=config_overrides(args), clips=args.clips, progress=not args.no_progress)
    return 0
