"""Frame encoders, key expression re-sampling, Algorithm 1, RDFERNet, checkpoints."""

import urllib.error

from pathlib import Path

import pytest
import torch
from torch import nn

from rdfer.errors import RdferError
from rdfer.models.base import ModelOutput, VideoConfig, VideoModel
from rdfer.models.baselines import BaselineConfig
from rdfer.models.checkpoint import load_model, model_state
from rdfer.models.detector import KeyExpressionDetector, blend_frames, resample_positions
from rdfer.models.dual_stream import DualStreamHierarchical
from rdfer.models.encoders import build_frame_encoder, register_encoder
from rdfer.models.rdfer_net import ABLATIONS, ModelConfig
from rdfer.models import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- frame encoders

def test_tiny_encoder_shape_and_cost():
    encoder = build_frame_encoder("tiny")
    assert encoder(torch.rand(5, 3, 64, 64)).shape == (5, encoder.out_features)
    macs = []
    for conv in (m for m in encoder.modules() if isinstance(m, nn.Conv2d)):
        conv.register_forward_hook(lambda m, i, o: macs.append(o[0].numel() * m.weight[0].numel()))
    encoder(torch.rand(1, 3, 64, 64))
    assert 1e6 < sum(macs) < 10e6  # "a few MFLOPs per frame at 64 px"


def test_resnet_encoders_drop_the_classifier():
    encoder = build_frame_encoder("resnet18")
    assert encoder.out_features == 512
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_unknown_encoder_or_weights_name_is_a_user_error():
    with pytest.raises(RdferError, match="known encoders"):
        build_frame_encoder("resnet7")
    with pytest.raises(RdferError, match="tiny"):
        build_frame_encoder("tiny", "imagenet")
    with pytest.raises(ValueError, match="twice"):
        register_encoder("tiny")(lambda pretrained: None)


def test_imagenet_weights_offline_fail_clearly(monkeypatch, tmp_path):
    # An empty hub cache and a download that fails, as on a machine without internet.
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    tries = []

    def offline(url, *args, **kwargs):
        tries.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RdferError) as error:
        build_frame_encoder("resnet18", "imagenet")
    message = str(error.value)
    assert tries and "resnet18" in tries[0]
    assert "could not download" in message and tries[0] in message and "--set model.options.pretrained=PATH" in message


def test_local_state_dict_loads_and_reports(tmp_path, caplog):
    import torchvision

    source = torchvision.models.resnet18(weights=None)  # with its fc head, as torchvision saves it
    path = tmp_path / "r18.pth"
    torch.save(source.state_dict(), path)
    with caplog.at_level("INFO", logger="rdfer.models.encoders"):
        encoder = build_frame_encoder("resnet18", str(path))
    torch.testing.assert_close(encoder.conv1.weight, source.conv1.weight)
    torch.testing.assert_close(encoder.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)
    assert "fc.weight" in caplog.text and str(path) in caplog.text


def test_local_state_dict_errors(tmp_path):
    with pytest.raises(RdferError, match="no such file"):
        build_frame_encoder("resnet18", str(tmp_path / "missing.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(RdferError, match="cannot read"):
        build_frame_encoder("resnet18", str(garbage))
    pickled = tmp_path / "pickled.pth"  # a file with code in it: never loaded, and never advised to be
    torch.save({"weights": build_frame_encoder("tiny").state_dict(), "extra": Path("x")}, pickled)
    with pytest.raises(RdferError, match="holds Python objects besides tensors") as caught:
        build_frame_encoder("resnet18", str(pickled))
    assert "weights_only=False" not in str(caught.value) and "\n" not in str(caught.value)
    other = tmp_path / "tiny.pth"
    torch.save(build_frame_encoder("tiny").state_dict(), other)
    with pytest.raises(RdferError, match="does not fit"):
        build_frame_encoder("resnet18", str(other))


# ---------------------------------------------------------------- key expression re-sampling

def _dense(batch=2, frames=64, size=4, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, size, size, generator=generator, dtype=dtype)


# "linear" starts at mu = 0.5 (dense positions 2, 6, ..., 62); "moments" at the mean time of the
# scanned frames, 30 / 64 (positions 0, 4, ..., 60: the scanned frames themselves).
@pytest.mark.parametrize("locator, kernel, first", [("moments", "gaussian", 0.0), ("linear", "linear", 2.0)])
def test_first_resampling_is_uniform_whatever_the_input(locator, kernel, first):
    torch.manual_seed(0)
    detector = KeyExpressionDetector(out_features=8, locator=locator, context=3, kernel=kernel)
    dense = _dense(size=16)
    out = detector(dense)
    other = detector(_dense(size=16, seed=1) * 3)
    for result in (out, other):
        torch.testing.assert_close(result["mu"], torch.full((2,), (first + 30) / 64))
        torch.testing.assert_close(result["delta"], torch.full((2,), 4.0))
        # Uniform: 16 frames, 4 apart.
        torch.testing.assert_close(result["positions"], torch.arange(first, 64, 4).expand(2, 16), atol=1e-4, rtol=0)
    if kernel == "linear":
        torch.testing.assert_close(out["frames"], dense[:, 2::4], atol=1e-4, rtol=0)
    else:  # each frame is the Gaussian mean (sd = delta / 2 = 2 frames) around its position
        weights = torch.exp(-0.5 * ((torch.arange(64.0) - 32) / 2) ** 2)
        expected = (weights[:, None, None, None] * dense[0]).sum(0) / weights.sum()
        torch.testing.assert_close(out["frames"][0, 8], expected, atol=1e-4, rtol=0)
    assert out["summary"].shape == (2, 8) and ((out["summary"] > 0) & (out["summary"] < 1)).all()


def test_window_is_shifted_not_clipped_at_the_borders():
    delta = torch.tensor([3.0, 3.0, 2.5, 1.0])
    mu = torch.tensor([0.0, 1.0, 0.97, 0.5])
    positions = resample_positions(mu, delta, num_dense=64, num_out=16)
    assert positions.shape == (4, 16)
    assert (positions >= 0).all() and (positions <= 63).all()
    # Stride kept (no frame repeats), window pushed against the border.
    torch.testing.assert_close(positions.diff(dim=1), delta[:, None].expand(4, 15))
    assert positions[0, 0] == 0 and positions[1, -1] == 63 and positions[2, -1] == 63
    torch.testing.assert_close(positions[3], 32 + torch.arange(-7.5, 8))  # inside: not moved


def test_fractional_positions_blend_their_two_neighbours():
    dense = _dense(batch=1, frames=8)
    positions = torch.tensor([[0.0, 2.25, 5.5, 6.0, 7.0]])
    frames = blend_frames(dense, positions)[0]
    torch.testing.assert_close(frames[0], dense[0, 0])
    torch.testing.assert_close(frames[1], 0.75 * dense[0, 2] + 0.25 * dense[0, 3])
    torch.testing.assert_close(frames[2], 0.5 * dense[0, 5] + 0.5 * dense[0, 6])
    torch.testing.assert_close(frames[3], dense[0, 6])
    torch.testing.assert_close(frames[4], dense[0, 7])  # the last frame is reachable


@pytest.mark.parametrize("mu, delta", [((0.43, 0.61), (2.3, 3.1)), ((0.03, 0.98), (1.73, 3.31))])
def test_resampling_gradcheck(mu, delta):
    # Second case: both windows pushed inside by the border shift. Values keep every
    # position off integers, where the blend has a kink and finite differences fail.
    dense = _dense(frames=64, size=2, dtype=torch.float64)
    mu = torch.tensor(mu, dtype=torch.float64, requires_grad=True)
    delta = torch.tensor(delta, dtype=torch.float64, requires_grad=True)

    def resample(mu, delta):
        return blend_frames(dense, resample_positions(mu, delta, num_dense=64, num_out=16))

    assert torch.autograd.gradcheck(resample, (mu, delta), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("locator, kernel", [("moments", "gaussian"), ("linear", "linear")])
def test_detector_learns_mu_and_delta_through_the_frames(locator, kernel):
    torch.manual_seed(0)
    detector = KeyExpressionDetector(out_features=8, locator=locator, kernel=kernel)
    dense = _dense(size=16)
    out = detector(dense)
    mu_grad, delta_grad = torch.autograd.grad(out["frames"].square().mean(), (out["mu"], out["delta"]),
                                              retain_graph=True)
    assert (mu_grad.abs() > 0).all() and (delta_grad.abs() > 0).all()
    out["frames"].square().mean().backward()
    # F_d starts with zero weights, so its weights learn first (the backbone from the next step on).
    assert detector.locate.weight.grad.abs().sum() > 0
    if locator == "linear":
        assert (detector.locate.bias.grad.abs() > 0).all()  # both a (mu) and b (delta)


def test_detector_options():
    detector = KeyExpressionDetector(out_features=8, summary=False, d_max=4.0, locator="linear")
    out = detector(_dense(size=16))
    assert out["summary"] is None and detector.summary is None
    assert (out["delta"] < 4.0).all() and (out["delta"] > 3.9).all()  # d_max = 4: nearest reachable start
    with pytest.raises(ValueError, match="64 dense frames"):
        detector(_dense(frames=32, size=16))


# ---------------------------------------------------------------- Algorithm 1

class Recorder(nn.Module):
    """A sequence model that logs its input and passes it through (mean over time)."""

    def __init__(self, name, log):
        super().__init__()
        self.name, self.log = name, log

    def steps(self, x):
        self.log.append((self.name, x.detach().clone()))
        return x

    def forward(self, x):
        return self.steps(x).mean(dim=1)


def _recording_network(**options):
    network = DualStreamHierarchical(in_features=3, width=6, hidden=3, **options)
    log = []
    network.proj = nn.Identity()
    network.s_m, network.s_e = Recorder("S_m", log), Recorder("S_e", log)
    # Frame t of video b carries the value 100 b + t in every channel.
    frames = (100 * torch.arange(2.0)[:, None] + torch.arange(16.0)[None, :])[:, :, None].expand(2, 16, 3)
    return network, log, frames


def _values(x):
    return x[..., 0]  # every channel holds the same number


def test_movement_emotion_stream_runs_s_m_inside_clips_then_s_e_over_them():
    network, log, frames = _recording_network()
    f, u = network(frames)
    assert [name for name, _ in log] == ["S_m", "S_e", "S_e", "S_m"]
    clips = _values(log[0][1])  # (B * n1, n2): clip i holds frames 4i .. 4i+3
    expected = torch.stack([100 * b + torch.arange(16.0).view(4, 4) for b in range(2)]).view(8, 4)
    torch.testing.assert_close(clips, expected)
    # u_i: the mean over clip i's frames; S_e runs over u_1..u_4.
    clip_means = torch.stack([100 * b + torch.arange(1.5, 16, 4) for b in range(2)])
    torch.testing.assert_close(_values(u), clip_means)
    torch.testing.assert_close(_values(log[1][1]), clip_means)


def test_emotion_movement_stream_runs_s_e_inside_strided_groups_then_s_m_over_them():
    network, log, frames = _recording_network()
    f, _ = network(frames)
    groups = _values(log[2][1])  # (B * n2, n1): group j holds frames j, j+4, j+8, j+12
    expected = torch.stack([100 * b + torch.arange(16.0).view(4, 4).T for b in range(2)]).view(8, 4)
    torch.testing.assert_close(groups, expected)
    group_means = torch.stack([100 * b + 6 + torch.arange(4.0) for b in range(2)])
    torch.testing.assert_close(_values(log[3][1]), group_means)
    # f = f_me + f_em; both are the video mean 100 b + 7.5 with pass-through models.
    torch.testing.assert_close(_values(f), 2 * (100 * torch.arange(2.0) + 7.5))


def test_single_stream_and_no_hierarchy_ablations():
    network, log, frames = _recording_network(dual_stream=False)
    f, _ = network(frames)
    assert [name for name, _ in log] == ["S_m", "S_e"]
    torch.testing.assert_close(_values(f), 100 * torch.arange(2.0) + 7.5)

    network, log, frames = _recording_network(hierarchy=False)
    f, u = network(frames)
    # S_m inside each clip for u (clip i's frames only), then both models over all 16 frames.
    assert [name for name, _ in log] == ["S_m", "S_m", "S_e"]
    torch.testing.assert_close(_values(log[0][1]), _values(frames).reshape(8, 4))
    for _, seen in log[1:]:  # both sequence models see all 16 frames in order
        torch.testing.assert_close(seen, frames)
    torch.testing.assert_close(_values(u), torch.stack([100 * b + torch.arange(1.5, 16, 4) for b in range(2)]))
    torch.testing.assert_close(_values(f), 2 * (100 * torch.arange(2.0) + 7.5))


def test_concat_fusion_doubles_the_width():
    network = DualStreamHierarchical(in_features=10, width=8, hidden=4, fusion="concat")
    f, u = network(torch.randn(3, 16, 10))
    assert network.out_features == 16 and f.shape == (3, 16) and u.shape == (3, 4, 8)


# ---------------------------------------------------------------- RDFERNet

def _tiny_video(model, batch=2, size=32):
    return torch.rand(batch, model.config.num_frames, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_clip_logits_are_the_same_head_on_the_clip_features_in_one_pass():
    torch.manual_seed(0)
    model = create_model("rdfer_tiny").eval()
    seen = {}
    model.dual_stream.register_forward_hook(lambda m, i, o: seen.__setitem__("u", o[1]))
    model.detector.register_forward_hook(lambda m, i, o: seen.__setitem__("summary", o["summary"]))
    calls = []
    model.encoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    with torch.no_grad():
        out = model(_tiny_video(model))
        expected = model.classifier(seen["u"] * seen["summary"][:, None])
    assert calls == [2 * 16]  # the encoder ran once, on the 16 re-sampled frames per video
    torch.testing.assert_close(out.clip_logits, expected)


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_table_iii_ablations_are_config_switches(ablation):
    model = create_model("rdfer_tiny", num_classes=11, **ABLATIONS[ablation])
    config = model.config
    if ablation == "no_resample":
        assert config.num_frames == 16 and not config.summary and model.detector is None
    else:
        assert config.num_frames == 64 and model.detector is not None
    assert (model.detector is not None and model.detector.summary is not None) == (ablation not in
                                                                                    ("no_resample", "no_summary"))
    assert model.dual_stream.dual_stream == (ablation != "single_stream")
    assert model.dual_stream.hierarchy == (ablation != "no_hierarchy")
    out = model(_tiny_video(model))
    assert out.logits.shape == (2, 11) and out.clip_logits.shape == (2, 4, 11)
    assert (out.mu is None) == (ablation == "no_resample")


def test_concat_options_keep_the_clip_head_consistent():
    model = create_model("rdfer_tiny", fusion="concat", summary_fusion="concat")
    out = model(_tiny_video(model))
    assert out.features.shape == (2, 4 * 128)
    assert out.clip_logits.shape == (2, 4, 7)


def test_model_normalises_with_its_own_mean_and_std():
    torch.manual_seed(0)
    model = create_model("rdfer_tiny", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)).eval()
    shifted = create_model("rdfer_tiny", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)).eval()
    shifted.load_state_dict(model.state_dict())  # mean/std are not weights: they come from the config
    video = _tiny_video(model)
    with torch.no_grad():
        torch.testing.assert_close(shifted(video).logits, model(video * 2 - 1).logits)


def test_config_errors_are_user_errors():
    with pytest.raises(RdferError, match="unknown config fields"):
        create_model("rdfer_tiny", widht=64)
    with pytest.raises(RdferError, match="2 \\* hidden"):
        create_model("rdfer_tiny", width=100)
    with pytest.raises(RdferError, match="n1 \\* n2"):
        create_model("rdfer_tiny", resample=False, num_frames=64)
    model = create_model("rdfer_tiny")
    with pytest.raises(RdferError, match="64"):
        model(torch.rand(1, 16, 3, 32, 32))
    assert ModelConfig(name="x", mean=[0.1, 0.2, 0.3]).mean == (0.1, 0.2, 0.3)


def test_both_model_families_share_one_config_base_and_one_output():
    # The checks every model needs are VideoConfig's, written once (models/base.py).
    for config_cls in (ModelConfig, BaselineConfig):
        assert issubclass(config_cls, VideoConfig)
        with pytest.raises(RdferError, match=r"model x: without re-sampling num_frames must be n1 \* n2 = 16, got 32"):
            config_cls(name="x", resample=False, num_frames=32)
        with pytest.raises(RdferError, match=r"model x: num_frames \(40\) must be a multiple of n1 \* n2 = 16"):
            config_cls(name="x", resample=True, num_frames=40)
    for name in ("rdfer_tiny", "mc3_18"):
        model = create_model(name, input_size=16).eval()
        assert isinstance(model, VideoModel)
        with torch.no_grad():
            out = model(_tiny_video(model, size=16))
        assert isinstance(out, ModelOutput)
        moved = out.to("cpu")  # what the predictor does with every batch
        assert [getattr(moved, key) is None for key in ("mu", "delta")] == [name == "mc3_18"] * 2


# ---------------------------------------------------------------- checkpoints

def test_checkpoint_file_round_trip_keeps_weight_names_without_loading_them(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = create_model("rdfer_tiny", num_classes=3).eval()
    state = model_state(model)
    assert state["model_name"] == "rdfer_tiny" and isinstance(state["model_config"]["mean"], list)
    state["model_config"]["pretrained"] = "imagenet"  # as if trained from ImageNet weights
    path = tmp_path / "last.pt"
    torch.save(state, path)

    def no_download(*args, **kwargs):
        raise AssertionError("rebuilding from a checkpoint must not download weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    rebuilt = load_model(str(path))
    assert rebuilt.config.pretrained == "imagenet" and rebuilt.config.num_classes == 3
    video = _tiny_video(model)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(video).logits, model(video).logits)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(RdferError, match="no such file"):
        load_model(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01 not a zip")
    with pytest.raises(RdferError, match="cannot be read"):
        load_model(garbage)
    weights_only = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(1)}, weights_only)
    with pytest.raises(RdferError, match="not an rdfer model checkpoint"):
        load_model(weights_only)

    state = model_state(create_model("rdfer_tiny"))
    with pytest.raises(RdferError, match="no_such_model"):
        load_model({**state, "model_name": "no_such_model"})
    with pytest.raises(RdferError, match="do not fit"):
        load_model({**state, "model_config": {**state["model_config"], "num_classes": 11}})
    with pytest.raises(RdferError, match="do not fit"):
        load_model({**state, "model": {k: v for k, v in state["model"].items() if "classifier" not in k}})
