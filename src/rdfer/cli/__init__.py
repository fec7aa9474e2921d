"""`rdfer` command line: a thin argparse layer over library calls.

Each area of the package registers its own subcommands from a module in this
folder (`data`, `models`, `train`, `analysis`, `predict`); every subcommand is one small
function that parses nothing itself and calls the library.
"""

import argparse
import importlib
import os
import sys

from rdfer.cli.options import note
from rdfer.cli.preflight import preflight
from rdfer.errors import RdferError
from rdfer.utils.crash import os_error_line, unexpected_line
from rdfer.utils.ranges import bounded

SUBCOMMAND_MODULES = ("data", "models", "train", "analysis", "predict", "export", "audit", "study", "app")


class _Parser(argparse.ArgumentParser):
    """argparse with rdfer's error style: one line `rdfer CMD: error: ...` and exit status 2.

    Numeric options state their range with `type=bounded(int, low, high)` (rdfer.utils.ranges);
    a plain `type=int` / `type=float` still refuses nan and inf.
    """

    def add_argument(self, *args, **kwargs):
        if kwargs.get("type") in (int, float):
            kwargs["type"] = bounded(kwargs["type"])
        return super().add_argument(*args, **kwargs)

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rdfer", description="Robust dynamic facial expression recognition (RDFER)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [importlib.import_module(f"rdfer.cli.{name}") for name in SUBCOMMAND_MODULES]
    for module in modules:
        module.register(subparsers)
    bench = subparsers.add_parser("bench", help="developer benchmarks: data loading, training, predict speed",
                                  description="Developer benchmarks of rdfer's speed (docs/performance.md).")
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for module in modules:
        if hasattr(module, "register_bench"):
            module.register_bench(benchmarks, subparsers)
    return parser


def main(argv=None) -> int:
    if int(os.environ.get("RANK", "0") or 0) > 0:
        # Under torchrun only rank 0 prints results (errors still reach stderr from every rank).
        sys.stdout = open(os.devnull, "w")
    try:
        args, extra = build_parser().parse_known_args(argv)
    except SystemExit as stop:  # --help (0), or a bad option: its one line is printed already (2)
        return stop.code if isinstance(stop.code, int) else 2
    if getattr(args, "benchmark", None):  # messages name the whole command: `rdfer bench train: error: ...`
        args.command = f"bench {args.benchmark}"
    if extra:  # reported by the top-level parser otherwise, without naming the command
        print(f"rdfer {args.command}: error: unrecognized arguments: {' '.join(extra)} "
              f"(see rdfer {args.command} --help)", file=sys.stderr)
        return 2
    # The error boundary of every command (rdfer.utils.crash): one line and exit 2, whatever went wrong;
    # an unexpected exception's traceback goes to a log file (RDFER_DEBUG=1: to the console).
    if getattr(args.func, "deprecation", None):
        note(*args.func.deprecation)
    try:
        preflight(args)  # every setting checked before any work or output starts (rdfer.cli.preflight)
        return int(args.func(args) or 0)
    except RdferError as error:
        print(f"rdfer {args.command}: error: {' '.join(str(error).splitlines())}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a folder that cannot be read, a link loop...: not a traceback
        print(f"rdfer {args.command}: error: {os_error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rdfer {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the boundary: anything else is one line too
        print(f"rdfer {args.command}: error: {unexpected_line(error, args.command, _inputs(args))}", file=sys.stderr)
        return 2


INPUT_OPTIONS = ("inputs", "resume", "config", "checkpoint", "apply", "root", "csv", "run", "runs", "video", "out")


def _inputs(args) -> list:
    """What the command was given (files and folders), for the one line of an unexpected error."""
    found = []
    for name in INPUT_OPTIONS:
        value = getattr(args, name, None)
        found += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)] if value else []
    return found


if __name__ == "__main__":
    sys.exit(main())
