"""The controls measured beside each claim (docs/results/controls.md): the uniform window, the
label-free apex estimate, r over expression clips with its interval, the small-loss set at the
noisy set's budget."""

import numpy as np
import pytest
import torch

from rdfer.config import ReweightConfig
from rdfer.engine.outputs import GroundTruth, train_metrics, window_metrics
from rdfer.errors import RdferError
from rdfer.losses import ReweightedLoss
from rdfer.models import create_model
from rdfer.models.detector import farthest_from_first, window_fractions
from rdfer.stats import correlation_ci

CLASSES = ["Happy", "Sad", "Neutral", "Angry"]


def test_the_uniform_locator_fixes_the_window_and_keeps_resampling_and_summary():
    torch.manual_seed(0)
    model = create_model("rdfer_tiny", num_classes=4, encoder="tiny", frozen_encoder=True,
                         detector_locator="uniform", detector_guide=False)
    detector = model.detector
    assert detector.locate is None and detector.context is None  # nothing that could learn where
    width = model.encoder.out_features
    dense = torch.randn(3, 64, width)
    out = model(dense)
    assert torch.equal(out.mu, torch.full((3,), 0.5)) and torch.equal(out.delta, torch.full((3,), 4.0))
    expected = detector(dense)
    assert torch.equal(expected["positions"][0], torch.arange(16) * 4.0 + 2)  # centres of 16 equal segments
    assert expected["summary"] is not None  # the same global summary S as the default
    # The same Gaussian re-sampling as the default kernel: width delta / 2 = 2 dense frames.
    times = torch.arange(64.0)
    weights = torch.softmax(-0.5 * ((times - 2.0) / 2.0) ** 2, dim=0)
    assert torch.allclose(expected["frames"][:, 0], torch.einsum("t,btd->bd", weights, dense), atol=1e-5)
    with pytest.raises(RdferError, match="detector_guide needs detector_locator 'moments'"):
        create_model("rdfer_tiny", num_classes=4, encoder="tiny", frozen_encoder=True, detector_locator="uniform")


def test_farthest_from_first_is_the_time_of_the_frame_farthest_from_the_first():
    dense = torch.zeros(3, 64, 5)
    dense[0, 40] = 3.0
    dense[0, 50] = 2.0  # nearer the first frame than frame 40
    dense[1, 10:20] = torch.arange(1.0, 11.0)[:, None]  # growing away: the last of them, frame 19
    dense[2] = torch.randn(64, 5)
    dense[2, 0] = 100.0  # every other frame is about as far: the farthest is the one nearest -inf
    got = farthest_from_first(dense)
    distance = (dense[2] - dense[2, 0]).norm(dim=-1)
    assert got.tolist() == pytest.approx([40.5 / 64, 19.5 / 64, (int(distance.argmax()) + 0.5) / 64])
    frames = torch.zeros(1, 64, 3, 4, 4)  # pixels work the same way
    frames[0, 7] = 1.0
    assert farthest_from_first(frames).item() == pytest.approx(7.5 / 64)


def test_correlation_ci_is_pearson_with_a_bootstrap_interval_over_pairs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    got = correlation_ci(x, y, seed=3)
    assert got["value"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    low, high = got["ci"]
    assert low < got["value"] < high and high - low < 0.25
    assert correlation_ci(x, y, seed=3) == got  # the same seed, the same interval
    # Resampling pairs, not values: a perfect relation keeps r = 1 in every resample.
    assert correlation_ci(x, 2 * x + 1)["ci"] == pytest.approx([1.0, 1.0])
    assert correlation_ci(x, np.ones(200)) == {"value": None, "ci": None, "n": 200}


def _truth(apex, true_label):
    count = len(apex)
    return GroundTruth(np.zeros(count, bool), np.zeros(count, bool), np.asarray(true_label), apex=np.asarray(apex))


def test_window_metrics_report_r_over_expression_clips_and_the_controls_beside_it():
    rng = np.random.default_rng(1)
    count = 60
    start = rng.uniform(0.05, 0.7, count)
    apex = np.stack([start, start + 0.2], axis=1)
    centre = apex.mean(1)
    label = np.arange(count) % 4  # Neutral (2) is every fourth clip
    neutral = label == 2
    # mu finds the apex of every expression clip and sits anywhere on a Neutral one.
    mu = np.where(neutral, rng.uniform(0.1, 0.9, count), centre)
    farthest = centre + rng.normal(0, 0.1, count)
    result = {"index": np.arange(count), "label": label, "mu": mu, "delta": np.full(count, 2.0),
              "farthest": farthest}
    metrics = window_metrics(result, _truth(apex, label), 64, 16, CLASSES)
    assert metrics["expression_clips"] == count - neutral.sum()
    assert metrics["mu_apex_corr_expression"] == pytest.approx(1.0)
    assert metrics["mu_apex_corr"] == pytest.approx(np.corrcoef(mu, centre)[0, 1])
    assert metrics["mu_apex_corr"] < 0.95
    low, high = metrics["mu_apex_corr_ci"]
    assert low < metrics["mu_apex_corr"] < high
    assert metrics["farthest_apex_corr"] == pytest.approx(np.corrcoef(farthest, centre)[0, 1])
    assert metrics["farthest_apex_corr_expression"] == pytest.approx(
        np.corrcoef(farthest[~neutral], centre[~neutral])[0, 1])
    # The uniform window's figures on the same clips: its 16 frames at 2.5/64 ... 62.5/64.
    uniform = window_fractions(torch.full((count,), 0.5, dtype=torch.float64),
                               torch.full((count,), 4.0, dtype=torch.float64), 64, 16).numpy()
    inside = ((uniform >= apex[:, :1]) & (uniform <= apex[:, 1:])).mean()
    assert metrics["uniform_window_on_apex"] == pytest.approx(inside)
    assert metrics["uniform_apex_covered"] == 1.0  # a window over the whole clip covers every apex
    # The ground truth's true class decides what an expression clip is, not the given label.
    relabelled = dict(result, label=np.zeros(count, int))
    assert window_metrics(relabelled, _truth(apex, label), 64, 16, CLASSES)["expression_clips"] == 45
    # Without a Neutral class there is no expression subset.
    assert "mu_apex_corr_expression" not in window_metrics(result, _truth(apex, label), 64, 16, ["a", "b", "c", "d"])


def test_the_small_loss_set_has_the_noisy_sets_budget_and_the_largest_losses():
    torch.manual_seed(0)
    loss_fn = ReweightedLoss(ReweightConfig(strategy="agreement", t_n=0.1, warmup_epochs=0), num_samples=20)
    logits = torch.randn(20, 4)
    targets = torch.randint(4, (20,))
    clip_logits = torch.randn(20, 4, 4)
    _, info = loss_fn(logits, clip_logits, targets, torch.arange(20), epoch=0)
    largest = info["largest_loss"]
    assert largest.sum() == (info["kinds"] == 2).sum() == 2  # share_count(0.1, 20): the same budget
    assert set(largest.nonzero().flatten().tolist()) == set(info["ce"].topk(2).indices.tolist())


def test_train_metrics_score_the_small_loss_set_beside_the_noisy_set():
    flipped = np.array([1, 1, 0, 0, 0, 0], bool)
    truth = GroundTruth(flipped, np.zeros(6, bool), np.zeros(6, int))
    rows = {"index": np.arange(6), "label": np.zeros(6, int), "prediction": np.zeros(6, int),
            "clip_correct": np.full(6, 4), "agreement": np.ones(6), "kind": np.array([2, 0, 2, 0, 0, 0]),
            "weight": np.array([0.0, 1, 0, 1, 1, 1]), "largest_loss": np.array([1, 1, 0, 0, 0, 0], bool)}
    metrics = train_metrics(rows, truth, n1=4)
    assert (metrics["noisy_precision"], metrics["noisy_recall"]) == (0.5, 0.5)
    assert (metrics["small_loss_precision"], metrics["small_loss_recall"], metrics["small_loss_flagged"]) == (1, 1, 2)
