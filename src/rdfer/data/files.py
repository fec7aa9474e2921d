"""Finding a clip's frames on disk: image files sorted naturally, or a video file."""

from __future__ import annotations

import os
import re

import cv2

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def natural_key(name: str):
    """Sort key that puts 2.jpg before 10.jpg (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frames(folder: str) -> list:
    """Image file names inside `folder`, sorted naturally; [] if it has none.

    Raises:
        FileNotFoundError / NotADirectoryError when `folder` is not a folder.
    """
    with os.scandir(folder) as entries:
        names = [
            entry.name
            for entry in entries
            if entry.name.lower().endswith(IMAGE_EXTENSIONS) and not entry.name.startswith(".")
        ]
    return sorted(names, key=natural_key)


def is_video_file(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def count_video_frames(path: str) -> int:
    """Frame count a video container reports (0 when it cannot be opened)."""
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            return 0
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        capture.release()
