"""`predict_video`: one video file in, one prediction record out.

    record = rdfer.predict_video("clip.mp4")                      # built-in default model
    record = rdfer.predict_video("clip.mp4", checkpoint="RUN/checkpoints/best.pt", detector="mtcnn")
    record.to_dict()   # video, fps, num_frames, frames_with_face, status, error, model, label,
                       # probabilities, agreement, key_expression, timeline

Steps: decode (video.py) -> one face per frame (faces.py: detector every k
frames, interpolated between) -> square crops -> model (predictors.py) ->
aggregation over time:

- default model (per frame): video probabilities = mean of the face frames'
  probabilities; agreement = the paper's measure over 4 equal clips of the
  face frames (each clip's mean probabilities vote); key expression = the
  `key_window_s` window of face frames with the highest mean probability of
  the video's label; timeline = each frame's own prediction.
- checkpoint (clip model): the model runs once on `num_frames` face frames
  sampled uniformly over the face track (segment centres, as at evaluation),
  giving the video probabilities, the 4 clip logits (agreement) and mu/delta
  (key expression: the re-sampled window p_k = T * mu + (k - 7.5) * delta,
  mapped back through the sampling to the timestamps of the source frames).
  The timeline comes from a sliding window of the model (`clip_window_s`
  long, every `clip_hop_s`); each face frame carries the prediction of the
  window whose centre is nearest. A model without re-sampling (no mu) reports
  its most confident window as the key expression.

A file that cannot be read gives status "error", a video without any face
"no_face"; neither raises. A bad checkpoint or option raises RdferError.
"""

import dataclasses
import math
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rdfer.errors import RdferError
from rdfer.inference.faces import DETECTORS, make_detector, square_crop, track_faces
from rdfer.inference.predictors import load_predictor
from rdfer.inference.video import VideoReader, average_fps

STATUSES = ("ok", "no_face", "error")
NUM_CLIPS = 4  # clips of the agreement measure (n1 in the paper)
THUMBNAIL_SIZE = 64
MAX_THUMBNAILS = 48


@dataclass(frozen=True)
class PredictOptions:
    """How `predict_video` finds faces and aggregates predictions."""

    detector: str = "mtcnn"  # face detector: "mtcnn" (default: finds turned faces, tracked cheaply) or "haar"
    detect_every: int = 5  # run the detector on every k-th frame; boxes in between are interpolated
    margin: float = 0.2  # square crop side = longer box side * (1 + margin)
    key_window_s: float = 1.0  # default model: length of the most confident window (key expression)
    clip_window_s: float = 2.0  # checkpoint: length of each sliding window of the timeline
    clip_hop_s: float = 0.5  # checkpoint: step between sliding windows
    max_crops: int = 2048  # checkpoint: face crops kept in memory; longer videos keep every 2nd, 4th, ...
    device: str = "cpu"  # torch device of the model: "cpu", "cuda", "auto"

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise RdferError(f"unknown face detector {self.detector!r}; choose one of {', '.join(DETECTORS)}")
        if self.detect_every < 1:
            raise RdferError(f"detect_every must be at least 1, got {self.detect_every}")
        if not (math.isfinite(self.margin) and 0 <= self.margin <= 10):
            raise RdferError(f"--margin must be a number from 0 to 10 (0.2 = a 20% wider box), got {self.margin}")
        windows = (self.key_window_s, self.clip_window_s, self.clip_hop_s)
        if not all(math.isfinite(w) and w > 0 for w in windows):
            raise RdferError(f"window lengths and hops must be positive numbers, got {windows}")


@dataclass
class VideoPrediction:
    """The record of one video; `to_dict()` gives the JSON written by `rdfer predict`.

    probabilities: class -> probability for the whole video (None unless status ok).
    warning: something the user should know about an ok result (e.g. only part of the file decoded).
    agreement: None when fewer than NUM_CLIPS frames show a face (the clips would share frames).
    key_expression: {"start_s", "end_s"} in seconds of the input video.
    timeline: one entry per decoded frame, {"time_s", "label", "probabilities", "box"};
        label/probabilities/box are None on frames without a face; box is
        [x0, y0, x1, y1] in pixels of the upright frame.
    thumbnails: (time_s, uint8 RGB face crop) samples for plots; not part of to_dict().
    """

    video: str
    fps: float | None
    num_frames: int
    frames_with_face: int
    status: str
    error: str | None
    model: str
    warning: str | None = None
    label: str | None = None
    probabilities: dict[str, float] | None = None
    agreement: float | None = None
    key_expression: dict[str, float] | None = None
    timeline: list[dict] = field(default_factory=list)
    thumbnails: list = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "thumbnails"}


class _Decimator:
    """Keeps every `stride`-th item pushed, doubling the stride whenever `capacity` is exceeded.

    Holds at most `capacity` items spread evenly over everything pushed, however long the video.
    """

    def __init__(self, capacity: int):
        self.capacity, self.stride, self.count, self.items = capacity, 1, 0, []

    def push(self, item) -> None:
        if self.count % self.stride == 0:
            self.items.append(item)
            if len(self.items) > self.capacity:
                self.items = self.items[::2]
                self.stride *= 2
        self.count += 1


def _class_dict(classes, probs: np.ndarray, digits: int | None = None) -> dict[str, float]:
    return {c: (round(float(p), digits) if digits else float(p)) for c, p in zip(classes, probs)}


def clip_agreement(clip_probs: np.ndarray) -> float:
    """The paper's agreement of one video: share of its clip predictions equal to the most common one.

    clip_probs: (n1, C) probabilities (or logits) of the n1 clips.
    """
    from rdfer.losses import agreement
    import torch

    return float(agreement(torch.from_numpy(np.asarray(clip_probs, np.float32))[None])[0])


def nearest(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of increasing `sorted_values` (K,) for each of `queries` (N,)."""
    right = np.clip(np.searchsorted(sorted_values, queries), 1, max(len(sorted_values) - 1, 1))
    left = right - 1
    if len(sorted_values) == 1:
        return np.zeros(len(queries), np.int64)
    return np.where(np.abs(queries - sorted_values[left]) <= np.abs(sorted_values[right] - queries), left, right)


def equal_chunks(length: int, parts: int = NUM_CLIPS) -> list[slice]:
    """`parts` contiguous, non-empty slices covering range(length) as evenly as possible.

    With fewer items than parts, items are shared by neighbouring chunks.
    """
    starts = [min(k * length // parts, length - 1) for k in range(parts)]
    return [slice(s, max((k + 1) * length // parts, s + 1)) for k, s in enumerate(starts)]


def best_window(times: np.ndarray, scores: np.ndarray, window_s: float) -> tuple[int, int]:
    """Indices [i, j] of the samples in the `window_s`-second window with the highest mean score.

    Windows [t_i, t_i + window_s) start at every sample that leaves a whole window
    before the last sample (a window cut short by the end would let one lucky frame
    win); a track shorter than `window_s` is one window.

    times: (N,) increasing seconds; scores: (N,).
    """
    starts = np.flatnonzero(times + window_s <= times[-1] + 1e-9)
    if len(starts) == 0:
        return 0, len(times) - 1
    ends = np.searchsorted(times, times[starts] + window_s, side="left")  # exclusive
    sums = np.concatenate([[0.0], np.cumsum(scores)])
    means = (sums[ends] - sums[starts]) / (ends - starts)
    best = int(np.argmax(means))
    return int(starts[best]), int(ends[best]) - 1


def _frame_model_summary(predictor, face_times: np.ndarray, probs: np.ndarray, fps: float,
                         options: PredictOptions) -> dict:
    """Video-level fields for the per-frame default model. probs: (F, C) of the F face frames."""
    mean = probs.mean(axis=0)
    label = int(mean.argmax())
    clip_probs = np.stack([probs[s].mean(axis=0) for s in equal_chunks(len(probs))])  # (4, C)
    i, j = best_window(face_times, probs[:, label], options.key_window_s)
    return {
        "label": predictor.classes[label],
        "probabilities": _class_dict(predictor.classes, mean),
        "agreement": clip_agreement(clip_probs) if len(probs) >= NUM_CLIPS else None,
        "key_expression": {"start_s": float(face_times[i]), "end_s": float(face_times[j] + 1.0 / fps)},
    }


def _dense_window_seconds(mu: float, delta: float, num_dense: int, num_resampled: int,
                          dense_times: np.ndarray) -> tuple[float, float]:
    """Seconds spanned by the re-sampled positions p_k = T * mu + (k - (n-1)/2) * delta (docs/method.md).

    The window is shifted (not clipped) into [0, T - 1], as the model does; the
    fractional first and last positions are mapped to times by linear
    interpolation between the timestamps of the dense frames.
    """
    half = (num_resampled - 1) / 2 * delta
    first, last = num_dense * mu - half, num_dense * mu + half
    shift = max(0.0, -first) - max(0.0, last - (num_dense - 1))
    first, last = max(first + shift, 0.0), min(last + shift, num_dense - 1.0)
    positions = np.arange(num_dense)
    return float(np.interp(first, positions, dense_times)), float(np.interp(last, positions, dense_times))


def _clip_model_summary(predictor, face_times: np.ndarray, crops: np.ndarray, fps: float,
                        options: PredictOptions) -> tuple[dict, np.ndarray]:
    """Video-level fields and per-face-frame probabilities (F, C) for a checkpoint's clip model.

    face_times: (F,) seconds; crops: uint8 (F, S, S, 3) RGB.
    """
    from rdfer.data.sampling import sample_indices

    T = predictor.num_frames
    whole = sample_indices(len(crops), T, train=False)  # (T,) segment centres over the face track
    out = predictor.predict_clips(crops[whole][None])  # (1, T, S, S, 3)
    probs = out["probabilities"][0]
    label = int(probs.argmax())

    # Sliding windows for the timeline: centres every hop over the face track.
    centres = np.arange(face_times[0], face_times[-1] + 1e-9, options.clip_hop_s)
    windows, kept = [], []
    for centre in centres:
        inside = np.flatnonzero(np.abs(face_times - centre) <= options.clip_window_s / 2)
        if len(inside):
            windows.append(inside[sample_indices(len(inside), T, train=False)])
            kept.append(centre)
    kept = np.asarray(kept)
    window_probs = predictor.predict_clips(crops[np.stack(windows)])["probabilities"]  # (W, C)

    if out["mu"] is not None:
        config = predictor.model.config
        resampled = getattr(config, "n1", 4) * getattr(config, "n2", 4)
        start, end = _dense_window_seconds(float(out["mu"][0]), float(out["delta"][0]), T, resampled,
                                           face_times[whole])
    else:
        best = int(window_probs[:, label].argmax())
        start = max(float(kept[best]) - options.clip_window_s / 2, float(face_times[0]))
        end = min(float(kept[best]) + options.clip_window_s / 2, float(face_times[-1]))
    summary = {
        "label": predictor.classes[label],
        "probabilities": _class_dict(predictor.classes, probs),
        "agreement": clip_agreement(out["clip_probabilities"][0]) if len(crops) >= NUM_CLIPS else None,
        "key_expression": {"start_s": start, "end_s": end + 1.0 / fps},
    }
    return summary, window_probs[nearest(kept, face_times)]


def _face_crops(frames, detector, size: int, options: PredictOptions):
    """Yield (time_s, box or None, uint8 RGB (size, size, 3) crop or None) for every frame."""
    for frame, box in track_faces(frames, detector, options.detect_every):
        crop = None if box is None else cv2.cvtColor(square_crop(frame.image, box, size, options.margin), cv2.COLOR_BGR2RGB)
        yield frame.time_s, box, crop


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(items, size: int = 128, name: str = "rdfer-prefetch"):
    """Iterate over `items` computed ahead in a background thread (at most `size` waiting).

    Exceptions raised while producing are re-raised here; leaving the loop early
    stops the producer and closes `items` (so a chain of prefetches stops as a whole).
    """
    ready, stop, end = queue.Queue(size), threading.Event(), object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def produce():
        iterator = iter(items)
        try:
            for item in iterator:
                if not put(item):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failure(error))
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        put(end)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is end:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


def partial_warning(decoded: int, announced: int, seconds: float) -> str | None:
    """A warning when far fewer frames decoded than the container announces (a cut-off or damaged file).

    The announced count is an estimate (a few frames off for some files), so a
    shortfall of up to 5% (at least 2 frames) passes.
    """
    if announced <= 0 or announced - decoded <= max(2, 0.05 * announced):
        return None
    return (f"only {decoded} of the {announced} frames the file announces could be decoded (the file is cut off "
            f"or damaged); the prediction covers the first {seconds:.1f} s")


class Cancelled(Exception):
    """Raised by `predict_video` when its `cancel` event is set (the caller is stopping)."""


def predict_video(path, checkpoint=None, *, options: PredictOptions | None = None, predictor=None,
                  face_detector=None, cancel: threading.Event | None = None, **overrides) -> VideoPrediction:
    """Predict the facial expression in one video file.

    Args:
        path: the video file (mp4, mov, avi, webm, ...).
        checkpoint: a checkpoint written by `rdfer train`; None uses the built-in
            FER2013 mini-Xception per frame (see predictors.py).
        options: PredictOptions; `overrides` replace single fields
            (e.g. `detector="mtcnn"`, `detect_every=3`).
        predictor, face_detector: already-loaded model and face detector, to reuse
            across many videos (see `load_predictor`, `make_detector`).
        cancel: an event another thread may set to stop this call early (it raises Cancelled).

    Returns:
        VideoPrediction; status "error" (with `error` saying why) when the file
        cannot be decoded, "no_face" when no frame shows a face.
    Raises:
        RdferError: bad checkpoint or options (problems of the whole run, not of the file).
    """
    options = dataclasses.replace(options or PredictOptions(), **overrides)
    predictor = predictor or load_predictor(checkpoint, options.device)
    detector = face_detector or make_detector(options.detector)
    video = str(path)

    def failed(message: str, num_frames: int = 0, fps=None) -> VideoPrediction:
        return VideoPrediction(video, fps, num_frames, 0, "error", message, predictor.description)

    times, boxes, face_times, thumbs = [], [], [], _Decimator(MAX_THUMBNAILS)
    frame_probs, batch = [], []  # default model: probabilities computed batch by batch
    crops = _Decimator(options.max_crops)  # checkpoint: (time_s, crop) kept for clip sampling
    try:
        with VideoReader(path) as reader:
            # Three stages in three threads: decoding, face finding and cropping, the model
            # (OpenCV and torch release the GIL): on two or more cores they overlap.
            faces = _face_crops(prefetch(reader, name="rdfer-decode"), detector, predictor.crop_size, options)
            for time_s, box, crop in prefetch(faces, name="rdfer-faces"):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(video)
                times.append(time_s)
                boxes.append(box)
                if box is None:
                    continue
                face_times.append(time_s)
                thumbs.push((time_s, crop if crop.shape[0] == THUMBNAIL_SIZE else
                             cv2.resize(crop, (THUMBNAIL_SIZE, THUMBNAIL_SIZE), interpolation=cv2.INTER_AREA)))
                if predictor.kind == "frame":
                    batch.append(crop)
                    if len(batch) == predictor.batch_size:
                        frame_probs.append(predictor.probabilities(np.stack(batch)))
                        batch = []
                else:
                    crops.push((time_s, crop))
    except RdferError as error:
        return failed(str(error))
    except cv2.error as error:  # a decoder failure inside OpenCV
        return failed(f"{video}: OpenCV failed while decoding ({error}); the file may be damaged", len(times))
    if not times:
        return failed(f"{video}: no frame could be decoded (zero-length or damaged video)")

    fps = average_fps(times, reader.container_fps)
    record = VideoPrediction(video, fps, len(times), len(face_times), "ok", None, predictor.description,
                             warning=partial_warning(len(times), reader.frame_count_hint, times[-1] + 1.0 / fps),
                             thumbnails=thumbs.items)
    if not face_times:
        record.status = "no_face"
        record.error = f"no face found in any of the {len(times)} frames"
        record.timeline = [{"time_s": t, "label": None, "probabilities": None, "box": None} for t in times]
        return record

    if predictor.kind == "frame":
        if batch:
            frame_probs.append(predictor.probabilities(np.stack(batch)))
        face_probs = np.concatenate(frame_probs)  # (F, C)
        summary = _frame_model_summary(predictor, np.asarray(face_times), face_probs, fps, options)
    else:
        kept_times = np.asarray([t for t, _ in crops.items])
        summary, kept_probs = _clip_model_summary(predictor, kept_times, np.stack([c for _, c in crops.items]), fps, options)
        # Face frames dropped by the decimator take the prediction of the nearest kept one.
        face_probs = kept_probs[nearest(kept_times, np.asarray(face_times))]
    for key, value in summary.items():
        setattr(record, key, value)
    record.key_expression["end_s"] = min(record.key_expression["end_s"], times[-1] + 1.0 / fps)

    classes, face_iter = predictor.classes, iter(face_probs)
    for t, box in zip(times, boxes):
        if box is None:
            record.timeline.append({"time_s": t, "label": None, "probabilities": None, "box": None})
        else:
            p = next(face_iter)
            record.timeline.append({"time_s": t, "label": classes[int(p.argmax())],
                                    "probabilities": _class_dict(classes, p, 5),
                                    "box": [int(round(v)) for v in box]})
    return record
