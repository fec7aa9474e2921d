"""Trained clip predictions: after a short run on a learnable toy the 4 clips agree with the video.

SPEC 3/4: the clip logits behind the agreement must be trained (the clip loss),
or the agreement measures nothing. Before the clip loss, a toy like this one
reached 100% video accuracy with 27% clip accuracy.
"""

import numpy as np
import pytest
import torch

import rdfer
from rdfer.engine.loop import evaluate, train_one_epoch
from rdfer.engine.outputs import eval_metrics, train_metrics
from rdfer.losses import ReweightConfig, ReweightedLoss

CLASSES, FRAMES, SIZE = 7, 16, 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_batches(count: int, batch_size: int, seed: int) -> list:
    """uint8 videos whose class is a colour shown, faintly and noisily, in a few frames of each clip."""
    rng = np.random.default_rng(seed)
    colours = np.random.default_rng(0).uniform(40, 215, (CLASSES, 3))
    labels = rng.integers(0, CLASSES, count)
    video = rng.normal(128, 30, (count, FRAMES, 3, SIZE, SIZE))
    shown = rng.uniform(size=(count, FRAMES)) < 0.6  # frames that show the expression
    strength = rng.uniform(0.3, 0.7, (count, FRAMES))[..., None] * shown[..., None]  # (N, T, 1)
    video += (strength * (colours[labels][:, None, :] - 128))[..., None, None]
    video = torch.from_numpy(np.clip(video, 0, 255).astype(np.uint8))
    return [{"video": video[i:i + batch_size], "label": torch.from_numpy(labels[i:i + batch_size]),
             "index": torch.arange(i, min(i + batch_size, count)),
             "bad_frames": torch.zeros(min(batch_size, count - i), dtype=torch.long)}
            for i in range(0, count, batch_size)]


def to_unit(video, generator=None):
    return video.float() / 255


def test_clip_predictions_agree_with_the_video_after_training():
    torch.manual_seed(0)
    model = rdfer.create_model("rdfer_tiny", resample=False, input_size=SIZE, width=32, hidden=16)
    train, test = toy_batches(448, 32, seed=1), toy_batches(224, 32, seed=2)
    loss_fn = ReweightedLoss(ReweightConfig(strategy="agreement", warmup_epochs=1), num_samples=448)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    for epoch in range(6):
        stats = train_one_epoch(model, train, to_unit, loss_fn, optimizer, scheduler, scaler, epoch=epoch,
                                device=torch.device("cpu"), amp="off", generator=torch.Generator(), progress=False)
    result = evaluate(model, test, to_unit, device=torch.device("cpu"), amp="off", progress=False)
    video_acc = float((result["prediction"] == result["label"]).mean())
    signals = eval_metrics(result)
    assert video_acc > 0.8, video_acc  # the toy is learned
    assert signals["clip_acc"] >= 0.9 * video_acc, (signals, video_acc)
    assert signals["majority_match"] >= 0.9, signals
    # The training-side signals say the same, and the histogram is a distribution over 4 levels.
    trained = train_metrics(stats["rows"], None, n1=4)
    assert trained["train_clip_acc"] >= 0.9 * trained["train_war"]
    assert list(signals["test_agreement"]) == ["0.25", "0.50", "0.75", "1.00"]
    assert abs(sum(signals["test_agreement"].values()) - 1) < 1e-9
    assert signals["test_agreement"]["1.00"] > 0.5  # trained clips mostly agree on a clean toy
