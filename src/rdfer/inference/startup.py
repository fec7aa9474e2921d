"""How long `rdfer predict` takes from the command to its first frame (run by `rdfer bench predict`).

The command line layer starts a fresh process with `command(launcher, video,
flags)`; `launcher` is its own Python one-liner, which stamps the time, parses
the flags with the `rdfer predict` parser and calls `probe` here with what
they say (this module knows nothing of the parser: it sits below it). `probe`
does what `rdfer predict VIDEO` does up to the face search on the first frame
(import, load the model and the detector, decode and search one frame) and
prints one JSON line of seconds: python (interpreter start, from the parent's
time.time() when it started the process), imports (including the parse),
load (model and detector), first_frame, total; and the child's CPU time up to
its imports and up to its first frame (imports_cpu_s, cpu_s): on a machine
busy with other work the wall times stretch, its own CPU time much less, so
it shows what the start-up costs where nothing else runs.
"""

import json
import sys
import time


def command(launcher: str, video, flags) -> list[str]:
    """The child process's command line; its start time is stamped when this is called."""
    return [sys.executable, "-c", launcher, repr(time.time()), str(video), *flags]


def probe(video, *, spawned: float, started: float, checkpoint=None, spec=None, device: str = "cpu",
          detector: str = "mtcnn", min_face: float = 40.0, runtime: str = "auto") -> dict:
    """Import, load and search the first frame of `video` as `rdfer predict` would; print and return the seconds.

    The caller has set the threads as `rdfer predict` does."""
    from rdfer.inference.runner import predict_files  # noqa: F401  (what `rdfer predict` imports)
    imported, imported_cpu = time.time(), time.process_time()
    from rdfer.inference import load_predictor, make_detector
    from rdfer.inference.video import open_media

    load_predictor(checkpoint, device, spec=spec, runtime=runtime)
    face_detector = make_detector(detector, min_face, runtime)
    loaded = time.time()
    with open_media(video) as reader:
        face_detector.detect(next(iter(reader)).image)
    first, first_cpu = time.time(), time.process_time()
    result = {"python_s": started - spawned, "imports_s": imported - started, "load_s": loaded - imported,
              "first_frame_s": first - loaded, "total_s": first - spawned,
              "imports_cpu_s": imported_cpu, "cpu_s": first_cpu}
    print(json.dumps(result))
    return result
