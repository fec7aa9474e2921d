"""Data: dataset layouts, manifests (DFEW, FERV39K, MAFW, CSV, packed), sampling, transforms, loaders.

Flow: `build_manifest` (records, validated once) -> `build_loader` (uint8
(B, T, 3, S, S) batches, or cached features) -> `TrainPreset` / `EvalPreset`
(float32 (B, T, 3, 112, 112) in [0, 1], batched, any device).

The public names are imported on first use: the CLI reads `rdfer.data.layouts`
(its --dataset choices) while building its parser, without loading torch or OpenCV.
"""

import importlib

_PUBLIC = {
    "ClipDataset": "dataset", "LOAD_SIZE": "dataset",
    "build_loader": "loader",
    "build_manifest": "manifest",
    "ClipRecord": "records", "Manifest": "records",
    "T_DENSE": "sampling", "T_PLAIN": "sampling", "sample_indices": "sampling",
    "EvalPreset": "transforms", "TrainPreset": "transforms",
    "DATASETS": "layouts", "LAYOUTS": "layouts",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"rdfer.data.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'rdfer.data' has no attribute {name!r}")
