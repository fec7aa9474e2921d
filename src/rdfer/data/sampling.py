"""Temporal sampling of frame indices (docs/method.md, "Sampling")."""

from __future__ import annotations

import numpy as np
import torch

T_DENSE = 64  # dense frames per clip
T_PLAIN = 16  # frames for models without key-expression re-sampling


def sample_indices(clip_length: int, num_samples: int = T_DENSE, train: bool = True,
                   generator: torch.Generator | None = None) -> np.ndarray:
    """Frame indices spread uniformly over a clip: one per equal segment.

    The clip [0, clip_length) is cut into `num_samples` equal segments;
    segment k covers [k * L / n, (k + 1) * L / n). Train: a uniformly random
    position inside each segment; eval: each segment's centre. Clips shorter
    than `num_samples` give repeated indices (a segment is then shorter than a
    frame), so clips of any length >= 1 work.

    Args:
        clip_length: frames in the clip (L >= 1).
        num_samples: indices to return (n; 64 dense, or 16 without re-sampling).
        train: random offsets (True) or segment centres (False).
        generator: torch RNG for the offsets (default: torch's global RNG).

    Returns:
        int64 array (num_samples,), non-decreasing, each in [0, clip_length).
    """
    if clip_length < 1:
        raise ValueError(f"clip_length must be >= 1, got {clip_length}")
    if train:
        offsets = torch.rand(num_samples, generator=generator, dtype=torch.float64).numpy()
    else:
        offsets = np.full(num_samples, 0.5)
    positions = (np.arange(num_samples) + offsets) * (clip_length / num_samples)
    return np.minimum(np.floor(positions).astype(np.int64), clip_length - 1)
