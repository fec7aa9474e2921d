"""Data: manifests (DFEW, FERV39K, MAFW, CSV, packed), sampling, transforms, loaders.

Flow: `build_manifest` (records, validated once) -> `ClipDataset` /
`make_loader` (uint8 (B, T, 3, S, S) batches) -> `TrainPreset` / `EvalPreset`
(float32 (B, T, 3, 112, 112) in [0, 1], batched, any device).
"""

from rdfer.data.dataset import LOAD_SIZE, ClipDataset, make_loader
from rdfer.data.manifest import build_manifest
from rdfer.data.records import ClipRecord, Manifest
from rdfer.data.sampling import T_DENSE, T_PLAIN, sample_indices
from rdfer.data.transforms import EvalPreset, TrainPreset

__all__ = [
    "ClipDataset", "ClipRecord", "EvalPreset", "LOAD_SIZE", "Manifest", "T_DENSE", "T_PLAIN",
    "TrainPreset", "build_manifest", "make_loader", "sample_indices",
]
