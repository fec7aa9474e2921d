"""Subcommands: audit (likely mislabelled and hard clips from out-of-fold predictions, with cleanlab), and
curate, its deprecated predecessor (the paper's partition of predictions already made)."""

from pathlib import Path

from rdfer.cli.options import DEVICE, OVERRIDES, PROGRESS, THREADS, add_data_options, add_out, config_overrides
from rdfer.cli.preflight import checked_config, expect_inputs
from rdfer.errors import RdferError
from rdfer.utils.outputs import write_text
from rdfer.utils.ranges import bounded
from rdfer.utils.runlock import run_lock


def register(subparsers) -> None:
    from rdfer.audit.verdict import RANK_BY

    p = subparsers.add_parser(
        "audit", parents=[OVERRIDES, DEVICE, THREADS, PROGRESS], help="k-fold held-out predictions for every labelled clip, then likely mislabelled and hard clips",
        description="Train K folds of CONFIG on the given labels (DFEW/MAFW: their official folds), give every "
                    "labelled clip a held-out prediction after every epoch, and write OUT/label_issues.csv (rdfer's "
                    "and cleanlab's verdicts) and OUT/report.md. Rerunning with the same OUT reuses finished folds. "
                    "With --apply DECISIONS: write corrected split lists from a curator's decisions. See docs/audit.md.")
    p.add_argument("--config", help="training config: a file or a shipped config's name (with --apply: the "
                                     "dataset's config; default: the audit's, from audit.json beside DECISIONS)")
    p.add_argument("--out", required=True, help="audit folder: new, empty, or an earlier audit's to finish or re-rank; "
                                                "with --apply: a new folder for the corrected split lists (required)")
    p.add_argument("--apply", metavar="DECISIONS", help="apply a curator's decisions CSV (columns id, decision "
                   "keep|relabel|drop, new_label): write corrected split lists in the dataset's own layout to "
                   "OUT/corrected beside a copy of the originals in OUT/original (docs/audit.md)")
    p.add_argument("--folds", type=bounded(int, 2, 50),
                   help="number of folds (default: DFEW/MAFW's official 5 folds, else 5 "
                                             "seeded class-stratified folds; a number replaces official folds)")
    p.add_argument("--rank-by", choices=RANK_BY, default="rdfer", help="order of label_issues.csv (default rdfer)")
    p.add_argument("--min-agreement", type=bounded(float, 0, 1, low_open=True), default=0.75,
                   help="agreement from which the pooled clip predictions count as agreeing; a clip not called "
                        "mislabelled below it is hard (default 0.75: 3 of 4)")
    p.add_argument("--ground-truth", help="ground_truth.csv (synthetic benchmark) to score the lists: writes "
                                          "OUT/scores.md (default: data.ground_truth, or ROOT/ground_truth.csv)")
    p.add_argument("--top", type=bounded(int, 1, 1000), default=12,
                   help="clips per contact sheet in the report (default 12)")
    p.set_defaults(func=audit, validate=_audit_settings, out_kind="folder")
    expect_inputs(p, apply="file", ground_truth="file")

    p = subparsers.add_parser("curate", parents=[DEVICE],
                              help="deprecated: use `rdfer audit` (ranks clips of predictions.csv files by the paper's "
                                   "partition)",
                              description="Rank clips by the agreement of their 4 clip predictions and their loss "
                                          "against the given label. Best from held-out predictions: "
                                          "rdfer curate --predictions CV/fold_*/predictions.csv --out DIR")
    p.add_argument("--predictions", nargs="+", metavar="CSV",
                   help="predictions.csv files (from rdfer eval, train or cv)")
    p.add_argument("--checkpoint", help="or: predict the clips now with this checkpoint")
    add_data_options(p, split="train")
    add_out(p, "folder for the ranked lists", required=True)
    p.add_argument("--t-h", type=bounded(float, 0, 1), default=0.2, help="share called hard (default 0.2)")
    p.add_argument("--t-n", type=bounded(float, 0, 1), default=0.1,
                   help="share called likely mislabelled (default 0.1)")
    p.add_argument("--ground-truth", help="ground_truth.csv of the synthetic benchmark, to score the list")
    p.add_argument("--workers", type=bounded(int, 0, 256), default=2, help="data loading processes (default 2)")
    p.add_argument("--skip-bad", action="store_true", help="with --checkpoint: leave out unusable clips")
    p.set_defaults(func=curate, validate=_curate_settings, run_kind="curate")
    expect_inputs(p, predictions="file", checkpoint="file", root="path", csv="file", ground_truth="file")


def apply(args) -> int:
    """`rdfer audit --apply DECISIONS --out DIR`: corrected split lists from a curator's decisions."""
    from rdfer.audit.relabel import applied_markdown, apply_decisions
    from rdfer.utils.bounded_tables import read_json

    if args.config:
        data = _audit_settings(args)[0].data
        dataset, root = data.dataset, data.root
    else:
        marker = Path(args.apply).parent / "audit.json"
        if not marker.is_file():
            raise RdferError(f"--apply {args.apply}: no audit.json beside it to say which dataset it decides; give "
                             "--config CFG --set data.root=ROOT")
        try:
            data = read_json(marker, "audit.json")["settings"]["config"]["data"]
            dataset, root = str(data["dataset"]), data["root"]
        except (OSError, RdferError, KeyError, TypeError, IndexError) as error:
            raise RdferError(f"{marker} is damaged or not an audit.json of rdfer audit ({type(error).__name__}: "
                             f"{str(error)[:80]}); give --config CFG --set data.root=ROOT instead") from None
        for override in args.overrides:
            key, _, value = override.partition("=")
            if key == "data.root":
                root = value
    if not root:
        raise RdferError("data.root is not set: give --set data.root=PATH (the dataset whose lists to correct)")
    with run_lock(args.out, "audit --apply"):
        applied = apply_decisions(dataset, root, args.apply, args.out)
        text = applied_markdown(applied, dataset, root, args.apply)
        write_text(applied.out / "report.md", "# Curator decisions applied\n\n" + text)
    print(text, end="")
    return 0


def _audit_settings(args):
    """audit's (or audit --apply's) settings checked: (config, ground truth file or None); the validate-first
    pass calls this too."""
    from rdfer.audit.verdict import TRUTH_COLUMNS
    from rdfer.utils.ground_truth import read_ground_truth

    args.run_kind = None if args.apply else "audit"  # --apply writes corrected lists, not an audit folder
    if args.apply:
        return (checked_config(args.config, config_overrides(args), data_inputs=("root",)) if args.config
                else None), None
    if not args.config:
        raise RdferError("--config is required (the training config of the audit's folds)")
    config = checked_config(args.config, config_overrides(args))
    ground_truth = args.ground_truth or config.data.ground_truth
    if ground_truth is None and config.data.root and (Path(config.data.root) / "ground_truth.csv").is_file():
        ground_truth = str(Path(config.data.root) / "ground_truth.csv")
    if ground_truth is not None:
        read_ground_truth(ground_truth, TRUTH_COLUMNS)  # a bad file stops the audit before the training, not after
    return config, ground_truth


def _curate_settings(args):
    if bool(args.predictions) == bool(args.checkpoint):
        raise RdferError("give either --predictions FILE... or --checkpoint CKPT")


def audit(args) -> int:
    from rdfer.audit.folds import run_audit_folds
    from rdfer.audit.report import audit_report, describe

    if args.apply:
        return apply(args)
    config, ground_truth = _audit_settings(args)
    if ground_truth is not None and not (args.ground_truth or config.data.ground_truth):
        print(f"scoring against {ground_truth}", flush=True)
    with run_lock(args.out, "audit"):  # the folds and the report: one audit at a time
        run_audit_folds(config, args.out, folds=args.folds, progress=not args.no_progress)
        summary = audit_report(args.out, rank_by=args.rank_by, min_agreement=args.min_agreement,
                               ground_truth=ground_truth, top=args.top)
    print(describe(summary, args.out))
    return 0


CURATE_DEPRECATED = ("rdfer curate is deprecated and will be removed: `rdfer audit --config CFG --out DIR` judges "
                     "held-out predictions with rdfer's verdict and cleanlab's (docs/audit.md)")


def curate(args) -> int:
    """`rdfer curate` (deprecated): the paper's partition of given predictions; `rdfer audit` does the whole job."""
    import sys

    from rdfer.audit.curate import describe

    print(CURATE_DEPRECATED, file=sys.stderr)
    with run_lock(args.out, "curate"):
        summary = _curate(args)
    print(describe(summary, args.out))
    return 0


def _curate(args) -> dict:
    from rdfer.audit.curate import curate as run
    from rdfer.cli.train import _data_overrides

    files = args.predictions
    if args.checkpoint:
        from rdfer.engine import evaluate_checkpoint

        print("note: a model judging the clips it was trained on has memorised their labels, wrong ones too; "
              "held-out predictions (rdfer cv, then --predictions) find more label errors", flush=True)
        evaluate_checkpoint(args.checkpoint, Path(args.out) / "predictions", split=args.split,
                            data_overrides=_data_overrides(args), num_workers=args.workers,
                            device=args.device or "auto")
        files = [Path(args.out) / "predictions" / "predictions.csv"]
    return run(files, args.out, t_h=args.t_h, t_n=args.t_n, ground_truth=args.ground_truth)
