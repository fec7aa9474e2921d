"""Agreement-based loss reweighting and the other strategies of the paper's Table IV (docs/method.md).

    loss_fn = ReweightedLoss(ReweightConfig(), num_samples=len(train_set))
    out = model(video)
    loss, info = loss_fn(out.logits, out.clip_logits, labels, indices, epoch)
    ...
    loss_fn.end_epoch()   # once per epoch, on every rank (needed in "epoch" mode)

The returned loss is the mean over the batch of `w_i * (CE_i + lambda * CE^clip_i)`
(label smoothing), divided by the batch size and not by the sum of weights, so
dropping noisy samples does not enlarge the step of the others. `CE^clip_i` is
the mean over the n1 clips of the CE of clip i's logits against the video label:
the clip loss that trains the clip predictions whose agreement drives the
ranking (without it the classifier never learns to read a clip feature and the
agreement is noise). A noisy sample (w = 0) teaches neither.
"""

import torch
import torch.nn.functional as F
from torch import nn

from rdfer.config import STRATEGIES, ReweightConfig  # noqa: F401 (the loss: section, re-exported)
from rdfer.losses.agreement import HARD, NOISY, ORDINARY, agreement, partition, top_loss
from rdfer.utils.distributed import gather_rows


def strategy_weights(config: ReweightConfig, kinds: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """Per-sample weights (N,) of `config.strategy` for a ranked population.

    Args:
        kinds: (N,) agreement partition of the population (ORDINARY / HARD / NOISY).
        loss: (N,) per-sample losses of the same population (for the big-loss strategies).
    """
    ones = torch.ones(kinds.shape, dtype=torch.float32, device=kinds.device)
    strategy = config.strategy
    if strategy == "bigloss_strengthen":
        return torch.where(top_loss(loss, config.t_h), config.w_hard, ones)
    if strategy == "bigloss_weaken":
        return torch.where(top_loss(loss, config.t_n), config.w_noisy, ones)
    weights = ones.clone()
    if strategy in ("hard_strengthen", "agreement"):
        weights[kinds == HARD] = config.w_hard
    if strategy in ("noisy_weaken", "agreement"):
        weights[kinds == NOISY] = config.w_noisy
    return weights  # "ce": all ones


class ReweightedLoss(nn.Module):
    """Cross-entropy with per-sample weights from the agreement partition (docs/method.md).

    An `nn.Module` so that the per-sample statistics of "epoch" mode travel with
    `state_dict()` into checkpoints (resume) and follow `.to(device)`.

    Args:
        config: the strategy and its options.
        num_samples: size of the training set; `indices` passed to the call are
            sample ids in [0, num_samples).
    """

    def __init__(self, config: ReweightConfig, num_samples: int):
        super().__init__()
        self.config = config
        self.num_samples = int(num_samples)
        # Statistics collected during the current epoch ("epoch" mode).
        self.register_buffer("epoch_agreement", torch.zeros(self.num_samples))
        self.register_buffer("epoch_loss", torch.zeros(self.num_samples))
        self.register_buffer("epoch_seen", torch.zeros(self.num_samples, dtype=torch.bool))
        # Kinds and weights ranked from the previous epoch; -1 / NaN: sample not seen then.
        self.register_buffer("previous_kinds", torch.full((self.num_samples,), -1, dtype=torch.long))
        self.register_buffer("previous_weights", torch.full((self.num_samples,), float("nan")))

    def forward(self, logits, clip_logits, targets, indices, epoch: int):
        """Weighted loss of one batch.

        Args:
            logits: (B, C) video logits.
            clip_logits: (B, n1, C) logits of the n1 clips (for the agreement).
            targets: (B,) class indices.
            indices: (B,) sample ids in the training set.
            epoch: 0-based epoch; epochs below `warmup_epochs` weigh every sample 1.

        Returns:
            loss: scalar, sum_i w_i * (CE_i + clip_weight * CE^clip_i) / B.
            info: detached tensors on the device of `logits`: "kinds" (B,) long
                (ORDINARY / HARD / NOISY, also during warm-up and for every
                strategy: always the agreement partition), "weights" (B,)
                float, "agreement" (B,) float, "ce" (B,) float (smoothed video
                CE, the ranking loss), "clip_ce" (B,) float (mean clip CE).
        """
        cfg = self.config
        ce = F.cross_entropy(logits.float(), targets, reduction="none", label_smoothing=cfg.label_smoothing)  # (B,)
        n1 = clip_logits.shape[1]
        clip_ce = F.cross_entropy(clip_logits.float().flatten(0, 1), targets.repeat_interleave(n1),
                                  reduction="none", label_smoothing=cfg.label_smoothing).view(-1, n1).mean(1)  # (B,)
        agreements = agreement(clip_logits).to(ce.device)  # (B,)
        batch = ce.shape[0]
        # One gather of (agreement, loss, id) rows: the ranking covers the global batch under DDP.
        rows = torch.stack([agreements.double(), ce.detach().double(), indices.to(ce.device).double()], dim=1)
        everything, start = gather_rows(rows)  # (N, 3)
        if cfg.mode == "epoch":
            self._record(everything)

        if cfg.mode == "epoch" and bool((self.previous_kinds >= 0).any()):
            ids = indices.to(self.previous_kinds.device).long()
            kinds = self.previous_kinds[ids].to(ce.device)
            weights = self.previous_weights[ids].to(ce.device)
            # A sample the previous epoch did not see (dropped last batch) counts as ordinary.
            unseen = kinds < 0
            kinds = kinds.masked_fill(unseen, ORDINARY)
            weights = weights.masked_fill(unseen, 1.0)
        else:  # batch mode, and the first epoch of epoch mode
            all_agreement, all_loss = everything[:, 0].float(), everything[:, 1].float()
            all_kinds = partition(all_agreement, all_loss, cfg.t_h, cfg.t_n)
            all_weights = strategy_weights(cfg, all_kinds, all_loss)
            kinds, weights = all_kinds[start : start + batch], all_weights[start : start + batch]

        if epoch < cfg.warmup_epochs:
            weights = torch.ones_like(weights)
        loss = (weights * (ce + cfg.clip_weight * clip_ce)).sum() / batch
        info = {"kinds": kinds, "weights": weights, "agreement": agreements, "ce": ce.detach(),
                "clip_ce": clip_ce.detach()}
        return loss, info

    @torch.no_grad()
    def _record(self, rows: torch.Tensor) -> None:
        rows = rows.to(self.epoch_agreement.device)
        ids = rows[:, 2].long()
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_samples):
            raise ValueError(f"sample ids must lie in [0, {self.num_samples}); got {ids.min()}..{ids.max()}")
        self.epoch_agreement[ids] = rows[:, 0].float()
        self.epoch_loss[ids] = rows[:, 1].float()
        self.epoch_seen[ids] = True

    @torch.no_grad()
    def end_epoch(self) -> None:
        """Rank the samples seen this epoch for use in the next one ("epoch" mode; no-op otherwise).

        Call it on every rank after the epoch's last training step. Under DDP each
        rank holds every rank's statistics, so the ranking is the same everywhere.
        """
        if self.config.mode != "epoch" or not bool(self.epoch_seen.any()):
            return
        seen = self.epoch_seen.nonzero().squeeze(1)
        kinds = partition(self.epoch_agreement[seen], self.epoch_loss[seen], self.config.t_h, self.config.t_n)
        self.previous_kinds.fill_(-1)
        self.previous_weights.fill_(float("nan"))
        self.previous_kinds[seen] = kinds
        self.previous_weights[seen] = strategy_weights(self.config, kinds, self.epoch_loss[seen])
        self.epoch_seen.zero_()
