"""Reading a user's video file with OpenCV, frame by frame.

Two things the container knows must be respected, or faces come out sideways
and times come out wrong:
- rotation metadata (phones store portrait video as landscape frames plus a
  "rotate 90" display matrix): OpenCV's FFmpeg backend applies it when
  `CAP_PROP_ORIENTATION_AUTO` is on; when a backend cannot, we read
  `CAP_PROP_ORIENTATION_META` and rotate each frame ourselves (`rotate_frame`);
- variable frame rate: each frame's time is its own presentation timestamp
  (`CAP_PROP_POS_MSEC`), not `index / fps`, which is only the fallback for
  backends that report no timestamps.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from rdfer.data.files import opencv_path, special_file_kind
from rdfer.errors import RdferError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

# Used only when the container reports no usable frame rate.
FALLBACK_FPS = 30.0


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    index: position in decoding order, from 0.
    time_s: presentation time in seconds from the start of the video.
    image: uint8 (H, W, 3) BGR, already turned upright.
    """

    index: int
    time_s: float
    image: np.ndarray


def rotate_frame(image: np.ndarray, degrees: int) -> np.ndarray:
    """Turn a frame clockwise by `degrees` (0, 90, 180 or 270), as a player would.

    The angle is the one OpenCV reports in `CAP_PROP_ORIENTATION_META`: the
    clockwise turn that makes the stored frame upright.
    """
    degrees = int(round(degrees)) % 360
    if degrees == 0:
        return image
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if degrees not in codes:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    return cv2.rotate(image, codes[degrees])


class VideoReader:
    """Iterate over the upright frames of a video file with their timestamps.

        with VideoReader("clip.mov") as video:
            for frame in video:      # Frame(index, time_s, image BGR)
                ...

    Args:
        path: the video file.
        manual_rotation: rotate frames here from the rotation metadata instead of
            letting the backend do it (the fallback when the backend cannot;
            also used by the tests to check both paths agree).

    Raises RdferError when the file is missing or OpenCV cannot open it.
    """

    def __init__(self, path, manual_rotation: bool = False):
        self.path = Path(path)
        if not self.path.is_file():
            kind = special_file_kind(self.path)
            if kind:  # OpenCV would wait on a pipe forever
                raise RdferError(f"{self.path}: this is {kind}, not a video file; save the video to a file first")
            raise RdferError(f"{self.path}: no such video file; check the path")
        if self.path.stat().st_size == 0:
            raise RdferError(f"{self.path}: the file is empty (0 bytes); it holds no video")
        with opencv_path(self.path) as readable:  # a name OpenCV can take (non-UTF-8 names crashed it)
            self._capture = cv2.VideoCapture(readable)
        if not self._capture.isOpened():
            raise RdferError(
                f"{self.path}: OpenCV cannot open this file as a video (corrupt, or a format "
                "its FFmpeg build does not read); re-encode it, e.g. to H.264 .mp4"
            )
        self.media = "video"
        self.frame_size = (0, 0)  # (width, height) of the upright frames, known once one is decoded
        self.rotation = self._setup_rotation(manual_rotation)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.container_fps = fps if math.isfinite(fps) and 0 < fps < 1000 else None
        # The container's frame count is an estimate (wrong for some VFR files); only for display.
        self.frame_count_hint = max(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)

    def _setup_rotation(self, manual: bool) -> int:
        """Degrees this reader rotates frames by itself (0 when the backend does it)."""
        capture = self._capture
        if not manual and capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1) and capture.get(cv2.CAP_PROP_ORIENTATION_AUTO) == 1:
            return 0
        # The backend will not rotate: switch its rotation off (so it cannot happen twice)
        # and apply the metadata angle ourselves.
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        meta = capture.get(cv2.CAP_PROP_ORIENTATION_META)
        return int(round(meta)) % 360 if math.isfinite(meta) else 0

    def __iter__(self) -> Iterator[Frame]:
        fps = self.container_fps or FALLBACK_FPS
        previous = -math.inf
        index = 0
        while True:
            ok, image = self._capture.read()
            if not ok or image is None:
                return
            msec = self._capture.get(cv2.CAP_PROP_POS_MSEC)
            time_s = msec / 1000.0 if math.isfinite(msec) else -1.0
            # Backends without timestamps report 0 or repeat the previous value: fall back
            # to index / fps, kept strictly increasing so that times always order frames.
            if time_s <= previous:
                time_s = index / fps if index / fps > previous else previous + 1.0 / fps
            previous = time_s
            image = rotate_frame(image, self.rotation)
            self.frame_size = (image.shape[1], image.shape[0])
            yield Frame(index, time_s, image)
            index += 1

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageReader:
    """A still image as a one-frame video (same interface as VideoReader).

    OpenCV applies the EXIF orientation; an alpha channel is dropped, grey images become BGR.
    """

    media = "image"
    container_fps = None
    frame_count_hint = 1

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise RdferError(f"{self.path}: no such image file; check the path")
        image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if image is None:
            raise RdferError(f"{self.path}: OpenCV cannot read this file as an image (corrupt, or not an image)")
        self.image = image
        self.frame_size = (image.shape[1], image.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.image)

    def close(self) -> None:
        pass

    def __enter__(self) -> "ImageReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_image(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def open_media(path, manual_rotation: bool = False):
    """An ImageReader for an image file (by its extension), else a VideoReader."""
    return ImageReader(path) if is_image(path) else VideoReader(path, manual_rotation)


def average_fps(times_s: list[float], container_fps: float | None) -> float:
    """Frames per second over the decoded timestamps (the mean rate of a VFR video)."""
    if len(times_s) >= 2 and times_s[-1] > times_s[0]:
        return (len(times_s) - 1) / (times_s[-1] - times_s[0])
    return container_fps or FALLBACK_FPS


def list_videos(paths) -> list[Path]:
    """Expand files and directories into a sorted list of video and image files.

    A directory contributes the files inside it (recursively) whose extension
    is one of VIDEO_EXTENSIONS or IMAGE_EXTENSIONS (each image is one input, a
    photo); a file given by name is kept whatever its extension, so that an
    unreadable one is reported rather than dropped.

    Raises RdferError when a directory holds no video or image files.
    """
    known = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS
    videos: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in known)
            if not found:
                raise RdferError(f"{path}: no video or image files ({', '.join(known)}) in this directory")
            videos.extend(found)
        else:
            videos.append(path)
    return videos
