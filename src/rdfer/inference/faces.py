"""Face detectors and face crops (tracking through a video: tracks.py).

Boxes are float arrays (x0, y0, x1, y1) in pixels of the upright frame.

How small a face is found: `min_face` pixels of the frame (default
`MIN_FACE`, 40 px, whatever the frame size). The whole-frame search runs on a
copy shrunk so that a `min_face` face spans `SEARCH_FACE` pixels there (never
enlarged): a 640x360 frame is searched at 320x180 and a 1920x1080 one at
960x540, so the cost grows with the frame size and falls as `min_face` grows.

Detectors (both load their weights from installed packages; no download):
- "mtcnn" (default): MTCNN with facenet-pytorch's weights (`rdfer.inference.mtcnn`),
  run by onnxruntime from ONNX files made once from them (model_cache.py);
  finds faces turned aside that the cascade misses;
- "haar": OpenCV's frontal-face Haar cascade (opencv-python-headless).
"""

import threading
from pathlib import Path
import cv2
import numpy as np

from rdfer.errors import RdferError
from rdfer.inference.model_cache import onnx_or_torch
from rdfer.inference.mtcnn import LeanMTCNN, OnnxNets
from rdfer.inference.onnx_models import session_threads

DETECTORS = ("mtcnn", "haar")

MIN_FACE = 40  # default smallest face searched, in pixels of the frame (--min-face)
SEARCH_FACE = 20  # pixels a `min_face` face spans on the copy the whole frame is searched on
SMALLEST_FACE = 12  # MTCNN's P-Net window: no smaller face can be found at any scale


def search_scale(min_face: float) -> float:
    """Scale of the whole-frame search copy: a `min_face` face spans SEARCH_FACE pixels there (<= 1)."""
    return min(1.0, SEARCH_FACE / max(float(min_face), 1.0))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _downscale(image: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """The image shrunk by `scale` (<= 1; never enlarged), and the scale."""
    if scale >= 1.0:
        return image, 1.0
    size = (max(int(round(image.shape[1] * scale)), 1), max(int(round(image.shape[0] * scale)), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


class HaarDetector:
    """OpenCV's Haar cascade for frontal faces.

    `detect(image BGR (H, W, 3))` -> float (K, 4) boxes in the image's pixels,
    faces of at least `min_face` pixels (searched on a copy where they span the
    cascade's 24 px window).
    """

    name = "haar"
    tracks = False  # no search around a followed face
    WINDOW = 24  # the cascade's detection window

    def __init__(self, min_face: float = MIN_FACE):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RdferError(f"cannot load OpenCV's face cascade {path}; reinstall opencv-python-headless")
        self.min_face = check_min_face(min_face)
        self._lock = threading.Lock()  # one cascade object is not safe to share between threads

    def detect(self, image: np.ndarray) -> np.ndarray:
        small, scale = _downscale(image, min(1.0, self.WINDOW / self.min_face))
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        smallest = max(int(self.min_face * scale), self.WINDOW)
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
    """MTCNN (Zhang et al., 2016) with facenet-pytorch's weights, on the CPU (`rdfer.inference.mtcnn`);
    `nets` as `mtcnn_nets` gives them (default: onnxruntime).

    `detect(image BGR (H, W, 3))` -> float (K, 4) boxes in the image's pixels of
    the faces of at least `min_face` pixels with face probability >= `min_probability`,
    searched on a copy where a `min_face` face spans SEARCH_FACE pixels.
    `detect_near(image, box)` searches only a square of `ROI_SCALE` times the
    side of `box` (a face followed from an earlier frame) around it, resized so
    that the face spans `ROI_FACE` pixels (the same detector on a much smaller
    image: 6 ms against 19 ms for a 640x360 frame, measured on one busy core).
    """

    name = "mtcnn"
    tracks = True  # has detect_near()
    ROI_SCALE = 2.0  # side of the searched square / side of the followed face
    ROI_FACE = 40  # pixels the followed face spans in the searched square
    ROI_SMALLEST = 0.5  # smallest face searched there, relative to the followed one

    def __init__(self, min_face: float = MIN_FACE, min_probability: float = 0.9, nets=None):
        self._mtcnn = LeanMTCNN(mtcnn_nets() if nets is None else nets)
        self.min_face, self.min_probability = check_min_face(min_face), min_probability

    def _confident(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return boxes[scores >= self.min_probability].astype(np.float32)

    def detect(self, image: np.ndarray) -> np.ndarray:
        small, scale = _downscale(image, search_scale(self.min_face))
        if min(small.shape[:2]) < SMALLEST_FACE:  # no face of P-Net's 12 px window fits
            return np.zeros((0, 4), np.float32)
        boxes, scores = self._mtcnn.detect(cv2.cvtColor(small, cv2.COLOR_BGR2RGB),
                                           max(self.min_face * scale, SMALLEST_FACE))
        return self._confident(boxes, scores) / scale

    def detect_near(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
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
        if min(region.shape[:2]) < SMALLEST_FACE:
            return np.zeros((0, 4), np.float32)
        boxes, scores = self._mtcnn.detect(cv2.cvtColor(region, cv2.COLOR_BGR2RGB),
                                           max(self.ROI_SMALLEST * side * scale, SMALLEST_FACE))
        return self._confident(boxes, scores) / scale + np.array([x0, y0, x0, y0], np.float32)


def mtcnn_nets(runtime: str = "onnx"):
    """What runs MTCNN's networks: "onnx" (the default: onnxruntime, the cached ONNX files, model_cache.py)
    or "torch" (PyTorch, the reference the ONNX files are checked against); the boxes are the same."""
    files = None if runtime == "torch" else onnx_or_torch("mtcnn", "the MTCNN face detector")
    if files is None:
        from rdfer.inference.mtcnn_nets import TorchNets

        return TorchNets()
    return OnnxNets(files, session_threads())


def check_min_face(min_face) -> float:
    """`min_face` as a float, or RdferError (one line) when it is not a size a detector can search."""
    try:
        value = float(min_face)
    except (TypeError, ValueError):
        value = float("nan")
    if not (value >= SMALLEST_FACE and value < 1e5):  # also rejects nan
        raise RdferError(f"--min-face must be a number of pixels from {SMALLEST_FACE} (the smallest face MTCNN "
                         f"can find) up, got {min_face}")
    return value


def make_detector(name: str, min_face: float = MIN_FACE, runtime: str = "auto"):
    """The face detector called `name` (one of DETECTORS), for faces of at least `min_face` pixels;
    MTCNN's networks on onnxruntime, or with runtime="torch" in PyTorch (`mtcnn_nets`)."""
    if name == "haar":
        return HaarDetector(min_face)
    if name == "mtcnn":
        return MTCNNDetector(min_face, nets=mtcnn_nets("torch" if runtime == "torch" else "onnx"))
    raise RdferError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")


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
