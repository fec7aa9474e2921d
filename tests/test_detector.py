"""The key expression detector learns where the key expression is, and old checkpoints still load."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rdfer.config import config_to_dict
from rdfer.engine.outputs import GroundTruth, window_metrics
from rdfer.models import create_model
from rdfer.models.checkpoint import LEGACY_FIELDS, load_model, model_state
from rdfer.models.detector import window_fractions

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


def test_mu_follows_an_apex_that_moves_from_clip_to_clip():
    torch.manual_seed(0)
    model = create_model("rdfer_tiny", num_classes=CLASSES, encoder="tiny", frozen_encoder=True)
    generator = torch.Generator().manual_seed(1)
    width = model.encoder.out_features
    train_x, train_y, _ = toy_clips(256, width, generator)
    test_x, test_y, test_apex = toy_clips(128, width, generator)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3, weight_decay=0)
    model.train()
    for _ in range(150):
        batch = torch.randint(256, (32,), generator=generator)
        out = model(train_x[batch])
        loss = F.cross_entropy(out.logits, train_y[batch]) + F.cross_entropy(
            out.clip_logits.flatten(0, 1), train_y[batch].repeat_interleave(4))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(test_x)
    result = {"index": np.arange(128), "mu": out.mu.numpy(), "delta": out.delta.numpy()}
    truth = GroundTruth(np.zeros(128, bool), np.zeros(128, bool), test_y.numpy(), apex=test_apex)
    metrics = window_metrics(result, truth, num_dense=64, num_out=16)
    assert metrics["mu_apex_corr"] >= 0.8, metrics
    assert metrics["apex_covered"] >= 0.8, metrics
    assert metrics["mu_sd"] >= 0.1 and metrics["delta_mean"] < 3, metrics  # the window moved and narrowed
    assert (out.logits.argmax(-1) == test_y).float().mean() > 0.8


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
