"""Every registered model: forward, backward, checkpoint round trip; `rdfer models`."""

import argparse
import dataclasses
import io

import pytest
import torch
from torch import nn

from rdfer.models.checkpoint import load_model, model_state
from rdfer.models import create_model, list_models

SIZE = 16  # small frames keep every model fast on 2 CPU cores


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _video(model, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, model.config.num_frames, 3, SIZE, SIZE, generator=generator)


def _first_conv(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)))


def test_the_paper_variants_are_registered():
    assert {"rdfer_r50", "rdfer_r18", "rdfer_tiny"} <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_and_checkpoint_round_trip(name):
    # One test per model so each model is built once (the suite runs on 2 shared cores).
    torch.manual_seed(0)
    model = create_model(name, input_size=SIZE)
    config = model.config
    assert dataclasses.is_dataclass(config) and config.name == name and config.input_size == SIZE
    assert len(config.mean) == 3 and len(config.std) == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.input_size = 3

    model.train()
    out = model(_video(model))
    num_classes = config.num_classes
    assert out.logits.shape == (2, num_classes)
    assert out.clip_logits.shape == (2, 4, num_classes)
    assert out.features.dim() == 2 and out.features.shape[0] == 2
    for key in ("logits", "clip_logits", "features"):
        assert torch.isfinite(getattr(out, key)).all(), key
    if out.mu is not None:
        assert out.mu.shape == (2,) and out.delta.shape == (2,)
        assert ((out.mu >= 0) & (out.mu <= 1)).all() and (out.delta > 0).all()
    else:
        assert out.delta is None

    (out.logits.logsumexp(1).sum() - out.logits[:, 0].sum()).backward()
    conv = _first_conv(model)  # the encoder's first layer: gradients reach the bottom of the network
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    for pname, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), pname

    # Round trip: the train-mode pass above moved BatchNorm statistics, so they must be saved too.
    model.eval()
    buffer = io.BytesIO()
    torch.save({**model_state(model), "epoch": 3}, buffer)  # the engine adds its own keys
    buffer.seek(0)
    rebuilt = load_model(torch.load(buffer, weights_only=True))
    assert rebuilt.config == model.config and not rebuilt.training
    video = _video(model, batch=1, seed=2)
    with torch.no_grad():
        expected, got = model(video), rebuilt(video)
    torch.testing.assert_close(got.logits, expected.logits)
    torch.testing.assert_close(got.clip_logits, expected.clip_logits)


def _models_cli(argv):
    from rdfer.cli import models as models_cli

    parser = argparse.ArgumentParser()
    models_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_rdfer_models_lists_every_model_with_numbers(capsys):
    assert _models_cli(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.split() and line.split()[0] in list_models()}
    assert set(rows) == set(list_models())
    for name, numbers in rows.items():
        params_m, gmacs, gflops = (float(v) for v in numbers[:3])
        assert params_m > 0 and gmacs > 0, name
        assert gflops == pytest.approx(2 * gmacs, abs=0.011), name
    assert "GMACs" in lines[-1] and "FLOPs" in lines[-1]


def test_measured_cost_matches_the_convolutions():
    from rdfer.cli.models import measure

    row = measure("rdfer_tiny")
    model = create_model("rdfer_tiny")
    assert row["params_m"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)

    # Count conv multiply-adds independently with hooks; convs are most of the cost.
    conv_macs = []

    def hook(module, inputs, output):
        kernel = module.weight[0].numel()  # in_channels / groups * kh * kw
        conv_macs.append(output.numel() * kernel)

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(hook)
    with torch.no_grad():
        model.eval()(torch.rand(1, model.config.num_frames, 3, model.config.input_size, model.config.input_size))
    assert sum(conv_macs) / 1e9 <= row["gmacs"] <= 1.2 * sum(conv_macs) / 1e9


def test_rdfer_models_rejects_an_unknown_name():
    from rdfer.errors import RdferError

    with pytest.raises(RdferError, match="no_such_model"):
        _models_cli(["models", "no_such_model"])
