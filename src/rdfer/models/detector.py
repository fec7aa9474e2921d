"""The key expression detecting network (paper Sec. III-B, Fig. 2a; docs/method.md).

A tiny backbone looks at every 4th of the 64 dense frames and predicts where the
key expression is: a centre `mu` and a stride `delta`. Sixteen frames are then
re-sampled around `mu` with stride `delta`, by linear blending so that `mu` and
`delta` are learned by back-propagation. The same features also yield the global
summary `S` that gates the dual-stream feature.

    F        = F_b(V)                     eq. (3): the backbone's features of the 16 scanned
                                                   frames, (16, D), time positions kept
    mu, delta = F_d(F)                    eq. (4), `locator`:
      "linear"   one linear layer over the flattened F -> (a, b)   (SPEC 2)
                 mu = sigmoid(a); delta = d_min + (d_max - d_min) * sigmoid(b)
      "moments"  one linear layer scores each scanned frame; w = softmax over time;
                 mu = the w-weighted mean time, delta = kappa * the w-weighted sd of time
                 (kappa makes uniform scores give delta = 4); the time of scanned frame j
                 is 4j, the dense frame it is (plus `scan_offset`, 2 in checkpoints written
                 before that was fixed), so a score peaked on frame j centres the window there
      "uniform"  no F_d: mu = 0.5, delta = num_dense / num_out for every clip (dense positions
                 2, 6, ..., 62: the centres of 16 equal segments), the uniform window through the
                 same re-sampling and summary (the control that says what the detection adds;
                 docs/results/controls.md)
    p_k = T * mu + (k - 7.5) * delta      k = 0..15, window shifted to lie in [0, T-1]
    S        = sigmoid(F_s(f))            eq. (5), f = the mean of F over time

`context` > 1 puts a temporal convolution (that many scanned frames wide) with a
ReLU in front of F_d, `kernel="gaussian"` re-samples with a Gaussian of time
whose width follows delta instead of blending two neighbours (options of issue
17; docs/method.md says which are used and why).

`guide=True` (with "moments") adds an evidence head, one linear layer from each
scanned frame's feature to class logits, and returns its logits with the
scores' log-softmax: `rdfer.losses.guide` trains the head on the video's label
and pulls the scores towards the frames whose evidence for that label is
strongest. Only training uses the label; at test time the scores alone place
the window (docs/method.md, "Where the key expression is").
"""

import math
from typing import Optional

import torch
from torch import nn

from rdfer.models.encoders import build_frame_encoder

LOCATORS = ("linear", "moments", "uniform")
KERNELS = ("linear", "gaussian")


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


def window_fractions(mu: torch.Tensor, delta: torch.Tensor, num_dense: int, num_out: int) -> torch.Tensor:
    """Times of the re-sampled frames as fractions of the clip, (B, num_out) in (0, 1).

    Dense frame i is sampled at the centre of the i-th of num_dense equal segments
    (`rdfer.data.sampling.sample_indices` in evaluation), at time (i + 0.5) / num_dense.
    """
    return (resample_positions(mu, delta, num_dense, num_out) + 0.5) / num_dense


def farthest_from_first(dense: torch.Tensor) -> torch.Tensor:
    """A label-free apex estimate: the time of the frame farthest from the first one.

    The control beside the detector (docs/results/controls.md): with no training
    at all, the frame whose input (frame features, or pixels) lies farthest, in
    Euclidean distance, from the clip's first frame is taken as the apex.

    Args:
        dense: (B, T, ...) frames or frame features.
    Returns:
        (B,) that frame's time as a fraction of the clip, (i + 0.5) / T, like `window_fractions`.
    """
    distance = (dense - dense[:, :1]).flatten(2).float().norm(dim=-1)  # (B, T)
    return (distance.argmax(dim=1).to(torch.float64) + 0.5) / dense.shape[1]


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


def gaussian_frames(dense: torch.Tensor, positions: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Frames at fractional positions: a Gaussian-weighted mean of the dense frames around each.

    frame(p) = sum_i g_i dense[i] / sum_i g_i, g_i = exp(-(i - p)^2 / (2 width^2)): each
    re-sampled frame summarises the stretch of the clip it stands for, and the gradient
    w.r.t. p sees about 2 * width frames on either side instead of one neighbour.

    Args:
        dense: (B, T, ...).
        positions: (B, K) in [0, T - 1].
        width: (B,) the Gaussian's sd in dense frames.
    Returns:
        (B, K, ...).
    """
    batch, num_dense = dense.shape[:2]
    times = torch.arange(num_dense, dtype=positions.dtype, device=positions.device)
    logits = -0.5 * ((times[None, None, :] - positions[..., None]) / width[:, None, None]) ** 2  # (B, K, T)
    weights = logits.softmax(dim=-1).to(dense.dtype)
    return torch.bmm(weights, dense.flatten(2)).view(batch, positions.shape[1], *dense.shape[2:])


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
        locator: F_d, "moments" or "linear" (module docstring; the defaults are docs/method.md's).
        context: width of the temporal convolution in front of F_d, in scanned frames; 1: none.
        kernel: "linear" (blend two neighbours) or "gaussian" (sd = delta / 2).
        guide: add the evidence head that guides the scores (module docstring); needs "moments".
        num_classes: classes of the evidence head.
        scan_offset: dense frames added to the time of each scanned frame ("moments"): 0, the
            frame scanned (4j); older checkpoints load with 2 (`checkpoint.LEGACY_FIELDS`).
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
        locator: str = "moments",
        context: int = 3,
        kernel: str = "gaussian",
        guide: bool = False,
        num_classes: int = 7,
        scan_offset: float = 0.0,
    ):
        super().__init__()
        if num_dense % num_out:
            raise ValueError(f"num_dense ({num_dense}) must be a multiple of num_out ({num_out})")
        if not 0 < d_min < d_max:
            raise ValueError(f"need 0 < d_min < d_max, got d_min={d_min}, d_max={d_max}")
        if locator not in LOCATORS or kernel not in KERNELS or context < 1 or context % 2 == 0:
            raise ValueError(f"need locator in {LOCATORS}, kernel in {KERNELS} and an odd context >= 1, "
                             f"got {locator!r}, {kernel!r}, {context}")
        if guide and locator != "moments":
            raise ValueError(f"the guide needs per-frame scores: locator 'moments', got {locator!r}")
        self.num_dense, self.num_out = num_dense, num_out
        self.d_min, self.d_max = d_min, d_max
        self.locator, self.kernel = locator, kernel
        if feature_width is None:
            self.backbone = build_frame_encoder(encoder, pretrained)  # F_b
        else:
            self.backbone = FeatureInput(feature_width)
        width = self.backbone.out_features
        self.context = None
        if context > 1 and locator != "uniform":  # a temporal convolution over the scanned frames, in front of F_d
            self.context = nn.Sequential(nn.Conv1d(width, width, context, padding=context // 2), nn.ReLU())
        stride = num_dense // num_out
        # Time of scanned frame j, in dense frames: the frame scanned, stride * j (`forward` scans
        # dense[:, ::stride]). Checkpoints written before this held stride * j + stride / 2 (scan_offset).
        self.register_buffer("scan_times", torch.arange(num_out) * stride + scan_offset, persistent=False)
        if locator == "linear":
            self.locate = nn.Linear(num_out * width, 2)  # F_d: flattened (16, D) -> (a, b)
        elif locator == "moments":
            self.locate = nn.Linear(width, 1, bias=False)  # F_d: one score per scanned frame (a bias would cancel)
        else:  # "uniform": no F_d, nothing to learn about where the expression is
            self.locate = None
        self.summary = nn.Linear(width, out_features) if summary else None  # F_s
        # Each scanned frame's class logits, from F_b's feature (the guide's teacher, rdfer.losses.guide).
        self.evidence = nn.Linear(width, num_classes) if guide else None
        self._register_load_state_dict_pre_hook(self._upgrade_state)

        # Start from the uniform re-sampling: every output sees the whole clip at the
        # detector's own stride (delta = num_dense / num_out = 4), whatever F is. Zero weights
        # make (a, b) equal to the biases ("linear": mu = 0.5, dense positions 2, 6, ..., 62), or
        # the scores equal ("moments": w uniform, mu = the mean scanned time 30 / 64, so the
        # positions are the scanned frames 0, 4, ..., 60, and delta = kappa * sd = 4 by kappa).
        if self.locate is not None:  # "uniform" has no F_d
            nn.init.zeros_(self.locate.weight)
        # Uniform weights on times stride * j + c, j = 0..n-1, have sd stride * sqrt((n^2 - 1) / 12).
        self.kappa = 1 / math.sqrt((num_out ** 2 - 1) / 12)
        if locator == "linear":
            # a = 0 gives mu = 0.5 exactly. b = logit((4 - d_min) / (d_max - d_min)) gives
            # delta = 4 up to float rounding (~1e-6 frames) but only when d_max > 4: sigmoid
            # never reaches 1, so with the spec's d_max = 4 the uniform stride is unreachable.
            # We therefore default to d_max = 4.0625 (a sixteenth of a frame above; b starts at
            # 4.03 where sigmoid's slope is still 0.017, not at a saturated +inf); with
            # d_max <= 4 we start at sigmoid(b) = 0.99, the nearest stride that still has a
            # usable gradient.
            share = min((stride - d_min) / (d_max - d_min), 0.99)
            with torch.no_grad():
                self.locate.bias.copy_(torch.tensor([0.0, math.log(share / (1 - share))]))

    def _upgrade_state(self, state: dict, prefix: str, *args) -> None:
        """Checkpoints written before F_d saw time (issue 17) hold a linear layer over the mean
        of the 16 scanned features, (2, D): the same map over the flattened (16, D) is that
        weight / 16 at every time position, so they load and compute what they computed."""
        key = prefix + "locate.weight"
        weight = state.get(key)
        expected = self.locate.weight.shape
        if self.locator == "linear" and weight is not None and weight.shape == (2, expected[1] // self.num_out):
            state[key] = (weight / self.num_out).repeat(1, self.num_out)

    def forward(self, dense: torch.Tensor) -> dict:
        """Locate the key expression and re-sample it.

        Args:
            dense: normalised frames float (B, num_dense, C, H, W), or frame
                features (B, num_dense, D) with `feature_width`.
        Returns:
            dict with "frames" (B, num_out, ...) like `dense`, "positions" (B, num_out),
            "mu" (B,) in [0, 1], "delta" (B,) in dense frames, "summary"
            (B, out_features) = S in (0, 1), or None without the summary, and with the
            guide "evidence" (B, num_out, num_classes), each scanned frame's class logits,
            and "log_weights" (B, num_out), the log-softmax of the scores (else both None).
        """
        batch, num_dense = dense.shape[:2]
        if num_dense != self.num_dense:
            raise ValueError(f"the detector takes {self.num_dense} dense frames, got {num_dense}")
        sparse = dense[:, :: num_dense // self.num_out]  # (B, 16, ...): frames 0, 4, ..., 60
        scanned = self.backbone(sparse.flatten(0, 1)).view(batch, self.num_out, -1)  # (B, 16, D)   eq. (3)
        f = scanned.mean(dim=1)  # (B, D)
        located = scanned if self.context is None else self.context(scanned.transpose(1, 2)).transpose(1, 2)
        scores = self.locate(located).squeeze(-1) if self.locator == "moments" else None  # (B, 16)
        mu, delta = self.window(located, scores)  # (B,), (B,)                                 eq. (4)

        positions = resample_positions(mu, delta, num_dense, self.num_out)  # (B, 16)
        if self.kernel == "linear":
            frames = blend_frames(dense, positions)  # (B, 16, ...)
        else:
            frames = gaussian_frames(dense, positions, delta / 2)

        summary = torch.sigmoid(self.summary(f)) if self.summary is not None else None  # eq. (5)
        guided = self.evidence is not None
        return {"frames": frames, "positions": positions, "mu": mu, "delta": delta, "summary": summary,
                "evidence": self.evidence(scanned) if guided else None,  # (B, 16, C)
                "log_weights": scores.log_softmax(dim=1) if guided else None}  # (B, 16)

    def window(self, located: torch.Tensor, scores: Optional[torch.Tensor]) -> tuple:
        """(mu, delta), each (B,), from the scanned features (B, 16, D') ("linear") or their scores (B, 16)."""
        if self.locator == "uniform":  # the whole clip at the scan's own stride, whatever it shows
            ones = located.new_ones(located.shape[0])
            return 0.5 * ones, (self.num_dense / self.num_out) * ones
        if self.locator == "linear":
            a, b = self.locate(located.flatten(1)).unbind(dim=1)  # (B,), (B,)
            return torch.sigmoid(a), self.d_min + (self.d_max - self.d_min) * torch.sigmoid(b)
        weights = scores.softmax(dim=1)  # (B, 16)
        centre = (weights * self.scan_times).sum(dim=1)  # (B,) in dense frames
        spread = (weights * (self.scan_times - centre[:, None]) ** 2).sum(dim=1).clamp_min(1e-6).sqrt()
        delta = (self.kappa * spread).clamp(self.d_min, self.d_max)
        return centre / self.num_dense, delta
