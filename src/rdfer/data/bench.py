"""`rdfer bench data`: clips/s of rdfer's loader against a reference loader.

The reference is written the way the public DFER repositories load clips:
PIL `Image.open` for every sampled frame, per-frame torchvision transforms
(RandomResizedCrop, RandomHorizontalFlip, ColorJitter, ToTensor), stacked.
Both run on the same clips with the same DataLoader settings in the same
process, after the frames were read once so both find them in the page cache.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import os
import random
import resource
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from rdfer.data.dataset import LOAD_SIZE
from rdfer.data.files import is_video_file, list_frames
from rdfer.data.layouts import DFEW
from rdfer.data.loader import build_loader
from rdfer.data.records import Manifest
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


def _seed_worker(worker_id: int) -> None:
    """The reference loader's worker_init_fn: seed numpy/random from the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


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


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished (joined) children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measure(build_loader, count: int, step=None) -> dict:
    """Iterate a loader once: clips/s of wall time and clips per CPU-second.

    CPU time counts the DataLoader workers: the loader is dropped and its
    workers joined before reading it. On a machine shared with other jobs,
    clips per CPU-second is the steadier figure.
    """
    cpu, start = _cpu_seconds(), time.perf_counter()
    loader = build_loader()
    seen = 0
    for batch in loader:
        if step is not None:
            step(batch)
        seen += len(batch["label"]) if isinstance(batch, dict) else len(batch[1])
    wall = time.perf_counter() - start
    del loader, batch
    gc.collect()  # shuts persistent workers down, so RUSAGE_CHILDREN includes them
    cpu = _cpu_seconds() - cpu
    if seen != count:
        raise RuntimeError(f"loader returned {seen} clips, expected {count}")
    return {"wall": count / wall, "cpu": count / cpu}


def bench_data(manifest: Manifest, clips: int = 64, workers: int = 2, frames: int = 64,
               batch_size: int = 8, load_size: int = LOAD_SIZE, size: int = 112, seed: int = 0,
               packed: Manifest | None = None, threads: int | None = 1) -> dict:
    """Time rdfer's loader + TrainPreset and the reference loader on the same clips.

    Args:
        manifest: the split read from frame folders (the reference reads these).
        clips: clips to load (the first `clips` of the split).
        workers, batch_size: DataLoader settings for both loaders.
        frames: frames per clip (64 dense).
        load_size, size: rdfer's load size and crop size (reference crops to size).
        packed: a manifest of a pack of the same split; rdfer's loader then reads it.
        threads: torch/OpenCV threads of this (main) process while timing, None
            to leave them. Default 1: the DataLoader workers already occupy the
            cores, and idle OpenMP threads spinning in the main process steal
            CPU from them (measured here: 16-18 -> 22 clips per CPU-second).

    Returns:
        dict: clips, frames, workers, ours (clips/s), reference (clips/s), ratio.
    """
    records = manifest.records[:clips]
    if any(is_video_file(record.path) for record in records):
        raise RdferError("bench data compares with a PIL loader of frame folders; "
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
    saved_threads = torch.get_num_threads(), cv2.getNumThreads()
    if threads is not None:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    try:
        return _bench(records, subset, ours_manifest, frames, batch_size, workers, load_size, size,
                      seed, packed)
    finally:
        torch.set_num_threads(saved_threads[0])
        cv2.setNumThreads(saved_threads[1])


def _bench(records, subset, ours_manifest, frames, batch_size, workers, load_size, size, seed,
           packed) -> dict:
    preset = TrainPreset(size=size)
    generator = torch.Generator().manual_seed(seed)
    ours = _measure(lambda: build_loader(ours_manifest, num_frames=frames, train=True,
                                         batch_size=batch_size, num_workers=workers, seed=seed,
                                         load_size=load_size),
                    len(records), step=lambda batch: preset(batch["video"], generator))
    torch.manual_seed(seed)
    reference = _measure(lambda: DataLoader(ReferenceDataset(subset, frames, size),
                                            batch_size=batch_size, num_workers=workers,
                                            worker_init_fn=_seed_worker, shuffle=True),
                         len(records))
    return {"clips": len(records), "frames": frames, "workers": workers, "batch_size": batch_size,
            "ours": ours["wall"], "reference": reference["wall"],
            "ratio": ours["wall"] / reference["wall"],
            "ours_cpu": ours["cpu"], "reference_cpu": reference["cpu"],
            "ratio_cpu": ours["cpu"] / reference["cpu"],
            "packed": packed.packed if packed is not None else None,
            "threads": torch.get_num_threads()}


def format_bench(result: dict) -> str:
    source = f"pack {result['packed']}" if result["packed"] else "frame folders"
    return "\n".join([
        f"{result['clips']} clips x {result['frames']} frames, {result['workers']} workers, "
        f"batch {result['batch_size']}, main-process threads {result['threads']}",
        f"{'loader':64s} {'clips/s':>8s} {'clips/CPU-s':>12s}",
        f"{'rdfer (' + source + ', cv2 decode + batched TrainPreset)':64s} "
        f"{result['ours']:8.2f} {result['ours_cpu']:12.2f}",
        f"{'reference (PIL per frame + per-frame torchvision transforms)':64s} "
        f"{result['reference']:8.2f} {result['reference_cpu']:12.2f}",
        f"ratio: {result['ratio']:.2f}x clips/s, {result['ratio_cpu']:.2f}x clips per CPU-second",
    ])


def write_smooth_dfew(out, clips: int = 128, size: int = 224, seed: int = 0, quality: int = 90) -> str:
    """A DFEW-layout stand-in with real-size frames for timing loaders.

    Takes the first `clips` clips of DFEW fold 1's train list with their real
    frame counts (shipped `frame_counts.csv`) and writes smooth random
    size x size JPEGs (low-frequency colour fields that drift over the clip,
    plus mild noise: about DFEW's file size per frame). Returns the root.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    with open(DFEW.shipped_dir() / "frame_counts.csv") as handle:
        counts = {row["video_name"].lstrip("0"): int(row["num_frames"]) for row in csv.DictReader(handle)}
    with open(DFEW.shipped_list("train", 1)) as handle:
        rows = list(csv.DictReader(handle))[:clips]
    split_list = DFEW.list_file(out, "train", 1)
    split_list.parent.mkdir(parents=True, exist_ok=True)
    split_list.write_text(
        "video_name,label\n" + "".join(f"{row['video_name']},{row['label']}\n" for row in rows))
    for row in rows:
        folder = out / DFEW.written_clip(row["video_name"])
        folder.mkdir(parents=True, exist_ok=True)
        start, end = rng.uniform(0, 255, (2, 6, 6, 3))
        count = counts[row["video_name"]]
        for i in range(count):
            field = start + (end - start) * i / max(count - 1, 1)
            image = cv2.resize(field.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
            image = image + rng.normal(0, 4, image.shape)
            cv2.imwrite(str(folder / f"{i + 1:05d}.jpg"), np.clip(image, 0, 255).astype(np.uint8),
                        [cv2.IMWRITE_JPEG_QUALITY, quality])
    return str(out)
