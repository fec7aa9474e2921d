"""Subcommand: audit (likely mislabelled and hard clips from out-of-fold predictions, with cleanlab)."""

from pathlib import Path

from rdfer.errors import RdferError
from rdfer.utils.ranges import bounded
from rdfer.utils.runlock import run_lock


def register(subparsers) -> None:
    from rdfer.analysis.audit import RANK_BY

    p = subparsers.add_parser(
        "audit", help="k-fold held-out predictions for every labelled clip, then likely mislabelled and hard clips",
        description="Train K folds of CONFIG on the given labels (DFEW/MAFW: their official folds), give every "
                    "labelled clip a held-out prediction after every epoch, and write OUT/label_issues.csv (rdfer's "
                    "and cleanlab's verdicts) and OUT/report.md. Rerunning with the same OUT reuses finished folds. "
                    "With --apply DECISIONS: write corrected split lists from a curator's decisions. See docs/audit.md.")
    p.add_argument("--config", help="training config: a file or a shipped config's name (with --apply: the "
                                     "dataset's config; default: the audit's, from audit.json beside DECISIONS)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set data.root=/data/DFEW")
    p.add_argument("--out", required=True, help="audit folder: new, empty, or an earlier audit's to finish or re-rank; "
                                                "with --apply: a new folder for the corrected split lists")
    p.add_argument("--apply", metavar="DECISIONS", help="apply a curator's decisions CSV (columns id, decision "
                   "keep|relabel|drop, new_label): write corrected split lists in the dataset's own layout to "
                   "OUT/corrected beside a copy of the originals in OUT/original (docs/audit.md)")
    p.add_argument("--folds", type=bounded(int, 2, 1000),
                   help="number of folds (default: DFEW/MAFW's official 5 folds, else 5 "
                                             "seeded class-stratified folds; a number replaces official folds)")
    p.add_argument("--rank-by", choices=RANK_BY, default="rdfer", help="order of label_issues.csv (default rdfer)")
    p.add_argument("--min-agreement", type=bounded(float, 0, 1, low_open=True), default=0.75,
                   help="agreement from which the pooled clip predictions count as agreeing; a clip not called "
                        "mislabelled below it is hard (default 0.75: 3 of 4)")
    p.add_argument("--ground-truth", help="ground_truth.csv (synthetic benchmark) to score the lists: writes "
                                          "OUT/scores.md (default: data.ground_truth, or ROOT/ground_truth.csv)")
    p.add_argument("--top", type=bounded(int, 1, 10_000), default=12,
                   help="clips per contact sheet in the report (default 12)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=audit)


def apply(args) -> int:
    """`rdfer audit --apply DECISIONS --out DIR`: corrected split lists from a curator's decisions."""
    import json

    from rdfer.config import load_config, resolve_config_path
    from rdfer.data.relabel import applied_markdown, apply_decisions

    if args.config:
        data = load_config(resolve_config_path(args.config), tuple(args.overrides)).data
        dataset, root = data.dataset, data.root
    else:
        marker = Path(args.apply).parent / "audit.json"
        if not marker.is_file():
            raise RdferError(f"--apply {args.apply}: no audit.json beside it to say which dataset it decides; give "
                             "--config CFG --set data.root=ROOT")
        data = json.loads(marker.read_text())["settings"]["config"]["data"]
        dataset, root = data["dataset"], data["root"]
        for override in args.overrides:
            key, _, value = override.partition("=")
            if key == "data.root":
                root = value
    if not root:
        raise RdferError("data.root is not set: give --set data.root=PATH (the dataset whose lists to correct)")
    applied = apply_decisions(dataset, root, args.apply, args.out)
    text = applied_markdown(applied, dataset, root, args.apply)
    (applied.out / "report.md").write_text("# Curator decisions applied\n\n" + text)
    print(text, end="")
    return 0


def audit(args) -> int:
    from rdfer.analysis.audit import TRUTH_COLUMNS, audit_report, describe
    from rdfer.config import load_config, resolve_config_path
    from rdfer.engine.audit import run_audit_folds
    from rdfer.utils.ground_truth import read_ground_truth

    if args.apply:
        return apply(args)
    if not args.config:
        raise RdferError("--config is required (the training config of the audit's folds)")
    config = load_config(resolve_config_path(args.config), tuple(args.overrides))
    ground_truth = args.ground_truth or config.data.ground_truth
    if ground_truth is None and config.data.root and (Path(config.data.root) / "ground_truth.csv").is_file():
        ground_truth = str(Path(config.data.root) / "ground_truth.csv")
        print(f"scoring against {ground_truth}", flush=True)
    if ground_truth is not None:
        read_ground_truth(ground_truth, TRUTH_COLUMNS)  # a bad file stops the audit before the training, not after
    with run_lock(args.out, "audit"):  # the folds and the report: one audit at a time
        run_audit_folds(config, args.out, folds=args.folds, progress=not args.no_progress)
        summary = audit_report(args.out, rank_by=args.rank_by, min_agreement=args.min_agreement,
                               ground_truth=ground_truth, top=args.top)
    print(describe(summary, args.out))
    return 0
