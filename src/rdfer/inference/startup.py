"""How long `rdfer predict` takes from the command to its first frame (run by `rdfer bench-predict`).

    python -c "$(rdfer.inference.startup.LAUNCHER)" SPAWN_TIME VIDEO [predict options]

(`command(video, flags)` builds it) does what `rdfer predict VIDEO` does up to the face search on the first frame
(parse the command, import, load the model and the detector, decode and
search one frame) and prints one JSON line of seconds: python (interpreter
start, from SPAWN_TIME, the parent's time.time() when it started this
process), imports, load (model and detector), first_frame, total.
"""

import json
import sys
import time

# Stamps the time before anything of rdfer (or torch, which rdfer.inference imports) is imported.
LAUNCHER = "import sys, time; started = time.time(); from rdfer.inference.startup import main; main(sys.argv[1:], started)"


def command(video, flags) -> list[str]:
    """The child process's command line; its start time is stamped when this is called."""
    return [sys.executable, "-c", LAUNCHER, repr(time.time()), str(video), *flags]


def main(argv, started: float) -> None:
    spawned, rest = float(argv[0]), argv[1:]
    from rdfer.cli import build_parser

    args = build_parser().parse_args(["predict", *rest])
    from rdfer.inference.runner import predict_files  # noqa: F401  (what `rdfer predict` imports)
    imported = time.time()
    import cv2
    import torch

    from rdfer.inference import load_predictor, make_detector
    from rdfer.inference.video import VideoReader

    threads = args.threads or (1 if args.checkpoint is None else None)  # as `rdfer predict` sets them
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)

    load_predictor(args.checkpoint, args.device)
    detector = make_detector(args.detector)
    loaded = time.time()
    with VideoReader(args.inputs[0]) as reader:
        detector.detect(next(iter(reader)).image)
    first = time.time()
    print(json.dumps({"python_s": started - spawned, "imports_s": imported - started, "load_s": loaded - imported,
                      "first_frame_s": first - loaded, "total_s": first - spawned}))

