"""Agreement, partition, strategies and the reweighted loss against hand-worked batches."""

import math

import numpy as np
import pytest
import torch

import rdfer
from rdfer.errors import RdferError
from rdfer.losses import (
    HARD,
    NOISY,
    ORDINARY,
    STRATEGIES,
    ReweightConfig,
    ReweightedLoss,
    agreement,
    noisy_precision_recall,
    partition,
    share_count,
    strategy_weights,
)
from rdfer.losses.reweight import STRATEGY_CLASSES

C = 7
HAPPY, SAD, NEUTRAL, ANGRY, SURPRISE = 0, 1, 2, 3, 4


def clips(*rows):
    """Clip logits (B, len(row), C) whose argmax per clip is the given class."""
    logits = torch.zeros(len(rows), len(rows[0]), C)
    for b, row in enumerate(rows):
        for k, cls in enumerate(row):
            logits[b, k, cls] = 1.0
    return logits


def test_agreement_hand_worked():
    got = agreement(clips(
        (NEUTRAL, SURPRISE, HAPPY, HAPPY),  # the paper's example: two Happy of four
        (SAD, SAD, SAD, SAD),
        (HAPPY, SAD, NEUTRAL, ANGRY),
        (ANGRY, SAD, ANGRY, ANGRY),
    ))
    assert got.tolist() == [0.5, 1.0, 0.25, 0.75]
    assert rdfer.agreement is agreement  # the lazy top-level name


def test_agreement_needs_three_dims():
    with pytest.raises(ValueError):
        agreement(torch.zeros(4, C))


def test_share_count_rounds_half_up():
    assert share_count(0.2, 10) == 2
    assert share_count(0.1, 5) == 1  # 0.5 -> 1 (Python's round would give 0)
    assert share_count(0.1, 25) == 3  # 2.5 -> 3 (round would give 2)
    assert share_count(0.1, 4) == 0
    assert share_count(0.2, 128) == 26 and share_count(0.1, 128) == 13
    assert share_count(1.0, 7) == 7 and share_count(0.0, 7) == 0


# A hand-worked batch of 10 with ties in agreement and in loss.
AGREEMENT = [1.0, 0.5, 0.5, 0.75, 1.0, 0.25, 0.5, 1.0, 0.75, 0.5]
LOSS = [2.0, 1.0, 3.0, 0.5, 2.0, 0.2, 3.0, 0.1, 4.0, 0.7]


def test_partition_hand_worked_defaults():
    # Hard (2 of 10): sample 5 (agreement 0.25), then among the 0.5s the largest
    # loss: 2 and 6 tie at 3.0, the earlier (2) wins. Noisy (1 of 10): among the
    # 1.0s the largest loss: 0 and 4 tie at 2.0, the earlier (0) wins.
    kinds = partition(torch.tensor(AGREEMENT), torch.tensor(LOSS))
    expected = [ORDINARY] * 10
    expected[5] = expected[2] = HARD
    expected[0] = NOISY
    assert kinds.tolist() == expected
    assert kinds.dtype == torch.long


def test_partition_hand_worked_larger_shares():
    kinds = partition(torch.tensor(AGREEMENT), torch.tensor(LOSS), t_h=0.3, t_n=0.2)
    expected = [ORDINARY] * 10
    expected[5] = expected[2] = expected[6] = HARD
    expected[0] = expected[4] = NOISY
    assert kinds.tolist() == expected


def test_partition_sample_in_both_sets_is_noisy():
    # All agree fully: both rankings order by loss descending, so they overlap.
    kinds = partition(torch.ones(5), torch.tensor([1.0, 5.0, 3.0, 2.0, 4.0]), t_h=0.4, t_n=0.2)
    assert kinds.tolist() == [ORDINARY, NOISY, ORDINARY, ORDINARY, HARD]


KINDS = [NOISY, 0, HARD, 0, 0, HARD, 0, 0, 0, 0]  # the default partition above


@pytest.mark.parametrize("strategy, changed", [
    ("ce", {}),
    ("bigloss_strengthen", {8: 1.5, 2: 1.5}),  # top 2 losses: 4.0 (8), then 3.0 (2 before 6)
    ("bigloss_weaken", {8: 0.0}),  # top 1 loss
    ("hard_strengthen", {5: 1.5, 2: 1.5}),
    ("noisy_weaken", {0: 0.0}),
    ("agreement", {5: 1.5, 2: 1.5, 0: 0.0}),
    ("gce", {}),
    ("elr", {}),
    ("sce_agreement", {5: 1.5, 2: 1.5, 0: 0.0}),  # a noisy-label loss under the agreement partition
])
def test_strategy_weights_by_hand(strategy, changed):
    weights = strategy_weights(ReweightConfig(strategy=strategy), torch.tensor(KINDS), torch.tensor(LOSS))
    expected = [changed.get(i, 1.0) for i in range(10)]
    assert weights.tolist() == expected


def test_all_strategies_are_covered():
    assert set(STRATEGIES) == {"ce", "bigloss_strengthen", "bigloss_weaken", "hard_strengthen", "noisy_weaken",
                               "agreement", "gce", "sce", "elr", "gce_agreement", "sce_agreement", "elr_agreement"}
    assert set(STRATEGY_CLASSES) == set(STRATEGIES)  # every name the config accepts has its class


def test_config_rejects_bad_options():
    with pytest.raises(RdferError, match="strategy"):
        ReweightConfig(strategy="focal")
    with pytest.raises(RdferError, match="mode"):
        ReweightConfig(mode="global")
    with pytest.raises(RdferError, match="t_h"):
        ReweightConfig(t_h=1.5)


CLIPS_FOR = {1.0: (0, 0, 0, 0), 0.75: (0, 0, 0, 1), 0.5: (0, 0, 1, 2), 0.25: (0, 1, 2, 3)}


def batch_for(agreements, losses):
    """Model outputs whose agreements are `agreements` and whose CE orders like `losses`.

    The video logits are zero except the target's, set to -loss: a larger `loss`
    gives a larger cross-entropy, equal ones equal cross-entropies.
    """
    targets = torch.arange(len(losses)) % C
    logits = torch.zeros(len(losses), C)
    logits[torch.arange(len(losses)), targets] = -torch.tensor(losses)
    return logits, clips(*(CLIPS_FOR[a] for a in agreements)), targets


def smoothed_ce(logits, targets, eps):
    """Label-smoothed cross-entropy written out in numpy, per sample."""
    z = logits.double().numpy()
    log_p = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    y = targets.numpy()
    return -(1 - eps) * log_p[np.arange(len(y)), y] - eps * log_p.mean(1)


def test_loss_is_weighted_mean_over_batch_size():
    logits, clip_logits, targets = batch_for(AGREEMENT, LOSS)
    logits.requires_grad_(True)
    loss_fn = ReweightedLoss(ReweightConfig(warmup_epochs=2), num_samples=10)
    loss, info = loss_fn(logits, clip_logits, targets, torch.arange(10), epoch=2)
    ce = smoothed_ce(logits.detach(), targets, 0.1)
    weights = np.array([0.0, 1, 1.5, 1, 1, 1.5, 1, 1, 1, 1])  # noisy 0, hard 2 and 5
    assert info["kinds"].tolist() == KINDS
    assert info["weights"].tolist() == weights.tolist()
    assert info["agreement"].tolist() == AGREEMENT
    np.testing.assert_allclose(info["ce"].numpy(), ce, rtol=1e-5)
    clip_ce = clip_smoothed_ce(clip_logits, targets, 0.1)
    np.testing.assert_allclose(info["clip_ce"].numpy(), clip_ce, rtol=1e-5)
    # / B, not / sum(w); the clip loss (lambda = 1) carries the same weight as the video loss.
    assert math.isclose(loss.item(), (weights * (ce + clip_ce)).sum() / 10, rel_tol=1e-5)
    loss.backward()
    assert torch.all(logits.grad[0] == 0)  # the noisy sample gives no gradient
    assert not any(t.requires_grad for t in info.values())


def clip_smoothed_ce(clip_logits, targets, eps):
    """SPEC 4's CE^clip: the mean over the n1 clips of each clip's smoothed CE against the video label."""
    n1 = clip_logits.shape[1]
    per_clip = smoothed_ce(clip_logits.flatten(0, 1), targets.repeat_interleave(n1), eps)
    return per_clip.reshape(-1, n1).mean(1)


def test_clip_loss_trains_every_clip_with_the_video_weight():
    logits, clip_logits, targets = batch_for(AGREEMENT, LOSS)
    clip_logits.requires_grad_(True)
    weights = np.array([0.0, 1, 1.5, 1, 1, 1.5, 1, 1, 1, 1])
    ce, clip_ce = smoothed_ce(logits, targets, 0.1), clip_smoothed_ce(clip_logits.detach(), targets, 0.1)
    for clip_weight in (0.0, 0.5):
        loss_fn = ReweightedLoss(ReweightConfig(warmup_epochs=0, clip_weight=clip_weight), num_samples=10)
        loss, _ = loss_fn(logits, clip_logits, targets, torch.arange(10), epoch=0)
        expected = (weights * (ce + clip_weight * clip_ce)).sum() / 10
        assert math.isclose(loss.item(), expected, rel_tol=1e-5)
    clip_logits.grad = None
    loss.backward()
    grad = clip_logits.grad.abs().sum(dim=-1)  # (B, n1)
    assert (grad[0] == 0).all()  # noisy: weight 0 for its clips too
    assert (grad[1:] > 0).all()  # every clip of every other sample is trained
    with pytest.raises(RdferError, match="clip_weight"):
        ReweightConfig(clip_weight=-1)


def test_warmup_weighs_everything_one_but_still_ranks():
    logits, clip_logits, targets = batch_for(AGREEMENT, LOSS)
    loss_fn = ReweightedLoss(ReweightConfig(warmup_epochs=2), num_samples=10)
    loss, info = loss_fn(logits, clip_logits, targets, torch.arange(10), epoch=1)
    assert info["weights"].tolist() == [1.0] * 10
    assert info["kinds"].tolist() == KINDS
    expected = (smoothed_ce(logits, targets, 0.1) + clip_smoothed_ce(clip_logits, targets, 0.1)).mean()
    assert math.isclose(loss.item(), expected, rel_tol=1e-5)


def test_epoch_mode_uses_previous_epoch_statistics():
    config = ReweightConfig(mode="epoch", warmup_epochs=0)
    loss_fn = ReweightedLoss(config, num_samples=12)
    # Epoch 0, two batches: ids 0-4 and 5-9 (10 and 11 are never seen).
    first = batch_for(AGREEMENT[:5], LOSS[:5])
    _, info = loss_fn(*first, torch.arange(5), epoch=0)
    # First epoch: falls back to the batch ranking (1 hard, 1 noisy of 5).
    assert info["kinds"].tolist() == [NOISY, ORDINARY, HARD, ORDINARY, ORDINARY]
    loss_fn(*batch_for(AGREEMENT[5:], LOSS[5:]), torch.arange(5, 10), epoch=0)
    loss_fn.end_epoch()

    # Epoch 1: a batch whose own statistics would rank quite differently.
    ids = torch.tensor([0, 2, 5, 6, 8, 11])
    now = batch_for([1.0, 1.0, 1.0, 0.25, 0.25, 1.0], [0.1, 0.1, 0.1, 9.0, 9.0, 0.1])
    _, info = loss_fn(*now, ids, epoch=1)
    # Ranked over the whole previous epoch = the batch of 10 above: 0 noisy, 2 and 5 hard.
    assert info["kinds"].tolist() == [NOISY, HARD, HARD, ORDINARY, ORDINARY, ORDINARY]
    assert info["weights"].tolist() == [0.0, 1.5, 1.5, 1.0, 1.0, 1.0]  # id 11 unseen: ordinary
    assert info["agreement"].tolist() == [1.0, 1.0, 1.0, 0.25, 0.25, 1.0]  # this batch's own

    # The state survives a checkpoint round trip (resume).
    restored = ReweightedLoss(config, num_samples=12)
    restored.load_state_dict(loss_fn.state_dict())
    _, again = restored(*now, ids, epoch=1)
    assert again["kinds"].tolist() == info["kinds"].tolist()


def test_batch_mode_ignores_end_epoch():
    loss_fn = ReweightedLoss(ReweightConfig(warmup_epochs=0), num_samples=10)
    loss_fn(*batch_for(AGREEMENT, LOSS), torch.arange(10), epoch=0)
    loss_fn.end_epoch()
    now = batch_for(AGREEMENT[::-1], LOSS[::-1])
    _, info = loss_fn(*now, torch.arange(10), epoch=1)
    # Reversed batch, ranked on its own: hard = 4 (0.25), then 3 (0.5, loss 3.0, ties
    # with 7 and comes first); noisy = 5 (1.0, loss 2.0, ties with 9 and comes first).
    assert info["kinds"].tolist() == [0, 0, 0, HARD, HARD, NOISY, 0, 0, 0, 0]


def test_noisy_precision_recall():
    assert noisy_precision_recall({1, 2, 3, 4}, {3, 4, 5}) == (0.5, 2 / 3)
    assert noisy_precision_recall(np.array([7, 8]), torch.tensor([8])) == (0.5, 1.0)
    assert noisy_precision_recall(set(), {1}) == (0.0, 0.0)
    assert noisy_precision_recall([1], set()) == (0.0, 0.0)
