#!/usr/bin/env python
"""The paper as written against rdfer's additions, on the synthetic benchmark: docs/results/paper_vs_rdfer.md.

    python scripts/paper_vs_rdfer.py --work /tmp/pvr --seeds 101,103,107
    python scripts/paper_vs_rdfer.py --work /tmp/pvr --seeds 101,103,107 --out docs/results/paper_vs_rdfer.md

For each seed S it renders one benchmark, caches its frozen features once and trains every
variant below on them with the study's CPU recipe (seed S for data and training alike):

    rdfer synth --out WORK/data_S --clips 600 --size 64 --actors 10 --nuisance 0.6 --seed S
    rdfer features --config study --set data.root=WORK/data_S --out WORK/data_S/features.npz
    rdfer train --config CONFIG --set data.root=WORK/data_S --set data.features=WORK/data_S/features.npz \\
        --set seed=S [--set SWITCH ...] --out WORK/runs/VARIANT/seed_S --no-progress

What is there already (a benchmark, its cache, a run with final.json) is reused, so an
interrupted run resumes where it stopped. The table: last-epoch figures per variant (mean and
sample sd over seeds), the paired difference of each variant against the paper as written
(mean over seeds with its t interval, paired t-test, Holm over the family) and, per clip, the
exact McNemar test pooled over the seeds' test clips (`rdfer.stats`). Runs from a source
checkout (src/ is put on the path) or an installed rdfer.
"""

import argparse
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from rdfer import stats  # noqa: E402
from rdfer.analysis.compare import pair_predictions  # noqa: E402
from rdfer.config import config_from_dict  # noqa: E402
from rdfer.data.manifest import load_manifests  # noqa: E402
from rdfer.engine.outputs import ground_truth_for  # noqa: E402
from rdfer.labels import DFEW_CLASSES  # noqa: E402

GUIDE_OFF = ("model.options.detector_guide=false",)
LOCATOR_OFF = ("model.options.detector_locator=linear", "model.options.detector_context=1",
               "model.options.detector_kernel=linear", *GUIDE_OFF)
# (name, config, --set switches, what it is). The first is the reference of every difference.
VARIANTS = (
    ("as_written", "study_as_written", (), "the paper as written: one FC F_d, two-frame blend, no guide, "
                                          "eq. 2 (no clip CE)"),
    ("rdfer_plus", "study", (), "rdfer's default: every addition on"),
    ("plus_no_guide", "study", GUIDE_OFF, "rdfer's default without the guide"),
    ("plus_no_clip_ce", "study", ("loss.clip_weight=0",), "rdfer's default without the clip CE"),
    ("plus_no_frame_locator", "study", LOCATOR_OFF,
     "rdfer's default with the paper's F_d (one FC, two-frame blend; so no guide either)"),
)
SYNTH = ("--clips", "600", "--size", "64", "--actors", "10", "--nuisance", "0.6")
SIGNALS = (("war", "WAR"), ("uar", "UAR"), ("clip_acc", "clip acc"), ("mu_apex_corr", "r(mu, apex)"),
           ("r_expression", "r over expression clips"), ("delta_mean", "mean delta"),
           ("window_on_apex", "frames on apex"))

# How each signal is shown: (scale, decimals); the rest as they are, 2 decimals.
FORMATS = {"war": (1, 1), "uar": (1, 1), "clip_acc": (100, 1), "window_on_apex": (100, 1)}


def rdfer(*args) -> list:
    """The command line of one rdfer command, run with this interpreter."""
    return [sys.executable, "-m", "rdfer", *map(str, args)]


def run(command: list, log: Path) -> None:
    shown = " ".join(command[2:])
    print(f"$ {shown}", flush=True)
    with open(log, "a") as out:  # appended: a second driver refused by the run lock must not clobber it
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {shown}; see {log}")


def prepare(work: Path, seed: int) -> Path:
    data = work / f"data_{seed}"
    if not (data / "ground_truth.csv").is_file():
        run(rdfer("synth", "--out", data, *SYNTH, "--seed", seed), work / f"synth_{seed}.log")
    if not (data / "features.npz").is_file():
        run(rdfer("features", "--config", "study", "--set", f"data.root={data}", "--out", data / "features.npz"),
            work / f"features_{seed}.log")
    return data


# Last-epoch figures: every training clip trains (no validation part; nothing is selected), as
# when the published figures were measured.
TRAIN_SETS = ("data.val_fraction=0",)


def train(work: Path, data: Path, seed: int, name: str, config: str, switches: tuple) -> Path:
    out = work / "runs" / name / f"seed_{seed}"
    if not (out / "final.json").is_file():
        sets = [f"data.root={data}", f"data.features={data / 'features.npz'}", f"seed={seed}", *TRAIN_SETS, *switches]
        out.parent.mkdir(parents=True, exist_ok=True)
        run(rdfer("train", "--config", config, *[a for s in sets for a in ("--set", s)], "--out", out,
                  "--no-progress"), out.parent / f"seed_{seed}.log")
    return out


def expression_r(run_dir: Path) -> float:
    """r(mu, true apex centre) over the run's test clips that show an expression: an apex in the
    benchmark's ground truth and a true class other than Neutral (which has nothing to find)."""
    config = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    _, test = load_manifests(config.data)
    truth = ground_truth_for(config.data, test)
    by_clip = {row["clip_id"]: row for row in csv.DictReader(open(run_dir / "predictions.csv", newline=""))}
    neutral = DFEW_CLASSES.index("Neutral")
    mu, centre = [], []
    for i, record in enumerate(test.records):
        row = by_clip.get(record.clip_id)
        if row is None or np.isnan(truth.apex[i]).any() or truth.true_label[i] == neutral or not row.get("mu"):
            continue
        mu.append(float(row["mu"]))
        centre.append(truth.apex[i].mean())
    if len(mu) < 3 or np.std(mu) < 1e-9:
        return float("nan")
    return float(np.corrcoef(mu, centre)[0, 1])


def last_epoch(run_dir: Path) -> dict:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = [row for row in rows if "war" in row][-1]
    figures = {key: last.get(key) for key, _ in SIGNALS if key != "r_expression"}
    figures["r_expression"] = expression_r(run_dir)
    return figures


def fmt(values, scale: float = 1, decimals: int = 1) -> str:
    """mean ± sample sd of `values` x `scale`; "-" when none is known."""
    values = [v * scale for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "-"
    mean, sd = stats.mean_sd(values)
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def comparisons(work: Path, seeds: list, figures: dict, reference: str, others: list) -> list:
    """Markdown lines: each of `others` paired against `reference` over the seeds, Holm over the family."""
    lines = ["", f"Paired against `{reference}` (B minus A, points; pairs: the seeds). WAR difference: mean "
             "over seeds with its 95% t interval, paired t-test p, Holm-adjusted over these "
             f"{len(others)} comparisons; McNemar: exact test on per-clip correctness pooled over the "
             "seeds' test clips (clips right only under A / only under B); per seed: the paired bootstrap "
             "interval over that seed's test clips (as `rdfer compare`). Clip accuracy and r(mu, apex): mean "
             "difference over seeds.", "",
             "| B | WAR diff [95% CI] | paired t p | Holm p | McNemar p (only A / only B) | "
             "per seed: WAR diff [bootstrap 95% CI] | clip acc diff | r(mu, apex) diff |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    rows, p_values = [], []
    for name in others:
        war_a = [figures[reference][s]["war"] for s in seeds]
        war_b = [figures[name][s]["war"] for s in seeds]
        tests = stats.paired_tests(war_a, war_b)
        ci = stats.mean_ci(np.subtract(war_b, war_a))
        correct_a, correct_b, per_seed = [], [], []
        for s in seeds:
            pair = pair_predictions(work / "runs" / reference / f"seed_{s}", work / "runs" / name / f"seed_{s}")
            correct_a.append(pair["label"] == pair["pred_a"])
            correct_b.append(pair["label"] == pair["pred_b"])
            boot = stats.paired_bootstrap(pair["label"], pair["pred_a"], pair["pred_b"], "war", seed=0,
                                          num_classes=len(pair["classes"]))
            per_seed.append(f"{boot['diff']:+.1f} [{boot['ci'][0]:+.1f}, {boot['ci'][1]:+.1f}]")
        mcnemar = stats.mcnemar_exact(np.concatenate(correct_a), np.concatenate(correct_b))
        clip = np.mean([figures[name][s]["clip_acc"] - figures[reference][s]["clip_acc"] for s in seeds]) * 100
        r_a = [figures[reference][s]["mu_apex_corr"] for s in seeds]
        r_b = [figures[name][s]["mu_apex_corr"] for s in seeds]
        r_diff = f"{np.mean(np.subtract(r_b, r_a)):+.2f}" if None not in r_a + r_b else "-"
        rows.append([name, f"{tests['mean_diff']:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]", f"{tests['t_p']:.3f}", None,
                     f"{mcnemar['p']:.3f} ({mcnemar['only_a']} / {mcnemar['only_b']})", "; ".join(per_seed),
                     f"{clip:+.1f}", r_diff])
        p_values.append(tests["t_p"])
    for row, adjusted in zip(rows, stats.holm(p_values)):
        row[3] = f"{adjusted:.3f}"
        lines.append("| `" + row[0] + "` | " + " | ".join(row[1:]) + " |")
    return lines


def table(work: Path, seeds: list, figures: dict, commands: list, variants=VARIANTS) -> str:
    names = [v[0] for v in variants]
    reference = names[0]
    only = "" if len(variants) == len(VARIANTS) else f" --only {','.join(names)}"
    lines = ["# The paper as written against rdfer's additions (synthetic benchmark)", "",
             "Generated by `python scripts/paper_vs_rdfer.py --work WORK --seeds "
             f"{','.join(map(str, seeds))}{only} --out FILE` (every figure below; the "
             "runs it made are listed at the end). Study recipe (configs/study.yaml: rdfer_tiny over frozen, "
             "cached mini-Xception features, agreement reweighting, 30 epochs, clean labels), one benchmark "
             "per seed (`rdfer synth --clips 600 --size 64 --actors 10 --nuisance 0.6`; fold 1: 480 training, "
             "120 test clips), last epoch. Mean ± sample sd over "
             f"{len(seeds)} seeds. WAR, UAR, clip accuracy and frames on apex in percent.", "",
             "| variant | what | " + " | ".join(label for _, label in SIGNALS) + " |",
             "|---|---|" + "---:|" * len(SIGNALS)]
    for name, config, switches, what in variants:
        cells = [fmt([figures[name][s][key] for s in seeds], *FORMATS.get(key, (1, 2))) for key, _ in SIGNALS]
        lines.append(f"| `{name}` | {what} | " + " | ".join(cells) + " |")

    lines += comparisons(work, seeds, figures, reference, names[1:])
    if len(names) > 2:
        lines += comparisons(work, seeds, figures, names[1], names[2:])
    lines += ["", "Runs (each under WORK/runs/VARIANT/seed_S; WORK/data_S the benchmark and its feature cache):", "",
              "```", *commands, "```", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", required=True, type=Path, help="folder for the benchmarks and runs (reused)")
    parser.add_argument("--seeds", required=True, help="comma-separated seeds, e.g. 101,103,107")
    parser.add_argument("--out", type=Path, help="write the table here (default: print it)")
    parser.add_argument("--only", help="comma-separated variants to train and tabulate (default: all); the table "
                                       "needs as_written and one more")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else {v[0] for v in VARIANTS}
    figures = {name: {} for name, *_ in VARIANTS}
    commands = []
    for seed in seeds:
        data = prepare(args.work, seed)
        commands += [f"rdfer synth --out WORK/data_{seed} {' '.join(SYNTH)} --seed {seed}",
                     f"rdfer features --config study --set data.root=WORK/data_{seed} "
                     f"--out WORK/data_{seed}/features.npz"]
        for name, config, switches, _ in VARIANTS:
            if name not in wanted:
                continue
            out = train(args.work, data, seed, name, config, switches)
            figures[name][seed] = last_epoch(out)
            sets = " ".join(f"--set {s}" for s in (f"data.root=WORK/data_{seed}",
                                                  f"data.features=WORK/data_{seed}/features.npz",
                                                  f"seed={seed}", *TRAIN_SETS, *switches))
            commands.append(f"rdfer train --config {config} {sets} --out WORK/runs/{name}/seed_{seed} --no-progress")
    variants = [v for v in VARIANTS if v[0] in wanted]
    if VARIANTS[0] not in variants or len(variants) < 2:
        return 0  # nothing to compare (runs only)
    text = table(args.work, seeds, figures, commands, variants)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
