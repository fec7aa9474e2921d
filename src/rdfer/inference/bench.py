"""`rdfer bench predict`: frames per second of each stage of `rdfer predict` on one video."""

import json
import subprocess
import time

import cv2
import numpy as np

from rdfer.errors import RdferError

from rdfer.inference.faces import make_detector
from rdfer.inference.predict import PredictOptions, _clip_model_summary, _faces, predict_video
from rdfer.inference.predictors import load_predictor
from rdfer.inference.tracks import FaceTracker
from rdfer.inference.video import average_fps, open_media


def measure_startup(video, startup_command, checkpoint=None, options: PredictOptions | None = None,
                    repeat: int = 2, spec=None) -> dict | None:
    """Seconds from starting a fresh `rdfer predict` process to its first frame (the fastest of `repeat`).

    startup_command(video, flags) gives the child's command line (the CLI's launcher,
    see inference/startup.py). Returns the breakdown printed by `startup.probe` (python,
    imports, load, first_frame, total), or None when the child process failed.
    """
    options = options or PredictOptions()
    flags = ["--detector", options.detector, "--device", options.device, "--min-face", str(options.min_face),
             "--runtime", options.runtime]
    flags += ["--model", str(checkpoint)] if checkpoint else []
    flags += ["--model-spec", str(spec)] if spec else []
    best = None
    for _ in range(repeat):
        done = subprocess.run(startup_command(video, flags), capture_output=True, text=True)
        if done.returncode != 0:
            return None
        result = json.loads(done.stdout.strip().splitlines()[-1])
        best = result if best is None or result["total_s"] < best["total_s"] else best
    return best


def bench_predict(video, checkpoint=None, options: PredictOptions | None = None, repeat: int = 2,
                  startup_command=None, spec=None) -> dict:
    """Time decoding, face finding, the model and the whole pipeline on `video`.

    Each stage runs `repeat` times on the same input and the fastest run counts
    (the machine may be shared). Stages: decode (frames read and rotated), faces
    (detector every k frames, tracking and cropping, on decoded frames in
    memory, every face), model (on the face crops; a clip model's rate is video frames per
    second of its forward passes), end_to_end (`predict_video`, everything).
    Rates are given per second of wall time and per second of CPU time of this
    process (all its threads; the wall rate an idle single core would give).

    Returns:
        dict with "frames", "video_fps", "width", "height", "detector", "model",
        "<stage>_fps" and "<stage>_cpu_fps" for each stage, "realtime"
        (end-to-end fps / video fps) and "realtime_cpu" (the same per CPU second);
        "startup": `measure_startup`'s seconds (None when `startup_command` is None: not measured).
    """
    options = options or PredictOptions()
    predictor = load_predictor(checkpoint, options.device, spec=spec, runtime=options.runtime)
    detector = make_detector(options.detector, options.min_face, options.runtime)

    cpu = {}

    def best_of(fn, stage):
        # Wall time of the fastest run, and its CPU time (all threads of this process):
        # on a machine shared with other work the CPU time shows what an idle one would do.
        best = (float("inf"), float("inf"))
        for _ in range(repeat):
            wall, used = time.perf_counter(), time.process_time()
            result = fn()
            best = min(best, (time.perf_counter() - wall, time.process_time() - used))
        cpu[stage] = best[1]
        return best[0], result

    decode_s, frames = best_of(lambda: list(open_media(video)), "decode")  # a photo: one frame
    if not frames:
        raise RdferError(f"{video}: no frame could be decoded; nothing to benchmark")

    def faces():
        tracker = FaceTracker(detector, options.detect_every, single=options.faces == "main")
        return [(t, crop) for _, t, found in _faces(frames, tracker, predictor.crop_size, options.margin)
                for _, _, crop in found]

    faces_s, found = best_of(faces, "faces")
    times = np.array([t for t, _ in found])  # a clip model below sees the crops of all faces as one track
    crops = np.ascontiguousarray(np.stack([c for _, c in found])) if found else None
    fps = average_fps([f.time_s for f in frames], None)
    if crops is None:
        model_s = cpu["model"] = float("nan")
    elif predictor.kind == "frame":
        model_s, _ = best_of(lambda: predictor.probabilities(crops), "model")
    else:
        model_s, _ = best_of(lambda: _clip_model_summary(predictor, times, crops, fps, options), "model")
    e2e_s, record = best_of(lambda: predict_video(video, options=options, predictor=predictor, face_detector=detector),
                            "end_to_end")
    n = len(frames)
    return {
        "frames": n, "video_fps": fps, "width": frames[0].image.shape[1], "height": frames[0].image.shape[0],
        "frames_with_face": record.frames_with_face, "face_crops": len(found), "tracks": len(record.tracks), "detector": options.detector, "detect_every": options.detect_every,
        "model": predictor.description, "decode_fps": n / decode_s, "faces_fps": n / faces_s,
        "model_fps": n / model_s, "end_to_end_fps": n / e2e_s, "realtime": n / e2e_s / fps,
        **{f"{stage}_cpu_fps": n / seconds for stage, seconds in cpu.items()},
        "realtime_cpu": n / cpu["end_to_end"] / fps, "threads": cv2.getNumThreads(),
        "status": record.status, "media": record.media,
        "startup": measure_startup(video, startup_command, checkpoint, options, repeat, spec) if startup_command else None,
    }
