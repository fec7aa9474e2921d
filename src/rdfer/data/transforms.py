"""Batched clip augmentation on uint8 video tensors (SPEC 1), on any device.

Both presets take uint8 `(B, T, C, H, W)` (or one clip `(T, C, H, W)`) and
return float32 `(B, T, C, size, size)` in [0, 1]. `TrainPreset` draws one set
of parameters per clip (crop box, flip, jitter factors) and applies it to
every frame of that clip, in a few batched tensor ops (no loop over frames or
clips), so it runs on the GPU as well as in a CPU loader.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ITU-R 601 luma, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


def _as_batch(video: torch.Tensor) -> tuple:
    """(B, T, C, H, W) view of a clip or batch, and whether a batch dim was added."""
    if video.dim() == 4:
        return video.unsqueeze(0), True
    if video.dim() != 5:
        raise ValueError(f"expected video (B, T, C, H, W) or (T, C, H, W), got {tuple(video.shape)}")
    return video, False


def _to_unit_float(video: torch.Tensor) -> torch.Tensor:
    if video.dtype == torch.uint8:
        return video.float().div_(255.0)
    return video.float()


def _grayscale(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W) luma."""
    r, g, b = frames.unbind(dim=-3)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(-3)


class EvalPreset:
    """Resize every frame to size x size (bilinear, antialiased) -> float32 in [0, 1]."""

    def __init__(self, size: int = 112):
        self.size = size

    def __call__(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """video uint8 (B, T, C, H, W) or (T, C, H, W) -> float32 (B, T, C, size, size)."""
        video, added = _as_batch(video)
        b, t, c, h, w = video.shape
        frames = _to_unit_float(video).reshape(b * t, c, h, w)  # (B*T, C, H, W)
        if (h, w) != (self.size, self.size):
            frames = F.interpolate(frames, size=(self.size, self.size), mode="bilinear",
                                   align_corners=False, antialias=True).clamp_(0.0, 1.0)
        out = frames.reshape(b, t, c, self.size, self.size)
        return out[0] if added else out

    def __repr__(self) -> str:
        return f"EvalPreset(size={self.size})"


class TrainPreset:
    """Random resized crop, horizontal flip and colour jitter, one draw per clip.

    Crop: area share in `scale` and aspect ratio in `ratio` (log-uniform), as
    torchvision's RandomResizedCrop (10 tries, then the whole frame), resized
    to size x size by bilinear sampling. Flip with probability `hflip`. Colour
    jitter factors uniform in [max(0, 1 - j), 1 + j] for brightness, contrast
    and saturation, applied in that fixed order (torchvision shuffles the order
    per call; a fixed order keeps the batch vectorised).

    Args:
        size: output side in pixels (SPEC 1 default 112).
        scale, ratio: RandomResizedCrop ranges (torchvision defaults, also used
            by the public DFER code M3DFEL builds on).
        hflip: flip probability.
        brightness, contrast, saturation: jitter strengths (SPEC 1: 0.4).
    """

    def __init__(self, size: int = 112, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip: float = 0.5,
                 brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4):
        self.size = size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.hflip = hflip
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation

    def sample_params(self, batch: int, height: int, width: int,
                      generator: torch.Generator | None = None) -> dict:
        """Per-clip parameters, tensors of shape (batch,) on the generator's device.

        Returns dict: x0, y0, w, h (crop box in pixels), flip (bool),
        brightness, contrast, saturation (factors).
        """
        device = generator.device if generator is not None else torch.device("cpu")

        def uniform(low, high, *shape):
            return low + (high - low) * torch.rand(*shape, generator=generator, device=device)

        tries = 10
        area = height * width * uniform(self.scale[0], self.scale[1], batch, tries)
        log_ratio = uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), batch, tries)
        aspect = torch.exp(log_ratio)
        crop_w = torch.sqrt(area * aspect).round()
        crop_h = torch.sqrt(area / aspect).round()
        valid = (crop_w >= 1) & (crop_w <= width) & (crop_h >= 1) & (crop_h <= height)
        # First valid try per clip; clips with none take the whole frame.
        first = valid.float().argmax(1)  # (B,)
        rows = torch.arange(batch, device=device)
        any_valid = valid.any(1)
        w = torch.where(any_valid, crop_w[rows, first], torch.full_like(crop_w[:, 0], width))
        h = torch.where(any_valid, crop_h[rows, first], torch.full_like(crop_h[:, 0], height))
        x0 = torch.floor(uniform(0, 1, batch) * (width - w + 1))
        y0 = torch.floor(uniform(0, 1, batch) * (height - h + 1))

        def factor(strength):
            return uniform(max(0.0, 1 - strength), 1 + strength, batch)

        return {
            "x0": x0, "y0": y0, "w": w, "h": h,
            "flip": torch.rand(batch, generator=generator, device=device) < self.hflip,
            "brightness": factor(self.brightness),
            "contrast": factor(self.contrast),
            "saturation": factor(self.saturation),
        }

    def apply(self, video: torch.Tensor, params: dict) -> torch.Tensor:
        """Apply given per-clip params: uint8/float (B, T, C, H, W) -> float32 (B, T, C, S, S)."""
        b, t, c, h, w = video.shape
        params = {key: value.to(video.device) for key, value in params.items()}
        # Affine map from output coords in [-1, 1] to the crop box in input coords
        # (align_corners=False: -1/+1 are the outer pixel edges, so the box is exact).
        scale_x = params["w"] / w
        scale_y = params["h"] / h
        centre_x = (params["x0"] + params["w"] / 2) / w * 2 - 1
        centre_y = (params["y0"] + params["h"] / 2) / h * 2 - 1
        scale_x = torch.where(params["flip"], -scale_x, scale_x)
        zeros = torch.zeros_like(scale_x)
        theta = torch.stack([torch.stack([scale_x, zeros, centre_x], -1),
                             torch.stack([zeros, scale_y, centre_y], -1)], 1)  # (B, 2, 3)
        theta = theta.repeat_interleave(t, dim=0).float()  # (B*T, 2, 3): same box for a clip's frames
        frames = _to_unit_float(video).reshape(b * t, c, h, w)  # (B*T, C, H, W)
        grid = F.affine_grid(theta, [b * t, c, self.size, self.size], align_corners=False)
        frames = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        out = frames.reshape(b, t, c, self.size, self.size).clamp_(0.0, 1.0)  # (B, T, C, S, S)

        def per_clip(value):
            return value.float().view(b, 1, 1, 1, 1)

        out = (out * per_clip(params["brightness"])).clamp_(0.0, 1.0)
        if c == 3:
            mean = _grayscale(out).mean(dim=(-3, -2, -1), keepdim=True)  # (B, T, 1, 1, 1)
            contrast = per_clip(params["contrast"])
            out = (contrast * out + (1 - contrast) * mean).clamp_(0.0, 1.0)
            saturation = per_clip(params["saturation"])
            out = (saturation * out + (1 - saturation) * _grayscale(out)).clamp_(0.0, 1.0)
        return out

    def __call__(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """video uint8 (B, T, C, H, W) or (T, C, H, W) -> float32 (B, T, C, size, size) in [0, 1]."""
        video, added = _as_batch(video)
        params = self.sample_params(video.shape[0], video.shape[-2], video.shape[-1], generator)
        out = self.apply(video, params)
        return out[0] if added else out

    def __repr__(self) -> str:
        return (f"TrainPreset(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"hflip={self.hflip}, brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation})")
