"""`predict_video`: one video (or image) in, one record with a track per face out.

    record = rdfer.predict_video("clip.mp4")                      # built-in default model
    record = rdfer.predict_video("clip.mp4", checkpoint="RUN/checkpoints/best.pt", detector="mtcnn")
    record.to_dict()   # the JSON; record.to_frame(): DataFrame; record.plot(): Figure (records.py)

Steps: decode (video.py) -> shot cuts and every face as a track (tracks.py:
detector on keyframes, interpolated between, tracks end at cuts) -> square
crops -> model (predictors.py) -> per track: aggregation over time, smoothing
of its timeline, trust (trust.py):

- default model (per frame): track probabilities = mean of its frames'
  probabilities; agreement = the paper's measure over 4 equal clips of the
  track's frames (each clip's mean probabilities vote); key expression = the
  `key_window_s` window with the highest mean probability of the track's
  label; timeline = each frame's own prediction, smoothed by a centred moving
  average over `smooth_s` seconds (raw values kept beside).
- checkpoint (clip model): the model runs once on `num_frames` frames of the
  track sampled uniformly (segment centres, as at evaluation), giving the
  track's probabilities, the 4 clip logits (agreement) and mu/delta (key
  expression: the re-sampled window p_k = T * mu + (k - 7.5) * delta, mapped
  back through the sampling to the timestamps of the source frames). The
  timeline comes from a sliding window of the model (`clip_window_s` long,
  every `clip_hop_s`); each frame carries the prediction of the window whose
  centre is nearest. A model without re-sampling (no mu) reports its most
  confident window as the key expression.

A file that cannot be read gives status "error", one without any face
"no_face" (its error says how large faces must be to be found); neither
raises. A bad checkpoint or option raises RdferError.
"""

import dataclasses
import math
import queue
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from rdfer.errors import RdferError
from rdfer.inference.faces import DETECTORS, MIN_FACE, check_min_face, make_detector, square_crop
from rdfer.inference.headline import summarise
from rdfer.inference.predictors import RUNTIMES, load_predictor
from rdfer.inference.records import TrackPrediction, VideoPrediction
from rdfer.inference.tracks import FaceTracker
from rdfer.inference.trust import sharpness, trust_features, trust_score
from rdfer.inference.video import average_fps, open_media

STATUSES = ("ok", "no_face", "error")
FACES = ("all", "main")
NUM_CLIPS = 4  # clips of the agreement measure (n1 in the paper)
THUMBNAIL_SIZE = 64
MAX_THUMBNAILS = 48
SHARPNESS_EVERY = 5  # the sharpness of a track is the median over every 5th of its crops


@dataclass(frozen=True)
class PredictOptions:
    """How `predict_video` finds faces and aggregates predictions."""

    detector: str = "mtcnn"  # face detector: "mtcnn" (default: finds turned faces, tracked cheaply) or "haar"
    detect_every: int = 5  # run the detector on every k-th frame; boxes in between are interpolated
    min_face: float = MIN_FACE  # smallest face searched, in pixels of the frame (longer box side)
    faces: str = "all"  # "all": every face as a track; "main": follow one face, report the longest track
    margin: float = 0.2  # square crop side = longer box side * (1 + margin)
    smooth_s: float = 0.5  # timeline smoothing: centred moving average over this many seconds; 0 = off
    key_window_s: float = 1.0  # default model: length of the most confident window (key expression)
    clip_window_s: float = 2.0  # checkpoint: length of each sliding window of the timeline
    clip_hop_s: float = 0.5  # checkpoint: step between sliding windows
    max_crops: int = 2048  # checkpoint: face crops kept per track; longer tracks keep every 2nd, 4th, ...
    device: str = "auto"  # torch device of the model: "auto" (CUDA when available, else CPU), "cpu", "cuda"
    # What runs the built-in model and MTCNN: "auto" (onnxruntime on the CPU, no torch imported; the built-in
    # model in PyTorch on a CUDA `device`) or "torch" (both in PyTorch, the reference; the same predictions)
    runtime: str = "auto"

    def __post_init__(self):
        if self.runtime not in RUNTIMES:
            raise RdferError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.detector not in DETECTORS:
            raise RdferError(f"unknown face detector {self.detector!r}; choose one of {', '.join(DETECTORS)}")
        if self.detect_every < 1:
            raise RdferError(f"detect_every must be at least 1, got {self.detect_every}")
        if self.faces not in FACES:
            raise RdferError(f"--faces must be one of {', '.join(FACES)}, got {self.faces!r}")
        check_min_face(self.min_face)
        if not (math.isfinite(self.margin) and 0 <= self.margin <= 10):
            raise RdferError(f"--margin must be a number from 0 to 10 (0.2 = a 20% wider box), got {self.margin}")
        if not (math.isfinite(self.smooth_s) and 0 <= self.smooth_s <= 60):
            raise RdferError(f"--smooth must be a number of seconds from 0 (off) to 60, got {self.smooth_s}")
        windows = (self.key_window_s, self.clip_window_s, self.clip_hop_s)
        if not all(math.isfinite(w) and w > 0 for w in windows):
            raise RdferError(f"window lengths and hops must be positive numbers, got {windows}")


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
    votes = np.asarray(clip_probs).argmax(axis=-1)  # as rdfer.losses.agreement counts them, in numpy (no torch)
    return float(np.bincount(votes).max() / len(votes))


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

    The positions are the model's own (`resample_positions`: shifted, not clipped,
    into [0, T - 1]); the first and last are mapped to times by linear
    interpolation between the timestamps of the dense frames.
    """
    import torch

    from rdfer.models.detector import resample_positions

    positions = resample_positions(torch.tensor([float(mu)], dtype=torch.float64),
                                   torch.tensor([float(delta)], dtype=torch.float64), num_dense, num_resampled)[0]
    first, last = float(positions[0]), float(positions[-1])
    frames = np.arange(num_dense)
    return float(np.interp(first, frames, dense_times)), float(np.interp(last, frames, dense_times))


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
        start, end = _dense_window_seconds(float(out["mu"][0]), float(out["delta"][0]), T, predictor.resampled,
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


def partial_warning(decoded: int, announced: int, seconds: float, announced_fps: float | None = None) -> str | None:
    """A warning when far fewer frames decoded than the container announces (a cut-off or damaged file).

    The announced count is an estimate (a few frames off for some files), so a
    shortfall of up to 5% (at least 2 frames) passes. With the container's frame
    rate, the count is a duration times that rate: when the decoded frames' time
    span (`seconds`) covers 95% of that duration the file is whole and only its
    frame rate varies (variable-frame-rate Matroska, phone videos), so no warning.
    """
    if announced <= 0 or announced - decoded <= max(2, 0.05 * announced):
        return None
    if announced_fps and seconds >= 0.95 * announced / announced_fps:
        return None
    return (f"only {decoded} of the {announced} frames the file announces could be decoded (the file is cut off "
            f"or damaged); the prediction covers the first {seconds:.1f} s")


class Cancelled(Exception):
    """Raised by `predict_video` when its `cancel` event is set (the caller is stopping)."""


PROGRESS_EVERY = 10  # predict_video reports its progress every this many frames (and at the end)


@dataclass(frozen=True)
class FrameProgress:
    """Progress inside one video, as `predict_video` hands it to its `progress` callback.

    done: frames decoded and searched so far; total: the frames the file announces
    (an estimate; None when unknown); elapsed_s: seconds since the video was opened.
    """

    video: str
    done: int
    total: int | None
    elapsed_s: float

    @property
    def left_s(self) -> float | None:
        """Seconds left at the rate so far (None while unknown)."""
        if not self.total or not self.done:
            return None
        return max(self.total - self.done, 0) * self.elapsed_s / self.done

    def to_dict(self) -> dict:
        return {"video": self.video, "done": self.done, "total": self.total, "elapsed_s": round(self.elapsed_s, 2),
                "left_s": None if self.left_s is None else round(self.left_s, 1)}

    def text(self) -> str:
        """'120/472 frames, about 5 s left'."""
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        return f"{count} frames" + ("" if self.left_s is None else f", about {self.left_s:.0f} s left")




def smooth(probs: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of (N, C) rows over `window` rows (shorter at the ends), renormalised."""
    if window <= 1 or len(probs) < 2:
        return probs
    half = window // 2
    sums = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0, dtype=np.float64)])
    idx = np.arange(len(probs))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(probs))
    out = (sums[hi] - sums[lo]) / (hi - lo)[:, None]
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


class _Track:
    """What predict_video gathers about one track while the video plays."""

    def __init__(self, tid: int, max_crops: int):
        self.id, self.frames, self.times, self.boxes, self.sharpness = tid, [], [], [], []
        self.probs = []  # default model: (b, C) pieces in frame order
        self.crops = _Decimator(max_crops)  # checkpoint: (time_s, crop) kept for clip sampling
        self.thumbs = _Decimator(MAX_THUMBNAILS)


def _shot_lengths(num_frames: int, cut_frames: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of the shots of a video of `num_frames` frames cut at `cut_frames`."""
    starts = np.array([0, *cut_frames], np.int64)
    return starts, np.diff(np.append(starts, num_frames))


def _faces(frames, tracker: FaceTracker, size: int, margin: float):
    """Yield (frame index, time_s, [(track id, box, uint8 RGB crop (size, size, 3))]) for every frame."""
    for frame, faces, _ in tracker(frames):
        yield frame.index, frame.time_s, [
            (tid, box, cv2.cvtColor(square_crop(frame.image, box, size, margin), cv2.COLOR_BGR2RGB))
            for tid, box in faces]


def no_face_message(num_frames: int, width: int, height: int, options: PredictOptions) -> str:
    """Why nothing was found, and what to change: faces must be at least `min_face` px."""
    smallest = options.min_face
    share = 100 * smallest / max(min(width, height), 1)
    text = (f"no face found in any of the {num_frames} frame(s); faces are searched from {smallest:g} px "
            f"(longer side of the face box; {share:.1f}% of the {min(width, height)} px short side of "
            f"this {width}x{height} footage) up")
    if smallest > 20:
        text += f"; if the faces are smaller, lower --min-face (e.g. --min-face {max(smallest / 2, 20):g}; slower)"
    if options.detector == "haar":
        text += "; --detector mtcnn also finds faces turned aside"
    return text


def predict_video(path, checkpoint=None, *, options: PredictOptions | None = None, predictor=None,
                  face_detector=None, cancel: threading.Event | None = None, progress=None,
                  **overrides) -> VideoPrediction:
    """Predict the facial expression of every face in one video or image file.

    Args:
        path: the video (mp4, mov, avi, webm, ...) or image (jpg, png, ...) file.
        checkpoint: a checkpoint written by `rdfer train`; None uses the built-in
            FER2013 mini-Xception per frame (see predictors.py).
        options: PredictOptions; `overrides` replace single fields
            (e.g. `detector="haar"`, `min_face=24`, `faces="main"`).
        predictor, face_detector: already-loaded model and face detector, to reuse
            across many videos (see `load_predictor`, `make_detector`; the detector's
            min_face then applies).
        cancel: an event another thread may set to stop this call early (it raises Cancelled).
        progress: called with a FrameProgress every PROGRESS_EVERY frames and after the last one.

    Returns:
        VideoPrediction with a TrackPrediction per face (the main one first);
        status "error" (with `error` saying why) when the file cannot be
        decoded, "no_face" when no frame shows a face.
    Raises:
        RdferError: bad checkpoint or options (problems of the whole run, not of the file).
    """
    options = dataclasses.replace(options or PredictOptions(), **overrides)
    predictor = predictor or load_predictor(checkpoint, options.device, runtime=options.runtime)
    detector = face_detector or make_detector(options.detector, options.min_face, options.runtime)
    video = str(path)

    def failed(message: str, num_frames: int = 0, fps=None) -> VideoPrediction:
        return VideoPrediction(video, fps, num_frames, 0, "error", message, predictor.description)

    tracker = FaceTracker(detector, options.detect_every, single=options.faces == "main")
    times, counts, tracks = [], [], {}
    batch, owners = [], []  # default model: crops waiting for the model, and their tracks
    size = (0, 0)

    def run_batch():
        probs = predictor.probabilities(np.stack(batch))
        start = 0
        while start < len(owners):  # consecutive crops of one track go in one piece
            end = start
            while end < len(owners) and owners[end] is owners[start]:
                end += 1
            owners[start].probs.append(probs[start:end])
            start = end
        batch.clear()
        owners.clear()

    opened = time.perf_counter()
    try:
        with open_media(path) as reader:
            # Three stages in three threads: decoding, face finding and cropping, the model
            # (OpenCV and torch release the GIL): on two or more cores they overlap.
            stage = _faces(prefetch(reader, name="rdfer-decode"), tracker, predictor.crop_size, options.margin)
            for index, time_s, faces in prefetch(stage, name="rdfer-faces"):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(video)
                if progress is not None and len(times) % PROGRESS_EVERY == 0:
                    progress(FrameProgress(video, len(times), reader.frame_count_hint or None,
                                           time.perf_counter() - opened))
                times.append(time_s)
                counts.append(len(faces))
                for tid, box, crop in faces:
                    track = tracks.get(tid) or tracks.setdefault(tid, _Track(tid, options.max_crops))
                    track.frames.append(index)
                    track.times.append(time_s)
                    track.boxes.append(box)
                    thumb = crop if crop.shape[0] == THUMBNAIL_SIZE else cv2.resize(
                        crop, (THUMBNAIL_SIZE, THUMBNAIL_SIZE), interpolation=cv2.INTER_AREA)
                    if len(track.frames) % SHARPNESS_EVERY == 1:  # a sample is enough for a median
                        track.sharpness.append(sharpness(cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY)))
                    track.thumbs.push((time_s, thumb))
                    if predictor.kind == "frame":
                        batch.append(crop)
                        owners.append(track)
                        if len(batch) == predictor.batch_size:
                            run_batch()
                    else:
                        track.crops.push((time_s, crop))
            size = reader.frame_size
    except RdferError as error:
        return failed(str(error))
    except cv2.error as error:  # a decoder failure inside OpenCV
        return failed(f"{video}: OpenCV failed while decoding ({error}); the file may be damaged", len(times))
    if not times:
        return failed(f"{video}: no frame could be decoded (zero-length or damaged video)")
    if progress is not None:  # the end: the frames decoded are the total
        progress(FrameProgress(video, len(times), len(times), time.perf_counter() - opened))
    if batch:
        run_batch()

    fps = average_fps(times, reader.container_fps)
    kept = sorted((t for t in tracks.values() if tracker.keep(t.id)), key=lambda t: t.frames[0])
    for number, track in enumerate(kept, 1):  # ids 1, 2, ... in order of appearance, false alarms left out
        track.id = number
    record = VideoPrediction(video, fps, len(times), 0, "ok", None, predictor.description, media=reader.media,
                             warning=partial_warning(len(times), reader.frame_count_hint, times[-1] + 1.0 / fps,
                                                     reader.container_fps),
                             cuts=[float(times[i]) for i in tracker.cut_frames])
    frames_with_face = np.zeros(len(times), bool)
    for t in kept:
        frames_with_face[t.frames] = True
    record.frames_with_face = int(frames_with_face.sum())
    if not kept:
        record.status = "no_face"
        record.error = no_face_message(len(times), *size, options)
        record.timeline = [{"time_s": t, "label": None, "probabilities": None, "box": None} for t in times]
        return record

    starts, lengths = _shot_lengths(len(times), tracker.cut_frames)
    end_s = times[-1] + 1.0 / fps
    results = [_track_result(t, predictor, fps, end_s, starts, lengths, options) for t in kept]
    results.sort(key=lambda r: (-r.num_frames, -r.face_size_px, r.id))  # longest first (photo: largest face)
    if options.faces == "main":
        results = results[:1]
    record.tracks = results
    record.summary = summarise(results, fps, len(times), record.cuts)
    main = record.main
    if main is None:  # no face dominates: the headline is the group line, no single label
        record.timeline = [{"time_s": t, "label": None, "probabilities": None, "box": None} for t in times]
        return record
    for name in ("label", "probability", "trust", "probabilities", "agreement", "key_expression"):
        setattr(record, name, getattr(main, name))
    by_frame = {e["frame"]: e for e in main.timeline}
    record.timeline = [{"time_s": t, "label": by_frame[i]["label"], "probabilities": by_frame[i]["probabilities"],
                        "box": by_frame[i]["box"]} if i in by_frame else
                       {"time_s": t, "label": None, "probabilities": None, "box": None}
                       for i, t in enumerate(times)]
    return record


def _track_result(track: _Track, predictor, fps: float, end_s: float, shot_starts: np.ndarray,
                  shot_lengths: np.ndarray, options: PredictOptions) -> TrackPrediction:
    """Label, probabilities, agreement, key expression, smoothed timeline and trust of one track."""
    face_times = np.asarray(track.times)
    if predictor.kind == "frame":
        raw = np.concatenate(track.probs)  # (F, C)
        summary = _frame_model_summary(predictor, face_times, raw, fps, options)
    else:
        kept_times = np.asarray([t for t, _ in track.crops.items])
        summary, kept_probs = _clip_model_summary(predictor, kept_times, np.stack([c for _, c in track.crops.items]),
                                                  fps, options)
        raw = kept_probs[nearest(kept_times, face_times)]  # frames dropped by the decimator: the nearest kept one
    smoothed = smooth(raw, int(round(options.smooth_s * fps)) if options.smooth_s > 0 else 1)
    classes = predictor.classes
    probs = np.array([summary["probabilities"][c] for c in classes])
    boxes = np.asarray(track.boxes)
    side = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    shot = int(np.searchsorted(shot_starts, track.frames[0], side="right") - 1)
    features = trust_features(probs, summary["agreement"], len(track.frames) / shot_lengths[shot], side,
                              float(np.median(track.sharpness)))
    key = dict(summary["key_expression"], end_s=min(summary["key_expression"]["end_s"], end_s))
    timeline = [{"frame": int(i), "time_s": float(t), "box": [int(round(v)) for v in box],
                 "label": classes[int(s.argmax())], "probabilities": _class_dict(classes, s, 5),
                 "raw_label": classes[int(r.argmax())], "raw_probabilities": _class_dict(classes, r, 5)}
                for i, t, box, s, r in zip(track.frames, track.times, track.boxes, smoothed, raw)]
    return TrackPrediction(
        id=track.id, label=summary["label"], probability=float(probs.max()), trust=trust_score(features),
        probabilities=summary["probabilities"], agreement=summary["agreement"], key_expression=key,
        start_s=float(face_times[0]), end_s=float(min(face_times[-1] + 1.0 / fps, end_s)),
        num_frames=len(track.frames), face_size_px=side, trust_features=features, timeline=timeline,
        thumbnails=track.thumbs.items)
