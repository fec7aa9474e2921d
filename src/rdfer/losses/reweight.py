"""Agreement-based loss reweighting, the other strategies of the paper's Table IV and the noisy-label
losses GCE, SCE and ELR, alone and under the agreement partition (docs/method.md).

    loss_fn = ReweightedLoss(ReweightConfig(), num_samples=len(train_set))
    out = model(video)
    loss, info = loss_fn(out.logits, out.clip_logits, labels, indices, epoch)
    ...
    loss_fn.end_epoch()   # once per epoch, on every rank (needed in "epoch" mode)

The returned loss is the mean over the batch of `w_i * (L_i + lambda * L^clip_i + g * G_i)`,
L the strategy's per-sample loss (CE with label smoothing, or GCE / SCE / ELR),
divided by the batch size and not by the sum of weights, so dropping noisy
samples does not enlarge the step of the others. `L^clip_i` is
the mean over the n1 clips of the loss of clip i's logits against the video label:
the clip loss that trains the clip predictions whose agreement drives the
ranking (without it the classifier never learns to read a clip feature and the
agreement is noise). `G_i` is the detector's guide (`rdfer.losses.guide`, weight
g = `guide_weight`) for models whose detector has one. A noisy sample (w = 0)
teaches none of them.
"""

import torch
import torch.nn.functional as F
from torch import nn

from rdfer.schema import STRATEGIES, ReweightConfig  # noqa: F401 (the loss: section, re-exported)
from rdfer.losses.agreement import HARD, NOISY, ORDINARY, agreement, partition, top_loss
from rdfer.losses.guide import guide_loss
from rdfer.losses.robust import make_sample_loss
from rdfer.utils.distributed import gather_rows


class Strategy:
    """One `loss.strategy`: its per-sample loss (`sample_loss`, see `rdfer.losses.robust`) and its weights.

    A new strategy is a subclass registered under its name (`@register("name")`); its name must
    also be listed in `rdfer.schema.STRATEGIES`, which the config check reads.
    """

    sample_loss = "ce"

    def weights(self, config: ReweightConfig, kinds: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        return torch.ones(kinds.shape, dtype=torch.float32, device=kinds.device)


STRATEGY_CLASSES: dict = {}


def register(name: str):
    def add(cls):
        STRATEGY_CLASSES[name] = cls
        return cls
    return add


@register("ce")
class VanillaCE(Strategy):
    """Every sample weight 1."""


@register("bigloss_strengthen")
class BigLossStrengthen(Strategy):
    """The top t_h of the batch by loss x w_hard."""

    def weights(self, config, kinds, loss):
        return torch.where(top_loss(loss, config.t_h), config.w_hard, super().weights(config, kinds, loss))


@register("bigloss_weaken")
class BigLossWeaken(Strategy):
    """The top t_n of the batch by loss x w_noisy (the small-loss trick)."""

    def weights(self, config, kinds, loss):
        return torch.where(top_loss(loss, config.t_n), config.w_noisy, super().weights(config, kinds, loss))


@register("hard_strengthen")
class HardStrengthen(Strategy):
    """The agreement partition's hard samples x w_hard."""

    def weights(self, config, kinds, loss):
        return torch.where(kinds == HARD, config.w_hard, super().weights(config, kinds, loss))


@register("noisy_weaken")
class NoisyWeaken(Strategy):
    """The agreement partition's noisy samples x w_noisy."""

    def weights(self, config, kinds, loss):
        return torch.where(kinds == NOISY, config.w_noisy, super().weights(config, kinds, loss))


@register("agreement")
class Agreement(Strategy):
    """Hard x w_hard and noisy x w_noisy: the paper's method."""

    def weights(self, config, kinds, loss):
        weights = HardStrengthen().weights(config, kinds, loss)
        return torch.where(kinds == NOISY, config.w_noisy, weights)


@register("gce")
class GCE(Strategy):
    sample_loss = "gce"


@register("sce")
class SCE(Strategy):
    sample_loss = "sce"


@register("elr")
class ELR(Strategy):
    sample_loss = "elr"


@register("gce_agreement")
class GCEAgreement(Agreement):
    sample_loss = "gce"


@register("sce_agreement")
class SCEAgreement(Agreement):
    sample_loss = "sce"


@register("elr_agreement")
class ELRAgreement(Agreement):
    sample_loss = "elr"


def strategy_weights(config: ReweightConfig, kinds: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """Per-sample weights (N,) of `config.strategy` for a ranked population.

    Args:
        kinds: (N,) agreement partition of the population (ORDINARY / HARD / NOISY).
        loss: (N,) per-sample losses of the same population (for the big-loss strategies).
    """
    return STRATEGY_CLASSES[config.strategy]().weights(config, kinds, loss)


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
        # GCE / SCE / ELR of the video and of its clips (ELR keeps a target per sample and clip).
        self.sample_loss = STRATEGY_CLASSES[config.strategy].sample_loss
        if self.sample_loss != "ce":
            self.video_loss = make_sample_loss(self.sample_loss, config, self.num_samples)
            self.clip_loss = make_sample_loss(self.sample_loss, config, self.num_samples)

    def forward(self, logits, clip_logits, targets, indices, epoch: int, evidence=None, log_weights=None):
        """Weighted loss of one batch.

        Args:
            logits: (B, C) video logits.
            clip_logits: (B, n1, C) logits of the n1 clips (for the agreement).
            targets: (B,) class indices.
            indices: (B,) sample ids in the training set.
            epoch: 0-based epoch; epochs below `warmup_epochs` weigh every sample 1.
            evidence, log_weights: a guided detector's outputs (`ModelOutput`), or None.

        Returns:
            loss: scalar, sum_i w_i * (L_i + clip_weight * L^clip_i + guide_weight * G_i) / B, L the
                strategy's per-sample loss, G the guide (0 without one).
            info: detached tensors on the device of `logits`: "kinds" (B,) long
                (ORDINARY / HARD / NOISY, also during warm-up and for every
                strategy: always the agreement partition), "weights" (B,)
                float, "agreement" (B,) float, "ce" (B,) float (smoothed video
                CE, the ranking loss), "clip_ce" (B,) float (mean clip CE), "largest_loss" (B,) bool
                (among the share_count(t_n, N) largest losses of the global batch: the
                small-loss trick's noisy set at the agreement noisy set's budget).
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
        # The small-loss trick at the noisy set's budget (the control beside it): the same number
        # of the global batch, share_count(t_n, N), chosen by the largest loss alone.
        largest = top_loss(everything[:, 1].float(), cfg.t_n)[start : start + batch].to(ce.device)

        if epoch < cfg.warmup_epochs:
            weights = torch.ones_like(weights)
        video_loss, clip_loss = ce, clip_ce
        if self.sample_loss != "ce":
            video_loss = self.video_loss(logits[:, None], targets, indices)[:, 0]
            clip_loss = self.clip_loss(clip_logits, targets, indices).mean(1)
        sample = video_loss + cfg.clip_weight * clip_loss
        if evidence is not None and cfg.guide_weight > 0:
            sample = sample + cfg.guide_weight * guide_loss(evidence, log_weights, targets, cfg.guide_tau)
        loss = (weights * sample).sum() / batch
        info = {"kinds": kinds, "weights": weights, "agreement": agreements, "ce": ce.detach(),
                "clip_ce": clip_ce.detach(), "largest_loss": largest}
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
