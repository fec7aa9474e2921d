"""The key expression detecting network (paper Sec. III-B, Fig. 2a; docs/method.md).

A tiny backbone looks at every 4th of the 64 dense frames and predicts where the
key expression is: a centre `mu` and a stride `delta`. Sixteen frames are then
re-sampled around `mu` with stride `delta`, by linear blending so that `mu` and
`delta` are learned by back-propagation. The same feature also yields the global
summary `S` that gates the dual-stream feature.

    f        = F_b(V)                     eq. (3): mean over time of the backbone features
    mu, delta = F_d(f)                    eq. (4): one linear layer -> (a, b)
        mu    = sigmoid(a)                         centre, a fraction of the dense clip
        delta = d_min + (d_max - d_min) * sigmoid(b)   stride in dense-frame units
    p_k = T * mu + (k - 7.5) * delta      k = 0..15, window shifted to lie in [0, T-1]
    S        = sigmoid(F_s(f))            eq. (5)
"""

import math
from typing import Optional

import torch
from torch import nn

from rdfer.models.encoders import build_frame_encoder


def resample_positions(mu: torch.Tensor, delta: torch.Tensor, num_dense: int, num_out: int) -> torch.Tensor:
    """Positions of the re-sampled frames, in dense-frame units.

    p_k = num_dense * mu + (k - (num_out - 1) / 2) * delta, then the whole window
    is *shifted* (not clipped) so that it lies inside [0, num_dense - 1]: no frame
    repeats because of the border. Only a window longer than the clip (delta >
    (num_dense - 1) / (num_out - 1)) is clamped as well.

    Args:
        mu: (B,) centres in [0, 1].
        delta: (B,) strides in dense frames.
    Returns:
        (B, num_out) float positions in [0, num_dense - 1].
    """
    k = torch.arange(num_out, dtype=mu.dtype, device=mu.device) - (num_out - 1) / 2
    positions = num_dense * mu[:, None] + k[None, :] * delta[:, None]  # (B, K)
    last = num_dense - 1
    # Push right by how far the first frame is below 0, left by how far the last is above T-1.
    shift = torch.relu(-positions[:, :1]) - torch.relu(positions[:, -1:] - last)  # (B, 1)
    return (positions + shift).clamp(0, last)


def blend_frames(dense: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Frames at fractional positions: linear blend of the two neighbouring frames.

    frame(p) = (1 - w) * dense[i] + w * dense[i + 1], i = floor(p), w = p - i, so
    the output is differentiable w.r.t. `positions` (hence `mu` and `delta`).

    Args:
        dense: (B, T, ...): frames (B, T, C, H, W), or frame features (B, T, D).
        positions: (B, K) in [0, T - 1].
    Returns:
        (B, K, ...).
    """
    batch, num_dense = dense.shape[:2]
    # p = T-1 uses i = T-2, w = 1, so i + 1 never leaves the clip.
    left = positions.detach().floor().long().clamp(0, num_dense - 2)  # (B, K)
    weight = (positions - left.to(positions.dtype)).view(*positions.shape, *[1] * (dense.dim() - 2))  # (B, K, 1..)
    rows = torch.arange(batch, device=dense.device)[:, None]  # (B, 1)
    return (1 - weight) * dense[rows, left] + weight * dense[rows, left + 1]  # (B, K, ...)


class FeatureInput(nn.Module):
    """The identity on frame features (N, D), standing in for F_b when frames arrive encoded."""

    def __init__(self, out_features: int):
        super().__init__()
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class KeyExpressionDetector(nn.Module):
    """Predicts the key-expression window (mu, delta), re-samples it, and the summary S.

    Args:
        out_features: width of the summary S (the dual-stream feature's width).
        encoder: frame encoder name of the tiny backbone F_b (default "tiny", docs/method.md).
        feature_width: None for frames in (B, T, C, H, W). Given, the detector takes
            frame features (B, T, feature_width) from a frozen encoder instead: F_b is
            that encoder (the identity here), re-sampling blends features, and
            `encoder`/`pretrained` are unused (a departure from the paper, docs/method.md, for the
            frozen-encoder mode of RDFERNet).
        num_dense: dense frames in (64).
        num_out: re-sampled frames out (16).
        d_min, d_max: range of the stride delta in dense frames (see the init below for d_max).
        summary: whether to compute S (eq. 5); False for the "no summary" ablation.
        pretrained: weights of the backbone (see `build_frame_encoder`).
    """

    def __init__(
        self,
        out_features: int,
        encoder: str = "tiny",
        num_dense: int = 64,
        num_out: int = 16,
        d_min: float = 0.5,
        d_max: float = 4.0625,
        summary: bool = True,
        pretrained: Optional[str] = None,
        feature_width: Optional[int] = None,
    ):
        super().__init__()
        if num_dense % num_out:
            raise ValueError(f"num_dense ({num_dense}) must be a multiple of num_out ({num_out})")
        if not 0 < d_min < d_max:
            raise ValueError(f"need 0 < d_min < d_max, got d_min={d_min}, d_max={d_max}")
        self.num_dense, self.num_out = num_dense, num_out
        self.d_min, self.d_max = d_min, d_max
        if feature_width is None:
            self.backbone = build_frame_encoder(encoder, pretrained)  # F_b
        else:
            self.backbone = FeatureInput(feature_width)
        self.locate = nn.Linear(self.backbone.out_features, 2)  # F_d -> (a, b)
        self.summary = nn.Linear(self.backbone.out_features, out_features) if summary else None  # F_s

        # Start from the uniform re-sampling: every output sees the whole clip at the
        # detector's own stride (mu = 0.5, delta = num_dense / num_out = 4), whatever f is.
        # Zero weights make (a, b) equal to the biases; a = 0 gives mu = 0.5 exactly.
        # b = logit((4 - d_min) / (d_max - d_min)) gives delta = 4 up to float rounding
        # (~1e-6 frames) but only when d_max > 4: sigmoid never reaches 1, so with
        # the spec's d_max = 4 the uniform stride is unreachable. We therefore default to
        # d_max = 4.0625 (a sixteenth of a frame above; b starts at 4.03 where sigmoid's
        # slope is still 0.017, not at a saturated +inf); with d_max <= 4 we start
        # at sigmoid(b) = 0.99, the nearest stride that still has a usable gradient.
        uniform_stride = num_dense / num_out
        share = min((uniform_stride - d_min) / (d_max - d_min), 0.99)
        nn.init.zeros_(self.locate.weight)
        with torch.no_grad():
            self.locate.bias.copy_(torch.tensor([0.0, math.log(share / (1 - share))]))

    def forward(self, dense: torch.Tensor) -> dict:
        """Locate the key expression and re-sample it.

        Args:
            dense: normalised frames float (B, num_dense, C, H, W), or frame
                features (B, num_dense, D) with `feature_width`.
        Returns:
            dict with "frames" (B, num_out, ...) like `dense`, "positions" (B, num_out),
            "mu" (B,) in [0, 1], "delta" (B,) in dense frames, and "summary"
            (B, out_features) = S in (0, 1), or None without the summary.
        """
        batch, num_dense = dense.shape[:2]
        if num_dense != self.num_dense:
            raise ValueError(f"the detector takes {self.num_dense} dense frames, got {num_dense}")
        sparse = dense[:, :: num_dense // self.num_out]  # (B, 16, ...): frames 0, 4, ..., 60
        frame_features = self.backbone(sparse.flatten(0, 1))  # (B*16, D)
        f = frame_features.view(batch, self.num_out, -1).mean(dim=1)  # (B, D)      eq. (3)

        a, b = self.locate(f).unbind(dim=1)  # (B,), (B,)                            eq. (4)
        mu = torch.sigmoid(a)
        delta = self.d_min + (self.d_max - self.d_min) * torch.sigmoid(b)

        positions = resample_positions(mu, delta, num_dense, self.num_out)  # (B, 16)
        frames = blend_frames(dense, positions)  # (B, 16, ...)

        summary = torch.sigmoid(self.summary(f)) if self.summary is not None else None  # eq. (5)
        return {"frames": frames, "positions": positions, "mu": mu, "delta": delta, "summary": summary}
