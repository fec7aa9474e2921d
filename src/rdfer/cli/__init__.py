"""`rdfer` command line: a thin argparse layer over library calls.

Each area of the package registers its own subcommands from a module in this
folder (`data`, `models`, `train`, `analysis`, `predict`); every subcommand is one small
function that parses nothing itself and calls the library.
"""

import argparse
import importlib
import sys

from rdfer.errors import RdferError

SUBCOMMAND_MODULES = ("data", "models", "train", "analysis", "predict", "audit", "study")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdfer", description="Robust dynamic facial expression recognition (RDFER)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"rdfer.cli.{name}").register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RdferError as error:
        print(f"rdfer {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rdfer {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
