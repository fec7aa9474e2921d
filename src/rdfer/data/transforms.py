"""Batched clip augmentation on uint8 video tensors, on any device (docs/method.md,
"Augmentation" and "Colour jitter").

Both presets take uint8 `(B, T, C, H, W)` (or one clip `(T, C, H, W)`) and
return float32 `(B, T, C, size, size)` in [0, 1]. `TrainPreset` draws one set
of parameters per clip (crop box, flip, jitter factors and their order) and
applies it to every frame of that clip: one resize call per clip (never a loop
over frames) and one fused colour transform for the whole batch, so it runs on
the GPU as well as on the CPU.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# ITU-R 601 luma, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)
# The colour jitter's operations, numbered as torchvision's ColorJitter (and M3DFEL's
# GroupColorJitter) number them; `order` holds a permutation of these per clip.
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


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


def _resize(frames: torch.Tensor, size: int, antialias: bool) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, size, size) bilinear (half-pixel centres), dtype kept.

    On the CPU uint8 frames stay uint8 (PyTorch's integer path); elsewhere
    they are resized as float32 in [0, 1].
    """
    if frames.shape[-2:] == (size, size):
        return frames
    if frames.dtype == torch.uint8 and frames.device.type == "cpu":
        frames = frames.contiguous(memory_format=torch.channels_last)
        out = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False,
                            antialias=antialias)
        return out.contiguous()
    out = F.interpolate(_to_unit_float(frames), size=(size, size), mode="bilinear",
                        align_corners=False, antialias=antialias)
    return out.clamp_(0.0, 1.0)


def hue_matrices(hue: torch.Tensor) -> torch.Tensor:
    """(B,) hue factors in [-0.5, 0.5] -> (B, 3, 3) rotations by 2 pi hue about RGB's grey axis.

    torchvision's adjust_hue shifts the HSV hue, which is not linear in the
    pixels (piecewise linear per 60-degree sector); this rotation is the
    closest linear map we found, so that the hue fits the fused colour matrix.
    Both keep greys and turn red to green at +1/3, where they are equal (a
    channel permutation). They part within a sector: HSV moves only the middle
    channel (keeping max and min), the rotation moves all three (keeping the
    channel mean and the distance from the grey axis). Measured against
    adjust_hue on synthetic face frames (pixels in [0, 1]), factors in
    [-0.4, 0.4]: mean absolute difference 0.015-0.043, 99th percentile at most
    0.16, a few saturated pixels up to 0.26; the shift itself (adjust_hue
    against no change) is 0.026 at +-0.05, 0.10 at +-0.2, 0.20 at +-0.4. So
    large shifts are close and small ones go in a somewhat different
    direction. A rotation in YIQ, also linear, is 1.5-5 times further off
    (mean 0.03-0.07 with its better sign), its I and Q axes not being
    orthogonal in RGB.
    """
    theta = 2 * math.pi * hue.view(-1, 1, 1)  # (B, 1, 1)
    k = 1 / math.sqrt(3)
    # Rodrigues: R = cos(t) I + sin(t) [k]x + (1 - cos(t)) k k^T, k the unit grey axis.
    cross = torch.tensor([[0, -k, k], [k, 0, -k], [-k, k, 0]], dtype=hue.dtype, device=hue.device)
    eye = torch.eye(3, dtype=hue.dtype, device=hue.device)
    grey = torch.full((3, 3), 1 / 3, dtype=hue.dtype, device=hue.device)
    return torch.cos(theta) * eye + torch.sin(theta) * cross + (1 - torch.cos(theta)) * grey


def colour_matrices(params: dict, mean_rgb: torch.Tensor) -> tuple:
    """Per-clip 3x3 colour matrix and offset of the fused colour jitter, in each clip's order.

    The four adjustments, as torchvision writes them (S, C, H 3x3 matrices):
        brightness  x -> b x
        contrast    x -> c x + (1 - c) mean_gray(x) 1
        saturation  x -> S x,  S = s I + (1 - s) 1 luma^T
        hue         x -> H x,  `hue_matrices` (an approximation of HSV's shift)
    are affine in the pixel values, so applying them in the order
    `params["order"]` (one permutation per clip, as ColorJitter draws one per
    image) composes into one x -> M x + o. Departures from torchvision, to keep
    one pass per clip and the very same transform for every frame of a clip:
    the contrast mean is the clip's mean grey (not each frame's), one clamp to
    [0, 1] at the end instead of one per step, and the hue approximation. The
    order still matters: H and S do not commute (H keeps the channel mean, S
    the luma), nor does contrast with H (its mean is taken after what came before).

    Args:
        params: (B,) tensors "brightness", "contrast", "saturation", "hue" and
            (B, 4) "order" (a permutation of BRIGHTNESS..HUE per clip).
        mean_rgb: (B, 3) mean colour of each clip, in the pixel unit used (1 or 255).
    Returns: (matrix (B, 3, 3), offset (B, 3)), float32.
    """
    b = mean_rgb.shape[0]
    device, dtype = mean_rgb.device, torch.float32
    luma = torch.tensor(_LUMA, dtype=dtype, device=device)
    eye = torch.eye(3, dtype=dtype, device=device).expand(b, 3, 3)
    factor = {key: params[key].to(device, dtype).view(b, 1, 1) for key in ("brightness", "contrast", "saturation")}
    s = factor["saturation"]
    ops = torch.stack([factor["brightness"] * eye, factor["contrast"] * eye,
                       s * eye + (1 - s) * luma.view(1, 1, 3).expand(b, 3, 3),
                       hue_matrices(params["hue"].to(device, dtype))], 1)  # (B, 4, 3, 3)
    matrix, offset = eye, torch.zeros(b, 3, dtype=dtype, device=device)
    rows = torch.arange(b, device=device)
    for step in range(4):
        op = params["order"][:, step].to(device)  # (B,)
        m = ops[rows, op]  # (B, 3, 3)
        current_gray = ((matrix @ mean_rgb.to(dtype).unsqueeze(2)).squeeze(2) + offset) @ luma  # (B,)
        c = factor["contrast"].view(b)
        add = torch.where(op == CONTRAST, (1 - c) * current_gray, torch.zeros_like(c))  # (B,)
        matrix = m @ matrix
        offset = (m @ offset.unsqueeze(2)).squeeze(2) + add.unsqueeze(1)
    return matrix, offset


def _clip_mean_rgb(video: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) -> (B, 3) mean colour of each clip, on a 1-in-4 pixel grid (cheap, ample)."""
    return video[..., ::4, ::4].float().mean(dim=(1, 3, 4))


def _train_cpu_uint8(video: torch.Tensor, params: dict, size: int) -> torch.Tensor:
    """CPU path of TrainPreset.apply: OpenCV on each clip's frames at once.

    A clip (T, 3, H, W) is laid out as one (H, W, 3T) image, so a single
    cv2.resize crops-and-resizes all its frames and a single cv2.transform
    applies the colour matrix to all its pixels (uint8, saturating). Same
    result as the tensor path up to uint8 rounding; several times faster on CPU.
    """
    b, t, c, h, w = video.shape
    matrix, offset = colour_matrices(params, _clip_mean_rgb(video))
    affine = torch.cat([matrix, offset.view(b, 3, 1)], 2).numpy()  # (B, 3, 4)
    boxes = torch.stack([params["x0"], params["y0"], params["w"], params["h"]], 1).long().tolist()
    out = torch.empty(b, t, c, size, size)
    for i, (x0, y0, cw, ch) in enumerate(boxes):
        # (T*3, H*W) planes -> (H*W, T*3) pixels: cv2.transpose is a fast blocked transpose.
        pixels = cv2.transpose(video[i].reshape(t * c, h * w).numpy()).reshape(h, w, t * c)
        crop = pixels[y0:y0 + ch, x0:x0 + cw]  # (h', w', 3T)
        # cv2.resize handles at most 512 channels: resize groups of whole frames.
        groups = [cv2.resize(crop[..., k:k + 510], (size, size), interpolation=cv2.INTER_LINEAR)
                  for k in range(0, t * c, 510)]
        small = groups[0] if len(groups) == 1 else np.concatenate(groups, axis=2)  # (S, S, 3T)
        jittered = cv2.transform(small.reshape(-1, 1, c), affine[i])  # (S*S*T, 1, 3)
        planes = torch.from_numpy(cv2.transpose(jittered.reshape(size * size, t * c)))
        planes = planes.view(t, c, size, size)  # (T, 3, S, S)
        out[i].copy_(planes.flip(-1) if params["flip"][i] else planes)
    return out.div_(255.0)


class EvalPreset:
    """Resize every frame to size x size (bilinear, antialiased) -> float32 in [0, 1]."""

    def __init__(self, size: int = 112):
        self.size = size

    def __call__(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """video uint8 (B, T, C, H, W) or (T, C, H, W) -> float32 (B, T, C, size, size)."""
        video, added = _as_batch(video)
        b, t, c, h, w = video.shape
        with torch.autocast(device_type=video.device.type, enabled=False):
            frames = _resize(video.reshape(b * t, c, h, w), self.size, antialias=True)  # (B*T, C, S, S)
            out = _to_unit_float(frames).reshape(b, t, c, self.size, self.size)
        return out[0] if added else out

    def __repr__(self) -> str:
        return f"EvalPreset(size={self.size})"


class TrainPreset:
    """Random resized crop, horizontal flip and colour jitter, one draw per clip.

    Crop: area share in `scale` and aspect ratio in `ratio` (log-uniform), as
    torchvision's RandomResizedCrop (10 tries, then the whole frame), resized
    to size x size (bilinear, antialiased). Flip with probability `hflip`.
    Colour jitter as M3DFEL's GroupColorJitter (torchvision's ColorJitter on
    every frame of a clip): factors uniform in [max(0, 1 - j), 1 + j] for
    brightness, contrast and saturation, a hue factor uniform in [-hue, hue],
    applied in a random order per clip; fused into one colour matrix per clip
    (see `colour_matrices` for the departures from torchvision and
    `hue_matrices` for how close the linear hue is to torchvision's).

    Args:
        size: output side in pixels (112 in the paper).
        scale, ratio: RandomResizedCrop ranges (torchvision defaults, also used
            by the public DFER code M3DFEL builds on).
        hflip: flip probability.
        brightness, contrast, saturation, hue: jitter strengths (0.4 in the paper's recipe;
            hue must lie in [0, 0.5], as torchvision's).
    """

    def __init__(self, size: int = 112, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip: float = 0.5,
                 brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.4):
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue jitter {hue} must lie in [0, 0.5] (a hue factor is a fraction of the colour circle)")
        self.size = size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.hflip = hflip
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue

    def sample_params(self, batch: int, height: int, width: int,
                      generator: torch.Generator | None = None) -> dict:
        """Per-clip parameters, tensors of shape (batch,) on the generator's device.

        Returns dict: x0, y0, w, h (crop box in pixels), flip (bool),
        brightness, contrast, saturation, hue (factors) and order ((batch, 4):
        the order of the four colour operations, a permutation of BRIGHTNESS..HUE).
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
            "hue": uniform(-self.hue, self.hue, batch),
            # A uniform random permutation per clip (drawn last: the other draws keep their values).
            "order": torch.rand(batch, 4, generator=generator, device=device).argsort(1),
        }

    def apply(self, video: torch.Tensor, params: dict) -> torch.Tensor:
        """Apply given per-clip params: uint8 (B, T, C, H, W) -> float32 (B, T, C, S, S).

        uint8 RGB batches on the CPU take an OpenCV path (`_train_cpu_uint8`);
        anything else (GPU, float input) the tensor path below. Both crop with
        bilinear resizing without antialiasing (crops shrink by at most
        load_size / size, 128 / 112 by default, so aliasing is negligible).
        """
        c = video.shape[2]
        params = {key: value.to(video.device) for key, value in params.items()}
        if video.dtype == torch.uint8 and video.device.type == "cpu" and c == 3:
            return _train_cpu_uint8(video, params, self.size)
        # Pixel maths stays float32 even inside a bf16 autocast region of the training loop.
        with torch.autocast(device_type=video.device.type, enabled=False):
            return self._apply_tensor(video, params)

    def _apply_tensor(self, video: torch.Tensor, params: dict) -> torch.Tensor:
        """Tensor path of `apply` (GPU, or float input)."""
        b, c = video.shape[0], video.shape[2]
        boxes = torch.stack([params["x0"], params["y0"], params["w"], params["h"]], 1).long().tolist()
        clips = []
        # One resize call per clip (its T frames share the box): a short loop
        # over the batch, never over frames.
        for clip, (x0, y0, cw, ch), flip in zip(video, boxes, params["flip"].tolist()):
            crop = _resize(_to_unit_float(clip[:, :, y0:y0 + ch, x0:x0 + cw]), self.size,
                           antialias=False)  # (T, C, S, S)
            clips.append(crop.flip(-1) if flip else crop)
        out = torch.stack(clips)  # (B, T, C, S, S)
        if c != 3:
            return out.mul_(params["brightness"].view(b, 1, 1, 1, 1)).clamp_(0.0, 1.0)
        mean_rgb = _clip_mean_rgb(video) / (255.0 if video.dtype == torch.uint8 else 1.0)
        matrix, offset = colour_matrices(params, mean_rgb)
        out = torch.einsum("bij,btjhw->btihw", matrix.to(out), out)  # (B, T, 3, S, S)
        out += offset.to(out).view(b, 1, 3, 1, 1)
        return out.clamp_(0.0, 1.0)

    def __call__(self, video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """video uint8 (B, T, C, H, W) or (T, C, H, W) -> float32 (B, T, C, size, size) in [0, 1]."""
        video, added = _as_batch(video)
        params = self.sample_params(video.shape[0], video.shape[-2], video.shape[-1], generator)
        out = self.apply(video, params)
        return out[0] if added else out

    def __repr__(self) -> str:
        return (f"TrainPreset(size={self.size}, scale={self.scale}, ratio={self.ratio}, "
                f"hflip={self.hflip}, brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")
