"""Measure each claim beside its control on fresh synthetic sets; write docs/results/controls.md.

    python scripts/controls.py --work W --seeds 3101,3102,3103,3104,3105 --out docs/results/controls.md

For every seed S it renders one set (`rdfer synth --clips 600 --size 64 --actors 10 --nuisance 0.6
--noise 0.2 --seed S`: 480 training clips with 20% symmetric flips, 120 clean test clips), caches its
frozen features once (`rdfer features --config study`) and shares them with:

- `rdfer train --config study --set data.val_fraction=0` (the default: guided detector, agreement reweighting,
  every training clip trained): r(mu, true apex
  centre) over all test clips and over the clips that show an expression, each with a bootstrap
  interval, beside the label-free control (the frame farthest from the first); the window's apex
  coverage beside the uniform window's; the noisy set's precision beside the small-loss trick's at
  the same budget (all written by the run into metrics.jsonl);
- `rdfer train --config study_uniform_window` (the same re-sampling and summary, window fixed to the
  uniform one) and `rdfer train --config study_no_resample` (16 uniform frames, no re-sampling): what
  re-sampling and detection add, as paired bootstrap differences over test clips and paired over seeds;
- `rdfer audit --config audit_synth` (5 folds): rdfer's list beside cleanlab's ranking cut at the same
  length (audit_summary.json).

Finished sets, runs and audits are reused; `--parts` picks what to run, `--report-only` only writes
the page from what exists. Runs go `--jobs` at a time, each at low priority (nice 10).
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from rdfer.stats import bootstrap_ci, holm, mean_sd, paired_bootstrap, paired_tests
from rdfer.utils.runlock import lock_file_for

SYNTH = "--clips 600 --size 64 --actors 10 --nuisance 0.6 --noise 0.2"
CONFIGS = {"default": "study", "uniform": "study_uniform_window", "none": "study_no_resample"}
PARTS = ("default", "uniform", "none", "audit")
COMMAND = "python scripts/controls.py --work W --seeds {seeds}{extra} --out docs/results/controls.md"


def rdfer(*args) -> list:
    return ["nice", "-n", "10", sys.executable, "-m", "rdfer", *args]


def run(command: list, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")


_SET_LOCKS = defaultdict(threading.Lock)  # one rendering of a set at a time, however many runs wait on it


def prepare(work: Path, seed: int) -> Path:
    data = work / f"data_{seed}"
    with _SET_LOCKS[seed]:
        _prepare(work, seed, data)
    return data


def _prepare(work: Path, seed: int, data: Path) -> None:
    if not (data / "ground_truth.csv").is_file():
        run(rdfer("synth", "--out", str(data), *SYNTH.split(), "--seed", str(seed)),
            work / "logs" / f"synth_{seed}.log")
    if not (data / "features.npz").is_file():
        run(rdfer("features", "--config", "study", "--set", f"data.root={data}", "--out", str(data / "features.npz")),
            work / "logs" / f"features_{seed}.log")


def wait_for_other_run(out: Path) -> None:
    """Wait while another process (an earlier call of this script) holds `out`'s run lock."""
    lock = lock_file_for(out)
    while lock.is_file():
        try:
            pid = int(lock.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return
        time.sleep(20)


AUDIT_FOLDS = [None]  # --audit-folds: None for the dataset's official 5 folds


def audit_dir(work: Path, seed: int) -> Path:
    folds = AUDIT_FOLDS[0]
    return work / "audit" / (f"seed_{seed}" if folds is None else f"folds_{folds}_seed_{seed}")


def task(work: Path, part: str, seed: int) -> None:
    data = prepare(work, seed)
    common = ["--set", f"data.root={data}", "--set", f"data.features={data / 'features.npz'}"]
    if part == "audit":
        out = audit_dir(work, seed)
        wait_for_other_run(out)
        folds = [] if AUDIT_FOLDS[0] is None else ["--folds", str(AUDIT_FOLDS[0])]
        if not (out / "audit_summary.json").is_file():
            run(rdfer("audit", "--config", "audit_synth", *common, *folds, "--out", str(out)),
                work / "logs" / f"audit_{seed}.log")
        return
    out = work / "runs" / part / f"seed_{seed}"
    wait_for_other_run(out)
    if not (out / "final.json").is_file():
        # Last-epoch figures: every training clip trains (no validation part), as when they were measured.
        run(rdfer("train", "--config", CONFIGS[part], *common, "--set", "data.val_fraction=0", "--out", str(out),
                  "--no-progress"),
            work / "logs" / f"{part}_{seed}.log")


# ----------------------------------------------------------------------------- reading the results


def history(run_dir: Path) -> list:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def last_evaluated(run_dir: Path) -> dict:
    return [r for r in history(run_dir) if "war" in r][-1]


def predictions(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "predictions.csv")


def fmt(value, digits=2) -> str:
    return "–" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def with_ci(value, ci, digits=2, scale=1.0) -> str:
    if value is None:
        return "–"
    if not ci:
        return fmt(value * scale, digits)
    return f"{value * scale:.{digits}f} [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"


def proportion(hits: int, n: int) -> tuple:
    """A share with its exact (Clopper-Pearson) 95% interval, scipy.stats.binomtest."""
    if n == 0:
        return None, None
    interval = scipy_stats.binomtest(hits, n).proportion_ci(0.95)
    return hits / n, [interval.low, interval.high]


def across(values: list, digits=2, unit="") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    mean, sd = mean_sd(values)
    return f"{mean:.{digits}f}{unit} ± {sd:.{digits}f} (n={len(values)})"


def pct(values: list) -> list:
    return [None if v is None else 100 * v for v in values]


def paired(a: list, b: list) -> dict:
    """paired_tests of b against a over the seeds that have both, or None for fewer than 2."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    return paired_tests([x for x, _ in pairs], [y for _, y in pairs]) if len(pairs) >= 2 else None


def paired_line(name: str, a: list, b: list, digits=2) -> str:
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(pairs) < 2:
        return f"- {name}: fewer than 2 seeds"
    test = paired_tests([x for x, _ in pairs], [y for _, y in pairs])
    return (f"- {name}: mean difference {test['mean_diff']:+.{digits}f} (sd {test['sd_diff']:.{digits}f}, "
            f"{test['n']} seeds), paired t p = {test['t_p']:.3g}, Wilcoxon p = {test['wilcoxon_p']:.3g}")


def detector_section(work: Path, seeds: list) -> list:
    lines = ["## The detector beside the label-free control", "",
             "Default detector (`configs/study.yaml`: guided, agreement reweighting, 30 epochs), last epoch, 120 "
             "test clips per seed. r: Pearson correlation of `mu` with the true apex centre, with its 95% "
             "bootstrap interval over test clips; 'expression' leaves out the clips whose true class is Neutral "
             "(they have no apex to find). Control: the frame farthest (Euclidean, in the cached frame features) "
             "from the clip's first frame, its time taken as the apex estimate, no training. Apex covered / "
             "frames on apex: the detector's window against the uniform window (mu 0.5, stride 4) on the same "
             "clips. The training labels carry 20% symmetric flips (the guide learns from them); the README's "
             "detector check trained on clean labels.", "",
             "| seed | r, all clips | r, expression clips (n) | control r, all | control r, expression | sd(mu) "
             "| mean delta | apex covered: detector / uniform | frames on apex: detector / uniform | WAR |",
             "|---|---|---|---|---|---:|---:|---|---|---:|"]
    rows = {}
    for seed in seeds:
        run_dir = work / "runs" / "default" / f"seed_{seed}"
        if not (run_dir / "final.json").is_file():
            lines.append(f"| {seed} | not run | | | | | | | | |")
            continue
        r = last_evaluated(run_dir)
        rows[seed] = r
        lines.append(
            f"| {seed} | {with_ci(r.get('mu_apex_corr'), r.get('mu_apex_corr_ci'))} | "
            f"{with_ci(r.get('mu_apex_corr_expression'), r.get('mu_apex_corr_expression_ci'))} "
            f"({r.get('expression_clips', '–')}) | "
            f"{with_ci(r.get('farthest_apex_corr'), r.get('farthest_apex_corr_ci'))} | "
            f"{with_ci(r.get('farthest_apex_corr_expression'), r.get('farthest_apex_corr_expression_ci'))} | "
            f"{fmt(r.get('mu_sd'), 3)} | {fmt(r.get('delta_mean'))} | "
            f"{fmt(100 * r['apex_covered'], 1)}% / {fmt(100 * r['uniform_apex_covered'], 1)}% | "
            f"{fmt(100 * r['window_on_apex'], 1)}% / {fmt(100 * r['uniform_window_on_apex'], 1)}% | "
            f"{fmt(r['war'], 1)} |")
    if rows:
        get = lambda key: [rows[s].get(key) for s in rows]  # noqa: E731
        expression = [v for v in get("mu_apex_corr_expression") if v is not None]
        lines += ["", "Over seeds (mean ± sample sd):", "",
                  f"- r, all clips: {across(get('mu_apex_corr'))}; control: {across(get('farthest_apex_corr'))}",
                  f"- r, expression clips: {across(get('mu_apex_corr_expression'))}; control: "
                  f"{across(get('farthest_apex_corr_expression'))}",
                  f"- seeds with r over expression clips >= 0.6: {sum(v >= 0.6 for v in expression)} of "
                  f"{len(expression)}; whose interval's lower end is >= 0.6: "
                  f"{sum(ci[0] >= 0.6 for ci in get('mu_apex_corr_expression_ci') if ci)}",
                  paired_line("detector minus control, r over expression clips",
                              get("farthest_apex_corr_expression"), get("mu_apex_corr_expression")),
                  f"- apex covered: detector {across(pct(get('apex_covered')), 1, '%')}, uniform window "
                  f"{across(pct(get('uniform_apex_covered')), 1, '%')}",
                  f"- frames on the apex: detector {across(pct(get('window_on_apex')), 1, '%')}, uniform "
                  f"window {across(pct(get('uniform_window_on_apex')), 1, '%')}"]
        SUMMARY["detector"] = {key: get(key) for key in ("mu_apex_corr", "mu_apex_corr_expression",
                                                          "farthest_apex_corr_expression", "apex_covered",
                                                          "uniform_apex_covered", "window_on_apex",
                                                          "uniform_window_on_apex")}
    return lines


def war_ci(run_dir: Path) -> tuple:
    p = predictions(run_dir)
    got = bootstrap_ci(p["label"], p["prediction"], "war", num_classes=7)
    return got["value"], got["ci"], p


def resampling_section(work: Path, seeds: list) -> list:
    lines = ["## Re-sampling beside the uniform window", "",
             "Last-epoch WAR (%) on the 120 test clips with its 95% bootstrap interval over clips. `uniform window`: "
             "`configs/study_uniform_window.yaml`, the same Gaussian re-sampling and global summary S with the "
             "window fixed to mu 0.5, stride 4 (no detection). `no re-sampling`: `configs/study_no_resample.yaml`, "
             "16 uniform frames, no S. Differences: default minus control, paired bootstrap over the same test clips.",
             "", "| seed | default | uniform window | no re-sampling | default - uniform | default - none |",
             "|---|---|---|---|---|---|"]
    wars = {part: [] for part in CONFIGS}
    for seed in seeds:
        cells, preds = {}, {}
        for part in CONFIGS:
            run_dir = work / "runs" / part / f"seed_{seed}"
            if (run_dir / "final.json").is_file():
                value, ci, preds[part] = war_ci(run_dir)
                cells[part] = f"{value:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"
                wars[part].append(value)
            else:
                cells[part] = "not run"
                wars[part].append(None)
        diffs = []
        for control in ("uniform", "none"):
            if "default" in preds and control in preds:
                a, b = preds[control], preds["default"]
                assert (a["clip_id"].values == b["clip_id"].values).all()
                d = paired_bootstrap(a["label"], a["prediction"], b["prediction"], "war", num_classes=7)
                diffs.append(f"{d['diff']:+.1f} [{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]")
            else:
                diffs.append("–")
        lines.append(f"| {seed} | {cells['default']} | {cells['uniform']} | {cells['none']} | "
                     f"{diffs[0]} | {diffs[1]} |")
    lines += ["", "Over seeds (mean ± sample sd of last-epoch WAR):", "",
              f"- default {across(wars['default'], 1)}, uniform window {across(wars['uniform'], 1)}, "
              f"no re-sampling {across(wars['none'], 1)}",
              paired_line("default minus uniform window (WAR points)", wars["uniform"], wars["default"]),
              paired_line("uniform window minus no re-sampling (WAR points)", wars["none"], wars["uniform"]),
              paired_line("default minus no re-sampling (WAR points)", wars["none"], wars["default"])]
    SUMMARY["resampling"] = wars
    return lines


def noisy_section(work: Path, seeds: list) -> list:
    lines = ["## The noisy set beside the small-loss trick at the same budget", "",
             "Default runs (agreement reweighting; 20% of the 480 training labels flipped). Per batch the agreement "
             "partition ranks `t_n` = 10% of the clips noisy (weight 0 from epoch 11); the control flags the same "
             "number of each batch by the largest loss alone (the small-loss trick). Precision: share of the "
             "flagged clips whose label really is flipped, with its exact 95% binomial interval; last epoch, and "
             "pooled over the epochs that reweight (11-30). The pooled interval treats the 20 epochs' flags as "
             "independent draws, which they are not (the same clips come back every epoch): it is too narrow; "
             "the spread over seeds below is the one to read.", "",
             "| seed | flagged (last epoch) | agreement: precision / recall | small-loss: precision / recall | "
             "epochs 11-30: agreement precision | epochs 11-30: small-loss precision |",
             "|---|---:|---|---|---|---|"]
    agree, small, agree_pooled, small_pooled = [], [], [], []
    for seed in seeds:
        run_dir = work / "runs" / "default" / f"seed_{seed}"
        if not (run_dir / "final.json").is_file():
            lines.append(f"| {seed} | not run | | | | |")
            continue
        records = history(run_dir)
        last = records[-1]
        if last.get("small_loss_precision") is None:
            lines.append(f"| {seed} | run without the control | | | | |")
            continue
        flagged = last["noisy_flagged"]
        a = proportion(round(last["noisy_precision"] * flagged), flagged)
        s = proportion(round(last["small_loss_precision"] * last["small_loss_flagged"]), last["small_loss_flagged"])
        late = [r for r in records if r["epoch"] > 10]
        hits_a = sum(round(r["noisy_precision"] * r["noisy_flagged"]) for r in late)
        hits_s = sum(round(r["small_loss_precision"] * r["small_loss_flagged"]) for r in late)
        pa = proportion(hits_a, sum(r["noisy_flagged"] for r in late))
        ps = proportion(hits_s, sum(r["small_loss_flagged"] for r in late))
        agree.append(a[0]), small.append(s[0]), agree_pooled.append(pa[0]), small_pooled.append(ps[0])
        lines.append(f"| {seed} | {flagged} | {with_ci(a[0], a[1], 1, 100)}% / {100 * last['noisy_recall']:.1f}% | "
                     f"{with_ci(s[0], s[1], 1, 100)}% / {100 * last['small_loss_recall']:.1f}% | "
                     f"{with_ci(pa[0], pa[1], 1, 100)}% | {with_ci(ps[0], ps[1], 1, 100)}% |")
    lines += ["", "Over seeds (mean ± sample sd, precision in %):", "",
              f"- last epoch: agreement {across(pct(agree), 1, '%')}, small-loss {across(pct(small), 1, '%')}",
              f"- epochs 11-30: agreement {across(pct(agree_pooled), 1, '%')}, small-loss "
              f"{across(pct(small_pooled), 1, '%')}",
              paired_line("small-loss minus agreement, last epoch (points)", [100 * v for v in agree],
                          [100 * v for v in small], 1),
              paired_line("small-loss minus agreement, epochs 11-30 (points)", [100 * v for v in agree_pooled],
                          [100 * v for v in small_pooled], 1),
              "", "A random pick of the same size would be about 20% flips."]
    SUMMARY["noisy"] = {"agreement": agree_pooled, "small_loss": small_pooled}
    return lines


def audit_section(work: Path, seeds: list) -> list:
    folds = ("the official 5 folds" if AUDIT_FOLDS[0] is None
             else f"`--folds {AUDIT_FOLDS[0]}`: {AUDIT_FOLDS[0]} seeded, class-stratified folds")
    lines = ["## The audit beside cleanlab at equal list length", "",
             f"`rdfer audit --config audit_synth` ({folds}, 15 epochs, frozen features) on each set; the lists against "
             "the set's truly flipped labels (20% of the 600 given labels). `cleanlab top k`: cleanlab's ranking "
             "(1 - self-confidence "
             "of the last epoch's held-out video probabilities) cut at k = rdfer's list length. Precision with its "
             "exact 95% binomial interval; 'hard/flagged': truly hard clips with a right label called mislabelled, "
             "per flagged clip.", "",
             "| seed | list | flagged | precision | recall | F1 | hard/flagged |", "|---|---|---:|---|---:|---:|---:|"]
    names = {"rdfer": "rdfer", "cleanlab_top_k": "cleanlab top k (same length)", "cleanlab": "cleanlab's own list"}
    collected = {name: {"precision": [], "recall": [], "hard_per_flagged": [], "flagged": []} for name in names}
    for seed in seeds:
        path = audit_dir(work, seed) / "audit_summary.json"
        if not path.is_file():
            lines.append(f"| {seed} | not run | | | | | |")
            continue
        lists = json.loads(path.read_text())["scores"]["lists"]
        for name, title in names.items():
            s = lists[name]
            p = proportion(s["correct"], s["flagged"])
            lines.append(f"| {seed} | {title} | {s['flagged']} | {with_ci(p[0], p[1], 3)} | {s['recall']:.3f} | "
                         f"{s['f1']:.3f} | {s['hard_per_flagged']:.3f} |")
            for key in collected[name]:
                collected[name][key].append(s[key])
    lines += ["", "Over seeds (mean ± sample sd):", ""]
    for name, title in names.items():
        c = collected[name]
        lines.append(f"- {title}: precision {across(c['precision'], 3)}, recall {across(c['recall'], 3)}, "
                     f"hard/flagged {across(c['hard_per_flagged'], 3)}")
    lines += [paired_line("rdfer minus cleanlab top k, precision", collected["cleanlab_top_k"]["precision"],
                          collected["rdfer"]["precision"], 3),
              paired_line("rdfer minus cleanlab top k, hard/flagged", collected["cleanlab_top_k"]["hard_per_flagged"],
                          collected["rdfer"]["hard_per_flagged"], 3)]
    SUMMARY["audit"] = collected
    return lines


SUMMARY: dict = {}  # what each section measured, for the summary at the top of the page


def _mean(values: list):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _test_words(test, unit: str) -> str:
    if test is None:
        return "fewer than 2 seeds: not tested"
    return (f"mean difference {test['mean_diff']:+.2f}{unit} over {test['n']} seeds, paired t p = {test['t_p']:.2g}, "
            f"Holm-adjusted over this summary's {test['family']} tests p = {test['holm_p']:.2g} "
            f"({'significant' if test['holm_p'] <= 0.05 else 'not significant'} at 0.05)")


def summary_lines() -> list:
    """What holds and what does not, worded from the figures below (no hand-written numbers)."""
    d, w, n, a = (SUMMARY.get(k) for k in ("detector", "resampling", "noisy", "audit"))
    tests = {"detector": d and paired(d["farthest_apex_corr_expression"], d["mu_apex_corr_expression"]),
             "uniform": w and paired(w["uniform"], w["default"]), "machinery": w and paired(w["none"], w["uniform"]),
             "noisy": n and paired(pct(n["agreement"]), pct(n["small_loss"])),
             "audit": a and paired(a["cleanlab_top_k"]["precision"], a["rdfer"]["precision"])}
    family = [t for t in tests.values() if t]
    for test, adjusted in zip(family, holm([t["t_p"] for t in family])):
        test.update(holm_p=adjusted, family=len(family))
    lines = ["## What holds and what does not", ""]
    if d:
        expression = [v for v in d["mu_apex_corr_expression"] if v is not None]
        lines.append(f"- **Claim: the detector finds the expression.** r(mu, apex centre) over expression clips "
                     f">= 0.6 on "
                     f"{sum(v >= 0.6 for v in expression)} of {len(expression)} seeds (mean {_mean(expression):.2f}; "
                     f"over all clips {_mean(d['mu_apex_corr']):.2f}). Against the label-free control (frame farthest "
                     f"from the first, mean r {_mean(d['farthest_apex_corr_expression']):.2f}): "
                     + _test_words(tests["detector"], "") + ".")
        lines.append(f"- **Claim: the window covers the apex for every test clip.** The uniform window covers the apex "
                     f"for {100 * _mean(d['uniform_apex_covered']):.1f}% of test clips, the detector's for "
                     f"{100 * _mean(d['apex_covered']):.1f}%. Frames *on* the apex: detector "
                     f"{100 * _mean(d['window_on_apex']):.1f}%, uniform window "
                     f"{100 * _mean(d['uniform_window_on_apex']):.1f}%.")
    if w and _mean(w["default"]) is not None:
        lines.append("- **Claim: re-sampling helps** (last-epoch WAR). Default against the uniform window with the "
                     "same "
                     "machinery: " + _test_words(tests["uniform"], " points") + "; the uniform "
                     "window against no re-sampling: " + _test_words(tests["machinery"], " points") + ".")
    if n and n["agreement"]:
        lines.append(f"- **Claim: the noisy set finds flipped labels** (epochs 11-30). Agreement's set is "
                     f"{100 * _mean(n['agreement']):.1f}% flips (random: 20%); the small-loss trick at the same "
                     f"budget {100 * _mean(n['small_loss']):.1f}%; small-loss minus agreement: "
                     + _test_words(tests["noisy"], " points") + ".")
    if a and a["rdfer"]["precision"]:
        lines.append(f"- **Claim: the audit is more precise than cleanlab**, at equal list length: rdfer precision "
                     f"{_mean(a['rdfer']['precision']):.3f} "
                     f"against cleanlab's top k {_mean(a['cleanlab_top_k']['precision']):.3f} (rdfer minus cleanlab: "
                     + _test_words(tests["audit"], "")
                     + f"); truly hard clips called mislabelled per flagged clip "
                     f"{_mean(a['rdfer']['hard_per_flagged']):.3f} against "
                     f"{_mean(a['cleanlab_top_k']['hard_per_flagged']):.3f}. Against cleanlab's own, longer list "
                     f"(find_label_issues; {_mean(a['cleanlab']['flagged']):.0f} clips on average against rdfer's "
                     f"{_mean(a['rdfer']['flagged']):.0f}), precision: rdfer "
                     f"{_mean(a['rdfer']['precision']):.3f}, cleanlab {_mean(a['cleanlab']['precision']):.3f}"
                     + (": at equal length no difference is detected, so the shorter list, not the ranking, "
                        "makes it." if tests["audit"] and tests["audit"]["holm_p"] > 0.05 else "."))
    return lines + [""] if len(lines) > 2 else []


def write_page(work: Path, seeds: list, out: Path) -> None:
    seeds = sorted(seeds)
    extra = "" if AUDIT_FOLDS[0] is None else f" --audit-folds {AUDIT_FOLDS[0]}"
    command = COMMAND.format(seeds=",".join(map(str, seeds)), extra=extra)
    lines = ["# Each claim beside its control", "",
             f"Generated by `{command}` (W: any work folder; finished sets, runs and audits in W are reused, and "
             "`--report-only` rewrites this page from them). Each seed renders its own set: `rdfer synth --out "
             f"W/data_S {SYNTH} --seed S` (600 clips, fold 1: 480 training clips, 20% of their labels flipped, "
             "120 clean test clips), whose frozen features `rdfer features --config study` caches once for every "
             "run and audit of that seed. Every run trains with seed 0 on CPU, on every training clip (`--set data.val_fraction=0`: no validation part; the figures are last-epoch ones).", "",
             "Intervals: over test clips (bootstrap) they say how much a figure would move with another draw of "
             "test clips; over seeds (sample sd, paired tests) how much it moves with another rendering and "
             "training.", ""]
    sections = []
    for section in (detector_section, resampling_section, noisy_section, audit_section):
        sections += section(work, seeds) + [""]
    lines += summary_lines() + sections
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--seeds", default="3101,3102,3103,3104,3105")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/results/controls.md"))
    parser.add_argument("--audit-folds", type=int, default=None,
                        help="audit with this many seeded folds instead of the official 5 (less training)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    AUDIT_FOLDS[0] = args.audit_folds
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}")
    if not args.report_only:
        # Part by part, seed by seed: the first runs render their sets side by side, and a stopped
        # measurement has every seed of the first parts.
        tasks = [(part, seed) for part in parts for seed in seeds]
        with ThreadPoolExecutor(args.jobs) as pool:
            for future in [pool.submit(task, args.work, part, seed) for part, seed in tasks]:
                future.result()
    write_page(args.work, seeds, args.out)


if __name__ == "__main__":
    main()
