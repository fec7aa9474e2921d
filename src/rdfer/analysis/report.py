"""`report.md` for one run and a side-by-side comparison of several runs.

    rdfer report RUN [--out DIR]            -> DIR/report.md, DIR/report_files/*.png|csv|md (DIR: RUN)
    rdfer compare ce=RUN1 agreement=RUN2 --out comparison.md
"""

from pathlib import Path
from typing import Optional

from rdfer.analysis.run import Run, load_run, read_apex, read_config, read_final, read_history
from rdfer.analysis.tables import table_v, table_vii, write_table
from rdfer.errors import RdferError
from rdfer.figures.base import Skipped
from rdfer.figures.paper import (
    fig_agreement_histograms,
    fig_confusion,
    fig_sample_frames,
    fig_training_curves,
    fig_tsne,
    fig_window_vs_apex,
)
from rdfer.metrics import confusion_matrix, summarize
from rdfer.stats import format_interval
from rdfer.utils.outputs import write_text


# Folder beside report.md that holds its figures and tables.
ASSETS = "report_files"


def _num(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def last_noisy_scores(history: list) -> Optional[dict]:
    """The last epoch's noisy-set precision/recall record from metrics.jsonl, or None if never logged."""
    logged = [r for r in history if r.get("noisy_precision") is not None]
    return logged[-1] if logged else None


def _run_facts(run: Run) -> list:
    config = run.config
    data, model, loss = (config.get(k) or {} for k in ("data", "model", "loss"))
    facts = [
        ("model", model.get("name")),
        ("data", " ".join(str(x) for x in (data.get("dataset"), data.get("root")) if x)),
        ("fold", data.get("fold") if data.get("dataset") in ("dfew", "mafw") else None),
        ("loss strategy", loss.get("strategy")),
        ("reweighting", f"mode {loss.get('mode')}, t_h {loss.get('t_h')}, t_n {loss.get('t_n')}, "
                        f"w_hard {loss.get('w_hard')}, w_noisy {loss.get('w_noisy')}, "
                        f"warm-up epochs {loss.get('warmup_epochs')}" if loss else None),
        ("epochs trained", len(run.history) or None),
        ("test clips", len(run.predictions)),
    ]
    return [f"- {name}: {value}" for name, value in facts if value not in (None, "")]


def _results_section(run: Run) -> list:
    classes = run.predictions.classes
    if run.final is None:
        summaries = [("last (from predictions.csv)", summarize(run.predictions.label, run.predictions.prediction,
                                                                classes))]
        selection = "No final.json in the run folder: figures computed from predictions.csv."
    else:
        summaries = [(f"{key} (epoch {run.final[key].get('epoch', '?')})", run.final[key])
                     for key in ("last", "best") if isinstance(run.final.get(key), dict)]
        selection = run.final.get("selection", "")
    lines = ["| | WAR (%) | UAR (%) | " + " | ".join(classes) + " |",
             "|---|---:|---:|" + "---:|" * len(classes)]
    for name, s in summaries:
        per_class = s.get("per_class") or {}
        lines.append(f"| {name} | {_num(s.get('war'))} | {_num(s.get('uar'))} | "
                     + " | ".join(_num(per_class.get(c), 1) for c in classes) + " |")
    lines.append("")
    lines.append("WAR = accuracy over all test clips; UAR = mean of the per-class recalls over the classes "
                 "present; per-class columns are recalls (%). " + selection.rstrip(".") + ("." if selection else ""))
    noisy = last_noisy_scores(run.history)
    if noisy:
        lines += ["", f"Noisy set of the last logged epoch ({noisy['epoch']}) against the truly flipped "
                      f"labels: precision {100 * noisy['noisy_precision']:.1f}%, recall "
                      f"{100 * noisy['noisy_recall']:.1f}%."]
        if noisy.get("small_loss_precision") is not None:
            lines[-1] += (f" Control, the small-loss trick at the same budget ({noisy['small_loss_flagged']} clips "
                          f"by the largest loss alone): precision {100 * noisy['small_loss_precision']:.1f}%, "
                          f"recall {100 * noisy['small_loss_recall']:.1f}%.")
    lines += window_lines(run.history)
    return lines


def _r(record: dict, key: str) -> str:
    """A correlation of a metrics.jsonl record with its bootstrap interval: "0.61 [0.48, 0.72]"."""
    return format_interval(record.get(key), record.get(f"{key}_ci"))


def window_lines(history: list) -> list:
    """The last evaluated epoch's key-expression window against the true apex, each figure beside its
    control (synthetic benchmark only; [] when the run has no apex ground truth)."""
    evaluated = [r for r in history if r.get("apex_covered") is not None]
    if not evaluated:
        return []
    r = evaluated[-1]
    lines = ["", f"Key-expression window of epoch {r['epoch']} against the true apex: it covers the apex for "
                 f"{100 * r['apex_covered']:.1f}% of the test clips (the uniform window: "
                 f"{100 * r['uniform_apex_covered']:.1f}%), {100 * r['window_on_apex']:.1f}% of its frames lie on "
                 f"the apex (uniform: {100 * r['uniform_window_on_apex']:.1f}%)."
             if r.get("uniform_apex_covered") is not None else
             f"Key-expression window of epoch {r['epoch']} against the true apex: it covers the apex for "
             f"{100 * r['apex_covered']:.1f}% of the test clips, {100 * r['window_on_apex']:.1f}% of its frames "
             "lie on the apex."]
    if r.get("mu_apex_corr") is not None or r.get("mu_apex_corr_expression") is not None:
        lines[-1] += (f" r(mu, apex centre) {_r(r, 'mu_apex_corr')} over all test clips, "
                      f"{_r(r, 'mu_apex_corr_expression')} over the {r.get('expression_clips', '–')} that show an "
                      "expression (95% bootstrap intervals over clips).")
    if r.get("farthest_apex_corr") is not None:
        lines[-1] += (f" Label-free control, the frame farthest from the first: r {_r(r, 'farthest_apex_corr')}, "
                      f"over expression clips {_r(r, 'farthest_apex_corr_expression')}.")
    return lines


def write_report(run_dir, out_dir=None, *, seed: int = 0, tsne_points: int = 2000) -> Path:
    """Write report.md with the run's metrics, Tables V and VII and Figs. 3, 4, 5 and the curves.

    Args:
        run_dir: a run folder of `rdfer train` (or an `rdfer eval` output folder).
        out_dir: where to write report.md; default the run folder itself.

    Returns:
        the path of OUT/report.md; its tables (.md, .csv) and figures (.png) go
        into OUT/report_files/ and are linked relative to report.md.
    """
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.directory
    files = out / ASSETS
    files.mkdir(parents=True, exist_ok=True)
    p = run.predictions
    notes = []

    def figure(what: str, make, *args, **kwargs) -> Optional[str]:
        """Draw one figure; a figure that cannot be drawn becomes a note instead."""
        try:
            result = make(*args, **kwargs)
        except Skipped as reason:
            notes.append(f"{what} not drawn: {reason}")
            return None
        if isinstance(result, tuple):  # fig_sample_frames also returns notes
            result, extra = result
            notes.extend(extra)
        return f"{ASSETS}/{result.name}"

    warmup = (run.config.get("loss") or {}).get("warmup_epochs")
    curves = figure("Training curves", fig_training_curves, run.history, files / "training_curves.png",
                    warmup_epochs=warmup, title=run.name)
    histograms = figure("Agreement histograms", fig_agreement_histograms, run.history,
                        files / "agreement_histograms.png", title=run.name)
    confusion = figure("Confusion matrix", fig_confusion, confusion_matrix(p.label, p.prediction, len(p.classes)),
                       p.classes, files / "confusion.png", f"Confusion matrix, {run.name} (row-normalised %)")
    tsne = figure("t-SNE", fig_tsne, p, run.features, files / "tsne_by_agreement.png", max_points=tsne_points,
                  seed=seed)
    samples = figure("Sample frames", fig_sample_frames, p, files / "samples_by_agreement.png", seed=seed)
    window = figure("Key-expression window", fig_window_vs_apex, p, read_apex(run), run.history,
                    files / "window_vs_apex.png", title=run.name)
    t5, t7 = table_v(p), table_vii(p)
    write_table(t5, files, "table_v_agreement_share")
    write_table(t7, files, "table_vii_agreement_accuracy")

    def image(name: Optional[str], alt: str) -> list:
        return [f"![{alt}]({name})", ""] if name else ["(not drawn: see Notes)", ""]

    lines = [f"# rdfer report: {run.name}", "", f"Run folder: `{run.directory}`", "", *_run_facts(run), "",
             "## Results", "", *_results_section(run), "",
             "## Training curves", "",
             "Test accuracy of the video and of its 4 clips, and how often the clips' majority names the video's "
             "class: the agreement below is only meaningful where the clips are accurate. Flipped training clips "
             "(synthetic benchmark only): how many the model predicts as their given, wrong label (memorisation) "
             "or as their true label.", "", *image(curves, "training curves"),
             "## Agreement per epoch", "",
             "Share of clips whose 4 clip predictions agree 1, 2, 3 or 4 times (agreement 0.25 .. 1.00).", "",
             *image(histograms, "agreement histograms"),
             "The tables and figures below are computed from predictions.csv (and features.npy): for a training "
             "run, the predictions of its last epoch on the test split.", "",
             "## Confusion matrix (paper Fig. 5)", "",
             "Rows (true labels) normalised to 100%; the number of clips of each class in brackets.", "",
             *image(confusion, "confusion matrix"),
             f"## {t5.title} (paper Table V)", "", t5.to_markdown(), "",
             f"CSV: [table_v_agreement_share.csv]({ASSETS}/table_v_agreement_share.csv)", "",
             f"## {t7.title} (paper Table VII)", "", t7.to_markdown(), "",
             f"CSV: [table_vii_agreement_accuracy.csv]({ASSETS}/table_vii_agreement_accuracy.csv)", "",
             "## t-SNE of features per agreement level (paper Fig. 4)", "", *image(tsne, "t-SNE"),
             "## Sample clips per agreement level (paper Fig. 3)", "", *image(samples, "sample frames"),
             "## Does the detector find the key expression?", "",
             "Each test clip's re-sampled window (centre mu, a bar from its first to its last frame) against the "
             "centre of its true apex (synthetic benchmark: `ground_truth.csv`), and per evaluated epoch the "
             "correlation of mu with the apex centre, the share of clips whose window covers the apex (at least "
             "half of the shorter of the two inside the other) and the share of re-sampled frames inside the "
             "apex. A detector that finds nothing puts every window in the same place.", "",
             *image(window, "window vs apex")]
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    path = out / "report.md"
    write_text(path, "\n".join(lines).rstrip() + "\n")
    return path


def compare_runs(runs: dict, out_path) -> Path:
    """Write `comparison_table(runs)` under a heading to the Markdown file `out_path`; returns it."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_text(out_path, "# Run comparison\n\n" + comparison_table(runs))
    return out_path


def comparison_table(runs: dict) -> str:
    """Side-by-side Markdown table of several runs (e.g. vanilla CE vs agreement reweighting).

    Args:
        runs: {name: run folder}, in the order to show; each needs final.json.

    Returns:
        The table and its notes. Columns: loss strategy, last epoch WAR/UAR, best epoch
        WAR/UAR, the last logged epoch's noisy-set precision/recall and where the re-sampled
        window lies against the true apex (synthetic benchmark only).
    """
    if not runs:
        raise RdferError("compare needs at least one NAME=RUN")
    rows = ["| run | strategy | last epoch | WAR (%) | UAR (%) | clip acc (%) | best epoch | WAR (%) | UAR (%) "
            "| flipped: given label (%) | noisy precision (%) | noisy recall (%) | small-loss precision (%) "
            "| mu-apex r | r, expression clips | control r, expression clips | apex covered (%) "
            "| frames on apex (%) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, run_dir in runs.items():
        directory = Path(run_dir)
        if not directory.is_dir():
            raise RdferError(f"run folder {directory} (for {name!r}) not found")
        final = read_final(directory)
        if final is None:
            raise RdferError(f"{directory / 'final.json'} not found: has the run {name!r} finished?")
        last, best = final.get("last") or {}, final.get("best") or {}
        history = read_history(directory / "metrics.jsonl")
        noisy = last_noisy_scores(history) or {}
        evaluated = [r for r in history if r.get("clip_acc") is not None]
        noisy["clip_acc"] = evaluated[-1]["clip_acc"] if evaluated else None
        window = {k: evaluated[-1].get(k) if evaluated else None
                  for k in ("mu_apex_corr", "apex_covered", "window_on_apex", "uniform_apex_covered",
                            "uniform_window_on_apex")}
        record = evaluated[-1] if evaluated else {}
        strategy = (read_config(directory).get("loss") or {}).get("strategy", "–")
        percent = {k: 100 * noisy[k] if noisy.get(k) is not None else None
                   for k in ("noisy_precision", "noisy_recall", "memorised", "clip_acc", "small_loss_precision")}
        rows.append(f"| {name} | {strategy} | {last.get('epoch', '–')} | {_num(last.get('war'))} | "
                    f"{_num(last.get('uar'))} | {_num(percent['clip_acc'], 1)} | {best.get('epoch', '–')} | "
                    f"{_num(best.get('war'))} | {_num(best.get('uar'))} | {_num(percent['memorised'], 1)} | "
                    f"{_num(percent['noisy_precision'], 1)} | {_num(percent['noisy_recall'], 1)} | "
                    f"{_num(percent['small_loss_precision'], 1)} | {_num(window['mu_apex_corr'])} | "
                    f"{_r(record, 'mu_apex_corr_expression')} | {_r(record, 'farthest_apex_corr_expression')} | "
                    + " | ".join(_beside(window[k], window[f"uniform_{k}"])
                                 for k in ("apex_covered", "window_on_apex")) + " |")
    return "\n".join([
        *rows, "",
        "WAR/UAR on the test split. 'best' is the epoch with the highest WAR on the validation part of the "
        "training split (data.val_fraction; the test split chooses nothing); 'last' involves no selection.", "",
        "Clip acc: the last evaluated epoch's test clips (4 per video) predicted right. Flipped: given label: "
        "the truly flipped training clips the model predicts as their wrong label in the last epoch "
        "(memorisation; synthetic benchmark only).", "",
        "Noisy precision/recall: the training clips ranked noisy (highest agreement, highest loss) in the "
        "last logged epoch against the truly flipped labels (known on the synthetic benchmark only). "
        "Under the 'ce' strategy the noisy set is ranked but not down-weighted. Small-loss precision: the "
        "control, as many clips of each batch chosen by the largest loss alone (the small-loss trick).", "",
        "Key-expression window, last evaluated epoch, against the true apex (synthetic benchmark only): the "
        "correlation of mu with the apex centre (none without re-sampling), the test clips whose window "
        "covers the apex (at least half of the shorter of the two inside the other) and the re-sampled "
        "frames that fall inside the apex (without re-sampling: the 16 uniform frames); after the slash, "
        "the uniform window's figure on the same clips (the control). r over expression clips leaves out "
        "the clips whose true class is Neutral (no apex to find), with its 95% bootstrap interval over clips; "
        "control r: the frame farthest from the first frame taken as the apex, no training.", ""])


def _beside(value, control) -> str:
    """"98.3 / 100.0": a share in percent and, after the slash, its control's (when recorded)."""
    if value is None:
        return "–"
    return f"{100 * value:.1f}" + ("" if control is None else f" / {100 * control:.1f}")
