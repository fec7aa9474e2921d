"""Subcommands: features (build a frozen-feature cache), study (the robustness study)."""

from rdfer.cli.train import resolve_config_path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "features", help="cache a frozen encoder's features of every frame (fast CPU training)",
        description="Encode every frame of the config's train and test clips once with its model's frozen "
                    "encoder (model.options.frozen_encoder=true), so that training with "
                    "--set data.features=FILE reads features instead of decoding frames. Training then "
                    "uses no pixel augmentation (see docs/method.md).")
    p.add_argument("--config", required=True, help="YAML config: a file or a shipped name (e.g. study)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set data.root=/data/synth")
    p.add_argument("--out", required=True, help="cache file to write (e.g. features.npz)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=features)


def features(args) -> int:
    from rdfer.config import load_config
    from rdfer.engine.features import build_feature_cache

    config = load_config(resolve_config_path(args.config), tuple(args.overrides))
    done = build_feature_cache(config, args.out, progress=not args.no_progress)
    print(f"{done['clips']} clips, {done['frames']} frames encoded in {done['seconds']:.0f}s: {done['path']}; "
          f"train with --set data.features={done['path']}")
    return 0
