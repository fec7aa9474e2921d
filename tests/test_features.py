"""Frozen-encoder feature caches: `rdfer features` and training from the cache."""

import json
from pathlib import Path

import pytest
import torch

from rdfer.cli import main
from rdfer.config import load_config
from rdfer.data.features import FeatureCache
from rdfer.engine import fit
from rdfer.engine.features import build_feature_cache
from rdfer.errors import RdferError

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "rdfer" / "configs"


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    from rdfer.synth import write_synthetic

    root = tmp_path_factory.mktemp("synth") / "dfew"
    write_synthetic(root, layout="dfew", clips=24, noise=0.25, seed=5, size=40, progress=False)
    return root


def study_config(root, *extra):
    return load_config(CONFIGS / "study.yaml", (f"data.root={root}", "optim.epochs=2", "optim.batch_size=8",
                                                "loss.warmup_epochs=1", "eval_every=1", *extra))


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_cached_and_uncached_runs_compute_the_same(tiny_synth, tmp_path):
    cache = tmp_path / "features.npz"
    done = build_feature_cache(study_config(tiny_synth), cache, progress=False)
    assert done["clips"] == 24  # fold 1's train and test lists hold every clip once
    loaded = FeatureCache(cache)
    assert loaded.features.shape == (done["frames"], 128)  # mini-Xception's 128-d face features

    fit(study_config(tiny_synth, f"data.features={cache}"), tmp_path / "cached", progress=False)
    fit(study_config(tiny_synth), tmp_path / "uncached", progress=False)
    cached, uncached = read_jsonl(tmp_path / "cached/metrics.jsonl"), read_jsonl(tmp_path / "uncached/metrics.jsonl")
    for a, b in zip(cached, uncached):
        # Same frames sampled, same features up to float rounding of batched convolutions.
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert (a["war"], a["clip_acc"], a["train_agreement"]) == (b["war"], b["clip_acc"], b["train_agreement"])
    import csv

    rows = [list(csv.DictReader(open(tmp_path / run / "predictions.csv"))) for run in ("cached", "uncached")]
    assert len(rows[0]) == len(rows[1]) >= 4  # fold 1's test clips
    for a, b in zip(*rows):
        assert (a["clip_id"], a["prediction"], a["clip_predictions"]) == (b["clip_id"], b["prediction"],
                                                                         b["clip_predictions"])


def test_cache_is_checked_against_the_model(tiny_synth, tmp_path):
    cache = tmp_path / "features.npz"
    build_feature_cache(study_config(tiny_synth), cache, progress=False)
    with pytest.raises(RdferError, match="frozen"):
        fit(study_config(tiny_synth, f"data.features={cache}", "model.options.frozen_encoder=false"),
            tmp_path / "a", progress=False)
    with pytest.raises(RdferError, match="input_size: cache 48, model 40"):
        fit(study_config(tiny_synth, f"data.features={cache}", "model.options.input_size=40"),
            tmp_path / "b", progress=False)
    with pytest.raises(RdferError, match="not found"):
        FeatureCache(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a cache")
    with pytest.raises(RdferError, match="not a feature cache"):
        FeatureCache(tmp_path / "junk.npz")


def test_features_command_needs_a_frozen_encoder(tiny_synth, tmp_path, capsys):
    code = main(["features", "--config", "demo", "--set", f"data.root={tiny_synth}", "--out",
                 str(tmp_path / "f.npz"), "--no-progress"])
    assert code == 2 and "frozen_encoder=true" in capsys.readouterr().err
    assert not (tmp_path / "f.npz").exists()


def test_frozen_model_takes_frames_or_their_features():
    import rdfer

    torch.manual_seed(0)
    model = rdfer.create_model("rdfer_tiny", encoder="mini_xception", input_size=48, frozen_encoder=True).train()
    assert not model.encoder.training  # frozen: batch-norm statistics never move
    assert not any(p.requires_grad for p in model.encoder.parameters())
    video = torch.rand(2, 64, 3, 48, 48)
    from_frames = model(video)
    from_features = model(model.frame_features(video))
    torch.testing.assert_close(from_frames.logits, from_features.logits)
    from_features.logits.sum().backward()  # the detector still learns where to look
    assert model.detector.locate.weight.grad.abs().sum() > 0
    with pytest.raises(RdferError, match="takes features"):
        model(torch.rand(2, 64, 64))
