"""The one DataLoader builder of rdfer: training, evaluation, benchmarks and tests use it.

`build_loader` wraps a manifest's clips (`ClipDataset`: sampled frames decoded to uint8
`(T, 3, S, S)`), or a feature cache's features of them (`CachedClipDataset`), in a
DataLoader whose batches depend only on (seed, epoch), so that a resumed run sees
exactly the batches of one that never stopped:

- `EpochSampler` yields `(epoch, index)` keys instead of bare indices, with a per-epoch
  shuffle seeded from (seed, epoch), sharded over DDP ranks;
- `EpochSeededDataset` seeds the random number generators from (seed, epoch, index)
  before loading a clip, so the random frame offsets of a clip depend only on those
  three numbers: not on the worker that loads it, not on how many epochs ran in
  this process;
- `CheckedLoader` decides, in the main process, what an undecodable clip does (stop
  the run with one line naming it, or be left out under skip_bad).
"""

from __future__ import annotations

import random
import sys

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, default_collate

from rdfer.data.dataset import LOAD_SIZE, ClipDataset
from rdfer.data.features import CachedClipDataset, FeatureCache
from rdfer.data.frames import single_threaded_opencv
from rdfer.data.records import Manifest
from rdfer.errors import RdferError
from rdfer.utils.distributed import DistInfo


def load_size_for(input_size: int, load_size: int | None = None) -> int:
    """The side clips are decoded at: `load_size` (data.load_size) when set, else 8/7 of the
    model's input size (room for the 112 crop: 128)."""
    return load_size or round(input_size * 8 / 7)


def build_loader(manifest: Manifest, *, num_frames: int, train: bool, batch_size: int, seed: int,
                 num_workers: int = 0, load_size: int = LOAD_SIZE, skip_bad: bool = False,
                 cache: FeatureCache | None = None, dist_info: DistInfo = DistInfo(),
                 pin_memory: bool = False) -> CheckedLoader:
    """A repeatable DataLoader over a manifest's clips.

    Args:
        manifest: the split to load (from `build_manifest`).
        num_frames: frames sampled per clip (64 dense, 16 without re-sampling).
        train: shuffle (per epoch: call `loader.batch_sampler.sampler.set_epoch(e)`) and
            sample random frame offsets; else keep the order and take segment centres.
        batch_size: the global batch; each of `dist_info.world_size` ranks gets its share.
            Training under DDP drops the last incomplete batch (ranks need equal batches).
        seed: fixes the order and the frame offsets: the same seed gives the same
            batches whatever `num_workers` is.
        num_workers: DataLoader worker processes (persistent across epochs).
        load_size: frames are decoded at load_size x load_size (see `load_size_for`).
        skip_bad: leave out clips none of whose frames decode (named once on stderr)
            instead of stopping with one line naming the clip.
        cache: a `FeatureCache`: load the cached features of the sampled frames instead.
        dist_info: this process's DDP rank and world size.
        pin_memory: pin batches in page-locked memory (for copies to a GPU).

    Returns:
        CheckedLoader of dicts: "video" uint8 (B, T, 3, S, S) (with a cache: float32
        (B, T, D)), "label" int64 (B,), "index" int64 (B,), "clip_id" list[str],
        "bad_frames" int64 (B,).
    """
    if cache is not None:
        dataset = CachedClipDataset(manifest, cache, num_frames=num_frames, train=train)
    else:
        dataset = ClipDataset(manifest, num_frames=num_frames, train=train, load_size=load_size)
    sampler = EpochSampler(len(dataset), seed, shuffle=train, rank=dist_info.rank, world_size=dist_info.world_size)
    per_rank = max(1, batch_size // dist_info.world_size)
    if num_workers > 0:
        single_threaded_opencv()  # workers are the parallelism; OpenCV threads would oversubscribe
    loader = DataLoader(
        EpochSeededDataset(dataset, seed),
        collate_fn=collate_clips,  # with CheckedLoader: an undecodable clip stops the run or is skipped
        batch_sampler=BatchSampler(sampler, per_rank, drop_last=train and dist_info.enabled),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        # Its own generator: creating an iterator must not draw from the global stream,
        # or a resumed run's dropout would differ from an uninterrupted one's.
        generator=torch.Generator().manual_seed(seed),
    )
    return CheckedLoader(loader, skip_bad, f"{manifest.dataset} {manifest.split}")


def _mix(*numbers: int) -> int:
    """A 63-bit seed from a few integers (stable across processes and runs)."""
    value = 0x9E3779B97F4A7C15
    for n in numbers:
        value = (value ^ (n + 0x632BE59BD9B4E019 + (value << 6) + (value >> 2))) & ((1 << 63) - 1)
    return value


class EpochSampler(Sampler):
    """Yields `(epoch, index)` for this rank's share of one epoch.

    Args:
        size: number of clips in the dataset.
        seed: run seed; the shuffle of epoch e depends only on (seed, e).
        shuffle: shuffle (training) or keep order (evaluation).
        rank, world_size: this process's shard: training drops the remainder so
            every rank gets the same number of clips (the global reweighting
            ranking needs equal batches); evaluation keeps every clip once.
    """

    def __init__(self, size: int, seed: int, shuffle: bool, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.rank, self.size, self.world_size))
        generator = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
        order = torch.randperm(self.size, generator=generator).tolist()
        usable = self.size - self.size % self.world_size
        return order[self.rank:usable:self.world_size]

    def __iter__(self):
        return iter([(self.epoch, i) for i in self._indices()])

    def __len__(self) -> int:
        return len(self._indices())


class EpochSeededDataset(Dataset):
    """Wraps a clip dataset; `dataset[(epoch, index)]` loads clip `index` with RNGs
    seeded from (seed, epoch, index)."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key
        seed = _mix(self.seed, epoch, index)
        # Restore the generators afterwards: with num_workers=0 this runs in the
        # training process, whose own random stream (dropout...) must not depend on it.
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed % (1 << 32))
            random.seed(seed)
            try:
                return self.dataset[index]
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)


def collate_clips(items: list) -> dict:
    """default_collate over the usable items; the others listed as "unusable" [(clip_id, reason)].

    A batch whose every clip is unusable has only the "unusable" key.
    """
    usable = [item for item in items if "unusable" not in item]
    batch = default_collate(usable) if usable else {}
    batch["unusable"] = [(item["clip_id"], item["unusable"]) for item in items if "unusable" in item]
    return batch


class CheckedLoader:
    """Wraps a DataLoader built with `collate_clips`: unusable clips stop the run or are skipped.

    Without skip_bad the first unusable clip raises one RdferError naming it
    (in the main process, not as a worker traceback). With skip_bad each is
    named once on stderr, left out of its batch, and recorded in `skipped`
    {clip_id: reason}; a batch left empty is not yielded. Other attributes
    (batch_sampler, dataset, ...) are the DataLoader's.
    """

    def __init__(self, loader: DataLoader, skip_bad: bool, what: str = "clips"):
        self.loader, self.skip_bad, self.what = loader, skip_bad, what
        self.skipped: dict = {}

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __iter__(self):
        yielded = False
        for batch in self.loader:
            for clip_id, reason in batch.pop("unusable", []):
                if not self.skip_bad:
                    raise RdferError(f"{self.what}: {reason}; re-extract its frames or remove it from the split "
                                     "list, or pass --skip-bad (data.skip_bad: true) to leave such clips out")
                if clip_id not in self.skipped:
                    self.skipped[clip_id] = reason
                    print(f"warning: skip_bad: leaving out {self.what} {reason}",
                          file=sys.stderr, flush=True)
            if "label" not in batch:
                continue  # every clip of this batch was left out
            yielded = True
            yield batch
        if not yielded and len(self.loader):
            raise RdferError(f"{self.what}: every clip was left out as unusable (e.g. "
                             f"{next(iter(self.skipped.values()), '?')}); check the data with rdfer check-dataset")
