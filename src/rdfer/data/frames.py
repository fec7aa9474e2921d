"""Frame decoding for the loader: libjpeg-turbo through OpenCV, no PIL.

A clip source gives `num_frames` and `read(j)` -> RGB uint8 (S, S, 3) or None
when frame j cannot be decoded. `read_clip` gathers the sampled frames,
replacing unreadable ones by their nearest readable neighbour.

Why OpenCV: `cv2.imdecode` and `torchvision.io.decode_jpeg` both run
libjpeg-turbo. On 224 px DFEW-size frames (about 10 kB each) decoding and
resizing to 128 took 0.28 ms per frame with cv2 (decode + cv2.resize) and
0.44 ms with torchvision (decode_jpeg + antialiased interpolate) here, and cv2
can decode at 1/2, 1/4, 1/8 size directly (see FrameDecoder).
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch

from rdfer.data.files import list_frames, opencv_path
from rdfer.errors import RdferError


def single_threaded_opencv() -> None:
    """Make OpenCV run on one thread, in THIS process and the processes it forks.

    Call it in the parent before forking workers that are themselves the
    parallelism (DataLoader workers, synth renderers). It must not be called in
    a forked child instead: OpenCV's thread pool does not survive fork, and
    `cv2.setNumThreads` in a child forked after the parent ran a parallel
    OpenCV call blocks forever (OpenCV 4.14, seen as a hung test run).
    """
    cv2.setNumThreads(1)


def resize_frame(image: np.ndarray, load_size: int | None) -> np.ndarray:
    """Resize an (H, W, 3) frame to load_size x load_size (aspect not kept: faces are square)."""
    if load_size is None or image.shape[:2] == (load_size, load_size):
        return image
    # INTER_AREA averages properly when shrinking by 2x or more; bilinear is
    # cheaper and fine for the milder 224 -> 128 shrink.
    shrink = min(image.shape[:2]) >= 2 * load_size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (load_size, load_size), interpolation=interpolation)


def _reduced_flag(shape, load_size: int | None) -> int:
    """The cheapest cv2.imdecode flag that still gives frames of side >= load_size."""
    if load_size is None:
        return cv2.IMREAD_COLOR
    for factor, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                         (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if min(shape[:2]) >= factor * load_size:
            return flag
    return cv2.IMREAD_COLOR


class FrameDecoder:
    """Decodes the frames of one clip to RGB uint8 (S, S, 3), None when undecodable.

    When the stored frames are at least twice `load_size`, libjpeg-turbo's DCT
    scaling decodes them directly at 1/2, 1/4 or 1/8 size
    (IMREAD_REDUCED_COLOR_*): 0.17 ms instead of 0.26 ms (full decode +
    resize) per 224 px frame loaded at 112 here. The first readable frame
    tells the stored size; frames of a clip share it.
    """

    def __init__(self, load_size: int | None):
        self.load_size = load_size
        self.flag = None

    def __call__(self, buffer: np.ndarray | None) -> np.ndarray | None:
        if buffer is None or buffer.size == 0:
            return None
        if self.flag is None:
            image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)  # BGR; grayscale files get 3 channels
            if image is None:
                return None
            self.flag = _reduced_flag(image.shape, self.load_size)
            if self.flag != cv2.IMREAD_COLOR:
                image = cv2.imdecode(buffer, self.flag)  # decode as every later frame will be
        else:
            image = cv2.imdecode(buffer, self.flag)
        if image is None:
            return None
        return cv2.cvtColor(resize_frame(image, self.load_size), cv2.COLOR_BGR2RGB)


def read_bytes(path: str) -> np.ndarray | None:
    try:
        return np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None


class FolderClip:
    """Frames of a clip stored as image files in one folder (sorted naturally)."""

    def __init__(self, folder: str, load_size: int | None):
        self.folder = folder
        self.decode = FrameDecoder(load_size)
        try:
            self.names = list_frames(folder)
        except OSError:
            self.names = []

    @property
    def num_frames(self) -> int:
        return len(self.names)

    def read(self, j: int) -> np.ndarray | None:
        return self.decode(read_bytes(os.path.join(self.folder, self.names[j])))


class VideoClip:
    """Frames of a video file, all decoded once (DFER clips are a few seconds long)."""

    def __init__(self, path: str, load_size: int | None):
        self.frames = []
        with opencv_path(path) as readable:
            capture = cv2.VideoCapture(readable)
            try:
                while capture.isOpened():
                    ok, image = capture.read()
                    if not ok:
                        break
                    self.frames.append(cv2.cvtColor(resize_frame(image, load_size), cv2.COLOR_BGR2RGB))
            finally:
                capture.release()

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def read(self, j: int) -> np.ndarray | None:
        return self.frames[j]


def read_clip(source, indices: np.ndarray, clip_id: str) -> tuple:
    """Gather frames `indices` of a clip source into a uint8 tensor.

    An unreadable frame is replaced by its nearest readable neighbour in the
    clip (earlier one first on ties) and counted once.

    Returns:
        (video uint8 (T, 3, S, S), number of distinct unreadable frames met).

    Raises:
        RdferError: when no frame of the clip can be read.
    """
    cache = {}

    def frame(j):
        if j not in cache:
            cache[j] = source.read(j)
        return cache[j]

    chosen = {}
    for j in sorted(set(int(i) for i in indices)):
        # Nearest readable frame: j itself, then j-1, j+1, j-2, j+2, ...
        for distance in range(source.num_frames):
            for k in (j - distance, j + distance):
                if 0 <= k < source.num_frames and frame(k) is not None:
                    chosen[j] = cache[k]
                    break
            if j in chosen:
                break
        else:
            raise RdferError(f"clip {clip_id}: none of its {source.num_frames} frames can be decoded")
    bad = sum(image is None for image in cache.values())
    # Each distinct frame (H, W, 3) -> planes (3, H*W) once (cv2.transpose is a fast
    # blocked transpose), then one gather builds the clip: cheaper than stacking
    # the T frames and permuting the whole clip.
    order = sorted(chosen)
    height, width = chosen[order[0]].shape[:2]
    planes = np.stack([cv2.transpose(chosen[j].reshape(height * width, 3)) for j in order])
    position = {j: k for k, j in enumerate(order)}
    video = planes[[position[int(i)] for i in indices]]  # (T, 3, H*W)
    return torch.from_numpy(video.reshape(len(indices), 3, height, width)), bad  # (T, 3, H, W)
