"""`rdfer cv`: the 5 folds of DFEW or MAFW, each fold, and mean +- sample sd with a 95% interval."""

import json
from dataclasses import replace
from pathlib import Path

from rdfer import stats
from rdfer.config import check_reusable
from rdfer.engine.fit import fit
from rdfer.errors import RdferError
from rdfer.schema import TrainConfig
from rdfer.utils.outputs import write_text
from rdfer.utils.runlock import run_lock

# The datasets with official folds (data.fold); the others have one train/test split.
FOLDED = ("dfew", "mafw")


def run_cv(config: TrainConfig, out_dir, folds=(1, 2, 3, 4, 5), progress: bool = True) -> dict:
    """Train and test every fold into OUT/fold_K, then write OUT/cv_summary.{json,md}.

    A fold whose final.json exists is not trained again, and a fold with a
    last.pt but no final.json is resumed: finished work is never lost. Either
    is reused only when its config.yaml is this config (else one line says what
    differs); one cv run at a time holds OUT.
    """
    check_cv(config)
    out_dir = Path(out_dir)
    with run_lock(out_dir, "cv"):
        return _run_folds(config, out_dir, folds, progress)


def check_cv(config: TrainConfig) -> None:
    """Stop (one line) unless `config`'s dataset has official folds to cross-validate."""
    if config.data.dataset not in FOLDED:
        raise RdferError(f"rdfer cv trains the official folds of DFEW and MAFW; data.dataset {config.data.dataset} "
                         f"has none (each fold would train the same split again): use rdfer train for its split, or "
                         "rdfer audit --folds K for k-fold held-out predictions")


def _run_folds(config: TrainConfig, out_dir: Path, folds, progress: bool) -> dict:
    results = {}
    for fold in folds:
        run_dir = out_dir / f"fold_{fold}"
        fold_config = replace(config, data=replace(config.data, fold=fold))
        check_reusable(run_dir, fold_config)
        if (run_dir / "final.json").exists():
            print(f"fold {fold}: already finished, reading {run_dir / 'final.json'}", flush=True)
            results[fold] = json.loads((run_dir / "final.json").read_text())
            continue
        print(f"fold {fold}: training into {run_dir}", flush=True)
        resume = (run_dir / "checkpoints" / "last.pt").exists()
        results[fold] = fit(fold_config, run_dir, resume=resume, progress=progress)
    summary = summarize_folds(results)
    write_text(out_dir / "cv_summary.json", json.dumps(summary, indent=2))
    write_text(out_dir / "cv_summary.md", folds_markdown(summary))
    print(folds_markdown(summary))
    return summary


def summarize_folds(results: dict) -> dict:
    """Per-fold WAR/UAR (last and best epoch), their mean, sample sd (ddof 1) and the 95% t interval
    of the mean (rdfer.stats)."""
    summary = {"folds": {}, "mean": {}, "std": {}, "ci95": {}}
    for fold, final in results.items():
        summary["folds"][str(fold)] = {f"{which}_{m}": final[which][m] for which in ("last", "best")
                                       for m in ("war", "uar")}
    for key in ("last_war", "last_uar", "best_war", "best_uar"):
        values = [f[key] for f in summary["folds"].values()]
        summary["mean"][key], summary["std"][key] = stats.mean_sd(values)
        summary["ci95"][key] = stats.mean_ci(values)
    return summary


def folds_markdown(summary: dict) -> str:
    keys = ("last_war", "last_uar", "best_war", "best_uar")
    lines = ["| fold | WAR (last) | UAR (last) | WAR (best) | UAR (best) |", "|---|---|---|---|---|"]
    for fold, values in summary["folds"].items():
        lines.append(f"| {fold} | " + " | ".join(f"{values[k]:.2f}" for k in keys) + " |")
    lines.append("| mean ± sample sd | " + " | ".join(f"{summary['mean'][k]:.2f} ± {summary['std'][k]:.2f}"
                                                      for k in keys) + " |")
    lines.append("| 95% interval of the mean | " + " | ".join(
        "-" if summary["ci95"][k][0] != summary["ci95"][k][0] else
        f"[{summary['ci95'][k][0]:.2f}, {summary['ci95'][k][1]:.2f}]" for k in keys) + " |")
    lines += ["", "sd: sample standard deviation over folds (ddof 1); interval: mean ± t(0.975, folds - 1) × sd / "
              "√folds (docs/statistics.md). 'best': the epoch chosen on the validation part of the training "
              "set, scored on the test fold."]
    return "\n".join(lines) + "\n"
