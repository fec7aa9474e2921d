"""GCE, SCE and ELR (rdfer.losses.robust) against hand-worked values, alone and under the agreement weights."""

import math

import numpy as np
import torch

from rdfer.losses import ReweightConfig, ReweightedLoss, strategy_weights
from rdfer.losses.robust import EarlyLearningReg, GeneralizedCE, SymmetricCE

# Logits whose softmax is (0.5, 0.25, 0.25).
LOGITS = torch.tensor([[[math.log(2.0), 0.0, 0.0]]])  # (B=1, S=1, C=3)


def _per_target(loss, ids=(0, 0)):
    """The loss of LOGITS against target 0 and target 1."""
    return [float(loss(LOGITS, torch.tensor([y]), torch.tensor([i]))[0, 0]) for y, i in zip((0, 1), ids)]


def test_gce_hand_worked():
    # (1 - p^0.7) / 0.7: p = 0.5 -> (1 - 0.615572) / 0.7; p = 0.25 -> (1 - 0.378929) / 0.7.
    assert np.allclose(_per_target(GeneralizedCE(q=0.7)), [0.549183, 0.887244], atol=1e-5)
    # q = 1 is the MAE 1 - p_y.
    assert np.allclose(_per_target(GeneralizedCE(q=1.0)), [0.5, 0.75], atol=1e-6)


def test_sce_hand_worked():
    # 0.1 * CE + 1.0 * (-A) (1 - p_y), A = -4: 0.1 ln 2 + 4 * 0.5; 0.1 ln 4 + 4 * 0.75.
    assert np.allclose(_per_target(SymmetricCE(alpha=0.1, beta=1.0, a=-4.0)), [2.0693147, 3.1386294], atol=1e-5)


def test_elr_hand_worked_targets_follow_each_sample():
    loss = EarlyLearningReg(num_samples=3, beta=0.7, lam=3.0)
    y, sample = torch.tensor([0]), torch.tensor([1])
    # First visit: t = 0.3 p, <t, p> = 0.3 * (0.25 + 0.0625 + 0.0625) = 0.1125; ln 2 + 3 ln(0.8875).
    assert math.isclose(float(loss(LOGITS, y, sample)[0, 0]), 0.693147 + 3 * math.log(0.8875), abs_tol=1e-5)
    # Second visit: t = 0.7 * 0.3 p + 0.3 p = 0.51 p, <t, p> = 0.19125.
    assert math.isclose(float(loss(LOGITS, y, sample)[0, 0]), 0.693147 + 3 * math.log(0.80875), abs_tol=1e-5)
    # Another sample starts from its own (empty) target.
    assert math.isclose(float(loss(LOGITS, y, torch.tensor([2]))[0, 0]), 0.693147 + 3 * math.log(0.8875),
                        abs_tol=1e-5)
    assert torch.allclose(loss.targets[1, 0], 0.51 * torch.tensor([0.5, 0.25, 0.25]), atol=1e-6)
    assert float(loss.targets[0].abs().sum()) == 0.0
    # The targets travel with the state dict (resume), into a fresh module.
    fresh = EarlyLearningReg(num_samples=3)
    fresh.load_state_dict(loss.state_dict())
    assert torch.equal(fresh.targets, loss.targets)


def _batch():
    """10 samples, 4 clips: agreement ranks sample 0 noisy (4 clips on class 1, label 0) and 1, 2 hard."""
    torch.manual_seed(0)
    logits = torch.randn(10, 7)
    logits[0, 1] = 6.0  # sample 0's video is predicted 1 too: the highest loss among the agreeing
    clip_logits = torch.zeros(10, 4, 7)
    clip_logits[:, :, 0] = 2.0  # every clip says class 0 ...
    clip_logits[0, :, :] = 0.0
    clip_logits[0, :, 1] = 3.0  # ... but sample 0's clips agree on 1, against its label 0
    for b in (1, 2):  # two samples whose clips disagree
        clip_logits[b] = 0.0
        clip_logits[b, torch.arange(4), torch.tensor([0, 1, 2, 3])] = 2.0
    return logits, clip_logits, torch.zeros(10, dtype=torch.long)


def test_each_loss_combines_with_the_agreement_weights():
    logits, clip_logits, targets = _batch()
    for name, per_sample in (("gce", GeneralizedCE(0.7)), ("sce", SymmetricCE()), ("elr", None)):
        plain = ReweightedLoss(ReweightConfig(strategy=name, warmup_epochs=0), num_samples=10)
        combined = ReweightedLoss(ReweightConfig(strategy=f"{name}_agreement", warmup_epochs=0), num_samples=10)
        loss_plain, info_plain = plain(logits, clip_logits, targets, torch.arange(10), epoch=0)
        loss_comb, info = combined(logits, clip_logits, targets, torch.arange(10), epoch=0)
        assert info_plain["weights"].tolist() == [1.0] * 10
        expected_weights = strategy_weights(ReweightConfig(strategy="agreement"), info["kinds"], info["ce"])
        assert info["weights"].tolist() == expected_weights.tolist()
        assert info["weights"][0] == 0.0 and sorted(info["weights"].tolist()).count(1.5) == 2
        if per_sample is None:  # ELR: the first visit of every sample, t = 0.3 p
            p = logits.softmax(-1).clamp(1e-4, 1 - 1e-4)
            pc = clip_logits.softmax(-1).clamp(1e-4, 1 - 1e-4)
            video = torch.nn.functional.cross_entropy(logits, targets, reduction="none") + 3 * torch.log(
                1 - 0.3 * (p / p.sum(-1, keepdim=True) * p).sum(-1))
            clip = (torch.nn.functional.cross_entropy(clip_logits.flatten(0, 1), torch.zeros(40, dtype=torch.long),
                                                      reduction="none").view(10, 4)
                    + 3 * torch.log(1 - 0.3 * (pc / pc.sum(-1, keepdim=True) * pc).sum(-1))).mean(1)
        else:
            video = per_sample(logits[:, None], targets, torch.arange(10))[:, 0]
            clip = per_sample(clip_logits, targets, torch.arange(10)).mean(1)
        total = video + clip  # clip_weight 1
        assert math.isclose(loss_plain.item(), float(total.sum() / 10), rel_tol=1e-5)
        assert math.isclose(loss_comb.item(), float((info["weights"] * total).sum() / 10), rel_tol=1e-5)
        assert not math.isclose(loss_comb.item(), loss_plain.item(), rel_tol=1e-3)
