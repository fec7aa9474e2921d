"""Tiny datasets in the official on-disk layouts, built from REAL split-list lines.

Every frame is a uniform colour that encodes its position in the clip
(R = frame_value(i), G = 255 - R, B = 128), so a test can tell which frame a
loader returned, and in which order, after JPEG round-trips.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from rdfer.labels import DFEW_CLASSES, MAFW_CLASSES

FRAME_SIZE = 32
# Frames per clip, cycled over the clips of a split: short clips (< 16) included.
FRAME_COUNTS = (12, 5, 20, 3, 17)


def frame_value(i: int) -> int:
    """Red level of frame i (distinct for i < 22, far apart enough to survive JPEG)."""
    return 10 + 10 * i


def write_frames(folder: Path, count: int, size: int = FRAME_SIZE, names=None) -> list:
    """Write `count` JPEG frames 1.jpg .. count.jpg (natural order != string order)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"{i + 1}.jpg" for i in range(count)]
    for i, name in enumerate(names):
        image = np.empty((size, size, 3), np.uint8)
        image[..., 2] = frame_value(i)  # OpenCV writes BGR: channel 2 is red
        image[..., 1] = 255 - frame_value(i)
        image[..., 0] = 128
        cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return names


def _shipped(*parts) -> Path:
    return Path(str(resources.files("rdfer").joinpath("splits", *parts)))


def _pick_rows(rows, count, label_of):
    """First `count` rows with as many different labels as possible (split-file order kept)."""
    chosen, labels = [], set()
    for row in rows:
        if label_of(row) not in labels:
            chosen.append(row)
            labels.add(label_of(row))
        if len(chosen) == count:
            break
    return [row for row in rows if row in chosen]


def _write_clips(clips) -> list:
    """Write frames for (clip_id, label0, folder) in order, cycling FRAME_COUNTS.

    Returns [(clip_id, label0, num_frames, folder)].
    """
    written = []
    for k, (clip_id, label, folder) in enumerate(clips):
        count = FRAME_COUNTS[k % len(FRAME_COUNTS)]
        write_frames(folder, count)
        written.append((clip_id, label, count, folder))
    return written


def make_dfew(root: Path, fold: int = 1, per_split: int = 4, frames_dir="Clip/clip_224x224",
              header: bool = True) -> dict:
    """DFEW layout from real lines of the shipped fold `fold`.

    Returns {split: [(clip_id, label0, num_frames, folder)]} in list order.
    """
    expected = {}
    for split in ("train", "test"):
        name = f"{split}(single-labeled)"
        with open(_shipped("dfew", "EmoLabel_DataSplit", name, f"set_{fold}.csv")) as handle:
            rows = list(csv.reader(handle))[1:]
        rows = _pick_rows(rows, per_split, lambda row: row[1])
        out = root / "EmoLabel_DataSplit" / name / f"set_{fold}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(("video_name,label\n" if header else "")
                       + "".join(f"{a},{b}\n" for a, b in rows))
        expected[split] = _write_clips(
            [(video, int(label) - 1, root / frames_dir / video.zfill(5)) for video, label in rows])
    return expected


def make_ferv39k(root: Path, per_split: int = 4, header: bool = False) -> dict:
    """FERV39K layout from real lines of the shipped lists."""
    expected = {}
    for split in ("train", "test"):
        lines = _shipped("ferv39k", "4_setups", "All_scenes", f"{split}_All.csv").read_text()
        rows = [line.split() for line in lines.splitlines() if line.strip()]
        rows = _pick_rows(rows, per_split, lambda row: row[1])
        out = root / "4_setups" / "All_scenes" / f"{split}_All.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(("video_name label\n" if header else "")
                       + "".join(f"{a} {b}\n" for a, b in rows))
        expected[split] = _write_clips(
            [(clip, DFEW_CLASSES.index(emotion), root / "2_ClipsforFaceCrop" / clip)
             for clip, emotion in rows])
    return expected


# MAFW's split lists are not public without its licence: these lines follow its
# format (`NNNNN.mp4 label`, as quoted in MAE-DFER's preprocessing), both label
# styles found in the wild (class name and 1-based number).
MAFW_LINES = {
    "train": ["00025.mp4 anger", "00114.mp4 happiness", "01203.mp4 11", "04410.mp4 Contempt"],
    "test": ["00007.mp4 sadness", "02231.mp4 5", "09999.mp4 helplessness"],
}


def make_mafw(root: Path, fold: int = 1) -> dict:
    expected = {}
    by_name = {name.lower(): index for index, name in enumerate(MAFW_CLASSES)}
    for split, lines in MAFW_LINES.items():
        out = root / "split" / "single" / "no_caption" / f"set_{fold}" / f"{split}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(line + "\n" for line in lines))
        clips = []
        for line in lines:
            video, label = line.split()
            clip = video.split(".")[0]
            index = int(label) - 1 if label.isdigit() else by_name[label.lower()]
            clips.append((clip, index, root / "data" / "faces" / clip))
        expected[split] = _write_clips(clips)
    return expected


def write_video(path: Path, count: int, size: int = FRAME_SIZE) -> None:
    """A short MJPG .avi whose frame i has red level frame_value(i)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (size, size))
    for i in range(count):
        image = np.empty((size, size, 3), np.uint8)
        image[..., 2], image[..., 1], image[..., 0] = frame_value(i), 255 - frame_value(i), 128
        writer.write(image)
    writer.release()


def make_csv(root: Path) -> tuple:
    """A CSV manifest with a split column, frame folders (relative and absolute) and a video.

    Returns (csv_path, {split: [(clip_id, label0, num_frames)]}).
    """
    write_frames(root / "clips" / "a", 12)
    write_frames(root / "clips" / "b", 5)
    write_frames(root / "elsewhere" / "c", 7)
    write_video(root / "videos" / "d.avi", 9)
    absolute = str((root / "elsewhere" / "c").resolve())
    rows = [("clips/a", "Happy", "train"), ("clips/b", "3", "train"),
            ("videos/d.avi", "fear", "train"), (absolute, "Sad", "test")]
    csv_path = root / "manifest.csv"
    csv_path.write_text("path,label,split\n" + "".join(",".join(row) + "\n" for row in rows))
    expected = {"train": [("clips/a", 0, 12), ("clips/b", 3, 5), ("videos/d.avi", 6, 9)],
                "test": [(absolute, 1, 7)]}
    return csv_path, expected
