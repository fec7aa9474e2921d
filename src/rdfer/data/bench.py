"""`rdfer bench-data`: clips/s of rdfer's loader against a reference loader.

The reference is written the way the public DFER repositories load clips:
PIL `Image.open` for every sampled frame, per-frame torchvision transforms
(RandomResizedCrop, RandomHorizontalFlip, ColorJitter, ToTensor), stacked.
Both run on the same clips with the same DataLoader settings in the same
process, after the frames were read once so both find them in the page cache.
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch
from torch.utils.data import DataLoader, Dataset

from rdfer.data.dataset import LOAD_SIZE, make_loader, seed_worker
from rdfer.data.manifest import Manifest, is_video_file, list_frames
from rdfer.data.sampling import sample_indices
from rdfer.data.transforms import TrainPreset
from rdfer.errors import RdferError


class ReferenceDataset(Dataset):
    """Per-frame PIL loading and torchvision transforms (public DFER code style).

    Item: (float32 (T, 3, size, size), label).
    """

    def __init__(self, manifest: Manifest, num_frames: int, size: int = 112):
        from torchvision import transforms

        self.records = manifest.records
        self.num_frames = num_frames
        self.transform = transforms.Compose([
            transforms.RandomResizedCrop(size),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
            transforms.ToTensor(),
        ])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        from PIL import Image

        record = self.records[index]
        names = list_frames(record.path)
        frames = []
        for j in sample_indices(len(names), self.num_frames, train=True):
            with Image.open(os.path.join(record.path, names[j])) as image:
                frames.append(self.transform(image.convert("RGB")))
        return torch.stack(frames), record.label  # (T, 3, size, size)


def _prime_cache(records, packed: str | None) -> None:
    """Read every frame file (and the pack) once, so both loaders start warm."""
    for record in records:
        for name in list_frames(record.path):
            with open(os.path.join(record.path, name), "rb") as handle:
                handle.read()
    if packed:
        with open(packed, "rb") as handle:
            while handle.read(1 << 24):
                pass


def _clips_per_second(batches, count: int, step=None) -> float:
    start = time.perf_counter()
    seen = 0
    for batch in batches:
        if step is not None:
            step(batch)
        seen += len(batch["label"]) if isinstance(batch, dict) else len(batch[1])
    if seen != count:
        raise RuntimeError(f"loader returned {seen} clips, expected {count}")
    return count / (time.perf_counter() - start)


def bench_data(manifest: Manifest, clips: int = 64, workers: int = 2, frames: int = 64,
               batch_size: int = 8, load_size: int = LOAD_SIZE, size: int = 112, seed: int = 0,
               packed: Manifest | None = None) -> dict:
    """Time rdfer's loader + TrainPreset and the reference loader on the same clips.

    Args:
        manifest: the split read from frame folders (the reference reads these).
        clips: clips to load (the first `clips` of the split).
        workers, batch_size: DataLoader settings for both loaders.
        frames: frames per clip (64 dense).
        load_size, size: rdfer's load size and crop size (reference crops to size).
        packed: a manifest of a pack of the same split; rdfer's loader then reads it.

    Returns:
        dict: clips, frames, workers, ours (clips/s), reference (clips/s), ratio.
    """
    records = manifest.records[:clips]
    if any(is_video_file(record.path) for record in records):
        raise RdferError("bench-data compares with a PIL loader of frame folders; "
                         "this split holds video files")
    subset = dataclasses.replace(manifest, records=records)
    ours_manifest = subset
    if packed is not None:
        by_id = {record.clip_id: record for record in packed.records}
        missing = [record.clip_id for record in records if record.clip_id not in by_id]
        if missing:
            raise RdferError(f"{len(missing)} clips are not in the pack {packed.packed}, "
                             f"e.g. {missing[0]}; pack the same split")
        ours_manifest = dataclasses.replace(packed, records=tuple(by_id[r.clip_id] for r in records))
    _prime_cache(records, packed.packed if packed is not None else None)

    preset = TrainPreset(size=size)
    generator = torch.Generator().manual_seed(seed)
    ours_loader = make_loader(ours_manifest, num_frames=frames, train=True, batch_size=batch_size,
                              num_workers=workers, seed=seed, load_size=load_size)
    ours = _clips_per_second(ours_loader, len(records),
                             step=lambda batch: preset(batch["video"], generator))
    del ours_loader  # stop its persistent workers before timing the reference

    torch.manual_seed(seed)
    reference_loader = DataLoader(ReferenceDataset(subset, frames, size), batch_size=batch_size,
                                  num_workers=workers, worker_init_fn=seed_worker, shuffle=True)
    reference = _clips_per_second(reference_loader, len(records))
    return {"clips": len(records), "frames": frames, "workers": workers, "batch_size": batch_size,
            "ours": ours, "reference": reference, "ratio": ours / reference,
            "packed": packed.packed if packed is not None else None}


def format_bench(result: dict) -> str:
    source = f"pack {result['packed']}" if result["packed"] else "frame folders"
    return "\n".join([
        f"{result['clips']} clips x {result['frames']} frames, {result['workers']} workers, "
        f"batch {result['batch_size']}, torch threads {torch.get_num_threads()}",
        f"rdfer loader ({source}, cv2 decode + batched TrainPreset): "
        f"{result['ours']:8.2f} clips/s",
        f"reference (PIL per frame + per-frame torchvision transforms): "
        f"{result['reference']:8.2f} clips/s",
        f"ratio: {result['ratio']:.2f}x",
    ])
