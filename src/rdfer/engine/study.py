"""`rdfer study`: loss strategies under known label noise, rerunnable on a CPU.

For each noise setting (20% and 40% symmetric, 30% pair flips) the study renders
a synthetic benchmark (the DFEW-hard preset `HARD_DATA`, 1,000 clips, fold 1: 800
train, 200 clean test), caches its frozen mini-Xception features once
(`rdfer features`), then trains every strategy (the paper's Table IV, GCE, SCE,
ELR and their combinations with the agreement partition; `QUICK_STRATEGIES`
with --quick) with 3 seeds (configs/study.yaml) and writes:

    DIR/study.md    the tables, mean +- sample sd over seeds, what each column means, and each
                    strategy against CE: paired over seeds, pooled McNemar, Holm-corrected
    DIR/study.csv   one row per (noise, strategy, seed)
    DIR/comparisons.csv   each strategy against CE (the figures behind study.md's wording)
    DIR/study.png   last WAR per strategy; memorisation of flipped labels per epoch
    DIR/data/NAME/  the benchmarks and their feature caches
    DIR/runs/NAME/STRATEGY/seed_K/   ordinary run folders (metrics.jsonl per epoch)

Finished benchmarks, caches and runs are reused when the command is run again.
Runs go to `jobs` worker processes (one torch thread each).
"""

import contextlib
import csv
import json
import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rdfer import stats
from rdfer.analysis.compare import pair_predictions
from rdfer.config import load_config
from rdfer.engine.features import build_feature_cache
from rdfer.engine.fit import fit
from rdfer.engine.settings import check_run_settings
from rdfer.errors import RdferError
from rdfer.figures.study import fig_study
from rdfer.losses import STRATEGIES
from rdfer.synth import write_synthetic
from rdfer.utils.bounded_tables import read_json
from rdfer.utils.outputs import atomic_open, open_log, read_jsonl, write_text
from rdfer.utils.progress import progress_bar
from rdfer.utils.runlock import run_lock

STUDY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "study.yaml"
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class NoiseSetting:
    name: str
    noise_type: str  # symmetric | pair
    noise: float  # share of labels flipped


SETTINGS = (NoiseSetting("symmetric_20", "symmetric", 0.2), NoiseSetting("symmetric_40", "symmetric", 0.4),
            NoiseSetting("pair_30", "pair", 0.3))
# The benchmark's easier variant (the demo's, and the study's before the hard kinds): vanilla CE on clean
# labels reaches about 90% WAR.
EASY_DATA = dict(layout="dfew", clips=1000, size=64, actors=10, nuisance=0.3, seed=0)
# As hard as DFEW: every difficulty at full strength, a pool of 4 actors; vanilla CE on clean labels
# lands near DFEW's ~69% WAR (70.5 measured; README, docs/method.md).
HARD_DATA = dict(layout="dfew", clips=1000, size=64, actors=4, nuisance=1.0, seed=0)
# The strategies of --quick: CE, the paper's method and its big-loss rival, the three noisy-label
# losses and their agreement combinations (the full grid adds three Table IV ablations).
QUICK_STRATEGIES = ("ce", "bigloss_weaken", "agreement", "gce", "sce", "elr", "gce_agreement", "sce_agreement",
                    "elr_agreement")

# Columns of the table: key in the last epoch's metrics.jsonl line -> heading.
COLUMNS = {
    "war": "WAR",
    "uar": "UAR",
    "clip_acc": "clip acc",
    "flipped_true_acc": "flipped: true label",
    "memorised": "flipped: given label",
    "zeroed_precision": "w=0 precision",
    "zeroed_recall": "w=0 recall",
    "small_loss_precision": "small-loss precision (control)",
    "zeroed_hard": "hard clips w=0",
    "upweighted_hard": "hard clips w>1",
    "upweighted_hard_precision": "w>1 hard precision",
    "best_war": "best WAR",
    "best_epoch": "best epoch",
}


def run_study(out, *, jobs: int = 2, seeds=SEEDS, strategies=STRATEGIES, settings=SETTINGS, overrides=(),
              clips: int = HARD_DATA["clips"], progress: bool = True, data: dict = HARD_DATA) -> Path:
    """Run the study into `out`; returns the path of study.md (one study at a time holds `out`)."""
    out = Path(out)
    with run_lock(out, "study"):
        return _run_study(out, jobs=jobs, seeds=seeds, strategies=strategies, settings=settings,
                          overrides=overrides, clips=clips, progress=progress, data=data)


# At most this many training runs in one study (seeds x noise settings x strategies): the full grid of
# 3 seeds x 3 settings x 12 strategies is 108; a mistyped list must not start weeks of work.
MAX_STUDY_RUNS = 1000


def check_study(out, *, seeds, strategies, settings, overrides, clips, data: dict = HARD_DATA) -> list:
    """Every setting of a study checked, nothing written: the grid's size, every run's config (with --set) and
    whether `out` can hold this study. Returns the configs (one per strategy)."""
    out = Path(out)
    runs = len(seeds) * len(settings) * len(strategies)
    if not runs:
        raise RdferError("the study has no runs: give at least one seed, noise setting and strategy")
    if runs > MAX_STUDY_RUNS:
        raise RdferError(f"--seeds x --settings x --strategies is {len(seeds)} x {len(settings)} x {len(strategies)} = "
                         f"{runs} training runs, more than the {MAX_STUDY_RUNS} a study may have; give shorter lists")
    configs = []
    for strategy in strategies:  # every run's settings checked before minutes of rendering and caching
        origins: dict = {}
        configs.append(run_config(out / "data" / settings[0].name, strategy, (f"seed={seeds[0]}", *overrides),
                                  origins))
        check_run_settings(configs[-1], origins=origins, default=f"config file {STUDY_CONFIG}")
    if out.exists() and not out.is_dir():
        raise RdferError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "study.json").is_file():
        raise RdferError(f"--out {out} is not empty and holds no earlier study (study.json); choose a new folder")
    if (out / "study.json").is_file():  # finished runs are reused only for the same data and training settings
        before = read_json(out / "study.json", "study.json")
        if before.get("clips") != clips or list(before.get("overrides", [])) != list(overrides):
            raise RdferError(f"{out} holds a study of --clips {before.get('clips')} with --set "
                             f"{before.get('overrides') or 'none'}, not --clips {clips} with --set "
                             f"{list(overrides) or 'none'}: its runs cannot be reused; give a new --out")
        if before.get("data", data) != json.loads(json.dumps(data)):
            raise RdferError(f"{out} holds a study of other benchmark data ({before.get('data')}); its runs cannot "
                             "be reused: give a new --out")
    return configs


def _run_study(out: Path, *, jobs, seeds, strategies, settings, overrides, clips, progress, data) -> Path:
    check_study(out, seeds=seeds, strategies=strategies, settings=settings, overrides=overrides, clips=clips,
                data=data)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "study.json", json.dumps({"clips": clips, "seeds": list(seeds), "strategies": list(strategies),
                                                "settings": [s.name for s in settings], "data": data,
                                                "overrides": list(overrides)}, indent=1) + "\n")
    started = time.time()
    for setting in settings:
        prepare_data(out / "data" / setting.name, setting, clips, progress, data)
    prepared = time.time()

    # Seed by seed: a study stopped early has whole seeds finished (rerun it with --seeds to tabulate them).
    tasks = [(setting.name, strategy, seed) for seed in seeds for setting in settings for strategy in strategies]
    todo = [t for t in tasks if not (_run_dir(out, *t) / "final.json").is_file()]
    print(f"{len(tasks)} runs ({len(tasks) - len(todo)} already finished), {jobs} at a time", flush=True)
    arguments = [(str(out), *t, tuple(overrides)) for t in todo]
    bar = progress_bar(total=len(todo), enabled=progress, desc="study runs", dynamic_ncols=True)
    if jobs > 1 and len(todo) > 1:
        # forkserver: a forked child of a process that ran OpenCV threads can hang (see data/frames.py).
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_ignore_interrupts) as pool:
            try:
                for future in as_completed([pool.submit(_train_one, *a) for a in arguments]):
                    future.result()
                    bar.update()
            except KeyboardInterrupt:  # Ctrl-C: one line from the CLI; the runs in flight resume on a rerun
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    else:
        for a in arguments:
            _train_one(*a)
            bar.update()
    bar.close()

    rows = [_row(out, *t) for t in tasks]
    _write_csv(out / "study.csv", rows)
    summary = _summarise(rows, settings, strategies, _columns(rows))
    comparisons = compare_strategies(rows, lambda *t: _correctness(out, *t), settings, strategies)
    _write_csv(out / "comparisons.csv", comparisons)
    fig_study(out / "study.png", summary, _memorisation(out, settings, strategies, seeds), settings, strategies)
    report = out / "study.md"
    write_text(report, _report(summary, settings, strategies, seeds, clips, data, prepared - started,
                               time.time() - prepared, comparisons))
    print(f"study finished in {time.time() - started:.0f}s: open {report}", flush=True)
    return report


def prepare_data(folder: Path, setting: NoiseSetting, clips: int, progress: bool, data: dict = EASY_DATA) -> None:
    """Render the benchmark (`data`: write_synthetic's options) and cache its features, unless an earlier call did."""
    if not (folder / "ground_truth.csv").is_file():
        print(f"rendering {setting.name}: {clips} clips, {setting.noise:.0%} {setting.noise_type} label noise",
              flush=True)
        write_synthetic(folder, noise=setting.noise, noise_type=setting.noise_type, progress=progress,
                        **{**data, "clips": clips})
    if not (folder / "features.npz").is_file():
        print(f"caching the frozen encoder's features of {setting.name}", flush=True)
        build_feature_cache(load_config(STUDY_CONFIG, (f"data.root={folder}",)), folder / "features.npz",
                            progress=progress)


def run_config(data: Path, strategy: str, overrides=(), origins=None):
    """configs/study.yaml on the benchmark in `data` (and its features.npz) with `loss.strategy`."""
    return load_config(STUDY_CONFIG, (f"data.root={data}", f"data.features={data / 'features.npz'}",
                                      f"loss.strategy={strategy}", *overrides), origins)


def _run_dir(out: Path, setting: str, strategy: str, seed: int) -> Path:
    return Path(out) / "runs" / setting / strategy / f"seed_{seed}"


def _ignore_interrupts() -> None:
    """Worker initializer: Ctrl-C reaches the whole process group; only the parent answers it (no worker
    tracebacks), and it stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _train_one(out: str, setting: str, strategy: str, seed: int, overrides: tuple) -> None:
    """Worker: one training run, its epoch lines in the run's log.txt."""
    run_dir = _run_dir(Path(out), setting, strategy, seed)
    config = run_config(Path(out) / "data" / setting, strategy, (f"seed={seed}", *overrides))
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    run_dir.mkdir(parents=True, exist_ok=True)
    with open_log(run_dir / "log.txt") as log, contextlib.redirect_stdout(log):
        fit(config, run_dir, resume=resume, progress=False)


def _row(out: Path, setting: str, strategy: str, seed: int) -> dict:
    """One run's last epoch (and its best epoch by validation WAR), per-kind shares flattened to kind columns."""
    run_dir = _run_dir(out, setting, strategy, seed)
    last = read_jsonl(run_dir / "metrics.jsonl")[-1]
    best = json.loads((run_dir / "final.json").read_text())["best"]
    row = {"noise": setting, "strategy": strategy, "seed": seed, "epochs": last["epoch"]}
    row.update({key: last.get(key) for key in COLUMNS})
    row.update(best_war=best["war"], best_epoch=best["epoch"])
    for kind, shares in (last.get("hard_kinds") or {}).items():
        row[f"zeroed_{kind}"], row[f"upweighted_{kind}"] = shares["zeroed"], shares["upweighted"]
    return row


def _columns(rows: list) -> list:
    """COLUMNS, then the per-kind columns the rows have."""
    return list(COLUMNS) + [k for k in rows[0] if k.startswith(("zeroed_", "upweighted_")) and k not in COLUMNS]


def _write_csv(path: Path, rows: list) -> None:
    with atomic_open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _summarise(rows: list, settings, strategies, columns) -> dict:
    """{(setting, strategy): {column: (mean, sample sd) or None}} over seeds."""
    summary = {}
    for setting in settings:
        for strategy in strategies:
            mine = [r for r in rows if r["noise"] == setting.name and r["strategy"] == strategy]
            cells = {}
            for key in columns:
                values = [r[key] for r in mine if r.get(key) is not None]
                cells[key] = stats.mean_sd(values) if values else None
            summary[setting.name, strategy] = cells
    return summary


def _correctness(out: Path, setting: str, reference: str, strategy: str, seed: int):
    """(reference right, strategy right) per test clip of one seed's two runs, paired by clip id."""
    paired = pair_predictions(_run_dir(out, setting, reference, seed), _run_dir(out, setting, strategy, seed))
    return paired["label"] == paired["pred_a"], paired["label"] == paired["pred_b"]


def compare_strategies(rows: list, correctness, settings, strategies, reference: str = "ce",
                       alpha: float = 0.05) -> list:
    """Each strategy against `reference` in each setting: last-epoch test WAR, B minus reference.

    Two tests per comparison, each Holm-corrected over the whole table (every setting and strategy):
    - paired over seeds: the paired t-test of the per-seed WAR differences (the runs of one seed share
      the seed); this is the test the wording follows, since a seed is what a rerun changes;
    - pooled McNemar: the exact McNemar test on the per-clip correctness of every seed's pair,
      pooled (the runs of a setting share one test set); it speaks to test-clip noise only.

    Args:
        rows: study.csv's rows (noise, strategy, seed, war, ...).
        correctness: called as correctness(setting, reference, strategy, seed) -> (ref right, B right),
            two (N,) bool arrays over the same clips.

    Returns:
        One dict per comparison: noise, strategy, reference, seeds, war_diff (mean over seeds),
        sd_diff (sample sd), t_p, t_holm_p, only_reference, only_strategy, mcnemar_p, mcnemar_holm_p,
        verdict (the words the report uses).
    """
    war = {(r["noise"], r["strategy"], r["seed"]): r["war"] for r in rows if r.get("war") is not None}
    found = []
    if reference not in strategies:
        return found
    for setting in settings:
        for strategy in strategies:
            if strategy == reference:
                continue
            seeds = sorted(seed for (noise, name, seed) in war if noise == setting.name and name == strategy
                           and (noise, reference, seed) in war)
            paired = stats.paired_tests([war[setting.name, reference, s] for s in seeds],
                                        [war[setting.name, strategy, s] for s in seeds])
            only_reference = only_strategy = 0
            for seed in seeds:
                mcnemar = stats.mcnemar_exact(*correctness(setting.name, reference, strategy, seed))
                only_reference += mcnemar["only_a"]
                only_strategy += mcnemar["only_b"]
            pooled = stats.mcnemar_exact([True] * only_reference + [False] * only_strategy,
                                         [False] * only_reference + [True] * only_strategy)
            found.append({"noise": setting.name, "strategy": strategy, "reference": reference, "seeds": len(seeds),
                          "war_diff": paired["mean_diff"], "sd_diff": paired["sd_diff"], "t_p": paired["t_p"],
                          "only_reference": only_reference, "only_strategy": only_strategy,
                          "mcnemar_p": pooled["p"]})
    for key in ("t_p", "mcnemar_p"):
        for item, adjusted in zip(found, stats.holm([c[key] for c in found])):
            item[key.replace("_p", "_holm_p")] = adjusted
    for item in found:
        item["verdict"] = stats.verdict(item["war_diff"], item["t_holm_p"], reference, alpha).words
    return found


def _cell(value, key: str) -> str:
    if value is None:
        return "-"
    mean, sd = value
    if key in ("war", "uar", "best_war"):
        return f"{mean:.1f} ± {sd:.1f}"
    if key == "best_epoch":
        return f"{mean:.0f} ± {sd:.0f}"
    return f"{100 * mean:.0f} ± {100 * sd:.0f}"


def _report(summary: dict, settings, strategies, seeds, clips: int, data: dict, prepare_s: float,
            train_s: float, comparisons: list = ()) -> str:
    flags = f"--nuisance {data['nuisance']:g}" + (f" --actors {data['actors']}" if data.get("actors") else "")
    lines = [
        "# rdfer study: loss strategies under known label noise",
        "",
        f"Synthetic DFER benchmark (`rdfer synth {flags} --size {data['size']}`, {clips} clips, fold 1: "
        f"{round(0.8 * clips)} train with flipped labels, {round(0.2 * clips)} clean test), `configs/study.yaml` "
        "(rdfer_tiny over frozen, cached mini-Xception features), "
        f"{len(seeds)} seeds; mean ± sample sd (ddof 1) over seeds of the last epoch.",
        "",
        "- **WAR / UAR**: test set, last epoch. **best WAR / best epoch**: the test WAR of the evaluated epoch "
        "with the highest WAR on the validation part of the training split (data.val_fraction of each class, "
        "held out of training; the test split chooses nothing).",
        "- **clip acc**: share of the test clips' 4 clip predictions equal to the label (agreement rests on them).",
        "- **flipped: true label / given label**: share of the truly flipped training clips that the model, in "
        "the last epoch's training pass, predicts as their true label / as their given (wrong) label "
        "(memorisation).",
        "- **w=0 precision / recall**: the training clips weighted 0 in the last epoch against the truly flipped "
        "ones ('-': the strategy weights nothing 0).",
        "- **small-loss precision (control)**: the small-loss trick at the same budget as the agreement partition's "
        "noisy set (the same number of each batch, `loss.t_n`, chosen by the largest loss alone) against the truly "
        "flipped clips, last epoch; where the agreement strategies weight their noisy set 0, the w=0 precision "
        "is to be read beside it.",
        "- **hard clips w=0 / w>1**: share of the truly hard training clips (`is_hard`: a difficulty that makes "
        "clip predictions vary, docs/method.md) weighted 0 / up-weighted: the paper's claim is that big-loss "
        "methods discard hard clips and agreement does not.",
        "- **w>1 hard precision**: share of the up-weighted clips that are truly hard.",
        "",
    ]
    for setting in settings:
        lines += [f"## {setting.noise:.0%} {setting.noise_type} noise", "",
                  "| strategy | " + " | ".join(COLUMNS.values()) + " |",
                  "|---|" + "---|" * len(COLUMNS)]
        for strategy in strategies:
            cells = summary[setting.name, strategy]
            lines.append(f"| {strategy} | " + " | ".join(_cell(cells[k], k) for k in COLUMNS) + " |")
        lines.append("")
    if comparisons:
        lines += _comparison_section(comparisons, settings)
    kinds = [k[len("zeroed_"):] for k in next(iter(summary.values())) if k.startswith("zeroed_")
             and k not in COLUMNS]
    if kinds:
        lines += ["## Training clips of each difficulty: weighted 0 / up-weighted (%, last epoch)", "",
                  "Mean over seeds; a clip may hold several difficulties.", ""]
        for setting in settings:
            lines += [f"### {setting.noise:.0%} {setting.noise_type} noise", "",
                      "| strategy | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
            for strategy in strategies:
                cells = summary[setting.name, strategy]
                lines.append(f"| {strategy} | " + " | ".join(
                    f"{_mean(cells[f'zeroed_{k}'])} / {_mean(cells[f'upweighted_{k}'])}" for k in kinds) + " |")
            lines.append("")
    lines += ["![WAR and memorisation](study.png)", "",
              f"Wall time: {prepare_s:.0f} s rendering and caching, {train_s:.0f} s training "
              "(steps finished by an earlier call are reused).", ""]
    return "\n".join(lines)


def _comparison_section(comparisons: list, settings) -> list:
    reference = comparisons[0]["reference"]
    lines = [f"## Against {reference}", "",
             f"Last-epoch test WAR, strategy minus {reference}, in points. **paired over seeds**: mean and sample "
             f"sd of the per-seed differences (each seed's runs share it) and the paired t-test; **pooled "
             f"McNemar**: the test clips right by one run of a seed's pair only, summed over seeds, and the exact "
             f"McNemar test on them (test-clip noise only). Both p are Holm-corrected over the "
             f"{len(comparisons)} comparisons of this table. The verdict follows the corrected paired t-test at "
             "0.05 (rdfer.stats, docs/statistics.md); with 3 seeds only a large, steady difference can pass it.", ""]
    for setting in settings:
        mine = [c for c in comparisons if c["noise"] == setting.name]
        if not mine:
            continue
        lines += [f"### {setting.noise:.0%} {setting.noise_type} noise", "",
                  f"| strategy | seeds | WAR diff | sd | paired t p | Holm p | right alone: strategy / {reference} "
                  "| McNemar p | Holm p | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
        for c in mine:
            lines.append(f"| {c['strategy']} | {c['seeds']} | {c['war_diff']:+.1f} | {c['sd_diff']:.1f} | "
                         f"{_p(c['t_p'])} | {_p(c['t_holm_p'])} | {c['only_strategy']} / {c['only_reference']} | "
                         f"{_p(c['mcnemar_p'])} | {_p(c['mcnemar_holm_p'])} | {c['verdict']} |")
        lines.append("")
    return lines


def _p(value) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.2g}"


def _mean(value) -> str:
    return "-" if value is None else f"{100 * value[0]:.0f}"


def _memorisation(out: Path, settings, strategies, seeds) -> dict:
    """{(setting, strategy): per seed, the `memorised` share of every epoch (metrics.jsonl)}."""
    curves = {}
    for setting in settings:
        for strategy in strategies:
            curves[setting.name, strategy] = [
                [record.get("memorised") or 0.0
                 for record in read_jsonl(_run_dir(out, setting.name, strategy, seed) / "metrics.jsonl")]
                for seed in seeds]
    return curves


def default_jobs() -> int:
    return max(1, min(2, len(os.sched_getaffinity(0))))
