"""Many videos in one run: one progress bar, a status per file, the outputs written as each finishes.

A file that cannot be decoded or shows no face gets its own status and the
run goes on; `predict_files` returns a `PredictRun` record, from which
`rdfer predict` (cli/predict.py) prints its summary and decides its exit status.

Videos are predicted `jobs` at a time in threads that share one loaded model
and face detector (decoding, detection and the model release the GIL, so
each thread keeps a core busy); their outputs are written in input order, each
as soon as its video is done, atomically and never over an existing file
(see outputs.py), so an interrupted run keeps every finished video.
"""

import dataclasses
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rdfer.errors import RdferError, WriteError
from rdfer.figures.predict import plot_timeline
from rdfer.inference.api import Predictor
from rdfer.inference.headline import faces_text
from rdfer.inference.outputs import CsvTables, OutputNames, annotate_video, claim_tables, write_json
from rdfer.inference.predict import Cancelled, PredictOptions
from rdfer.inference.probe import probe_videos
from rdfer.inference.records import VideoPrediction
from rdfer.inference.video import is_image, list_videos
from rdfer.utils.outputs import writable_folder
from rdfer.utils.progress import progress_bar
from rdfer.utils.runlock import update_lock

FORMATS = ("both", "json", "csv")


@dataclass
class PredictRun:
    """What one `predict_files` call did: a record per input, in input order, and where the outputs are.

    tables: the CSV files written (predictions.csv and frames.csv, or their renamed forms; none with
        fmt="json"); renamed: "input -> output name" where the wanted name was taken; replaced: the
        inputs predicted before into this folder, whose earlier rows (and files) the new ones replaced;
    seconds, cpu_seconds: wall-clock and CPU time of the predictions; jobs: videos at a time.
    """

    records: list[VideoPrediction]
    out_dir: Path
    tables: list[Path] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    jobs: int = 1


def default_jobs() -> int:
    """Videos predicted at once by default: one per CPU core, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


def prepare_out_dir(out_dir) -> Path:
    """Create `out_dir` if needed and check that files can be written there; RdferError (one line) if not."""
    return writable_folder(out_dir)


def _ordered(videos, predict, jobs: int):
    """predict(video, cancel) for each video, `jobs` at a time in threads, yielded in input order.

    When the consumer stops (Ctrl-C, an error) the videos in flight are cancelled
    (`cancel` is set; predict_video stops at its next frame) and the threads joined,
    so an interrupted run exits at once and cleanly.
    """
    cancel = threading.Event()
    if jobs <= 1:
        for video in videos:
            yield predict(video, cancel)
        return
    tasks, slots, stop = queue.SimpleQueue(), [queue.SimpleQueue() for _ in videos], cancel
    for index, video in enumerate(videos):
        tasks.put((index, video))

    def work():
        while not stop.is_set():
            try:
                index, video = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                slots[index].put((True, predict(video, cancel)))
            except BaseException as error:  # handed to the consumer, raised there
                slots[index].put((False, error))

    workers = [threading.Thread(target=work, name=f"rdfer-video-{k}", daemon=True) for k in range(jobs)]
    for worker in workers:
        worker.start()
    try:
        for slot in slots:
            while True:
                try:
                    ok, value = slot.get(timeout=0.2)  # a timeout keeps the wait interruptible by Ctrl-C
                    break
                except queue.Empty:
                    pass
            if not ok:
                raise value
            yield value
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def console_line(record) -> str:
    """The per-file line: status, the headline (headline.py: main face or group line), every face, cuts."""
    line = f"{record.video}: {record.status}"
    if record.status == "ok":
        line += f" {record.summary['text']}"
        if len(record.tracks) > 1:
            line += f"; {faces_text(record.summary, photo=record.media == 'image')}"
        if record.cuts:
            line += f"; {len(record.cuts)} shot cut(s)"
    elif record.error:
        line += f" ({record.error})"
    return line + (f"; warning: {record.warning}" if record.warning else "")


def predict_files(paths, out_dir, *, checkpoint=None, spec=None, fmt: str = "both", plot: bool = False,
                  annotate: bool = False, options: PredictOptions | None = None, progress: bool = True,
                  jobs: int | None = None, on_frames=None, predictor: Predictor | None = None):
    """Predict every video in `paths` (files and directories) and write the outputs to `out_dir`.

    Args:
        paths: video and image files and/or directories (searched recursively for both).
        out_dir: output folder (created; checked writable before anything runs).
        checkpoint: a `rdfer train` checkpoint or an ONNX model file (`*.onnx`), or None for the built-in model.
        spec: how to feed an ONNX model (a preset or a spec file; None: its sidecar), see onnx_models.py.
        fmt: "both" (default), "json" (DIR/<name>.json per input) or "csv" (predictions.csv + frames.csv).
        plot, annotate: also write DIR/<name>_timeline.png / DIR/<name>_annotated.mp4 (images:
            DIR/<name>_annotated.<suffix>).
        options: PredictOptions (detector, detect_every, ...).
        progress: per-file lines on stderr, and a bar when stderr is a terminal (its postfix: the
            frames done in the video in progress and the time left; in a log, in its lines).
        on_frames: called with predict_video's FrameProgress as each video advances.
        jobs: videos predicted at once (threads sharing the model); default `default_jobs()`
            for the built-in model, 1 with a checkpoint.
        predictor: an `rdfer.Predictor` already loaded (the app keeps them), used instead of loading
            `checkpoint` with `options` (which it must have been made from).

    Returns:
        PredictRun: the records, in input order, and where their outputs are.
    Raises:
        RdferError: bad checkpoint, options, output folder or an empty directory (nothing processed),
            or an output that cannot be written (e.g. a full disk; the outputs of the videos
            finished before it are complete on disk).
    """
    if fmt not in FORMATS:
        raise RdferError(f"unknown --format {fmt!r}; choose both, json or csv")
    if jobs is not None and jobs < 1:
        raise RdferError(f"--jobs must be at least 1, got {jobs}")
    options = options or PredictOptions()
    videos = list_videos(paths)
    out_dir = prepare_out_dir(out_dir)
    model = predictor or Predictor(checkpoint, spec=spec, **dataclasses.asdict(options))
    predictor = model.model
    # A checkpoint's clip model already spreads over every core (torch's threads); one video at a time.
    jobs = min(jobs or (default_jobs() if predictor.kind == "frame" else 1), len(videos))

    names = OutputNames(out_dir, videos)
    renamed = []  # output names that differ from the input's stem (the wanted name was taken)
    replaced = []  # inputs predicted into this folder before: their earlier rows and files replaced
    tables = None
    # Runs sharing the folder (two `rdfer predict`, the app) claim names and merge tables one at a time.
    outputs_lock = out_dir / "rdfer-predict"  # .rdfer-predict.lock, removed when released
    waiting = f"waiting for another rdfer process writing into {out_dir}"
    if fmt in ("both", "csv"):
        with update_lock(outputs_lock, waiting=waiting):
            videos_csv, frames_csv = claim_tables(names)
        if videos_csv.name != "predictions.csv":
            renamed.append(f"predictions.csv -> {videos_csv.name}, frames.csv -> {frames_csv.name} (the first "
                           "are not rdfer's tables)")

    # A video that crashes OpenCV when opened would end the run and lose the rest of a batch: each is
    # opened once in a separate process first, and one that crashes it is reported, not read here.
    crashed = probe_videos([v for v in videos if not is_image(v)]) if len(videos) > 1 else {}

    def run(video, cancel):
        if video in crashed:
            return VideoPrediction(str(video), None, 0, 0, "error", crashed[video], predictor.description)
        try:  # the per-input boundary: decoding, finding faces, the model; this input fails, the batch goes on
            return model.predict(video, cancel=cancel, progress=frames_seen)
        except Cancelled:
            raise
        except Exception as error:  # noqa: BLE001
            return VideoPrediction(str(video), None, 0, 0, "error", f"could not be predicted: {_reason(error)}",
                                   predictor.description, media="image" if is_image(video) else "video")

    records, started, cpu_started = [], time.perf_counter(), time.process_time()
    # Drawn on a terminal only: `rdfer predict ... > log` keeps the per-video lines, not every bar update.
    bar = progress_bar(total=len(videos), enabled=progress, desc="rdfer predict", unit="video", file=sys.stderr)
    shown = [0.0]  # when the bar's postfix was last redrawn

    def frames_seen(step) -> None:
        if on_frames is not None:
            on_frames(step)
        now = time.perf_counter()
        if progress and (now - shown[0] >= 0.5 or step.done == step.total):
            shown[0] = now
            bar.set_postfix({"video": Path(step.video).name, "frames": step.text()}, refresh=False)
            bar.update(0)  # redraws the bar (a log: a line when 30 s have passed)

    results = _ordered(videos, run, jobs)
    try:
        for video, record in zip(videos, results):
            records.append(record)
            try:
                with update_lock(outputs_lock, waiting=waiting):
                    name, record = _write(record, video, names, fmt, plot, annotate, out_dir)
                    records[-1] = record
                    if name is not None and name != (Path(video).stem or "video"):
                        renamed.append(f"{Path(video).name} -> {name}.*")
                    again = name in names.replaced
                    if fmt in ("both", "csv"):
                        if tables is None:
                            tables = CsvTables(videos_csv, frames_csv, predictor.classes)
                        before = len(tables.replaced)
                        tables.add(record)
                        again = again or len(tables.replaced) > before
                    if again:
                        replaced.append(str(video))
            except (OSError, WriteError) as error:
                reason = (f"{error.reason}: {Path(error.path).name}" if isinstance(error, WriteError)
                          else error.strerror or error)
                raise RdferError(f"cannot write the outputs of {video} to {out_dir} ({reason}); "
                                 f"the {len(records) - 1} video(s) before it are complete there") from None
            bar.update()
            if progress:
                bar.write(console_line(record), file=sys.stderr)
    finally:
        results.close()  # cancels and joins the videos in flight
        bar.close()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started

    return PredictRun(records, out_dir, [videos_csv, frames_csv] if fmt in ("both", "csv") else [], renamed,
                      replaced, seconds, cpu_seconds, jobs)


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())[:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _write(record, video, names: OutputNames, fmt, plot, annotate, out_dir: Path):
    """The per-input files of `record`, under a name no other file has: (that name or None, the record).

    A plot or an annotated copy that fails for this input (not for the disk: a failed write still
    stops the batch) turns the record into status "error" saying so; the batch goes on."""
    image = is_image(video)
    annotated = "_annotated" + (".mp4" if not image else ".jpg" if Path(video).suffix.lower() in (".jpg", ".jpeg") else ".png")
    suffixes = [".json"] * (fmt in ("both", "json")) + ["_timeline.png"] * plot + [annotated] * annotate
    if not suffixes:
        return None, record
    name = names.claim(Path(video).stem or "video", suffixes, video=video)  # its own earlier files: replaced
    steps = [("plot", plot_timeline, f"{name}_timeline.png")] * plot + [("annotate", annotate_video,
                                                                          f"{name}{annotated}")] * annotate
    for step, draw, file in steps:
        if record.status == "error":
            break
        try:
            draw(record, out_dir / file)
        except WriteError:  # the output could not be written (a full disk): the batch stops, naming it
            raise
        except Exception as error:  # noqa: BLE001 - the per-input boundary
            record = dataclasses.replace(record, status="error", error=f"--{step} failed: {_reason(error)} (its "
                                         "prediction is in the tables)")
    if fmt in ("both", "json"):
        write_json(record, out_dir / f"{name}.json")
    return name, record
