"""Temporal sampling and the batched train/eval presets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rdfer.data import EvalPreset, TrainPreset, sample_indices


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
    preset = TrainPreset(size=24, brightness=0, contrast=0, saturation=0)
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
                         saturation=0)
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
              "saturation": torch.tensor([1.3])}
    out = preset.apply(video.float() / 255 if as_float else video, params)[0, 0]
    expected = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(
        video[0, 0].float() / 255, 1.2), 0.7), 1.3)
    assert (out - expected).abs().max() < 0.03
