"""`rdfer report` and `rdfer compare`: tables, figures and comparisons from saved run folders."""

from pathlib import Path

from rdfer.errors import RdferError
from rdfer.utils.ranges import bounded


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write report.md with metrics, Tables V/VII and Figs. 3-5 for a run folder",
        description="Read a run folder (predictions.csv, features.npy, final.json, metrics.jsonl, config.yaml) "
                    "and write report.md with the paper's agreement tables and figures beside it.")
    p.add_argument("run", help="run folder of `rdfer train --out RUN` (or an `rdfer eval` output folder)")
    p.add_argument("--out", help="folder for report.md and report_files/ (default: RUN itself)")
    p.add_argument("--seed", type=bounded(int, 0, 2**32 - 1), default=0,
                   help="seed of the t-SNE and of the sample clips shown")
    p.add_argument("--tsne-points", type=bounded(int, 1), default=2000, help="at most this many clips in the t-SNE")
    p.set_defaults(func=_report)

    p = subparsers.add_parser(
        "compare", help="side-by-side Markdown table of several runs (WAR, UAR, noisy-set precision/recall)",
        description="Compare finished runs, e.g. `rdfer compare ce=runs/ce agreement=runs/agr --out cmp.md`.")
    p.add_argument("runs", nargs="+", metavar="NAME=RUN", help="a name for the column and a run folder")
    p.add_argument("--out", required=True, help="Markdown file to write")
    p.set_defaults(func=_compare)


def _report(args) -> int:
    from rdfer.analysis import write_report

    path = write_report(args.run, args.out, seed=args.seed, tsne_points=args.tsne_points)
    print(f"wrote {path}")
    return 0


def _compare(args) -> int:
    from rdfer.analysis import compare_runs

    runs = {}
    for item in args.runs:
        name, sep, run = item.partition("=")
        if not sep or not name or not run:
            raise RdferError(f"expected NAME=RUN (e.g. ce=runs/ce), got {item!r}")
        if name in runs:
            raise RdferError(f"run name {name!r} given twice")
        runs[name] = Path(run)
    path = compare_runs(runs, args.out)
    print(path.read_text(), end="")
    print(f"wrote {path}")
    return 0
