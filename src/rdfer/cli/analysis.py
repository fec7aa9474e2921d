"""`rdfer report` and `rdfer compare`: tables, figures and comparisons from saved run folders."""

from pathlib import Path

from rdfer.cli.preflight import expect_inputs
from rdfer.errors import RdferError
from rdfer.utils.ranges import bounded
from rdfer.utils.runlock import run_lock


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write report.md with metrics, Tables V/VII and Figs. 3-5 for a run folder",
        description="Read a run folder (predictions.csv, features.npy, final.json, metrics.jsonl, config.yaml) "
                    "and write report.md with the paper's agreement tables and figures beside it.")
    p.add_argument("run", help="run folder of `rdfer train --out RUN` (or an `rdfer eval` output folder)")
    p.add_argument("--out", help="folder for report.md and report_files/ (default: RUN itself)")
    p.add_argument("--seed", type=bounded(int, 0, 2**32 - 1), default=0,
                   help="seed of the t-SNE and of the sample clips shown")
    p.add_argument("--tsne-points", type=bounded(int, 1, 50_000), default=2000, help="at most this many clips in the t-SNE")
    p.set_defaults(func=_report, out_kind="folder")
    expect_inputs(p, run="folder")

    p = subparsers.add_parser(
        "compare", help="B minus A with intervals and McNemar (RUN_A RUN_B), or a table of runs (NAME=RUN ...)",
        description="Two run folders (`rdfer compare RUN_A RUN_B --out DIR`): pair their test predictions by "
                    "clip id and write DIR/compare.json with war_diff, uar_diff (B minus A, points), their "
                    "paired-bootstrap intervals and the exact McNemar p (docs/statistics.md). "
                    "Named runs (`rdfer compare ce=runs/ce agreement=runs/agr --out cmp.md`): a side-by-side "
                    "Markdown table.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="RUN_A RUN_B, or several NAME=RUN")
    p.add_argument("--out", required=True, help="(required) folder for compare.json (RUN_A RUN_B), or the Markdown file "
                                                "to write (NAME=RUN ...)")
    p.add_argument("--resamples", type=bounded(int, 100, 100_000), default=2000, help="bootstrap resamples (RUN_A RUN_B)")
    p.add_argument("--seed", type=bounded(int, 0, 2**32 - 1), default=0, help="bootstrap seed (RUN_A RUN_B)")
    p.set_defaults(func=_compare)
    expect_inputs(p, runs="runs")


def _report(args) -> int:
    from rdfer.analysis import write_report

    with run_lock(args.out or args.run, "report"):  # not into a run still training, nor two reports at once
        path = write_report(args.run, args.out, seed=args.seed, tsne_points=args.tsne_points)
    print(f"wrote {path}")
    return 0


def _compare(args) -> int:
    if len(args.runs) == 2 and not any(_is_named(item) for item in args.runs):
        from rdfer.analysis.compare import format_comparison, write_comparison

        with run_lock(args.out, "compare"):
            path, result = write_comparison(args.runs[0], args.runs[1], args.out, resamples=args.resamples,
                                            seed=args.seed)
        print(format_comparison(result))
        print(f"wrote {path}")
        return 0
    from rdfer.analysis import compare_runs

    runs = {}
    for item in args.runs:
        name, sep, run = item.partition("=")
        if not sep or not name or not run:
            raise RdferError(f"expected RUN_A RUN_B, or NAME=RUN for each run (e.g. ce=runs/ce), got {item!r}")
        if name in runs:
            raise RdferError(f"run name {name!r} given twice")
        runs[name] = Path(run)
    with run_lock(args.out, "compare"):
        path = compare_runs(runs, args.out)
    print(path.read_text(), end="")
    print(f"wrote {path}")
    return 0


def _is_named(item: str) -> bool:
    """NAME=RUN (a folder whose own name holds '=' counts as a plain RUN)."""
    return "=" in item and not Path(item).is_dir()
