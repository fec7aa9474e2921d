"""Two runs compared clip by clip: `rdfer compare RUN_A RUN_B --out DIR` -> DIR/compare.json.

Reads each run's predictions.csv (a `rdfer train` run folder or an `rdfer eval`
folder), pairs the clips by clip id, and measures B minus A in WAR and UAR
with a paired bootstrap over the test clips, plus the exact McNemar test on
per-clip correctness (rdfer.stats; docs/statistics.md).
"""

import json
from pathlib import Path

import numpy as np

from rdfer import stats
from rdfer.analysis.run import Predictions, read_config, read_predictions
from rdfer.errors import RdferError
from rdfer.utils.outputs import write_text

COMPARE_FILE = "compare.json"


def _predictions(run_dir) -> Predictions:
    directory = Path(run_dir)
    if not directory.is_dir():
        raise RdferError(f"run folder {directory} not found")
    classes = (read_config(directory).get("data") or {}).get("classes")
    return read_predictions(directory / "predictions.csv", classes)


def _by_clip(predictions: Predictions, path: Path) -> dict:
    """{clip id: row index}, refusing a clip id that appears twice."""
    index = {}
    for i, clip in enumerate(predictions.clip_id):
        if clip in index:
            raise RdferError(f"{path}: clip {clip!r} appears twice (lines {index[clip] + 2} and {i + 2}); "
                             "rewrite the file with `rdfer eval`")
        index[clip] = i
    return index


def pair_predictions(run_a, run_b) -> dict:
    """The two runs' predictions of the same clips, sorted by clip id (so that neither file's row
    order nor which run is A changes which clips a bootstrap seed draws).

    Returns:
        {"clip_id": (N,) tuple, "label": (N,), "pred_a": (N,), "pred_b": (N,), "classes": tuple}.

    Raises:
        RdferError: a predictions.csv is missing or malformed, the runs name different classes,
            their clip sets differ (how many on each side, and one example), or a clip has
            different true labels in the two files.
    """
    path_a, path_b = Path(run_a) / "predictions.csv", Path(run_b) / "predictions.csv"
    a, b = _predictions(run_a), _predictions(run_b)
    if tuple(a.classes) != tuple(b.classes):
        raise RdferError(f"{path_a} names classes {', '.join(a.classes)} but {path_b} names "
                         f"{', '.join(b.classes)}: runs on different class sets cannot be paired")
    index_a, index_b = _by_clip(a, path_a), _by_clip(b, path_b)
    only_a, only_b = sorted(set(index_a) - set(index_b)), sorted(set(index_b) - set(index_a))
    if only_a or only_b:
        example = f"e.g. {only_a[0]!r} only in A" if only_a else f"e.g. {only_b[0]!r} only in B"
        raise RdferError(f"{path_a} and {path_b} hold different clips ({len(only_a)} only in A, {len(only_b)} only "
                         f"in B, {example}): compare runs evaluated on the same test set")
    order = sorted(index_a)
    rows_a = np.array([index_a[clip] for clip in order], dtype=np.int64)
    rows_b = np.array([index_b[clip] for clip in order], dtype=np.int64)
    mismatch = np.flatnonzero(a.label[rows_a] != b.label[rows_b])
    if mismatch.size:
        first = mismatch[0]
        raise RdferError(f"clip {order[first]!r} has label {a.classes[a.label[rows_a[first]]]} in {path_a} but "
                         f"{b.classes[b.label[rows_b[first]]]} in {path_b} ({mismatch.size} clips differ): "
                         "the runs were scored against different labels")
    return {"clip_id": tuple(order), "label": a.label[rows_a], "pred_a": a.prediction[rows_a],
            "pred_b": b.prediction[rows_b], "classes": tuple(a.classes)}


def compare_pair(run_a, run_b, *, resamples: int = stats.DEFAULT_RESAMPLES, seed: int = 0,
                 level: float = stats.DEFAULT_LEVEL) -> dict:
    """B minus A on the clips both runs predicted, JSON-ready.

    Returns:
        {"run_a", "run_b": folders; "n_clips"; "a", "b": {"war", "war_ci", "uar", "uar_ci"};
        "war_diff", "uar_diff": B minus A in points; "war_diff_ci", "uar_diff_ci": [low, high]
        of the paired bootstrap; "mcnemar_p" and "mcnemar": {"only_a", "only_b", "both", "neither"};
        "resamples", "seed", "level"}.
    """
    paired = pair_predictions(run_a, run_b)
    y, pred_a, pred_b = paired["label"], paired["pred_a"], paired["pred_b"]
    k = len(paired["classes"])
    options = dict(resamples=resamples, seed=seed, level=level, num_classes=k)
    result = {"run_a": str(run_a), "run_b": str(run_b), "n_clips": len(y)}
    for side, pred in (("a", pred_a), ("b", pred_b)):
        result[side] = {}
        for metric in stats.METRICS:
            one = stats.bootstrap_ci(y, pred, metric, **options)
            result[side][metric], result[side][f"{metric}_ci"] = one["value"], one["ci"]
    for metric in stats.METRICS:
        diff = stats.paired_bootstrap(y, pred_a, pred_b, metric, **options)
        result[f"{metric}_diff"], result[f"{metric}_diff_ci"] = diff["diff"], diff["ci"]
    mcnemar = stats.mcnemar_exact(y == pred_a, y == pred_b)
    result["mcnemar_p"] = mcnemar.pop("p")
    result["mcnemar"] = mcnemar
    result.update(resamples=resamples, seed=seed, level=level)
    return result


def format_comparison(result: dict) -> str:
    """The lines `rdfer compare RUN_A RUN_B` prints."""
    level = f"{100 * result['level']:g}%"
    lines = [f"{result['n_clips']} test clips paired by clip id; {level} intervals from a paired bootstrap over "
             f"clips ({result['resamples']} resamples, seed {result['seed']})"]
    for side in ("a", "b"):
        run = result[side]
        lines.append(f"{side.upper()} {result['run_' + side]}: WAR {run['war']:.2f} [{run['war_ci'][0]:.2f}, "
                     f"{run['war_ci'][1]:.2f}]  UAR {run['uar']:.2f} [{run['uar_ci'][0]:.2f}, {run['uar_ci'][1]:.2f}]")
    for metric in stats.METRICS:
        low, high = result[f"{metric}_diff_ci"]
        lines.append(f"{metric}_diff (B - A): {result[f'{metric}_diff']:+.2f} points [{low:+.2f}, {high:+.2f}]")
    m = result["mcnemar"]
    lines.append(f"mcnemar_p: {result['mcnemar_p']:.4g} (right by A alone {m['only_a']}, by B alone {m['only_b']}, "
                 f"both {m['both']}, neither {m['neither']})")
    return "\n".join(lines)


def write_comparison(run_a, run_b, out_dir, **options) -> tuple[Path, dict]:
    """`compare_pair` written to out_dir/compare.json (atomically); returns (its path, the result)."""
    result = compare_pair(run_a, run_b, **options)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RdferError(f"--out {out_dir} is a file; give a folder for {COMPARE_FILE}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / COMPARE_FILE
    write_text(path, json.dumps(result, indent=2) + "\n")
    return path, result
