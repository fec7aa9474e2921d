"""Finding one face through a video: a detector every k frames, tracking between.

Running a face detector on every frame is the slow part of video FER on a CPU,
and faces move little within a few frames. So the detector runs on every
`every`-th frame (a keyframe, plus the last frame); frames between two
keyframes take the linear interpolation of their boxes. When a keyframe finds
several faces the tracker keeps the one that overlaps the face it followed
(the most consistent face), or else the largest. A face found on one keyframe
only, with none on the keyframes either side, is dropped as a false alarm.
A detector that can (`tracks = True`, MTCNN) is told where the followed face
was, and searches there first.

Boxes are float arrays (x0, y0, x1, y1) in pixels of the upright frame.

Detectors (both load their weights from installed packages; no download):
- "mtcnn" (default): MTCNN with facenet-pytorch's weights (`rdfer.inference.mtcnn`);
  finds faces turned aside that the cascade misses;
- "haar": OpenCV's frontal-face Haar cascade (opencv-python-headless).
"""

import threading
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from rdfer.errors import RdferError
from rdfer.inference.video import Frame

DETECTORS = ("mtcnn", "haar")

# Detection runs on a copy of the frame whose short side is at most this many pixels
# (320x180 for 16:9 video): faces worth reading an expression from stay large enough,
# and the full resolution would only make detection slower. The short side, not the
# width, so that very wide or very tall frames are not shrunk to a sliver.
DETECT_SHORT_SIDE = 180


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _downscale(image: np.ndarray, short_side: int) -> tuple[np.ndarray, float]:
    """The image shrunk so that its short side is at most `short_side` (never enlarged), and the scale."""
    scale = min(1.0, short_side / min(image.shape[:2]))
    if scale == 1.0:
        return image, 1.0
    size = (max(int(round(image.shape[1] * scale)), 1), max(int(round(image.shape[0] * scale)), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


class HaarDetector:
    """OpenCV's Haar cascade for frontal faces.

    `detect(image BGR (H, W, 3))` -> float (K, 4) boxes in the image's pixels.
    """

    name = "haar"

    def __init__(self, short_side: int = DETECT_SHORT_SIDE):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RdferError(f"cannot load OpenCV's face cascade {path}; reinstall opencv-python-headless")
        self.short_side = short_side
        self._lock = threading.Lock()  # one cascade object is not safe to share between threads

    def detect(self, image: np.ndarray) -> np.ndarray:
        small, scale = _downscale(image, self.short_side)
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        # A face smaller than 1/12 of the short side is too small to read an expression from.
        smallest = max(int(min(grey.shape) / 12), 12)
        # scaleFactor 1.15 (not the usual 1.1): a third fewer pyramid levels; the same faces found
        # on the test videos, and tracking smooths the coarser box sizes.
        with self._lock:
            found = self._cascade.detectMultiScale(grey, scaleFactor=1.15, minNeighbors=5,
                                                   minSize=(smallest, smallest))
        if len(found) == 0:
            return np.zeros((0, 4), np.float32)
        boxes = np.asarray(found, np.float32)  # (K, 4) x, y, w, h
        boxes[:, 2:] += boxes[:, :2]
        return boxes / scale


class MTCNNDetector:
    """MTCNN (Zhang et al., 2016) with facenet-pytorch's weights, on the CPU (`rdfer.inference.mtcnn`).

    `detect(image BGR (H, W, 3), near=None)` -> float (K, 4) boxes in the image's
    pixels, those with face probability >= `min_probability`. The whole frame is
    searched on a copy whose short side is at most `short_side`, for faces of at
    least `min_face` pixels there. Given `near`, the box of the face followed
    from an earlier frame, it first searches only a square of `ROI_SCALE` times
    the face's size around it, resized so that the face spans `ROI_FACE` pixels
    (the same detector on a much smaller image: 6 ms against 19 ms for a 640x360
    frame, measured on one busy core); only if no face is there does it search
    the whole frame.
    """

    name = "mtcnn"
    tracks = True  # detect() takes near=, the box followed so far
    ROI_SCALE = 2.0  # side of the searched square / side of the followed face
    ROI_FACE = 40  # pixels the followed face spans in the searched square
    ROI_SMALLEST = 0.5  # smallest face searched there, relative to the followed one

    def __init__(self, short_side: int = DETECT_SHORT_SIDE, min_probability: float = 0.9, min_face: int = 20):
        from rdfer.inference.mtcnn import LeanMTCNN

        self._mtcnn = LeanMTCNN()
        self.short_side, self.min_probability, self.min_face = short_side, min_probability, min_face

    def _confident(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return boxes[scores >= self.min_probability].astype(np.float32)

    def detect(self, image: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
        if near is not None:
            found = self._around(image, near)
            if len(found):
                return found
        small, scale = _downscale(image, self.short_side)
        if min(small.shape[:2]) < 12:  # no face of P-Net's 12 px window fits
            return np.zeros((0, 4), np.float32)
        boxes, scores = self._mtcnn.detect(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), self.min_face)
        return self._confident(boxes, scores) / scale

    def _around(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        side = max(box[2] - box[0], box[3] - box[1], 1.0)
        cx, cy, half = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, side * self.ROI_SCALE / 2
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(np.ceil(cx + half)), w), min(int(np.ceil(cy + half)), h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return np.zeros((0, 4), np.float32)
        scale = min(self.ROI_FACE / side, 1.0)
        region = cv2.resize(image[y0:y1, x0:x1], (max(round((x1 - x0) * scale), 1), max(round((y1 - y0) * scale), 1)),
                            interpolation=cv2.INTER_AREA)
        if min(region.shape[:2]) < 12:
            return np.zeros((0, 4), np.float32)
        boxes, scores = self._mtcnn.detect(cv2.cvtColor(region, cv2.COLOR_BGR2RGB),
                                           max(self.ROI_SMALLEST * side * scale, 12.0))
        return self._confident(boxes, scores) / scale + np.array([x0, y0, x0, y0], np.float32)


def make_detector(name: str):
    """The face detector called `name` (one of DETECTORS)."""
    if name == "haar":
        return HaarDetector()
    if name == "mtcnn":
        return MTCNNDetector()
    raise RdferError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")


def choose_face(boxes: np.ndarray, previous: np.ndarray | None) -> np.ndarray | None:
    """The face to follow among `boxes` (K, 4): the one overlapping `previous` most, else the largest."""
    if len(boxes) == 0:
        return None
    if previous is not None:
        overlaps = [box_iou(box, previous) for box in boxes]
        if max(overlaps) > 0.2:
            return boxes[int(np.argmax(overlaps))]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[int(np.argmax(areas))]


class _Key:
    """A keyframe: its frame index and the box chosen there (None: no face)."""

    def __init__(self, index: int, box: np.ndarray | None):
        self.index, self.box = index, box


def _box_between(index: int, before: _Key, after: _Key | None, every: int) -> np.ndarray | None:
    """The box of a frame between two keyframes: interpolated, or the nearer one's held."""
    if after is None or before.index == after.index:
        return before.box if index - before.index <= every / 2 else None
    if before.box is not None and after.box is not None:
        w = (index - before.index) / (after.index - before.index)
        return (1 - w) * before.box + w * after.box
    if before.box is not None and index - before.index <= every / 2:
        return before.box
    if after.box is not None and after.index - index <= every / 2:
        return after.box
    return None


def track_faces(frames: Iterable[Frame], detector, every: int = 5, smoothing: float = 0.3) -> Iterator[tuple[Frame, np.ndarray | None]]:
    """Yield (frame, box or None) for every frame, in order.

    Args:
        frames: decoded frames in order (a VideoReader).
        detector: object with `detect(image) -> (K, 4)` boxes.
        every: run the detector on every `every`-th frame (and on the last one).
        smoothing: share of the previous keyframe's box kept in a keyframe's box
            when both show the same face (damps detector jitter); 0 keeps the raw box.

    Holds at most about 2 * `every` frames in memory: a keyframe's box is final
    only once the next keyframe shows whether it was an isolated false alarm.
    """
    if every < 1:
        raise RdferError(f"--detect-every must be at least 1, got {every}")
    held: list[Frame] = []  # frames not yet yielded, in order
    keys: list[_Key] = []  # the last keyframes (at most 3 are needed)
    last: Frame | None = None

    def detect(frame: Frame) -> _Key:
        previous = keys[-1].box if keys else None
        if getattr(detector, "tracks", False):
            found = detector.detect(frame.image, near=previous)
        else:
            found = detector.detect(frame.image)
        box = choose_face(found, previous)
        if box is not None and previous is not None and box_iou(box, previous) > 0.5:
            box = (1 - smoothing) * box + smoothing * previous
        return _Key(frame.index, box)

    def drop_if_isolated(middle: int) -> None:
        if 0 < middle < len(keys) - 1 and keys[middle - 1].box is None and keys[middle + 1].box is None:
            keys[middle].box = None

    def release(until: int) -> Iterator[tuple[Frame, np.ndarray | None]]:
        # Yield held frames with index <= until; their boxes come from the keys around them.
        while held and held[0].index <= until:
            frame = held.pop(0)
            before = max((k for k in keys if k.index <= frame.index), key=lambda k: k.index)
            after = min((k for k in keys if k.index >= frame.index), key=lambda k: k.index, default=None)
            yield frame, (before.box if before.index == frame.index else _box_between(frame.index, before, after, every))

    for frame in frames:
        last = frame
        held.append(frame)
        if frame.index % every:
            continue
        keys.append(detect(frame))
        if len(keys) >= 3:
            drop_if_isolated(len(keys) - 2)
            yield from release(keys[-2].index)
            del keys[:-2]
    if last is None:
        return
    if keys[-1].index != last.index:
        keys.append(detect(last))
    drop_if_isolated(len(keys) - 2)
    yield from release(last.index)


def square_crop(image: np.ndarray, box: np.ndarray, size: int, margin: float = 0.2) -> np.ndarray:
    """A square face crop, resized to (size, size).

    The square is centred on the box, its side the box's longer side times
    (1 + margin); parts outside the frame (faces at the edge, very wide or very
    tall videos) are filled with black rather than stretching the face.

    Args:
        image: uint8 (H, W, 3).
        box: (x0, y0, x1, y1) in the image's pixels.
    Returns:
        uint8 (size, size, 3), same channel order as `image`.
    """
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(box[2] - box[0], box[3] - box[1], 1.0) * (1 + margin)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + max(int(round(side)), 1), y0 + max(int(round(side)), 1)
    h, w = image.shape[:2]
    inside = image[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    if inside.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    padded = cv2.copyMakeBorder(
        inside, max(-y0, 0), max(y1 - h, 0), max(-x0, 0), max(x1 - w, 0), cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    return cv2.resize(padded, (size, size), interpolation=cv2.INTER_AREA if padded.shape[0] > size else cv2.INTER_LINEAR)
