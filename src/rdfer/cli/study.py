"""Subcommands: features (build a frozen-feature cache), study (the robustness study)."""

from rdfer.cli.options import DEVICE, OVERRIDES, PROGRESS, THREADS, CommaList, add_out, config_overrides
from rdfer.cli.preflight import checked_config
from rdfer.utils.ranges import bounded


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "features", parents=[OVERRIDES, DEVICE, THREADS, PROGRESS], help="cache a frozen encoder's features of every frame (fast CPU training)",
        description="Encode every frame of the config's train and test clips once with its model's frozen "
                    "encoder (model.options.frozen_encoder=true), so that training with "
                    "--set data.features=FILE reads features instead of decoding frames. Training then "
                    "uses no pixel augmentation (see docs/method.md).")
    p.add_argument("--config", required=True, help="YAML config: a file or a shipped name (e.g. study)")
    add_out(p, "cache file to write (e.g. features.npz)", required=True, metavar="FILE")
    p.set_defaults(func=features, validate=_features_config)

    p = subparsers.add_parser(
        "study", parents=[OVERRIDES, DEVICE, THREADS, PROGRESS], help="loss strategies x 3 noise settings x 3 seeds on the DFEW-hard synthetic benchmark",
        description="Render DFEW-hard synthetic benchmarks with 20% and 40% symmetric and 30% pair label noise, "
                    "cache their frozen features, train the loss strategies (the six of Table IV, GCE, SCE, ELR "
                    "and their combinations with the agreement partition; --quick: nine of them) with 3 seeds "
                    "each (configs/study.yaml) and write study.md, study.csv and study.png. Rerunning reuses "
                    "finished work.")
    add_out(p, "study folder", required=True)
    p.add_argument("--jobs", type=bounded(int, 1, 256),
                   help="runs trained at once (default: 2, or 1 on a 1-core machine)")
    p.add_argument("--seeds", action=CommaList, item_type=bounded(int, 0, 2**32 - 1), default=(0, 1, 2),
                   metavar="S,S,...", help="training seeds, comma-separated (default 0,1,2)")
    p.add_argument("--strategies", action=CommaList, metavar="NAME,...",
                   help="comma-separated subset of the loss strategies (default: all twelve)")
    p.add_argument("--quick", action="store_true",
                   help="nine strategies: ce, bigloss_weaken, agreement, gce, sce, elr and their agreement "
                        "combinations (leaves out the Table IV ablations)")
    p.add_argument("--settings", action=CommaList, metavar="NAME,...", help="comma-separated subset of the noise settings symmetric_20, symmetric_40, "
                                      "pair_30 (default: all three)")
    p.add_argument("--clips", type=bounded(int, 50, 200_000), default=1000,
                   help="clips per benchmark (default 1000)")
    p.set_defaults(func=study, validate=_study_plan, run_kind="study")


def _features_config(args):
    # data.features names a cache this command writes (--out), not an input.
    return checked_config(args.config, config_overrides(args), data_inputs=("root", "csv", "ground_truth"))


def features(args) -> int:
    from rdfer.config import resolve_config_path
    from rdfer.engine.features import build_feature_cache

    config_file = resolve_config_path(args.config)
    config = _features_config(args)
    done = build_feature_cache(config, args.out, inputs=(config_file,), progress=not args.no_progress)
    print(f"{done['clips']} clips, {done['frames']} frames encoded in {done['seconds']:.0f}s: {done['path']}; "
          f"train with --set data.features={done['path']}")
    return 0


def _study_plan(args) -> dict:
    """study's grid, checked with every run's config (rdfer.engine.study.check_study); nothing written."""
    from rdfer.engine.study import QUICK_STRATEGIES, SETTINGS, check_study
    from rdfer.errors import RdferError
    from rdfer.losses import STRATEGIES

    seeds = args.seeds
    strategies = tuple(args.strategies) if args.strategies else (
        QUICK_STRATEGIES if args.quick else STRATEGIES)
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise RdferError(f"--strategies: unknown {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}")
    names = {setting.name: setting for setting in SETTINGS}
    chosen = list(args.settings) if args.settings else list(names)
    if set(chosen) - set(names):
        raise RdferError(f"--settings: unknown {', '.join(sorted(set(chosen) - set(names)))}; choose from "
                         f"{', '.join(names)}")
    plan = dict(seeds=seeds, strategies=strategies, settings=tuple(names[name] for name in chosen),
                overrides=config_overrides(args), clips=args.clips)
    check_study(args.out, **plan)
    return plan


def study(args) -> int:
    from rdfer.engine.study import default_jobs, run_study

    run_study(args.out, jobs=args.jobs or default_jobs(), progress=not args.no_progress, **_study_plan(args))
    return 0
