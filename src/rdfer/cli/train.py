"""Subcommands: train, eval, cv, bench-train, demo."""

from pathlib import Path

from rdfer.data.layouts import DATASETS
from rdfer.errors import RdferError
from rdfer.utils.ranges import bounded
from rdfer.utils.runlock import run_lock


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model (the paper's recipe by default)",
                              description="Train into a run folder. Launch under `torchrun --nproc_per_node=N` "
                                          "for several GPUs (or CPU processes with gloo).")
    p.add_argument("--config", help="YAML config: a file, or the name of a shipped one (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set optim.epochs=20 --set data.root=/data/DFEW")
    p.add_argument("--out", help="run folder to create")
    p.add_argument("--resume", metavar="RUN",
                   help="continue the run in RUN from its last checkpoint (with --set only for where the data is "
                        "and how it is loaded: data.root, data.num_workers, data.skip_bad, device, threads, ...)")
    p.add_argument("--skip-bad", action="store_true", help="leave out unusable clips with a warning naming each "
                                                           "(same as --set data.skip_bad=true)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=train)

    p = subparsers.add_parser("eval", help="evaluate a checkpoint; write per-clip predictions and metrics")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="folder for predictions.csv, features.npy, metrics.json")
    p.add_argument("--dataset", choices=DATASETS, help="default: the training data")
    p.add_argument("--root", help="dataset root (default: the training data's)")
    p.add_argument("--fold", type=bounded(int, 1, 5))
    p.add_argument("--csv", help="manifest file for --dataset csv")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=bounded(int, 1, 1_000_000), default=32)
    p.add_argument("--workers", type=bounded(int, 0, 256), default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--skip-bad", action="store_true", help="leave out unusable clips with a warning naming each")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=evaluate)

    p = subparsers.add_parser("cv", help="5-fold cross-validation (DFEW, MAFW): each fold and mean +- std")
    p.add_argument("--config", required=True)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", required=True)
    p.add_argument("--folds", default="1,2,3,4,5", help="comma-separated fold numbers")
    p.add_argument("--skip-bad", action="store_true", help="same as --set data.skip_bad=true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cv)

    p = subparsers.add_parser("bench-train", help="training clips/s: synthetic tensors vs the real loader")
    p.add_argument("--model", default="rdfer_tiny")
    p.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --option resample=false")
    p.add_argument("--batch-size", type=bounded(int, 1, 1_000_000), default=16)
    p.add_argument("--steps", type=bounded(int, 1), default=10)
    p.add_argument("--warmup", type=bounded(int, 0), default=3)
    p.add_argument("--dataset", default="dfew", choices=DATASETS)
    p.add_argument("--root", help="dataset root (default: render a small synthetic one)")
    p.add_argument("--fold", type=bounded(int, 1, 5), default=1)
    p.add_argument("--workers", type=bounded(int, 0, 256), default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="bf16", choices=("bf16", "fp16", "off"))
    p.add_argument("--compile", action="store_true")
    p.set_defaults(func=bench_train)

    p = subparsers.add_parser("demo", help="the whole method on the built-in synthetic benchmark (CPU, minutes)")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the demo's training config (both runs)")
    p.add_argument("--clips", type=bounded(int, 1, 10_000_000), help="synthetic clips (default: the demo's size)")
    p.set_defaults(func=demo)


def _parse_options(items) -> dict:
    """`--option KEY=VALUE` items -> {key: value}, values parsed as `--set` values are."""
    from rdfer.config import parse_key_value

    return dict(parse_key_value(item, "--option", "resample=false") for item in items)


def _overrides(args) -> tuple:
    return tuple(args.overrides) + (("data.skip_bad=true",) if getattr(args, "skip_bad", False) else ())


def train(args) -> int:
    from rdfer.config import load_config, read_config_file, resolve_config_path, resume_config
    from rdfer.engine import fit

    if args.resume:
        run = Path(args.resume)
        if args.out and Path(args.out).resolve() != run.resolve():
            raise RdferError(f"--resume {run} continues that run in its own folder; --out {args.out} cannot be "
                             "used with it (drop --out, or start a new run with --out and no --resume)")
        if args.config:
            raise RdferError(f"--resume {run} continues with the run's own config.yaml; --config cannot be used "
                             "with it (start a new run with --out to train another config)")
        if not run.is_dir():
            raise RdferError(f"--resume {run}: no such folder")
        if not (run / "config.yaml").is_file():
            raise RdferError(f"{run} has no config.yaml: it is not an rdfer run folder")
        saved = read_config_file(run / "config.yaml")
        config = resume_config(saved, _overrides(args), f"{run / 'config.yaml'}")
        final = fit(config, run, resume=True, progress=not args.no_progress)
    else:
        if not args.out:
            raise RdferError("give --out RUN (the folder to train into), or --resume RUN")
        config = load_config(resolve_config_path(args.config), _overrides(args))
        final = fit(config, args.out, progress=not args.no_progress)
        run = Path(args.out)
    if final and final.get("last"):
        last, best = final["last"], final["best"]
        print(f"done: last epoch {last['epoch']}: WAR {last['war']:.2f} UAR {last['uar']:.2f}; "
              f"best epoch {best['epoch']}: WAR {best['war']:.2f} UAR {best['uar']:.2f}; see {run}/final.json")
    return 0


def evaluate(args) -> int:
    from rdfer.engine import evaluate_checkpoint

    with run_lock(args.out, "eval"):
        metrics = evaluate_checkpoint(args.checkpoint, args.out, split=args.split,
                                      data_overrides=_data_overrides(args), batch_size=args.batch_size,
                                      num_workers=args.workers, device=args.device, progress=not args.no_progress)
    skipped = f" ({len(metrics['skipped'])} left out: see metrics.json)" if metrics["skipped"] else ""
    print(f"{metrics['clips']} clips{skipped}: WAR {metrics['war']:.2f} UAR {metrics['uar']:.2f}; "
          f"predictions in {Path(args.out) / 'predictions.csv'}")
    return 0


def cv(args) -> int:
    from rdfer.config import load_config, resolve_config_path
    from rdfer.engine import run_cv

    try:
        folds = tuple(int(f) for f in args.folds.split(","))
    except ValueError:
        raise RdferError(f"--folds expects comma-separated numbers like 1,2,3, got {args.folds!r}") from None
    if any(fold not in (1, 2, 3, 4, 5) for fold in folds) or len(set(folds)) != len(folds):
        raise RdferError(f"--folds {args.folds}: give distinct fold numbers 1..5")
    config = load_config(resolve_config_path(args.config), _overrides(args))
    run_cv(config, args.out, folds, progress=not args.no_progress)
    return 0


def _data_overrides(args) -> dict:
    skip_bad = True if getattr(args, "skip_bad", False) else None
    return {k: v for k, v in (("dataset", args.dataset), ("root", args.root), ("fold", args.fold),
                              ("csv", args.csv), ("skip_bad", skip_bad)) if v is not None}


def bench_train(args) -> int:
    from rdfer.engine.bench import bench_train as run

    run(args.model, _parse_options(args.options), batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
        dataset=args.dataset, root=args.root, fold=args.fold, num_workers=args.workers, device=args.device,
        amp=args.amp, compile=args.compile)
    return 0


def demo(args) -> int:
    from rdfer.config import load_config, resolve_config_path
    from rdfer.demo import run_demo

    # A bad --set must stop now, not after the benchmark is rendered.
    load_config(resolve_config_path("demo"), ("data.root=.", *args.overrides))
    run_demo(args.out, overrides=tuple(args.overrides), clips=args.clips)
    return 0
