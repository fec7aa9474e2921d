"""`rdfer curate` (deprecated for `rdfer audit`): likely mislabelled and hard clips of a labelled set.

The paper's partition applied to a whole dataset instead of a batch: a clip
whose 4 clip predictions agree with each other but not with its label (high
agreement, high loss) is a likely label error; a clip whose clip predictions
disagree (low agreement) is hard.

Predictions of a model that was trained on the very clips it judges have
memorised their labels, noisy ones included. Judge held-out clips instead:
`rdfer cv` gives every DFEW/MAFW clip a prediction from the fold that did not
train on it, and `rdfer curate --predictions cv/fold_*/predictions.csv` reads
them all. `rdfer audit` (rdfer.audit.folds, rdfer.audit.verdict) does the
whole job instead: held-out predictions on the given labels (`rdfer cv`'s test
predictions carry the test lists' labels, which on the synthetic benchmark are
the true ones), cleanlab's second opinion, and scores against a ground truth.
"""

import csv
import json
from pathlib import Path

import numpy as np
import torch

from rdfer.analysis.run import read_predictions
from rdfer.errors import RdferError
from rdfer.labels import clip_key
from rdfer.losses import HARD, NOISY, noisy_precision_recall, partition
from rdfer.utils.ground_truth import read_ground_truth
from rdfer.utils.outputs import atomic_open, refuse_overwriting_inputs, write_text


def curate(prediction_files, out_dir, *, t_h: float = 0.2, t_n: float = 0.1, ground_truth=None) -> dict:
    """Rank every clip, write OUT/suspected_mislabelled.csv, OUT/hard.csv and OUT/curate.json.

    Args:
        prediction_files: predictions.csv paths (held-out predictions are best).
        t_h, t_n: shares of the whole set called hard and likely mislabelled.
        ground_truth: optional ground_truth.csv (synthetic benchmark) to score the suspects.

    Returns:
        the summary written to curate.json.
    """
    parts = [(str(path), read_predictions(path)) for path in prediction_files]
    if not parts:
        raise RdferError("give at least one predictions.csv")
    classes = parts[0][1].classes
    for path, part in parts:
        if part.classes != classes:
            raise RdferError(f"{path} names classes {', '.join(part.classes)}, not {', '.join(classes)}")
    clip_ids = [c for _, p in parts for c in p.clip_id]
    paths = [c for _, p in parts for c in p.path]
    sources = [path for path, p in parts for _ in range(len(p))]
    probs = np.concatenate([p.probabilities for _, p in parts])  # (N, C)
    labels = np.concatenate([p.label for _, p in parts])
    agreement = np.concatenate([p.agreement for _, p in parts])
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))  # CE against the given label
    kinds = partition(torch.from_numpy(agreement).float(), torch.from_numpy(loss).float(), t_h, t_n).numpy()

    out_dir = Path(out_dir)
    refuse_overwriting_inputs([out_dir / name for name in ("suspected_mislabelled.csv", "hard.csv", "curate.json")],
                              [*prediction_files, ground_truth])
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = ["clip_id", "path", "given_label", "predicted", "p_predicted", "p_given", "agreement", "loss", "source"]

    def write(name: str, selected: np.ndarray, order_key: np.ndarray) -> Path:
        path = out_dir / name
        with atomic_open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(fields)
            for i in selected[np.argsort(order_key[selected], kind="stable")]:
                pred = int(probs[i].argmax())
                writer.writerow([clip_ids[i], paths[i], classes[labels[i]], classes[pred],
                                 f"{probs[i, pred]:.3f}", f"{probs[i, labels[i]]:.3f}", f"{agreement[i]:.2f}",
                                 f"{loss[i]:.3f}", sources[i]])
        return path

    suspects = np.flatnonzero(kinds == NOISY)
    hard = np.flatnonzero(kinds == HARD)
    write("suspected_mislabelled.csv", suspects, -loss)
    write("hard.csv", hard, agreement - 1e-6 * loss)
    summary = {"clips": len(labels), "suspected_mislabelled": int(len(suspects)), "hard": int(len(hard)),
               "t_h": t_h, "t_n": t_n}
    if ground_truth is not None:
        flipped = {key for key, row in read_ground_truth(ground_truth).items() if row.noisy}
        truly = [i for i, clip in enumerate(clip_ids) if clip_key(clip) in flipped]
        precision, recall = noisy_precision_recall(suspects.tolist(), truly)
        summary.update(noisy_precision=precision, noisy_recall=recall, truly_mislabelled=len(truly))
    write_text(out_dir / "curate.json", json.dumps(summary, indent=2))
    return summary


def describe(summary: dict, out_dir) -> str:
    lines = [f"{summary['clips']} clips judged: {summary['suspected_mislabelled']} likely mislabelled "
             f"(top {summary['t_n']:.0%}: high agreement, high loss), {summary['hard']} hard "
             f"(bottom {summary['t_h']:.0%} agreement)"]
    if "noisy_precision" in summary:
        lines.append(f"against ground truth: precision {summary['noisy_precision']:.2f}, "
                     f"recall {summary['noisy_recall']:.2f} of {summary['truly_mislabelled']} flipped labels")
    lines.append(f"lists: {Path(out_dir) / 'suspected_mislabelled.csv'}, {Path(out_dir) / 'hard.csv'}")
    return "\n".join(lines)
