"""Agreement, the hard / noisy partition and the reweighted loss of RDFER (docs/method.md)."""

from rdfer.losses.agreement import (
    HARD,
    KIND_NAMES,
    NOISY,
    ORDINARY,
    agreement,
    agreement_histogram,
    clip_majority,
    noisy_precision_recall,
    partition,
    share_count,
)
from rdfer.losses.reweight import STRATEGIES, ReweightConfig, ReweightedLoss, strategy_weights

__all__ = [
    "HARD", "KIND_NAMES", "NOISY", "ORDINARY", "STRATEGIES", "ReweightConfig", "ReweightedLoss",
    "agreement", "agreement_histogram", "clip_majority", "noisy_precision_recall", "partition", "share_count",
    "strategy_weights",
]
