"""The key expression detector learns where the key expression is, and old checkpoints still load."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rdfer.engine.outputs import GroundTruth, window_metrics
from rdfer.losses import ReweightedLoss
from rdfer.losses.guide import guide_loss
from rdfer.models import create_model
from rdfer.models.checkpoint import LEGACY_FIELDS, load_model, model_state
from rdfer.models.detector import window_fractions
from rdfer.schema import ReweightConfig, config_to_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLASSES, APEX, DISTRACTOR = 4, 16, 6  # apex and distractor lengths in dense frames


def toy_clips(count: int, width: int, generator: torch.Generator):
    """Frame features (count, 64, width) of clips whose label's expression holds for APEX frames
    somewhere (a different place in every clip) and another class's weaker expression, a
    distractor, lasts DISTRACTOR frames elsewhere; plus the labels and the apex spans (count, 2)
    as fractions of the clip."""
    features = 0.3 * torch.randn(count, 64, width, generator=generator)
    prototypes = 2 * torch.eye(CLASSES, width)
    labels = torch.randint(CLASSES, (count,), generator=generator)
    starts = torch.randint(0, 64 - APEX + 1, (count,), generator=generator)
    for i, (label, start) in enumerate(zip(labels.tolist(), starts.tolist())):
        features[i, start:start + APEX] += prototypes[label]
        other = (label + 1 + int(torch.randint(CLASSES - 1, (1,), generator=generator))) % CLASSES
        free = [s for s in range(64 - DISTRACTOR + 1) if s + DISTRACTOR <= start - 2 or s >= start + APEX + 2]
        s = free[int(torch.randint(len(free), (1,), generator=generator))]
        features[i, s:s + DISTRACTOR] += 0.5 * prototypes[other]
    apex = torch.stack([starts, starts + APEX], dim=1).double() / 64
    return features, labels, apex.numpy()


def trained_on_toy(steps: int, loss_of, trainable) -> tuple:
    """Train rdfer_tiny on `toy_clips` for `steps` batches of 32 with `loss_of(model, x, y)`, updating
    `trainable(model)`; its window metrics on 128 test clips and its test accuracy."""
    torch.manual_seed(0)
    model = create_model("rdfer_tiny", num_classes=CLASSES, encoder="tiny", frozen_encoder=True)
    generator = torch.Generator().manual_seed(1)
    width = model.encoder.out_features
    train_x, train_y, _ = toy_clips(256, width, generator)
    test_x, test_y, test_apex = toy_clips(128, width, generator)
    optimizer = torch.optim.AdamW([p for p in trainable(model) if p.requires_grad], lr=3e-3, weight_decay=0)
    model.train()
    for _ in range(steps):
        batch = torch.randint(256, (32,), generator=generator)
        loss = loss_of(model, train_x[batch], train_y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(test_x)
    result = {"index": np.arange(128), "mu": out.mu.numpy(), "delta": out.delta.numpy()}
    truth = GroundTruth(np.zeros(128, bool), np.zeros(128, bool), test_y.numpy(), apex=test_apex)
    accuracy = (out.logits.argmax(-1) == test_y).float().mean().item()
    return window_metrics(result, truth, num_dense=64, num_out=16), accuracy


def test_mu_follows_an_apex_that_moves_from_clip_to_clip():
    # The classification loss alone (no guide) trains the detector through re-sampling.
    def classification(model, x, y):
        out = model(x)
        return F.cross_entropy(out.logits, y) + F.cross_entropy(out.clip_logits.flatten(0, 1), y.repeat_interleave(4))

    metrics, accuracy = trained_on_toy(150, classification, lambda model: model.parameters())
    assert metrics["mu_apex_corr"] >= 0.8, metrics
    assert metrics["apex_covered"] >= 0.8, metrics
    assert metrics["mu_sd"] >= 0.1 and metrics["delta_mean"] < 3, metrics  # the window moved and narrowed
    assert accuracy > 0.8


def test_window_metrics_against_the_apex():
    mu = np.array([0.2, 0.5, 0.8, 0.5])
    delta = np.array([1.0, 1.0, 1.0, 4.0])
    apex = np.array([[0.1, 0.3], [0.1, 0.3], [0.7, 0.9], [0.4, 0.6]])
    truth = GroundTruth(np.zeros(4, bool), np.zeros(4, bool), np.zeros(4, int), apex=apex)
    metrics = window_metrics({"index": np.arange(4), "mu": mu, "delta": delta}, truth, 64, 16)
    times = window_fractions(torch.tensor(mu), torch.tensor(delta), 64, 16).numpy()
    assert metrics["apex_covered"] == 0.75  # the second window lies at 0.39-0.62, the apex at 0.1-0.3
    inside = ((times >= apex[:, :1]) & (times <= apex[:, 1:])).mean()
    assert metrics["window_on_apex"] == pytest.approx(inside)
    assert metrics["mu_apex_corr"] == pytest.approx(np.corrcoef(mu, apex.mean(1))[0, 1])
    assert metrics["delta_mean"] == pytest.approx(1.75)
    # Without re-sampling the 16 frames are spread over the clip: every apex centre is covered.
    plain = window_metrics({"index": np.arange(4), "mu": np.full(4, np.nan), "delta": np.full(4, np.nan)},
                           truth, 16, 16)
    assert plain["apex_covered"] == 1 and "mu_apex_corr" not in plain
    assert window_metrics({"index": np.arange(4), "mu": mu, "delta": delta}, None, 64, 16) == {}


def test_checkpoints_from_before_the_detector_saw_time_load_and_compute_the_same():
    torch.manual_seed(0)
    model = create_model("rdfer_tiny", num_classes=3, encoder="tiny", frozen_encoder=True, **LEGACY_FIELDS)
    state = model_state(model)
    width = model.encoder.out_features
    old_weight = torch.randn(2, width)  # F_d of old: (a, b) = W mean_t(F_t) + bias
    state["model"]["detector.locate.weight"] = old_weight
    state["model_config"] = {key: value for key, value in config_to_dict(model.config).items()
                             if key not in LEGACY_FIELDS}
    loaded = load_model(state)
    assert loaded.config.detector_locator == "linear" and loaded.config.detector_kernel == "linear"
    features = torch.randn(2, 64, width)
    a, b = (features[:, ::4].mean(1) @ old_weight.T + state["model"]["detector.locate.bias"]).unbind(1)
    out = loaded(features)
    torch.testing.assert_close(out.mu, torch.sigmoid(a))
    torch.testing.assert_close(out.delta, 0.5 + (loaded.config.d_max - 0.5) * torch.sigmoid(b))
    # A new checkpoint keeps its own detector.
    new = create_model("rdfer_tiny", num_classes=3, encoder="tiny", frozen_encoder=True)
    assert load_model(model_state(new)).config.detector_locator == "moments"
    assert load_model(model_state(new)).config.detector_guide


def test_checkpoints_from_before_the_guide_load_without_an_evidence_head():
    torch.manual_seed(0)
    model = create_model("rdfer_tiny", num_classes=3, encoder="tiny", frozen_encoder=True, detector_guide=False)
    state = model_state(model)
    state["model_config"] = {k: v for k, v in config_to_dict(model.config).items() if k != "detector_guide"}
    loaded = load_model(state)
    assert not loaded.config.detector_guide and loaded.detector.evidence is None
    features = torch.randn(2, 64, model.encoder.out_features)
    torch.testing.assert_close(loaded(features).mu, model.eval()(features).mu)
    assert loaded(features).evidence is None


def test_guide_loss_against_hand_worked_values():
    # One video of label 0, two scanned frames: p(label) = 0.5 and 0.75.
    evidence = torch.tensor([[[0.0, 0.0], [float(np.log(3.0)), 0.0]]])
    log_weights = torch.log(torch.tensor([[0.5, 0.5]]))
    targets = torch.tensor([0])
    frame_ce = -(np.log(0.5) + np.log(0.75)) / 2
    # tau = 1: the teacher is p(label) normalised over time, (0.4, 0.6).
    kl = 0.4 * np.log(0.4 / 0.5) + 0.6 * np.log(0.6 / 0.5)
    assert guide_loss(evidence, log_weights, targets, 1.0).item() == pytest.approx(frame_ce + kl, rel=1e-6)
    # tau = 0.5 squares the ratios: (0.25, 0.5625) / 0.8125.
    q = np.array([0.25, 0.5625]) / 0.8125
    kl = float((q * np.log(q / 0.5)).sum())
    assert guide_loss(evidence, log_weights, targets, 0.5).item() == pytest.approx(frame_ce + kl, rel=1e-6)
    # Weights equal to the teacher leave only the evidence head's CE.
    teacher = torch.log(torch.tensor([[0.4, 0.6]]))
    assert guide_loss(evidence, teacher, targets, 1.0).item() == pytest.approx(frame_ce, rel=1e-6)


def test_the_guide_alone_moves_the_window_onto_the_label_and_off_the_distractor():
    # Only the guide trains the detector: no classification loss reaches mu.
    def guide(model, x, y):
        detected = model.detector(x)
        return guide_loss(detected["evidence"], detected["log_weights"], y, 0.1).mean()

    metrics, _ = trained_on_toy(80, guide, lambda model: model.detector.parameters())
    assert metrics["mu_apex_corr"] >= 0.9 and metrics["mu_sd"] >= 0.1, metrics
    assert metrics["apex_covered"] >= 0.9 and metrics["delta_mean"] < 3, metrics


def test_the_reweighted_loss_adds_the_guide_per_sample_and_not_for_weight_0():
    torch.manual_seed(0)
    logits, clip_logits = torch.randn(4, 3), torch.randn(4, 4, 3)
    evidence, log_weights = torch.randn(4, 16, 3), torch.randn(4, 16).log_softmax(1)
    targets, indices = torch.tensor([0, 1, 2, 0]), torch.arange(4)
    plain = ReweightedLoss(ReweightConfig(strategy="ce", guide_weight=0.5), 4)
    base, _ = plain(logits, clip_logits, targets, indices, 0)
    guided, _ = plain(logits, clip_logits, targets, indices, 0, evidence=evidence, log_weights=log_weights)
    expected = base + 0.5 * guide_loss(evidence, log_weights, targets, 0.1).mean()
    torch.testing.assert_close(guided, expected)
    # bigloss_weaken weighs the top-loss sample 0 (t_n = 0.25 of 4): its guide is not added.
    weaken = ReweightedLoss(ReweightConfig(strategy="bigloss_weaken", t_n=0.25, warmup_epochs=0), 4)
    base, info = weaken(logits, clip_logits, targets, indices, 0)
    guided, _ = weaken(logits, clip_logits, targets, indices, 0, evidence=evidence, log_weights=log_weights)
    per_sample = guide_loss(evidence, log_weights, targets, 0.1)
    assert (info["weights"] == 0).sum() == 1
    torch.testing.assert_close(guided, base + (info["weights"] * per_sample).sum() / 4)


@pytest.mark.parametrize("frame", [0, 5, 15])
def test_a_score_peaked_on_a_scanned_frame_centres_the_window_on_that_frame(frame):
    # The detector scans dense frames 0, 4, ..., 60; a score that puts all its weight on scanned
    # frame j must give mu = 4j / 64, the position of dense frame 4j (positions = 64 * mu), not 4j + 2.
    torch.manual_seed(0)
    model = create_model("rdfer_tiny", num_classes=3, encoder="tiny", frozen_encoder=True, detector_context=1,
                         detector_guide=False)
    detector = model.detector
    width = model.encoder.out_features
    features = torch.zeros(1, 64, width)
    features[0, 4 * frame, 0] = 1.0  # only scanned frame `frame` has a feature the scores read
    features[0, 4 * frame + 1: 4 * frame + 4, 0] = 1.0  # dense frames between scans are never read
    with torch.no_grad():
        detector.locate.weight.zero_()
        detector.locate.weight[0, 0] = 1e4  # softmax over time: all weight on that frame
        out = detector(features)
    assert out["mu"].item() == pytest.approx(4 * frame / 64, abs=1e-6)
    # Checkpoints from before the fix keep their time of 4j + 2 (LEGACY_FIELDS).
    state = model_state(model)
    state["model_config"] = {k: v for k, v in state["model_config"].items() if k != "detector_scan_offset"}
    with torch.no_grad():
        assert load_model(state).detector(features)["mu"].item() == pytest.approx((4 * frame + 2) / 64, abs=1e-6)
