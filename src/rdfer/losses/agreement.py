"""Agreement of clip predictions and the hard / noisy / ordinary partition (docs/method.md).

A video is cut into `n1` clips and the classifier labels each one. Clips that
disagree mark a hard sample; clips that agree on a class other than the label
(high agreement, high loss) mark a noisy one.
"""

import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

# Kinds of sample, as stored in the `kinds` tensors of this package.
ORDINARY, HARD, NOISY = 0, 1, 2
KIND_NAMES = ("ordinary", "hard", "noisy")


def agreement(clip_logits: torch.Tensor) -> torch.Tensor:
    """Share of a sample's clip predictions that equal their most frequent class.

    Paper example: clips predicted Neutral, Surprise, Happy, Happy -> 2 of 4 -> 0.5.
    With 4 clips the values are 0.25, 0.5, 0.75 or 1.0.

    Args:
        clip_logits: (B, n1, C) logits (or probabilities) of the n1 clips.

    Returns:
        (B,) float32 agreements in [1/n1, 1]; no gradient flows through them.
    """
    if clip_logits.dim() != 3:
        raise ValueError(f"clip_logits must be (B, n1, C), got shape {tuple(clip_logits.shape)}")
    n1, num_classes = clip_logits.shape[1:]
    votes = F.one_hot(clip_logits.detach().argmax(dim=-1), num_classes)  # (B, n1, C)
    return votes.sum(dim=1).max(dim=1).values.float() / n1  # (B,)


def clip_majority(clip_logits: torch.Tensor) -> torch.Tensor:
    """The most frequent class of each sample's clip predictions, (B, n1, C) -> (B,) long.

    Ties (2 + 2 of 4 clips) go to the tied class with the higher mean clip probability.
    """
    num_classes = clip_logits.shape[-1]
    votes = F.one_hot(clip_logits.detach().argmax(dim=-1), num_classes).sum(dim=1).float()  # (B, C)
    mean_probability = clip_logits.detach().float().softmax(dim=-1).mean(dim=1)  # (B, C), each in [0, 1]
    return (votes + 0.5 * mean_probability).argmax(dim=-1)  # a vote outweighs any probability


def agreement_histogram(agreements, n1: int = 4) -> dict:
    """Share of samples at each agreement level: {"0.25": s, "0.50": s, "0.75": s, "1.00": s} for n1 = 4."""
    values = np.rint(np.asarray(agreements, dtype=np.float64) * n1).astype(int)
    total = max(len(values), 1)
    return {f"{k / n1:.2f}": float((values == k).sum() / total) for k in range(1, n1 + 1)}


def share_count(share: float, total: int) -> int:
    """How many of `total` samples a share like t_h = 0.2 selects.

    Rounds half up (floor(share * total + 0.5)), not Python's half-to-even
    `round`, so that 10% of 5 samples is 1 sample, the same as 10% of 15 is 2.
    A tiny epsilon absorbs float error (0.1 * 25 is 2.5000000000000004 or 2.5).
    """
    return min(total, max(0, math.floor(share * total + 0.5 + 1e-9)))


def _rank(primary: torch.Tensor, secondary: torch.Tensor, primary_descending: bool) -> torch.Tensor:
    """Indices sorted by `primary`, ties by `secondary` descending, then by position."""
    # Two stable sorts: the second (primary key) keeps the order of the first among ties.
    order = torch.sort(secondary, descending=True, stable=True).indices
    return order[torch.sort(primary[order], descending=primary_descending, stable=True).indices]


def partition(agreement: torch.Tensor, loss: torch.Tensor, t_h: float = 0.2, t_n: float = 0.1) -> torch.Tensor:
    """Split samples into ordinary, hard and noisy by their ranks (docs/method.md).

    Hard: the first `share_count(t_h, B)` samples sorted by agreement ascending,
    ties by loss descending. Noisy: the first `share_count(t_n, B)` sorted by
    agreement descending, ties by loss descending. A sample in both is noisy.
    Samples equal on both keys keep their order in the batch.

    Args:
        agreement: (B,) agreements.
        loss: (B,) per-sample losses.
        t_h, t_n: shares of hard and noisy samples in [0, 1].

    Returns:
        (B,) long tensor of ORDINARY / HARD / NOISY on the device of `agreement`.
    """
    if agreement.shape != loss.shape or agreement.dim() != 1:
        raise ValueError(f"agreement and loss must both be (B,), got {tuple(agreement.shape)} and {tuple(loss.shape)}")
    agreement, loss = agreement.detach().float(), loss.detach().float().to(agreement.device)
    total = agreement.numel()
    kinds = torch.full((total,), ORDINARY, dtype=torch.long, device=agreement.device)
    kinds[_rank(agreement, loss, primary_descending=False)[: share_count(t_h, total)]] = HARD
    kinds[_rank(agreement, loss, primary_descending=True)[: share_count(t_n, total)]] = NOISY
    return kinds


def top_loss(loss: torch.Tensor, share: float) -> torch.Tensor:
    """(B,) bool mask of the `share_count(share, B)` largest losses (ties by position)."""
    order = torch.sort(loss.detach(), descending=True, stable=True).indices
    mask = torch.zeros(loss.shape, dtype=torch.bool, device=loss.device)
    mask[order[: share_count(share, loss.numel())]] = True
    return mask


def _id_set(ids) -> set[int]:
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, np.ndarray):
        ids = ids.ravel().tolist()
    if not isinstance(ids, Iterable):
        raise TypeError(f"expected a set or array of sample ids, got {type(ids).__name__}")
    return {int(i) for i in ids}


def noisy_precision_recall(flagged, truly_noisy) -> tuple[float, float]:
    """Precision and recall of the samples flagged noisy against the truly flipped ones.

    Args:
        flagged: sample ids flagged noisy (set, list, numpy array or tensor).
        truly_noisy: ids whose label is known to be wrong (e.g. the synthetic
            benchmark's `is_noisy` column).

    Returns:
        (precision, recall) as fractions in [0, 1]. As in scikit-learn's
        `zero_division=0`, precision is 0.0 when nothing is flagged and recall
        is 0.0 when no sample is truly noisy.
    """
    flagged, truly_noisy = _id_set(flagged), _id_set(truly_noisy)
    hits = len(flagged & truly_noisy)
    precision = hits / len(flagged) if flagged else 0.0
    recall = hits / len(truly_noisy) if truly_noisy else 0.0
    return precision, recall
