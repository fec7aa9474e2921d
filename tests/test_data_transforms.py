"""Temporal sampling and the batched train/eval presets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rdfer.data import EvalPreset, TrainPreset, sample_indices
from rdfer.data.transforms import BRIGHTNESS, CONTRAST, HUE, SATURATION


@pytest.mark.parametrize("length", [1, 3, 11, 16, 63, 64, 65, 200])
@pytest.mark.parametrize("n", [16, 64])
def test_train_indices_lie_in_their_segments(length, n):
    g = torch.Generator().manual_seed(length)
    for _ in range(5):
        idx = sample_indices(length, n, train=True, generator=g)
        assert idx.shape == (n,) and idx.dtype == np.int64
        k = np.arange(n)
        low = np.floor(k * length / n)
        high = np.ceil((k + 1) * length / n) - 1
        assert np.all(idx >= low) and np.all(idx <= high)
        assert np.all(np.diff(idx) >= 0) and idx.min() >= 0 and idx.max() < length


@pytest.mark.parametrize("length", [1, 5, 16, 64, 100])
def test_eval_indices_are_segment_centres(length):
    idx = sample_indices(length, 64, train=False)
    expected = np.floor((np.arange(64) + 0.5) * length / 64).astype(int)
    assert idx.tolist() == expected.tolist()
    if length >= 64:
        assert len(set(idx.tolist())) == 64  # no repeats when the clip is long enough
    else:
        assert set(idx.tolist()) == set(range(length))  # short clips: every frame, repeated


def test_train_offsets_vary_and_follow_the_generator():
    a = sample_indices(300, 64, True, torch.Generator().manual_seed(1))
    b = sample_indices(300, 64, True, torch.Generator().manual_seed(1))
    c = sample_indices(300, 64, True, torch.Generator().manual_seed(2))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


def _clip_batch(b=3, t=5, size=40):
    """Frames that differ only by a constant per frame: the spatial pattern is shared."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pattern = torch.stack([xx * 4, yy * 4, (xx + yy) * 2]).clamp(0, 200)  # (3, H, W)
    video = pattern.expand(b, t, 3, size, size).clone()
    video += torch.arange(t).view(1, t, 1, 1, 1) * 10
    return video.to(torch.uint8)


@pytest.mark.parametrize("device_path", ["cpu_uint8", "tensor"])
def test_train_preset_same_params_for_every_frame(device_path):
    video = _clip_batch()
    preset = TrainPreset(size=24, brightness=0, contrast=0, saturation=0, hue=0)
    source = video if device_path == "cpu_uint8" else video.float() / 255  # float: tensor path
    out = preset(source, torch.Generator().manual_seed(0))
    assert out.shape == (3, 5, 3, 24, 24) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    # Without jitter, frames of a clip differ only by their constant offset: same crop & flip.
    diff = out[:, 1:] - out[:, :1]  # (B, T-1, 3, S, S)
    per_frame = diff.flatten(2)
    assert (per_frame.max(-1).values - per_frame.min(-1).values).abs().max() < 3 / 255
    # Different clips get different crops.
    assert not torch.allclose(out[0, 0], out[1, 0], atol=0.02)


def test_cpu_and_tensor_paths_agree_given_the_same_params():
    torch.manual_seed(0)
    video = torch.randint(0, 256, (4, 6, 3, 48, 48), dtype=torch.uint8)
    preset = TrainPreset(size=32)
    params = preset.sample_params(4, 48, 48, torch.Generator().manual_seed(3))
    cpu = preset.apply(video, params)
    tensor_path = preset.apply(video.float() / 255, params)
    assert (cpu - tensor_path).abs().mean() < 2 / 255
    assert (cpu - tensor_path).abs().max() < 12 / 255


def test_colour_jitter_changes_clips_consistently():
    video = torch.full((2, 4, 3, 20, 20), 100, dtype=torch.uint8)
    video[:, :, 0] = 180  # reddish
    preset = TrainPreset(size=20, scale=(1, 1), ratio=(1, 1), hflip=0)
    out = preset(video, torch.Generator().manual_seed(5))
    # A uniform clip stays uniform, identically across its frames, and clips differ.
    per_channel = out.transpose(1, 2).flatten(2)  # (B, 3, T*H*W)
    assert (per_channel.max(-1).values - per_channel.min(-1).values).max() <= 1.5 / 255
    assert (out[0, 0, :, 0, 0] - out[1, 0, :, 0, 0]).abs().max() > 1 / 255


def test_flip_mirrors_the_frame():
    video = torch.zeros(1, 2, 3, 16, 16, dtype=torch.uint8)
    video[..., :8] = 255  # left half white
    preset = TrainPreset(size=16, scale=(1, 1), ratio=(1, 1), hflip=1.0, brightness=0, contrast=0,
                         saturation=0, hue=0)
    out = preset(video)
    assert out[0, :, :, :, :7].max() < 0.05 and out[0, :, :, :, 9:].min() > 0.95


def test_eval_preset_resizes_and_scales():
    video = torch.randint(0, 256, (2, 3, 3, 64, 64), dtype=torch.uint8)
    out = EvalPreset(32)(video)
    expected = F.interpolate(video.flatten(0, 1).float() / 255, size=(32, 32), mode="bilinear",
                             antialias=True, align_corners=False).view(2, 3, 3, 32, 32)
    assert out.shape == (2, 3, 3, 32, 32) and out.dtype == torch.float32
    assert (out - expected).abs().max() < 2 / 255
    single = EvalPreset(32)(video[0])  # one clip (T, C, H, W)
    assert single.shape == (3, 3, 32, 32)
    assert torch.equal(EvalPreset(64)(video), video.float() / 255)


@pytest.mark.parametrize("as_float", [False, True])
def test_colour_jitter_matches_torchvision_adjustments(as_float):
    from torchvision.transforms import functional as TF

    torch.manual_seed(0)
    small = torch.rand(1, 3, 4, 4) * 0.5 + 0.25
    frame = F.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False)[0]
    video = (frame * 255).round().to(torch.uint8).view(1, 1, 3, 32, 32)
    preset = TrainPreset(size=32)
    params = {"x0": torch.tensor([0.0]), "y0": torch.tensor([0.0]), "w": torch.tensor([32.0]),
              "h": torch.tensor([32.0]), "flip": torch.tensor([False]),
              "brightness": torch.tensor([1.2]), "contrast": torch.tensor([0.7]),
              "saturation": torch.tensor([1.3]), "hue": torch.tensor([0.0]),
              "order": torch.tensor([[BRIGHTNESS, CONTRAST, SATURATION, HUE]])}
    out = preset.apply(video.float() / 255 if as_float else video, params)[0, 0]
    expected = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(
        video[0, 0].float() / 255, 1.2), 0.7), 1.3)
    assert (out - expected).abs().max() < 0.03


def _face_frames(n=14, size=64):
    """uint8 (n, 1, 3, size, size) RGB apex frames of synthetic faces: skin, hair, coloured light."""
    from rdfer.synth import plan_clip, render_frames

    frames = [render_frames(plan_clip(7, f"face{i}", i % 7, 12), size)[6][..., ::-1].copy() for i in range(n)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).unsqueeze(1)


def _params(n, order, brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0, size=64):
    full = {"x0": 0.0, "y0": 0.0, "w": float(size), "h": float(size), "brightness": brightness,
            "contrast": contrast, "saturation": saturation, "hue": hue}
    params = {key: torch.full((n,), value) for key, value in full.items()}
    params["flip"] = torch.zeros(n, dtype=torch.bool)
    params["order"] = torch.tensor([order] * n)
    return params


@pytest.mark.parametrize("hue", [-0.4, -0.2, 0.2, 0.3, 0.4])
def test_hue_jitter_approximates_torchvision_adjust_hue(hue):
    from torchvision.transforms import functional as TF

    video = _face_frames()
    preset = TrainPreset(size=64)
    out = preset.apply(video, _params(len(video), [BRIGHTNESS, CONTRAST, SATURATION, HUE], hue=hue))[:, 0]
    expected = TF.adjust_hue(video[:, 0].float() / 255, hue)
    diff = (out - expected).abs()
    # A linear stand-in for HSV's piecewise-linear shift (see hue_matrices): measured mean 0.015-0.043
    # and 99th percentile 0.05-0.15 on these frames, while leaving the hue alone is off by 0.10 or more.
    assert diff.mean() < 0.05 and diff.flatten().quantile(0.99) < 0.17
    assert (video[:, 0].float() / 255 - expected).abs().mean() > 0.09


def test_colour_jitter_follows_each_clips_order_as_torchvision_does():
    from torchvision.transforms import functional as TF

    video = _face_frames(n=8)
    preset = TrainPreset(size=64)
    factors = {"brightness": 1.3, "contrast": 0.7, "saturation": 1.4, "hue": 0.3}
    steps = {BRIGHTNESS: ("brightness", TF.adjust_brightness), CONTRAST: ("contrast", TF.adjust_contrast),
             SATURATION: ("saturation", TF.adjust_saturation), HUE: ("hue", TF.adjust_hue)}
    outputs = []
    for order in ([HUE, SATURATION, CONTRAST, BRIGHTNESS], [SATURATION, HUE, BRIGHTNESS, CONTRAST]):
        out = preset.apply(video, _params(len(video), order, **factors))[:, 0]
        expected = video[:, 0].float() / 255
        for op in order:
            name, adjust = steps[op]
            expected = adjust(expected, factors[name])
        assert (out - expected).abs().mean() < 0.04
        outputs.append(out)
    assert (outputs[0] - outputs[1]).abs().mean() > 0.005  # the order is applied, not ignored


def test_fused_colour_matrix_composes_the_steps_in_the_clips_order():
    from rdfer.data.transforms import hue_matrices

    torch.manual_seed(0)
    small = torch.rand(2, 3, 4, 4) * 0.3 + 0.35
    video = F.interpolate(small, size=(16, 16), mode="bilinear", align_corners=False).unsqueeze(1)  # (2, 1, 3, 16, 16)
    luma = torch.tensor([0.299, 0.587, 0.114])
    sat = 1.5 * torch.eye(3) - 0.5 * torch.ones(3, 1) * luma  # saturation 1.5
    hue = hue_matrices(torch.tensor([0.1]))[0]
    preset = TrainPreset(size=16)
    results = {}
    for order, matrix in (((SATURATION, HUE, BRIGHTNESS, CONTRAST), hue @ sat),
                          ((HUE, SATURATION, BRIGHTNESS, CONTRAST), sat @ hue)):
        out = preset.apply(video, _params(2, list(order), saturation=1.5, hue=0.1, size=16))
        expected = torch.einsum("ij,btjhw->btihw", matrix, video).clamp(0, 1)
        assert (out - expected).abs().max() < 1e-5, order
        results[order] = out
    first, second = results.values()
    assert (first - second).abs().max() > 1e-3  # so the order does matter


def test_sampled_colour_jitter_has_hue_and_a_random_order_per_clip():
    preset = TrainPreset(size=32)
    params = preset.sample_params(64, 40, 40, torch.Generator().manual_seed(0))
    assert params["hue"].abs().max() <= 0.4 and params["hue"].std() > 0.15
    order = params["order"]
    assert order.shape == (64, 4) and torch.equal(order.sort(1).values, torch.arange(4).expand(64, 4))
    assert len({tuple(row) for row in order.tolist()}) > 10  # of the 24 possible orders
    # Hue changes a clip's colours; greys stay grey.
    video = torch.zeros(2, 2, 3, 8, 8, dtype=torch.uint8)
    video[0, :, 0] = 200  # red
    video[1] = 128  # grey
    params = _params(2, [HUE, BRIGHTNESS, CONTRAST, SATURATION], hue=1 / 3, size=8)
    out = preset.apply(video, params)  # (2, 2, 3, 8, 8)
    assert torch.allclose(out[0, :, :, 0, 0], torch.tensor([0.0, 200 / 255, 0.0]).expand(2, 3), atol=2 / 255)
    assert torch.allclose(out[1], torch.full_like(out[1], 128 / 255), atol=1 / 255)
    with pytest.raises(ValueError, match="hue"):
        TrainPreset(hue=0.6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_tensor_path_matches_the_cpu_path():
    video = _face_frames(n=6)
    preset = TrainPreset(size=48)
    params = preset.sample_params(6, 64, 64, torch.Generator().manual_seed(1))
    cpu = preset.apply(video, params)
    gpu = preset.apply(video.cuda(), params).cpu()
    assert (cpu - gpu).abs().mean() < 2 / 255 and (cpu - gpu).abs().max() < 12 / 255
