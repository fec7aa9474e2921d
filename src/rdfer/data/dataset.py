"""Clip dataset and DataLoader: sampled frames decoded to fixed-size uint8 tensors.

Augmentation is NOT done here: the loader yields uint8 `(B, T, 3, S, S)` at
`load_size` (default 128, room for a 112 crop) and the training loop applies
`TrainPreset`/`EvalPreset` to the whole batch, on the GPU when there is one.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate, get_worker_info

from rdfer.data.frames import FolderClip, VideoClip, read_clip, single_threaded_opencv
from rdfer.data.files import is_video_file
from rdfer.data.pack import PackReader
from rdfer.data.records import Manifest
from rdfer.data.sampling import T_DENSE, sample_indices
from rdfer.errors import RdferError

LOAD_SIZE = 128


class ClipDataset(Dataset):
    """Sampled frames of each clip of a manifest.

    Args:
        manifest: from `build_manifest` (frames read from a pack when
            `manifest.packed` is set, else from each record's folder or video).
        num_frames: frames per clip (64 dense, 16 without re-sampling), chosen
            by `sample_indices` (train: random offset per segment; eval: centres).
        train: random (True) or centred (False) sampling.
        load_size: every frame is resized to load_size x load_size.
        seed: seeds the sampling RNG when loading in the main process
            (num_workers=0); in DataLoader workers the worker's torch RNG,
            seeded by the DataLoader, is used.

    Item: dict "video" uint8 (T, 3, S, S), "label" int, "index" int,
    "clip_id" str, "bad_frames" int (unreadable frames met and replaced by
    their nearest readable neighbour). A clip none of whose frames can be
    decoded gives instead {"unusable": reason, "index", "clip_id"}: raising
    inside a DataLoader worker would reach the user as a worker traceback, so
    `collate_clips` and `CheckedLoader` decide in the main process (skip it
    under skip_bad, else stop with one line naming it).
    """

    def __init__(self, manifest: Manifest, num_frames: int = T_DENSE, train: bool = True,
                 load_size: int = LOAD_SIZE, seed: int | None = None):
        self.manifest = manifest
        self.records = manifest.records
        self.num_frames = num_frames
        self.train = train
        self.load_size = load_size
        self.seed = seed
        self._main_generator = None
        self._pack = None
        if manifest.packed:
            self._pack = PackReader(manifest.packed)

    def __len__(self) -> int:
        return len(self.records)

    def _generator(self) -> torch.Generator | None:
        if get_worker_info() is not None or self.seed is None:
            return None  # the worker's (or caller's) global torch RNG
        if self._main_generator is None:
            self._main_generator = torch.Generator().manual_seed(self.seed)
        return self._main_generator

    def open_clip(self, index: int):
        """The frame source of clip `index` (pack, frame folder or video file)."""
        record = self.records[index]
        if self._pack is not None:
            return self._pack.clip(record.clip_id, self.load_size)
        if is_video_file(record.path) and os.path.isfile(record.path):
            return VideoClip(record.path, self.load_size)
        return FolderClip(record.path, self.load_size)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        source = self.open_clip(index)
        if source.num_frames == 0:
            return unusable_item(record.clip_id, index, f"clip {record.clip_id}: no frames in {record.path} "
                                 f"(it had {record.num_frames} when the manifest was built)")
        indices = sample_indices(source.num_frames, self.num_frames, self.train, self._generator())
        try:
            video, bad = read_clip(source, indices, record.clip_id)  # (T, 3, S, S)
        except RdferError as error:  # no frame of the clip decodes
            return unusable_item(record.clip_id, index, f"{error} ({record.path})")
        return {"video": video, "label": record.label, "index": index,
                "clip_id": record.clip_id, "bad_frames": bad}


def unusable_item(clip_id: str, index: int, reason: str) -> dict:
    """The item of a clip that cannot be loaded (see ClipDataset)."""
    return {"unusable": reason, "index": index, "clip_id": clip_id}


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


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: seed numpy/random from the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(manifest: Manifest, *, num_frames: int, train: bool, batch_size: int,
                num_workers: int, seed: int, sampler=None, drop_last: bool = False,
                load_size: int = LOAD_SIZE, skip_bad: bool = False) -> CheckedLoader:
    """A repeatable DataLoader over a manifest's clips.

    Shuffles when `train` and no sampler is given. The same seed and number of
    workers give the same order and the same frame offsets (workers are seeded
    from `seed` by the DataLoader); workers persist across epochs when
    num_workers > 0.

    Returns:
        CheckedLoader (a DataLoader whose clips that cannot be decoded stop it,
        or are skipped with `skip_bad`) of dicts: "video" uint8 (B, T, 3, S, S),
        "label" int64 (B,), "index" int64 (B,), "clip_id" list[str],
        "bad_frames" int64 (B,).
    """
    dataset = ClipDataset(manifest, num_frames=num_frames, train=train, load_size=load_size,
                          seed=seed)
    generator = torch.Generator().manual_seed(seed)
    if num_workers > 0:
        single_threaded_opencv()  # workers are the parallelism; OpenCV threads would oversubscribe
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        collate_fn=collate_clips,
    )
    return CheckedLoader(loader, skip_bad, f"{manifest.dataset} {manifest.split}")
