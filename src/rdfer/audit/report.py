"""`rdfer audit`, writing half: label_issues.csv, scores.md, report.md and audit_summary.json.

`audit_report(OUT)` judges OUT/oof_predictions.csv (and OUT/oof_epochs.npz) with
`rdfer.audit.verdict.judge`, writes the ranked list, the scores against a ground
truth when one is given, and the report with its figures (`rdfer.figures.audit`).
"""

import csv
import json
from pathlib import Path
from typing import Optional

import numpy as np

from rdfer.audit.verdict import (HARD, ISSUE_COLUMNS, METHODS, VERDICT_WORDS, OutOfFold, judge, ranking,
                                 read_evidence, read_out_of_fold, read_truth, score_lists)
from rdfer.figures.audit import fig_contact_sheet, fig_per_class, fig_relabels
from rdfer.utils.outputs import atomic_open, write_text

# ----------------------------------------------------------------------------- the ranked list


def write_label_issues(path, oof: OutOfFold, judged: dict, rank_by: str) -> int:
    """OUT/label_issues.csv: the clips any list flags or calls hard, in `rank_by` order; returns the row count."""
    listed = judged["rdfer_issue"] | judged["cleanlab_issue"] | (judged["kind"] == HARD)
    order = [i for i in ranking(judged, rank_by) if listed[i]]
    classes = oof.classes
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ISSUE_COLUMNS)
        for rank, i in enumerate(order, 1):
            writer.writerow([rank, oof.clip_id[i], classes[oof.label[i]], classes[judged["suggested"][i]],
                             VERDICT_WORDS[judged["kind"][i]], f"{judged[f'{rank_by}_score'][i]:.4f}",
                             f"{judged['pooled_agreement'][i]:.2f}", judged["kind"][i],
                             f"{judged['p_given'][i]:.4f}", f"{judged['p_suggested'][i]:.4f}",
                             int(judged["rdfer_issue"][i]), f"{judged['rdfer_score'][i]:.4f}",
                             int(judged["cleanlab_issue"][i]), f"{judged['cleanlab_score'][i]:.4f}",
                             int(judged["combined_issue"][i]), f"{judged['combined_score'][i]:.4f}",
                             int(oof.fold[i]), oof.path[i]])
    return len(order)


LIST_NAMES = {"rdfer": "rdfer (default verdict)", "cleanlab": "cleanlab find_label_issues",
              "combined": "combined (both flag)",
              "agreement": "measured: the paper's partition (clip predictions agree, not on the label)",
              "pooled": "measured: confident learning on clip- and epoch-pooled probabilities",
              "doubt": "measured: the n most doubtful labels (held-out + training passes)",
              "votes": "measured: confident learning over clip-level samples, >= half flagged",
              "agreeing": "measured: rdfer's list less clips whose pooled clip predictions disagree",
              "cleanlab_top_k": "control: cleanlab's ranking (1 - self-confidence), top k = rdfer's list length",
              "disagrees": "reference: prediction != label"}


def _with_ci(s: dict, key: str) -> str:
    if f"{key}_ci" not in s:
        return f"{s[key]:.3f}"
    low, high = s[f"{key}_ci"]
    return f"{s[key]:.3f} [{low:.3f}, {high:.3f}]"


def scores_markdown(scores: dict) -> str:
    lines = [f"{scores['clips']} clips, {scores['truly_mislabelled']} truly mislabelled, "
             f"{scores['hard_not_flipped']} truly hard with a right label. In brackets: 95% bootstrap intervals "
             "over the clips (docs/statistics.md).", "",
             "| list | flagged | correct | precision | recall | F1 | hard clips called mislabelled | "
             "per flagged clip |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in scores["lists"].items():
        lines.append(f"| {LIST_NAMES[name]} | {s['flagged']} | {s['correct']} | {_with_ci(s, 'precision')} | "
                     f"{_with_ci(s, 'recall')} | {_with_ci(s, 'f1')} | {s['hard_called_mislabelled']} | "
                     f"{s.get('hard_per_flagged', 0.0):.3f} |")
    h = scores["rdfer_hard"]
    lines += ["", f"rdfer calls {h['called']} clips hard: {h['truly_hard']} truly hard, {h['flipped']} flipped."]
    equal, mine = scores["lists"].get("cleanlab_top_k"), scores["lists"].get("rdfer")
    if equal is not None and mine is not None:  # audits scored before the control existed lack it
        lines += ["", f"At equal list length ({mine['flagged']} clips): rdfer precision {mine['precision']:.3f}, "
                      f"recall {mine['recall']:.3f}; cleanlab's top {equal['flagged']} precision "
                      f"{equal['precision']:.3f}, recall {equal['recall']:.3f}. Truly hard clips called "
                      f"mislabelled per flagged clip: rdfer {mine['hard_per_flagged']:.3f}, cleanlab's top k "
                      f"{equal['hard_per_flagged']:.3f}, cleanlab's own list "
                      f"{scores['lists']['cleanlab']['hard_per_flagged']:.3f}."]
    for other, title in (("cleanlab", "cleanlab's own list (lengths differ: precision and recall trade "
                                      "against each other)"),
                         ("cleanlab_top_k", "cleanlab's ranking cut at rdfer's length")):
        versus = scores.get(f"rdfer_vs_{other}")
        if versus:
            lines += _versus_lines(versus, title)
    return "\n".join(lines) + "\n"


def _versus_lines(versus: dict, title: str) -> list:
    """rdfer minus another list: differences with paired bootstrap intervals, and the exact McNemar test."""
    lines = ["", f"rdfer against {title}; rdfer minus it, paired bootstrap over the clips:", ""]
    for name in ("precision", "recall", "f1"):
        low, high = versus[f"{name}_diff_ci"]
        words = "no detectable difference" if low <= 0 <= high else ("rdfer above" if low > 0 else "rdfer below")
        lines.append(f"- {name}: {versus[f'{name}_diff']:+.3f} [{low:+.3f}, {high:+.3f}]: {words}")
    m = versus["mcnemar"]
    lines.append(f"- clips judged right (flagged exactly when truly mislabelled): by rdfer alone {m['only_b']}, "
                 f"by the other alone {m['only_a']}; exact McNemar p = {m['p']:.3g}")
    return lines


# ----------------------------------------------------------------------------- the whole judging step


def audit_report(out_dir, *, rank_by: str = "rdfer", min_agreement: float = 0.75, ground_truth=None,
                 top: int = 12) -> dict:
    """Judge OUT/oof_predictions.csv; write label_issues.csv, report.md and its PNGs (and scores.md).

    Args:
        ground_truth: a ground_truth.csv (video_name, is_noisy, is_hard) to score the lists against, or None.
        top: clips per contact sheet.

    Returns:
        the summary written to OUT/audit_summary.json.
    """
    out_dir = Path(out_dir)
    oof = read_out_of_fold(out_dir / "oof_predictions.csv")
    evidence = read_evidence(out_dir / "oof_epochs.npz", len(oof))
    judged = judge(oof, min_agreement, evidence)
    listed = write_label_issues(out_dir / "label_issues.csv", oof, judged, rank_by)
    summary = {"clips": len(oof), "folds": int(oof.fold.max()), "rank_by": rank_by, "min_agreement": min_agreement,
               "listed": listed, "accuracy_vs_given": float((oof.prediction == oof.label).mean()),
               "evidence": "none (last epoch only)" if evidence is None else (
                   f"{evidence.epochs} epochs" + ("" if evidence.train_p_label is not None else ", held-out only")),
               "flagged": {name: int(judged[f"{name}_issue"].sum()) for name in METHODS},
               "hard": int((judged["kind"] == HARD).sum())}
    scores: Optional[dict] = None
    if ground_truth is not None:
        noisy, hard = read_truth(ground_truth, oof.clip_id)
        scores = score_lists(judged, noisy, hard, oof.prediction, oof.label)
        scores["ground_truth"] = str(ground_truth)
        write_text(out_dir / "scores.md", f"# Label-issue lists against {ground_truth}\n\n" + scores_markdown(scores))
        summary["scores"] = scores
    summary["report"] = str(write_audit_report(out_dir, oof, judged, rank_by, scores=scores, top=top))
    write_text(out_dir / "audit_summary.json", json.dumps(summary, indent=2))
    return summary


def describe(summary: dict, out_dir) -> str:
    out_dir = Path(out_dir)
    f = summary["flagged"]
    lines = [f"{summary['clips']} clips judged from held-out predictions ({summary['folds']} folds; accuracy "
             f"against the given labels {summary['accuracy_vs_given']:.1%}): likely mislabelled by rdfer "
             f"{f['rdfer']}, by cleanlab {f['cleanlab']}, by both {f['combined']}; hard {summary['hard']}"]
    if "scores" in summary:
        lines.append(scores_markdown(summary["scores"]).rstrip())
        lines.append(f"scores: {out_dir / 'scores.md'}")
    lines.append(f"list: {out_dir / 'label_issues.csv'} (ranked by {summary['rank_by']}); "
                 f"report: {summary['report']}")
    return "\n".join(lines)


def per_class_counts(oof: OutOfFold, judged: dict) -> dict:
    k = len(oof.classes)
    counts = {"clips": np.bincount(oof.label, minlength=k)}
    for name in METHODS:
        counts[name] = np.bincount(oof.label[judged[f"{name}_issue"]], minlength=k)
    counts["hard"] = np.bincount(oof.label[judged["kind"] == HARD], minlength=k)
    return counts


def write_audit_report(out_dir, oof: OutOfFold, judged: dict, rank_by: str, *, scores: Optional[dict] = None,
                       top: int = 12) -> Path:
    """OUT/report.md with per-class counts, the relabel view and contact sheets (PNGs in OUT/report_files/)."""
    out_dir = Path(out_dir)
    files = out_dir / "report_files"
    files.mkdir(exist_ok=True)
    classes = oof.classes
    counts = per_class_counts(oof, judged)
    flagged = judged[f"{rank_by}_issue"]
    order = ranking(judged, rank_by)
    top_issues = [i for i in order if flagged[i]][:top]
    hard = np.flatnonzero(judged["kind"] == HARD)
    top_hard = hard[np.lexsort((judged["p_given"][hard], judged["pooled_agreement"][hard]))][:top]  # least agreement, then loss

    lines = ["# Dataset audit", "",
             f"{len(oof)} clips, each judged by a model that did not train on it ({int(oof.fold.max())} folds). "
             f"Held-out accuracy against the given labels: {(oof.prediction == oof.label).mean():.1%}.", "",
             f"- rdfer, likely mislabelled (the labels pooled held-out and training predictions believe least, "
             f"as many as confident learning counts): {int(judged['rdfer_issue'].sum())}",
             f"- rdfer, hard (pooled clip predictions disagree): {len(hard)}",
             f"- cleanlab find_label_issues: {int(judged['cleanlab_issue'].sum())}",
             f"- flagged by both: {int(judged['combined_issue'].sum())}", "",
             f"`label_issues.csv` is ranked by **{rank_by}**.", ""]
    if scores is not None:
        lines += ["## Against the ground truth", "", f"From {scores['ground_truth']}.", "", scores_markdown(scores), ""]
    lines += ["## Per class", "", "| given label | clips | rdfer | cleanlab | both | hard |", "|---|---|---|---|---|---|"]
    for k, name in enumerate(classes):
        lines.append(f"| {name} | {counts['clips'][k]} | {counts['rdfer'][k]} | {counts['cleanlab'][k]} | "
                     f"{counts['combined'][k]} | {counts['hard'][k]} |")
    per_class = fig_per_class(counts, classes, files / "per_class.png")
    lines += ["", f"![per class]({per_class.relative_to(out_dir)})", "",
              "## Suggested relabels", "",
              f"Given label -> suggested label of the clips flagged by {rank_by}.", ""]
    relabels = fig_relabels(oof, flagged, files / "relabels.png", f"Suggested relabels ({rank_by}, "
                            f"{int(flagged.sum())} clips)")
    lines += [f"![relabels]({relabels.relative_to(out_dir)})", ""]
    notes = []
    for heading, chosen, name in ((f"Top likely mislabelled ({rank_by})", top_issues, "top_mislabelled.png"),
                                  ("Top hard (least agreement)", top_hard, "top_hard.png")):
        lines += [f"## {heading}", ""]
        if not len(chosen):
            lines += ["None.", ""]
            continue
        path, missed = fig_contact_sheet(oof, judged, chosen, files / name, heading)
        notes += missed
        lines += [f"![{heading}]({path.relative_to(out_dir)})" if path else "No frames could be read.", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    report = out_dir / "report.md"
    write_text(report, "\n".join(lines))
    return report
