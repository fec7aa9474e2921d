"""Evaluation metrics of dynamic FER (docs/method.md), as pure numpy functions.

Every accuracy here is in PERCENT (0-100), the unit the field reports:
WAR (weighted average recall) is the accuracy over all clips; UAR (unweighted
average recall) is the mean of the per-class recalls over the classes present
in `y_true` (a class with no test clip has no recall and is left out, not
counted as 0). Inputs are 1-D integer class indices (numpy arrays, lists or
CPU tensors).
"""

import numpy as np


def _labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows are true classes, columns predicted."""
    y_true, y_pred = _labels(y_true, y_pred)
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes):
        raise ValueError(f"class indices must lie in [0, {num_classes})")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)  # (true, predicted)


def _recalls(confusion: np.ndarray) -> np.ndarray:
    """Per-class recall in percent from a confusion matrix; NaN for classes with no sample."""
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, 100.0 * np.diag(confusion) / support, np.nan)


def war(y_true, y_pred) -> float:
    """Weighted average recall = accuracy over all clips, in percent (NaN for no clip)."""
    y_true, y_pred = _labels(y_true, y_pred)
    return float(100.0 * np.mean(y_true == y_pred)) if y_true.size else float("nan")


def per_class_accuracy(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(num_classes,) recall of each class in percent; NaN for a class absent from y_true."""
    return _recalls(confusion_matrix(y_true, y_pred, num_classes))


def uar(y_true, y_pred, num_classes: int) -> float:
    """Unweighted average recall in percent: the mean per-class recall over classes present in y_true."""
    recalls = per_class_accuracy(y_true, y_pred, num_classes)
    return float(np.nanmean(recalls)) if np.isfinite(recalls).any() else float("nan")


def summarize_confusion(confusion, classes) -> dict:
    """WAR, UAR, per-class accuracy (percent) and the confusion matrix, JSON-ready.

    Args:
        confusion: (K, K) counts, rows true, columns predicted.
        classes: the K class names in index order.

    Returns:
        {"war": float, "uar": float, "per_class": {name: percent or None when
        the class has no clip}, "confusion": list of K lists of int}.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    if confusion.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix {confusion.shape} does not match {len(classes)} classes")
    recalls = _recalls(confusion)
    total = confusion.sum()
    return {
        "war": float(100.0 * np.trace(confusion) / total) if total else float("nan"),
        "uar": float(np.nanmean(recalls)) if np.isfinite(recalls).any() else float("nan"),
        "per_class": {name: (None if np.isnan(r) else float(r)) for name, r in zip(classes, recalls)},
        "confusion": confusion.tolist(),
    }


def summarize(y_true, y_pred, classes) -> dict:
    """`summarize_confusion` of the predictions: war, uar, per_class, confusion (percent, counts)."""
    return summarize_confusion(confusion_matrix(y_true, y_pred, len(classes)), classes)


class RunningConfusion:
    """Accumulates a confusion matrix over batches (the one stateful piece here).

    Under DDP, all-reduce (sum) `matrix` across ranks before `summarize`.
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, y_true, y_pred) -> None:
        """Add a batch of labels and predictions (arrays, lists or tensors on any device)."""
        self.matrix += confusion_matrix(_as_numpy(y_true), _as_numpy(y_pred), self.num_classes)

    def summarize(self, classes) -> dict:
        return summarize_confusion(self.matrix, classes)


def _as_numpy(values):
    # torch tensors (possibly on GPU) without importing torch in this module.
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return values
