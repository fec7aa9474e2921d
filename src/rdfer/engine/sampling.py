"""Epoch-seeded sampling, so that a resumed run sees exactly the same batches.

The sampler yields `(epoch, index)` keys instead of bare indices. The dataset
wrapper seeds the random number generators from `(seed, epoch, index)` before
loading a clip, so the random frame offsets of a clip depend only on those
three numbers: not on the worker that loads it, not on how many epochs ran in
this process. Together with a per-epoch shuffle seed this makes a run stopped
after any epoch and resumed identical to one that never stopped.
"""

import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


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
