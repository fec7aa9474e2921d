"""Clip dataset: sampled frames decoded to fixed-size uint8 tensors (`rdfer.data.loader` batches them).

Augmentation is NOT done here: the loader yields uint8 `(B, T, 3, S, S)` at
`load_size` (default 128, room for a 112 crop) and the training loop applies
`TrainPreset`/`EvalPreset` to the whole batch, on the GPU when there is one.
"""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from rdfer.data.files import is_video_file
from rdfer.data.frames import FolderClip, VideoClip, read_clip
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

    Training offsets come from torch's global RNG, which `rdfer.data.loader`'s
    `EpochSeededDataset` seeds per clip from (seed, epoch, index).

    Item: dict "video" uint8 (T, 3, S, S), "label" int, "index" int,
    "clip_id" str, "bad_frames" int (unreadable frames met and replaced by
    their nearest readable neighbour). A clip none of whose frames can be
    decoded gives instead {"unusable": reason, "index", "clip_id"}: raising
    inside a DataLoader worker would reach the user as a worker traceback, so
    `collate_clips` and `CheckedLoader` decide in the main process (skip it
    under skip_bad, else stop with one line naming it).
    """

    def __init__(self, manifest: Manifest, num_frames: int = T_DENSE, train: bool = True,
                 load_size: int = LOAD_SIZE):
        self.manifest = manifest
        self.records = manifest.records
        self.num_frames = num_frames
        self.train = train
        self.load_size = load_size
        self._pack = None
        if manifest.packed:
            self._pack = PackReader(manifest.packed)

    def __len__(self) -> int:
        return len(self.records)

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
        indices = sample_indices(source.num_frames, self.num_frames, self.train)
        try:
            video, bad = read_clip(source, indices, record.clip_id)  # (T, 3, S, S)
        except RdferError as error:  # no frame of the clip decodes
            return unusable_item(record.clip_id, index, f"{error} ({record.path})")
        return {"video": video, "label": record.label, "index": index,
                "clip_id": record.clip_id, "bad_frames": bad}


def unusable_item(clip_id: str, index: int, reason: str) -> dict:
    """The item of a clip that cannot be loaded (see ClipDataset)."""
    return {"unusable": reason, "index": index, "clip_id": clip_id}
