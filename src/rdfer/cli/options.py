"""The options rdfer's commands share, each defined once (argparse parent parsers), and the CLI's conventions.

    p = subparsers.add_parser("eval", parents=[DEVICE, PROGRESS], help=..., description=...)

Conventions every command follows (docs/reference/cli.md states them for users):
- `--device` is `auto` unless given (CUDA when available, else the CPU); commands that train
  from a config read it from the config (`device:`, auto unless the config says otherwise).
- `--set KEY=VALUE` overrides a config field; repeat it for several fields.
- A list of values is one comma-separated value (`--seeds 0,1,2`); giving the option again adds
  to the list (`--seeds 0 --seeds 1,2`).
- `--out` is required where there is no sensible default; its help says which.
- `--no-progress` turns off progress bars (a terminal) and progress lines (a log).
- Every setting is checked before the command starts (`rdfer.cli.preflight`): numbers have both ends
  (`bounded`), lists at most MAX_LIST_ITEMS items, `--out` is declared a folder or a file by `add_out`.
"""

from __future__ import annotations

import argparse
import sys

from rdfer.utils.ranges import bounded


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


DEVICE = _parent()
DEVICE.add_argument("--device", metavar="DEVICE",
                    help="torch device: auto (default: CUDA when available, else CPU), cpu, cuda or cuda:N; "
                         "commands that take a config default to its `device`")

THREADS = _parent()
THREADS.add_argument("--threads", type=bounded(int, 1, 1024), metavar="N",
                     help="CPU threads for torch and OpenCV (default: 1 where the built-in per-frame model runs, "
                          "else the config's `threads`, else torch's default)")

PROGRESS = _parent()
PROGRESS.add_argument("--no-progress", action="store_true",
                      help="no progress bar (terminal) or progress lines (log); results and errors still print")

OVERRIDES = _parent()
OVERRIDES.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field; repeat for several, e.g. --set optim.epochs=20 "
                            "--set data.root=/data/DFEW (every key: docs/reference/config.md)")


def add_out(parser, help: str, *, required: bool = False, default=None, metavar: str = "OUT") -> None:
    """`--out`: required where nothing sensible can be assumed; otherwise its default is named in `help`.

    A metavar starting with FILE makes it a file, else a folder: `rdfer.cli.preflight` checks it as such.
    """
    parser.add_argument("--out", required=required, default=default, metavar=metavar,
                        help=help + (" (required)" if required else ""))
    parser.set_defaults(out_kind="file" if metavar.startswith("FILE") else "folder")


# The most items a list option takes (`--seeds`, `--strategies`, ...): far more than any real use, and a
# bound on the work a list multiplies (rdfer study also bounds the product of its lists).
MAX_LIST_ITEMS = 100


class CommaList(argparse.Action):
    """A list option: `--seeds 0,1,2`, and again adds to it (`--seeds 0 --seeds 1`); items pass through `type`.

    At most `max_items` items (MAX_LIST_ITEMS unless given).
    """

    def __init__(self, option_strings, dest, item_type=str, max_items: int = MAX_LIST_ITEMS, **kwargs):
        self.item_type = item_type
        self.max_items = max_items
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        items = [] if current is None or current is self.default else list(current)
        for text in filter(None, (part.strip() for part in values.split(","))):
            try:
                items.append(self.item_type(text))
            except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
                parser.error(f"{option_string} {values}: {text!r}: {error or 'not a valid item'} (a comma-separated "
                             f"list, e.g. {option_string} 1,2,3)")
        if len(items) > self.max_items:
            parser.error(f"{option_string}: {len(items)} items, more than the {self.max_items} it takes")
        setattr(namespace, self.dest, tuple(items))


def add_data_options(parser, split: str) -> None:
    """--dataset/--root/--fold/--csv/--split of commands that predict with a checkpoint (eval, curate)."""
    from rdfer.data.layouts import DATASETS

    parser.add_argument("--dataset", choices=DATASETS, help="dataset layout (default: the checkpoint's training data)")
    parser.add_argument("--root", help="dataset root (default: the checkpoint's training data)")
    parser.add_argument("--fold", type=bounded(int, 1, 5), help="DFEW/MAFW fold 1..5 (default: the checkpoint's)")
    parser.add_argument("--csv", help="manifest file for --dataset csv")
    parser.add_argument("--split", default=split, help=f"split to predict (default {split})")


def config_overrides(args) -> tuple:
    """`--set` items, then --device/--threads/--skip-bad as the config fields they stand for."""
    extra = []
    if getattr(args, "device", None):
        extra.append(f"device={args.device}")
    if getattr(args, "threads", None):
        extra.append(f"threads={args.threads}")
    if getattr(args, "skip_bad", False):
        extra.append("data.skip_bad=true")
    return tuple(getattr(args, "overrides", ())) + tuple(extra)


def add_bench(bench_subparsers, subparsers, name: str, *, func, **kwargs):
    """`rdfer bench NAME` (what `kwargs` describe), and the older `rdfer bench-NAME` with a deprecation line.

    Returns both parsers: the caller adds the same arguments to each.
    """
    current = bench_subparsers.add_parser(name, **kwargs)
    current.set_defaults(func=func)
    old = subparsers.add_parser(f"bench-{name}", **{k: v for k, v in kwargs.items() if k != "help"})  # unlisted
    old.set_defaults(func=deprecated(func, f"rdfer bench-{name}", f"rdfer bench {name}"), deprecated_alias=True)
    return current, old


def deprecated(func, old: str, new: str):
    """`func` behind a one-line note that `old` is an older spelling of `new` (printed by `rdfer.cli.main`
    before anything is checked: `run.deprecation`)."""
    def run(args):
        return func(args)
    run.deprecation = (old, new)
    return run


def note(old: str, new: str) -> None:
    print(f"note: `{old}` is deprecated and will be removed; use `{new}`", file=sys.stderr, flush=True)
