"""What a run writes besides checkpoints: per-clip predictions and noisy-set scores.

predictions.csv columns: clip_id, path, label, prediction, agreement,
clip_predictions (the class index of each of the 4 clips, space-separated),
clip_majority (their most frequent class; ties to the higher mean clip
probability), mu, delta, then p_<Class> for every class in order. `label` and `prediction` are
class indices; `mu` and `delta` are empty for models without re-sampling.
features.npy holds the (N, D) float32 features, rows aligned with the CSV.
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from rdfer.errors import RdferError
from rdfer.labels import clip_key
from rdfer.losses import NOISY, agreement_histogram, noisy_precision_recall
from rdfer.models.detector import window_fractions
from rdfer.stats import correlation_ci
from rdfer.utils.ground_truth import GROUND_TRUTH_FILE, KIND_COLUMNS, read_ground_truth
from rdfer.utils.outputs import atomic_open


# predictions.csv of a run (and of `rdfer eval`), then p_<Class> for every class in order.
PREDICTION_COLUMNS = ("clip_id", "path", "label", "prediction", "agreement", "clip_predictions", "clip_majority",
                      "mu", "delta")


def write_predictions(out_dir, manifest, result: dict, classes: list) -> Path:
    """Write predictions.csv and features.npy for an `evaluate` result."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "predictions.csv"
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*PREDICTION_COLUMNS, *(f"p_{name}" for name in classes)])
        for row, index in enumerate(result["index"]):
            record = manifest.records[int(index)]
            writer.writerow([record.clip_id, record.path, int(result["label"][row]), int(result["prediction"][row]),
                             f"{result['agreement'][row]:.2f}",
                             " ".join(str(int(c)) for c in result["clip_predictions"][row]),
                             int(result["clip_majority"][row]),
                             _blank_nan(result["mu"][row]),
                             _blank_nan(result["delta"][row])]
                            + [f"{p:.5f}" for p in result["probabilities"][row]])
    with atomic_open(out_dir / "features.npy", "wb") as f:
        np.save(f, result["features"].astype(np.float32))
    return path


def _blank_nan(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


@dataclass(frozen=True)
class GroundTruth:
    """What the synthetic benchmark knows about each training clip (arrays indexed like the manifest)."""

    noisy: np.ndarray  # bool (N,): the given label was flipped
    hard: np.ndarray  # bool (N,): is_hard (holds a difficulty of rdfer.synth.plan.HARD_KINDS)
    true_label: np.ndarray  # int (N,): the true class (0-based), -1 where unknown
    kinds: Optional[dict] = None  # {kind: bool (N,)} per KIND_COLUMNS; None for files without them
    apex: Optional[np.ndarray] = None  # float (N, 2): the apex's first and last frame as fractions of the clip
                                       # (frame j of L spans [j / L, (j + 1) / L]), NaN where unknown


def ground_truth_for(data_config, manifest) -> Optional[GroundTruth]:
    """The ground truth of the manifest's clips (synthetic benchmark), or None (real datasets).

    Reads `data.ground_truth`, or ROOT/ground_truth.csv when that exists
    (`rdfer.utils.ground_truth`). Needs the columns video_name and is_noisy;
    is_hard, true_label and apex_start/apex_end are used when present. Clips the
    file does not list count as clean, not hard, true label and apex unknown.
    """
    path = data_config.ground_truth or (Path(data_config.root) / GROUND_TRUTH_FILE if data_config.root else None)
    if path is None or not Path(path).is_file():
        if data_config.ground_truth:
            raise RdferError(f"data.ground_truth file {path} not found")
        return None
    by_key = read_ground_truth(path)
    count = len(manifest.records)
    noisy, hard, true_label = np.zeros(count, bool), np.zeros(count, bool), np.full(count, -1)
    has_kinds = any(row.kinds is not None for row in by_key.values())
    kinds = {kind: np.zeros(count, bool) for kind in KIND_COLUMNS} if has_kinds else None
    apex = np.full((count, 2), np.nan)
    for i, record in enumerate(manifest.records):
        row = by_key.get(clip_key(record.clip_id))
        if row is None:
            continue
        noisy[i], hard[i] = bool(row.noisy), bool(row.hard)
        if row.true_class is not None:
            true_label[i] = row.true_class
        for kind in row.kinds or ():
            kinds[kind][i] = True
        if row.apex_start is not None and row.apex_end is not None and record.num_frames > 0:
            apex[i] = row.apex_start / record.num_frames, (row.apex_end + 1) / record.num_frames
    return GroundTruth(noisy, hard, true_label, kinds, apex)


def train_metrics(rows: dict, ground_truth: Optional[GroundTruth], n1: int) -> dict:
    """Per-epoch training signals from `train_one_epoch`'s per-sample rows.

    Always: `train_war` and `train_clip_acc` (video and clip predictions against the
    given labels, in the training forward pass), `train_agreement` (histogram).
    With ground truth: `noisy_precision` / `noisy_recall` of the agreement
    partition's noisy set and, beside them, `small_loss_precision` / `small_loss_recall`
    / `small_loss_flagged` of the small-loss trick at the same budget (the same
    number of each batch, chosen by the largest loss alone); `memorised` (share of truly flipped clips predicted as
    their given, wrong label) and `flipped_true_acc` (predicted as their true
    label); `zeroed`, `zeroed_precision` / `zeroed_recall` (the set weighted 0
    against the flipped labels), `zeroed_hard` (share of the truly hard clips with a
    right label weighted 0), `upweighted`, `upweighted_hard_precision` (the set
    weighted above 1 that is truly hard), `upweighted_hard` (share of the truly hard
    clips with a right label weighted above 1) and, when the file has the hard-kind
    columns, `hard_kinds`: {kind: {"n": clips of that kind with a right label,
    "zeroed": share of them weighted 0, "upweighted": share weighted above 1}}. Shares of an
    empty set are None.
    """
    index, label, prediction = rows["index"].astype(int), rows["label"], rows["prediction"]
    metrics = {"train_war": _share(prediction == label),
               "train_clip_acc": float(rows["clip_correct"].sum() / max(n1 * len(index), 1)),
               "train_agreement": agreement_histogram(rows["agreement"], n1)}
    if ground_truth is None:
        return metrics
    flipped, hard = ground_truth.noisy[index], ground_truth.hard[index]
    flagged, zeroed, upweighted = rows["kind"] == NOISY, rows["weight"] == 0, rows["weight"] > 1
    noisy_precision, noisy_recall = noisy_precision_recall(index[flagged], index[flipped])
    metrics.update(
        noisy_precision=noisy_precision, noisy_recall=noisy_recall, noisy_flagged=int(flagged.sum()),
        **_small_loss_control(rows, index, flipped),
        memorised=_share(prediction[flipped] == label[flipped]),
        flipped_true_acc=_share(prediction[flipped] == ground_truth.true_label[index][flipped]),
        zeroed=int(zeroed.sum()), zeroed_precision=_share(flipped[zeroed]), zeroed_recall=_share(zeroed[flipped]),
        zeroed_hard=_share(zeroed[hard & ~flipped]),
        upweighted=int(upweighted.sum()), upweighted_hard_precision=_share(hard[upweighted]),
        upweighted_hard=_share(upweighted[hard & ~flipped]),
    )
    if ground_truth.kinds is not None:  # over the clips with a right label: weighting a flipped one 0 is no loss
        clean = {kind: held[index] & ~flipped for kind, held in ground_truth.kinds.items()}
        metrics["hard_kinds"] = {kind: {"n": int(mask.sum()), "zeroed": _share(zeroed[mask]),
                                        "upweighted": _share(upweighted[mask])} for kind, mask in clean.items()}
    return metrics


def _small_loss_control(rows: dict, index: np.ndarray, flipped: np.ndarray) -> dict:
    """Precision / recall against the flips of the small-loss trick's set (`rows["largest_loss"]`), if recorded."""
    if "largest_loss" not in rows:
        return {}
    largest = rows["largest_loss"].astype(bool)
    precision, recall = noisy_precision_recall(index[largest], index[flipped])
    return {"small_loss_precision": precision, "small_loss_recall": recall, "small_loss_flagged": int(largest.sum())}


def eval_metrics(result: dict) -> dict:
    """Clip-level signals of an `evaluate` result: `clip_acc` (clip predictions against the
    labels), `majority_match` (share of videos whose clip majority equals the video
    prediction) and `test_agreement` (histogram)."""
    clips = result["clip_predictions"]  # (N, n1)
    return {"clip_acc": _share(clips == result["label"][:, None]),
            "majority_match": _share(result["clip_majority"] == result["prediction"]),
            "test_agreement": agreement_histogram(result["agreement"], clips.shape[1])}


def window_metrics(result: dict, ground_truth: Optional[GroundTruth], num_dense: int, num_out: int,
                   classes: Optional[list] = None) -> dict:
    """Where the re-sampled window lies against the true apex, for an `evaluate` result, with its controls.

    Times are fractions of the clip; the 16 re-sampled frames of a model with
    re-sampling lie at `window_fractions(mu, delta)`, those of a model without at
    the centres of 16 equal segments. Empty without apex ground truth; else
    `apex_covered` (share of clips whose window, first to last re-sampled frame,
    covers the apex: at least half of the shorter of the two lies inside the other,
    so a wide window holds half the apex and a narrow one lies half inside it),
    `window_on_apex` (mean share of the re-sampled frames that fall inside the
    apex) and, beside them, `uniform_apex_covered` / `uniform_window_on_apex`: the
    same for the uniform window (mu 0.5, stride num_dense / num_out) on the same
    clips, the control that finds nothing. With re-sampling: `mu_apex_corr`
    (Pearson correlation of mu with the apex centre; None when either is
    constant) and `mu_apex_corr_ci` (95% bootstrap interval over the clips),
    `mu_sd`, `apex_sd` and `delta_mean` (dense frames). Over the clips that show an
    expression (true class not Neutral: a Neutral clip has no apex to find;
    needs `classes`): `mu_apex_corr_expression` and its `_ci`, `expression_clips`.
    The label-free control (`farthest_from_first`: the frame farthest from the
    first), when the result holds it: `farthest_apex_corr`,
    `farthest_apex_corr_expression`, each with its `_ci`.
    """
    if ground_truth is None or ground_truth.apex is None:
        return {}
    rows = result["index"].astype(int)
    apex = ground_truth.apex[rows]  # (N, 2)
    known = ~np.isnan(apex).any(axis=1)
    if not known.any():
        return {}
    apex, mu, delta = apex[known], result["mu"][known], result["delta"][known]
    centre = apex.mean(axis=1)
    resampled = not np.isnan(mu).any()
    uniform = _uniform_times(len(apex), num_dense, num_out)
    if resampled:
        times = window_fractions(torch.as_tensor(mu, dtype=torch.float64), torch.as_tensor(delta, dtype=torch.float64),
                                 num_dense, num_out).numpy()  # (N, K)
    else:
        times = np.broadcast_to((np.arange(num_out) + 0.5) / num_out, (len(apex), num_out))
    metrics = {**_window_on(times, apex), **{f"uniform_{k}": v for k, v in _window_on(uniform, apex).items()}}
    expression = _expression_clips(result, ground_truth, rows, classes)
    expression = None if expression is None else expression[known]
    estimates = {}
    if resampled:
        estimates["mu_apex_corr"] = mu
        metrics.update(mu_sd=float(np.std(mu)), apex_sd=float(np.std(centre)), delta_mean=float(np.mean(delta)))
    if result.get("farthest") is not None:
        estimates["farthest_apex_corr"] = np.asarray(result["farthest"])[known]
    for key, estimate in estimates.items():
        metrics.update(_correlation(key, estimate, centre))
        if expression is not None:
            metrics.update(_correlation(f"{key}_expression", estimate[expression], centre[expression]))
    if expression is not None:
        metrics["expression_clips"] = int(expression.sum())
    return metrics


def _uniform_times(count: int, num_dense: int, num_out: int) -> np.ndarray:
    """(count, num_out) times of the uniform window: the detector's start (mu 0.5, stride num_dense / num_out)."""
    mu = torch.full((count,), 0.5, dtype=torch.float64)
    return window_fractions(mu, torch.full_like(mu, num_dense / num_out), num_dense, num_out).numpy()


def _window_on(times: np.ndarray, apex: np.ndarray) -> dict:
    """`apex_covered` and `window_on_apex` of windows at `times` (N, K) against apexes (N, 2)."""
    inside = (times >= apex[:, :1]) & (times <= apex[:, 1:])  # (N, K)
    overlap = np.minimum(times[:, -1], apex[:, 1]) - np.maximum(times[:, 0], apex[:, 0])
    shorter = np.minimum(times[:, -1] - times[:, 0], apex[:, 1] - apex[:, 0])
    return {"apex_covered": _share(overlap >= shorter / 2), "window_on_apex": float(inside.mean())}


def _expression_clips(result: dict, ground_truth: GroundTruth, rows: np.ndarray, classes) -> Optional[np.ndarray]:
    """(N,) bool: the clip's true class is not Neutral (the ground truth's, else the label); None without a
    Neutral class."""
    names = [str(c).lower() for c in classes or ()]
    if "neutral" not in names:
        return None
    true = ground_truth.true_label[rows]
    true = np.where(true >= 0, true, result["label"])
    return true != names.index("neutral")


def _correlation(key: str, estimate: np.ndarray, centre: np.ndarray) -> dict:
    """{key: r, key_ci: [low, high]} of an apex estimate against the true centres (None when undefined)."""
    r = correlation_ci(estimate, centre)
    return {key: r["value"], f"{key}_ci": r["ci"]}


def _share(mask: np.ndarray) -> Optional[float]:
    """Mean of a boolean array; None when it is empty."""
    return float(np.mean(mask)) if np.size(mask) else None
