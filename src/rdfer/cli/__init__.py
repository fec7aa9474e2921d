"""`rdfer` command line: a thin argparse layer over library calls.

Each area of the package registers its own subcommands from a module in this
folder (`data`, `models`, `train`, `analysis`, `predict`); every subcommand is one small
function that parses nothing itself and calls the library.
"""

import argparse
import importlib
import os
import sys

from rdfer.errors import RdferError

SUBCOMMAND_MODULES = ("data", "models", "train", "analysis", "predict", "audit", "study", "app")


def at_least(**values) -> None:
    """One-line errors for numeric options below their minimum: `at_least(workers=(args.workers, 0))`."""
    for name, (value, minimum) in values.items():
        if value is not None and value < minimum:
            raise RdferError(f"--{name.replace('_', '-')} {value}: give at least {minimum}")


class _Parser(argparse.ArgumentParser):
    """argparse with rdfer's error style: one line `rdfer CMD: error: ...` and exit status 2."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rdfer", description="Robust dynamic facial expression recognition (RDFER)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"rdfer.cli.{name}").register(subparsers)
    return parser


def main(argv=None) -> int:
    if int(os.environ.get("RANK", "0") or 0) > 0:
        # Under torchrun only rank 0 prints results (errors still reach stderr from every rank).
        sys.stdout = open(os.devnull, "w")
    args, extra = build_parser().parse_known_args(argv)
    if extra:  # reported by the top-level parser otherwise, without naming the command
        print(f"rdfer {args.command}: error: unrecognized arguments: {' '.join(extra)} "
              f"(see rdfer {args.command} --help)", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except RdferError as error:
        print(f"rdfer {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a folder without write permission...: not a traceback
        print(f"rdfer {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rdfer {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
