"""Per-sample losses of the noisy-label literature: the `sample_loss` of a `loss.strategy`.

Each takes logits (B, S, C) (S = 1 for the video, n1 for its clips), targets (B,) and sample
ids (B,) and returns per-sample losses (B, S); `ReweightedLoss` weights and averages them.

- ``ce``: cross-entropy with label smoothing (the paper's loss).
- ``gce``: generalized cross-entropy L_q = (1 - p_y^q) / q (Zhang & Sabuncu, NeurIPS 2018), q = 0.7; the
  plain L_q, not its truncated variant.
- ``sce``: symmetric cross-entropy alpha * CE + beta * RCE, RCE = -A (1 - p_y) with A = log 0 := -4
  (Wang et al., ICCV 2019); alpha = 0.1, beta = 1.0, its CIFAR-10 setting (10 classes, the nearest
  to 7).
- ``elr``: early-learning regularization CE + lambda * log(1 - <t_i, p_i>), where the target t_i of
  sample i is a running average of its own predictions, t_i <- beta t_i + (1 - beta) p_i, updated
  before the loss is taken (Liu et al., NeurIPS 2020); beta = 0.7, lambda = 3, its CIFAR-10 defaults.

GCE, SCE and ELR use hard labels (no label smoothing), as their papers do.
"""

import torch
import torch.nn.functional as F
from torch import nn

from rdfer.utils.distributed import gather_rows


class SampleLoss(nn.Module):
    """Base: `forward(logits (B, S, C), targets (B,), ids (B,)) -> (B, S)` per-sample losses."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _target_probability(logits: torch.Tensor, targets: torch.Tensor) -> tuple:
    """Softmax (B, S, C) and the probability of each sample's target class (B, S)."""
    probs = logits.float().softmax(-1)
    index = targets.view(-1, 1, 1).expand(-1, probs.shape[1], 1)
    return probs, probs.gather(-1, index).squeeze(-1)


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-sample CE, (B, S, C) -> (B, S)."""
    b, s, c = logits.shape
    return F.cross_entropy(logits.float().reshape(b * s, c), targets.repeat_interleave(s), reduction="none",
                           label_smoothing=label_smoothing).view(b, s)


class CrossEntropy(SampleLoss):
    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits, targets, ids):
        return _cross_entropy(logits, targets, self.label_smoothing)


class GeneralizedCE(SampleLoss):
    """L_q = (1 - p_y^q) / q: CE as q -> 0, MAE (noise-robust) at q = 1."""

    def __init__(self, q: float = 0.7):
        super().__init__()
        self.q = q

    def forward(self, logits, targets, ids):
        _, p_y = _target_probability(logits, targets)
        return (1 - p_y.clamp_min(1e-12) ** self.q) / self.q


class SymmetricCE(SampleLoss):
    """alpha * CE + beta * RCE; RCE = -sum_k p_k log q_k with the one-hot label q and log 0 := A."""

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, a: float = -4.0):
        super().__init__()
        self.alpha, self.beta, self.a = alpha, beta, a

    def forward(self, logits, targets, ids):
        _, p_y = _target_probability(logits, targets)
        reverse = -self.a * (1 - p_y)
        return self.alpha * _cross_entropy(logits, targets) + self.beta * reverse


class EarlyLearningReg(SampleLoss):
    """CE + lambda * log(1 - <t_i, p_i>), t_i the running average of sample i's predictions.

    Holds the targets (num_samples, S, C) as a buffer (saved in checkpoints); they are sized at
    the first call, when S and C are known. Under DDP every rank updates every rank's samples.
    """

    def __init__(self, num_samples: int, beta: float = 0.7, lam: float = 3.0):
        super().__init__()
        self.num_samples, self.beta, self.lam = int(num_samples), beta, lam
        self.register_buffer("targets", torch.zeros(0))

    def forward(self, logits, targets, ids):
        probs = logits.float().softmax(-1).clamp(1e-4, 1 - 1e-4)  # as the authors' code: log stays finite
        b, s, c = probs.shape
        if self.targets.shape != (self.num_samples, s, c):
            if self.targets.numel():
                raise ValueError(f"ELR targets are {tuple(self.targets.shape)}, logits need "
                                 f"({self.num_samples}, {s}, {c})")
            self.targets = torch.zeros(self.num_samples, s, c, device=probs.device)
        with torch.no_grad():
            rows = torch.cat([ids.to(probs.device).double()[:, None], probs.detach().double().reshape(b, s * c)], 1)
            everything, _ = gather_rows(rows)  # every rank's samples: the targets stay equal on all ranks
            all_ids = everything[:, 0].long().to(self.targets.device)
            fresh = everything[:, 1:].float().view(-1, s, c).to(self.targets.device)
            fresh = fresh / fresh.sum(-1, keepdim=True)
            self.targets[all_ids] = self.beta * self.targets[all_ids] + (1 - self.beta) * fresh
        target = self.targets[ids.to(self.targets.device).long()].to(probs.device)  # (B, S, C)
        regulariser = torch.log(1 - (target * probs).sum(-1))
        return _cross_entropy(logits, targets) + self.lam * regulariser

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "targets")
        if saved is not None and saved.shape != self.targets.shape:
            self.targets = torch.zeros_like(saved, device=self.targets.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def make_sample_loss(name: str, config, num_samples: int) -> SampleLoss:
    """The per-sample loss `name` ("ce", "gce", "sce", "elr") with the options of `config` (the loss: section)."""
    if name == "gce":
        return GeneralizedCE(config.gce_q)
    if name == "sce":
        return SymmetricCE(config.sce_alpha, config.sce_beta, config.sce_a)
    if name == "elr":
        return EarlyLearningReg(num_samples, config.elr_beta, config.elr_lambda)
    if name == "ce":
        return CrossEntropy(config.label_smoothing)
    raise ValueError(f"unknown per-sample loss {name!r}")
