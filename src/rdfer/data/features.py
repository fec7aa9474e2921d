"""Feature caches: a frozen frame encoder's features of every frame of every clip.

With a frozen encoder (`model.options.frozen_encoder: true`) a frame's feature
depends on that frame alone, so it can be computed once (`rdfer features`) and
read back instead of decoding and encoding frames every epoch
(`data.features: FILE`). The cache is one `.npz` file:

    features  float32 (F, D)   every frame of every clip, clip after clip
    offsets   int64 (N + 1,)   clip i's frames are features[offsets[i]:offsets[i + 1]]
    paths     str (N,)         each clip's frame folder or video file (its key)
    stamps    int64 (N, 3)     each clip's files, bytes and newest modification time when it was
                               encoded (`rdfer.data.files.clip_stamp`): a clip rewritten since then
                               (e.g. `rdfer synth` over the same folder) makes the cache stale
    meta      str              JSON: what made the features (encoder, weights, sizes)

`CachedClipDataset` samples frame indices exactly as `ClipDataset` does (same
function, same random stream) and gathers their features, so a cached run and an
uncached one with the same frozen encoder compute the same thing. The features
are those of the evaluation preset (resize, no pixel augmentation): the cached
mode trains without crop, flip or colour jitter (a departure from docs/method.md,
"Augmentation").
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from rdfer.data.files import clip_stamp
from rdfer.data.records import Manifest
from rdfer.data.sampling import sample_indices
from rdfer.errors import RdferError
from rdfer.utils.outputs import atomic_output

# Model config fields a cache must agree with (the frames it saw and the encoder that saw them).
CACHE_KEYS = ("encoder", "pretrained", "input_size", "mean", "std")


def cache_meta(model_config, load_size: int) -> dict:
    """What a cache must agree with: the model's encoder and preprocessing, and the decode size."""
    meta = {key: getattr(model_config, key) for key in CACHE_KEYS}
    meta["load_size"] = load_size
    return {k: list(v) if isinstance(v, tuple) else v for k, v in meta.items()}  # as JSON gives them back


def clip_key(path) -> str:
    """The cache key of a clip: its frame folder or video file, resolved."""
    return os.path.realpath(str(path))


def save_feature_cache(path, features: list, keys: list, meta: dict, stamps: list) -> Path:
    """Write a cache: `features` a list of (T_i, D) arrays, one per clip, in the order of `keys`,
    `stamps` their `clip_stamp`s taken before they were read.

    Raises:
        RdferError: the file cannot be written (e.g. a full disk): it is named, and no part file is left.
    """
    path = Path(path)
    offsets = np.cumsum([0] + [len(f) for f in features]).astype(np.int64)
    stacked = np.concatenate(features).astype(np.float32) if features else np.zeros((0, 0), np.float32)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:  # np.savez would append .npz to a name without it
        np.savez(f, features=stacked, offsets=offsets, paths=np.array(keys, dtype=str),
                 stamps=np.array(stamps, dtype=np.int64).reshape(-1, 3), meta=np.array(json.dumps(meta)))
    return path


class FeatureCache:
    """A cache file read into memory: `features` (F, D), `offsets` (N + 1,), `index` {clip key: i}, `meta`,
    `stamps` (N, 3) or None (a cache written before rdfer recorded them)."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise RdferError(f"feature cache {self.path} not found: build it with "
                             f"rdfer features --config CFG --out {self.path}")
        try:
            with np.load(self.path, allow_pickle=False) as data:
                self.features = torch.from_numpy(data["features"])
                self.offsets = data["offsets"]
                self.meta = json.loads(str(data["meta"]))
                self.index = {key: i for i, key in enumerate(data["paths"].tolist())}
                self.stamps = data["stamps"] if "stamps" in data.files else None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            raise RdferError(f"{self.path} is not a feature cache made by rdfer features, or it is cut off (a full "
                             f"disk, a copy that stopped): {reason}; rebuild it with rdfer features") from None

    def check(self, model_config, load_size: int) -> None:
        """RdferError unless the cache was made by the encoder and preprocessing of `model_config`."""
        if not getattr(model_config, "frozen_encoder", False):
            raise RdferError(f"data.features is set ({self.path}) but model {model_config.name} has no frozen "
                             "encoder: add --set model.options.frozen_encoder=true, or unset data.features")
        wanted = cache_meta(model_config, load_size)
        made = {key: self.meta.get(key) for key in wanted}
        if wanted != made:
            differ = ", ".join(f"{k}: cache {made[k]!r}, model {wanted[k]!r}" for k in wanted if made[k] != wanted[k])
            raise RdferError(f"feature cache {self.path} was made for another model ({differ}); rebuild it "
                             "with rdfer features for this config")


class CachedClipDataset(Dataset):
    """`ClipDataset`'s sampling over cached features.

    Item: dict "video" float32 (num_frames, D) (the features of the sampled
    frames), "label", "index", "clip_id", "bad_frames" (0: frames were checked
    when the cache was built).
    """

    def __init__(self, manifest: Manifest, cache: FeatureCache, num_frames: int, train: bool):
        self.records = manifest.records
        self.cache, self.num_frames, self.train = cache, num_frames, train
        positions = [cache.index.get(clip_key(r.path)) for r in self.records]  # resolved once, not per item
        missing = [r.clip_id for r, i in zip(self.records, positions) if i is None]
        if missing:
            raise RdferError(f"{len(missing)} clip(s) of the dataset are not in the feature cache {cache.path} "
                             f"(first: {', '.join(missing[:3])}); rebuild it with rdfer features")
        self.spans = [(int(cache.offsets[i]), int(cache.offsets[i + 1])) for i in positions]
        check_current(cache, self.records, positions)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        start, end = self.spans[index]
        features = self.cache.features[start:end]  # (L, D)
        # The global torch stream, as ClipDataset draws it (seeded per clip by EpochSeededDataset).
        indices = sample_indices(len(features), self.num_frames, self.train)
        return {"video": features[torch.from_numpy(indices)], "label": record.label, "index": index,
                "clip_id": record.clip_id, "bad_frames": 0}


def check_current(cache: FeatureCache, records, positions) -> None:
    """Stop when clips changed on disk since the cache encoded them (their `clip_stamp` differs)."""
    if cache.stamps is None:
        warnings.warn(f"feature cache {cache.path} was made by an older rdfer that did not record its clips' "
                      "state: it cannot tell whether they changed since; rebuild it with rdfer features to be sure",
                      stacklevel=3)
        return
    changed = [r.clip_id for r, i in zip(records, positions) if tuple(cache.stamps[i]) != clip_stamp(r.path)]
    if changed:
        raise RdferError(f"feature cache {cache.path} is out of date: {len(changed)} of {len(records)} clips changed "
                         f"on disk since it was built (first: {', '.join(changed[:3])}); rebuild it with "
                         f"rdfer features --config CFG --out {cache.path}")


def identity_preset(video: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The preset of cached features: they are already the model's input."""
    return video
