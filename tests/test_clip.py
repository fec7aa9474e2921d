"""CLIP ViT frame encoders (open_clip image towers): weights files, RDFER on them, the feature cache, configs.

The architecture tests use a tiny ViT (the same open_clip code, 2 layers of width 64 at 32 px); one test
builds the real ViT-B/16.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rdfer.config import load_config, resolve_config_path
from rdfer.engine import fit
from rdfer.engine.features import build_feature_cache
from rdfer.errors import RdferError
from rdfer.models import create_model
from rdfer.models.checkpoint import load_model, model_state
from rdfer.models.clip import CLIP_MEAN, build_clip_encoder
from rdfer.models.encoders import build_frame_encoder, list_encoders, register_encoder

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "rdfer" / "configs"
TINY_VIT = {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32}
TINY = "clip_vit_tiny_test"
# The tiny CLIP-on-RDFER model: the tiny ViT at 32 px, narrow streams.
TINY_MODEL = {"encoder": TINY, "input_size": 32, "width": 64, "hidden": 32}

if TINY not in list_encoders():
    register_encoder(TINY, load=lambda encoder, path, what: encoder.load_weights(path, what))(
        lambda pretrained=None: build_clip_encoder("clip_vit_b16", pretrained, vision_cfg=TINY_VIT, embed_dim=48))
# (registered without `sized`: it always builds TINY_VIT's 32 px grid)


def tiny_clip(quick_gelu=True):
    """A whole open_clip CLIP model (image and text towers) with the tiny ViT: what a weights file holds."""
    import open_clip

    torch.manual_seed(0)
    text = {"context_length": 8, "vocab_size": 100, "width": 32, "heads": 2, "layers": 1}
    return open_clip.model.CLIP(embed_dim=48, vision_cfg=TINY_VIT, text_cfg=text, quick_gelu=quick_gelu).eval()


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    from rdfer.synth import write_synthetic

    root = tmp_path_factory.mktemp("synth") / "dfew"
    write_synthetic(root, layout="dfew", clips=24, noise=0.25, seed=5, size=40, progress=False)
    return root


def test_weights_files_of_every_format_load_into_the_image_tower(tmp_path, one_torch_thread):
    clip = tiny_clip()
    frames = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = clip.encode_image(frames)
    files = {"openai_torchscript.pt": None, "open_clip_checkpoint.pt": None, "image_tower.pt": None}
    torch.jit.script(clip).save(str(tmp_path / "openai_torchscript.pt"))  # OpenAI's releases are TorchScript
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in clip.state_dict().items()}},
               tmp_path / "open_clip_checkpoint.pt")  # an open_clip training checkpoint (DDP keys)
    torch.save(clip.visual.state_dict(), tmp_path / "image_tower.pt")
    for name in files:
        encoder = build_frame_encoder(TINY, str(tmp_path / name)).eval()
        with torch.no_grad():
            assert torch.allclose(encoder(frames), expected, atol=1e-5), name


def test_bad_weights_are_one_line_errors_and_nothing_is_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cases = {
        "openai": "downloads nothing",  # no ~/.cache/clip/ViT-B-16.pt
        str(tmp_path / "missing.pt"): "no such file",
        "laion2b_s34b_b88k": "knows the weights 'openai' or a local file",  # an open_clip download tag
    }
    resnet = tmp_path / "resnet.pt"
    torch.save({"conv.weight": torch.zeros(1)}, resnet)
    cases[str(resnet)] = "no CLIP ViT image tower"
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    cases[str(garbage)] = "cannot read it"
    for pretrained, message in cases.items():
        with pytest.raises(RdferError, match=message) as error:
            build_frame_encoder(TINY if "/" in pretrained else "clip_vit_b16", pretrained)
        assert "\n" not in str(error.value)
    with pytest.raises(RdferError, match="ViT-B-16.pt"):
        build_frame_encoder("clip_vit_b16", "openai")
    other = tmp_path / "other_vit.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 16, 16)}, other)  # another patch size
    with pytest.raises(RdferError, match="does not fit"):
        build_frame_encoder(TINY, str(other))


def test_openai_weights_are_found_in_the_clip_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    clip = tiny_clip()
    (tmp_path / ".cache" / "clip").mkdir(parents=True)
    torch.jit.script(clip).save(str(tmp_path / ".cache" / "clip" / "ViT-B-16.pt"))
    frames = torch.randn(2, 3, 32, 32)
    encoder = build_clip_encoder("clip_vit_b16", "openai", vision_cfg=TINY_VIT, embed_dim=48).eval()
    with torch.no_grad():
        assert torch.allclose(encoder(frames), clip.encode_image(frames), atol=1e-5)


def test_rdfer_on_clip_trains_end_to_end_and_round_trips_through_a_checkpoint(tmp_path, one_torch_thread):
    torch.manual_seed(0)
    model = create_model("rdfer_clip_b16", **TINY_MODEL)
    assert model.config.mean == CLIP_MEAN and model.encoder.out_features == 48
    video = torch.rand(2, model.config.num_frames, 3, 32, 32)
    out = model(video)
    assert out.logits.shape == (2, 7) and out.clip_logits.shape == (2, 4, 7)
    (out.logits.logsumexp(-1).sum() + out.clip_logits.sum()).backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.encoder.visual.conv1.weight.grad.abs().sum() > 0  # the ViT is trained, not only the head

    torch.save(model_state(model), tmp_path / "model.pt")
    rebuilt = load_model(tmp_path / "model.pt").eval()  # weights_only=True, load_state_dict(strict=True)
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    model.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(video).logits, model(video).logits)


def test_vit_b16_is_the_openai_architecture(one_torch_thread):
    encoder = build_frame_encoder("clip_vit_b16").eval()
    assert encoder.out_features == 512 and encoder.image_size == 224
    assert sum(p.numel() for p in encoder.parameters()) == 86_192_640  # CLIP ViT-B/16's image tower
    assert encoder.visual.transformer.resblocks[0].mlp.gelu.__class__.__name__ == "QuickGELU"
    with torch.no_grad():
        assert encoder(torch.rand(1, 3, 224, 224)).shape == (1, 512)
    with pytest.raises(RdferError, match="input_size=224"):
        encoder(torch.rand(1, 3, 112, 112))


def test_pretrained_position_embeddings_are_resized_for_another_input_size(tmp_path, one_torch_thread):
    clip = tiny_clip()  # a 4 x 4 grid of 8 px patches at 32 px
    torch.save(clip.state_dict(), tmp_path / "clip.pt")
    encoder = build_clip_encoder("clip_vit_b16", str(tmp_path / "clip.pt"), 16, vision_cfg=TINY_VIT, embed_dim=48)
    grid = encoder.visual.positional_embedding  # class token + 2 x 2 cells at 16 px
    assert grid.shape == (5, 64)
    assert torch.equal(grid[0], clip.visual.positional_embedding[0])
    # A constant grid stays constant; here: each 2 x 2 cell is near the mean of the 4 cells it covers.
    old = clip.visual.positional_embedding[1:].reshape(4, 4, 64)
    assert torch.allclose(grid[1], old[:2, :2].mean((0, 1)), atol=0.5 * old.std().item())
    assert encoder(torch.rand(2, 3, 16, 16)).shape == (2, 48)


def tiny_run_config(config, root, *extra):
    options = [f"model.options.{k}={v}" for k, v in TINY_MODEL.items()]
    return load_config(resolve_config_path(config), (
        f"data.root={root}", "data.dataset=dfew", "data.num_workers=0", "optim.epochs=1", "optim.batch_size=8",
        "loss.warmup_epochs=0", "model.options.pretrained=null", *options, *extra))


def test_frozen_clip_trains_the_same_from_the_feature_cache(tiny_synth, tmp_path):
    # Weights from a file: both runs and the cache must see the same encoder (random weights would differ).
    weights = tmp_path / "clip.pt"
    torch.save(tiny_clip().state_dict(), weights)
    frozen = ("model.options.frozen_encoder=true", "optim.encoder_lr=null", "optim.epochs=2",
              f"model.options.pretrained={weights}")
    cache = tmp_path / "features.npz"
    done = build_feature_cache(tiny_run_config("dfew_rdfer_plus_clip_b16", tiny_synth, *frozen), cache, progress=False)
    assert done["clips"] == 24
    fit(tiny_run_config("dfew_rdfer_plus_clip_b16", tiny_synth, *frozen, f"data.features={cache}"), tmp_path / "cached",
        progress=False)
    fit(tiny_run_config("dfew_rdfer_plus_clip_b16", tiny_synth, *frozen), tmp_path / "uncached", progress=False)
    read = lambda run: [json.loads(l) for l in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]  # noqa
    for a, b in zip(read("cached"), read("uncached")):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert (a["war"], a["clip_acc"], a["train_agreement"]) == (b["war"], b["clip_acc"], b["train_agreement"])
    features = [np.load(tmp_path / run / "features.npy") for run in ("cached", "uncached")]
    assert np.allclose(features[0], features[1], atol=1e-4)


@pytest.mark.parametrize("config", ["dfew_rdfer_plus_clip_b16", "dfew_ce_clip_b16"])
def test_clip_configs_train_with_their_own_encoder_learning_rate(tiny_synth, tmp_path, config):
    shipped = load_config(resolve_config_path(config), ("data.root=.",))
    assert shipped.model.name == "rdfer_clip_b16" and shipped.model.options["pretrained"] == "openai"
    assert shipped.optim.encoder_lr < shipped.optim.lr
    fit(tiny_run_config(config, tiny_synth), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    head, encoder = state["optimizer"]["param_groups"]
    # Both groups follow the same cosine: their ratio stays encoder_lr / lr.
    assert encoder["lr"] / head["lr"] == pytest.approx(shipped.optim.encoder_lr / shipped.optim.lr)
    assert len(encoder["params"]) == len(list(create_model("rdfer_clip_b16", **TINY_MODEL).encoder.parameters()))


def test_every_clip_config_loads():
    names = sorted(p.stem for p in CONFIGS.glob("*clip*.yaml"))
    assert names == ["dfew_ce_clip_b16", "dfew_rdfer_plus_clip_b16", "ferv39k_ce_clip_b16", "ferv39k_rdfer_plus_clip_b16"]
    for name in names:
        config = load_config(resolve_config_path(name), ("data.root=.",))
        assert config.loss.strategy == ("ce" if "_ce_" in name else "agreement")
        assert config.data.dataset == name.split("_")[0]
