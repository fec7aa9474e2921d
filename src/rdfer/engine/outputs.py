"""What a run writes besides checkpoints: per-clip predictions and noisy-set scores.

predictions.csv columns: clip_id, path, label, prediction, agreement,
clip_predictions (the class index of each of the 4 clips, space-separated), mu,
delta, then p_<Class> for every class in order. `label` and `prediction` are
class indices; `mu` and `delta` are empty for models without re-sampling.
features.npy holds the (N, D) float32 features, rows aligned with the CSV.
"""

import csv
import math
from pathlib import Path
from typing import Optional

import numpy as np

from rdfer.errors import RdferError
from rdfer.labels import clip_key


def write_predictions(out_dir, manifest, result: dict, classes: list) -> Path:
    """Write predictions.csv and features.npy for an `evaluate` result."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "predictions.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "path", "label", "prediction", "agreement", "clip_predictions", "mu", "delta"]
                        + [f"p_{name}" for name in classes])
        for row, index in enumerate(result["index"]):
            record = manifest.records[int(index)]
            writer.writerow([record.clip_id, record.path, int(result["label"][row]), int(result["prediction"][row]),
                             f"{result['agreement'][row]:.2f}",
                             " ".join(str(int(c)) for c in result["clip_predictions"][row]),
                             _blank_nan(result["mu"][row]),
                             _blank_nan(result["delta"][row])]
                            + [f"{p:.5f}" for p in result["probabilities"][row]])
    np.save(out_dir / "features.npy", result["features"].astype(np.float32))
    return path


def _blank_nan(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


def read_ground_truth(data_config, manifest) -> Optional[set]:
    """Train-set indices whose labels are known to be flipped (synthetic benchmark).

    Reads `data.ground_truth`, or ROOT/ground_truth.csv when that exists; returns
    None when there is no ground truth (real datasets).
    """
    path = data_config.ground_truth or (Path(data_config.root) / "ground_truth.csv" if data_config.root else None)
    if path is None or not Path(path).is_file():
        if data_config.ground_truth:
            raise RdferError(f"data.ground_truth file {path} not found")
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"video_name", "is_noisy"} <= set(rows[0]):
        raise RdferError(f"{path} needs the columns video_name and is_noisy")
    noisy_names = {clip_key(r["video_name"]) for r in rows if r["is_noisy"].strip() in ("1", "True", "true")}
    return {i for i, record in enumerate(manifest.records) if clip_key(record.clip_id) in noisy_names}


def epoch_metrics(flagged: list, truly_noisy: Optional[set]) -> dict:
    """Precision and recall of the epoch's noisy set against the ground truth (if known)."""
    if truly_noisy is None:
        return {}
    from rdfer.losses import noisy_precision_recall

    precision, recall = noisy_precision_recall(set(flagged), truly_noisy)
    return {"noisy_precision": precision, "noisy_recall": recall, "noisy_flagged": len(set(flagged))}
