"""The predict page's jobs: uploaded files or a folder, run through `rdfer predict`'s own library call.

    jobs = PredictJobs(work, max_upload_mb=500)
    job = jobs.create()
    jobs.save_upload(job.id, "clip.mp4", chunks)         # refused: not a video/image, empty, too big, busy
    jobs.start(job.id, checkpoint=None, folder=None)     # runs in a thread; jobs.status(job.id) shows progress

Each video goes through `rdfer.inference.runner.predict_files` (what `rdfer predict`
runs), one call per video so the page can show progress, into WORK/jobs/<id>/out/<k>/:
`<name>.json` and `<name>_annotated.mp4`, as `rdfer predict --annotate` writes them; the
job's `predictions.csv` and `frames.csv` (`outputs.CsvTables`) grow after each video.

One upload or prediction runs at a time on a server (the model and the CPU are
shared): a second one is refused with a message instead of queueing silently.
Loaded models are kept (`PredictorCache`): a job with the model of an earlier one
does not load it again.
"""

import collections
import dataclasses
import contextlib
import os
import secrets
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from rdfer.app.work import WorkFolder, safe_name
from rdfer.errors import RdferError
from rdfer.inference.outputs import CsvTables
from rdfer.inference.predict import PredictOptions
from rdfer.inference.api import Predictor
from rdfer.inference.runner import predict_files
from rdfer.inference.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, is_image, list_videos
from rdfer.utils.outputs import atomic_output, write_bytes

ACCEPTED = tuple(dict.fromkeys(VIDEO_EXTENSIONS + IMAGE_EXTENSIONS))
MAX_TIMELINE_POINTS = 1500  # per track, sent to the page (longer timelines are thinned evenly)
THUMBNAILS = 10  # face crops shown per track


class Busy(RdferError):
    """Another upload or prediction is running (HTTP 409)."""


class TooLarge(RdferError):
    """An upload over the size limit (HTTP 413)."""


class PredictorCache:
    """Loaded `rdfer.Predictor`s by (model file, options): at most `size`, the least recently used dropped.

    A model file is known by its resolved path, size and modification time, so a checkpoint replaced
    on disk is loaded again. Thread-safe: one load at a time, and a second caller of a model being
    loaded waits for it instead of loading it too.
    """

    def __init__(self, size: int = 2, load=Predictor):
        self.size, self._load = size, load
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # models loaded so far

    @staticmethod
    def key(checkpoint, options: PredictOptions) -> tuple:
        if checkpoint is None:
            return None, options
        path = Path(checkpoint).resolve()
        stat = path.stat()
        return (str(path), stat.st_size, stat.st_mtime_ns), options

    def get(self, checkpoint, options: PredictOptions):
        """The Predictor of `checkpoint` (None: the built-in model) with `options`, loaded if not kept."""
        key = self.key(checkpoint, options)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            predictor = self._load(checkpoint, **dataclasses.asdict(options))
            self.loads += 1
            self._items[key] = predictor
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return predictor


class PredictJob:
    def __init__(self, job_id: str, home: Path):
        self.id, self.home = job_id, home
        self.inputs, self.out = home / "inputs", home / "out"
        self.files: list[Path] = []
        self.state = "new"  # new -> running -> done | failed
        self.total = self.done = 0
        self.current, self.message, self.model = None, None, None
        self.frames = None  # the video in progress: FrameProgress.to_dict() (frames done, total, time left)
        self.started = self.finished = None
        self.results: list[dict] = []

    def status(self) -> dict:
        elapsed = None if self.started is None else (self.finished or time.time()) - self.started
        return {"id": self.id, "state": self.state, "uploaded": [p.name for p in self.files], "total": self.total,
                "done": self.done, "current": self.current, "frames": self.frames, "model": self.model,
                "message": self.message, "elapsed_s": elapsed,
                "results": self.results,
                "downloads": {name: f"/files/jobs/{self.id}/out/{name}" for name in ("predictions.csv", "frames.csv")
                              if (self.out / name).is_file()}}


class PredictJobs:
    def __init__(self, work: WorkFolder, max_upload_mb: float = 500.0, options: PredictOptions | None = None):
        self.work, self.max_bytes = work, int(max_upload_mb * 1024 * 1024)
        self.options = options or PredictOptions()
        self.predictors = PredictorCache()
        self._jobs: dict[str, PredictJob] = {}
        self._busy = threading.Lock()  # held while an upload is written or a job runs
        self._writing: dict[Path, contextlib.ExitStack] = {}  # uploads being written: their atomic_output
        self._what = ""

    def create(self) -> PredictJob:
        """A new job with a folder of its own: created exclusively, so servers sharing a work folder never
        share a job folder (a name another server took is skipped)."""
        jobs = self.work.folder("jobs")
        while True:
            job_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)
            try:
                (jobs / job_id).mkdir()
                break
            except FileExistsError:
                continue
        job = PredictJob(job_id, jobs / job_id)
        self._jobs[job_id] = job
        return job

    def get(self, job_id: str) -> PredictJob:
        if job_id not in self._jobs:
            raise RdferError(f"no prediction job {job_id!r} on this server (it restarted?): start again")
        return self._jobs[job_id]

    def _claim(self, what: str) -> None:
        if not self._busy.acquire(blocking=False):
            raise Busy(f"{self._what} is in progress; wait until it is finished, then try again")
        self._what = what

    def _release(self) -> None:
        self._what = ""
        self._busy.release()

    # ----------------------------------------------------------------------------- uploads

    def check_upload(self, name: str, length: int | None) -> str:
        """The safe file name of an upload, or an RdferError saying why it is refused before reading it."""
        clean = safe_name(name, "upload")
        suffix = Path(clean).suffix.lower()
        if suffix not in ACCEPTED:
            raise RdferError(f"{name}: not a video or image file; rdfer reads {', '.join(ACCEPTED)}")
        if length is not None and length > self.max_bytes:
            raise TooLarge(self._too_large(name))
        if length == 0:
            raise RdferError(f"{name} is empty (0 bytes)")
        return clean

    def _too_large(self, name: str) -> str:
        return (f"{name} is larger than the upload limit of {self.max_bytes / 2**20:.0f} MB; give its folder "
                "instead (the server reads it in place) or restart with --max-upload-mb")

    def begin_upload(self, job_id: str, name: str, length: int | None):
        """(job, temporary path, final path) for an upload; claims the server until `end_upload` or
        `abort_upload` (the temporary file is rdfer's `atomic_output`: removed on every failure)."""
        job = self.get(job_id)
        if job.state != "new":
            raise RdferError(f"job {job_id} has started already; start a new one to add files")
        clean = self.check_upload(name, length)
        self._claim(f"an upload ({name})")
        try:
            job.inputs.mkdir(exist_ok=True)
            stem, suffix = Path(clean).stem, Path(clean).suffix
            final, n = job.inputs / clean, 1
            taken = {p.stem for p in job.files}  # one output name per input: no two inputs share a stem
            while os.path.lexists(final) or final.stem in taken:
                n += 1
                final = job.inputs / f"{stem}-{n}{suffix}"
            writing = contextlib.ExitStack()
            temp = writing.enter_context(atomic_output(final, fsync=False))
            self._writing[temp] = writing
            return job, temp, final
        except BaseException:
            self._release()
            raise

    def abort_upload(self, temp: Path, error: BaseException) -> None:
        """An upload failed while it was written (a full disk, a dropped connection, any exception): remove
        the partial file, release the server, raise the error (a failed write as one line naming the file)."""
        try:
            writing = self._writing.pop(temp, contextlib.ExitStack())
            writing.__exit__(type(error), error, error.__traceback__)  # removes the file; a failed write: its line
            raise error
        finally:
            self._release()

    def end_upload(self, job: PredictJob, temp: Path, final: Path, name: str, size: int, ok: bool) -> dict:
        """Check a written upload (size, decodable) and keep it, or delete it and raise; releases the server."""
        writing = self._writing.pop(temp, contextlib.ExitStack())
        try:
            if size > self.max_bytes:
                raise TooLarge(self._too_large(name))
            if not ok:
                raise RdferError(f"{name}: the upload was interrupted; send it again")
            if size == 0:
                raise RdferError(f"{name} is empty (0 bytes)")
            problem = _decode_problem(temp, is_image(final))
            if problem:
                raise RdferError(f"{name}: {problem}")
            writing.close()  # renamed into place
            job.files.append(final)
            return {"name": final.name, "bytes": size, "files": [p.name for p in job.files]}
        except BaseException as error:
            writing.__exit__(type(error), error, error.__traceback__)  # removes the file; a failed write: its line
            raise
        finally:
            temp.unlink(missing_ok=True)
            self._release()

    # ----------------------------------------------------------------------------- running

    def start(self, job_id: str, checkpoint: str | None = None, folder: str | None = None) -> dict:
        """Check the inputs and the model now (errors come back at once), then predict in a thread."""
        job = self.get(job_id)
        if job.state != "new":
            raise RdferError(f"job {job_id} has started already")
        checkpoint = (checkpoint or "").strip() or None
        folder = (folder or "").strip() or None
        videos = list(job.files)
        if folder:
            path = Path(folder).expanduser()
            if not path.is_dir():
                raise RdferError(f"{folder}: no such folder")
            videos += list_videos([path])  # RdferError when it holds no video
        if not videos:
            raise RdferError("nothing to predict: drop videos or images on the page, or give a folder")
        if checkpoint:
            if not Path(checkpoint).expanduser().is_file():
                raise RdferError(f"checkpoint {checkpoint}: no such file")
            checkpoint = str(Path(checkpoint).expanduser())
        self._claim("a prediction")
        try:
            predictor = self.predictors.get(checkpoint, self.options)  # a bad checkpoint: its message, now
        except BaseException:
            self._release()
            raise
        job.state, job.total, job.started = "running", len(videos), time.time()
        job.model = predictor.model.description
        thread = threading.Thread(target=self._run, args=(job, videos, checkpoint, predictor), name=f"rdfer-app-{job.id}",
                                  daemon=True)
        thread.start()
        return job.status()

    def _run(self, job: PredictJob, videos, checkpoint, predictor: Predictor) -> None:
        try:
            job.out.mkdir(exist_ok=True)
            tables = CsvTables(job.out / "predictions.csv", job.out / "frames.csv", predictor.classes)
            for k, video in enumerate(videos, 1):
                job.current, job.frames = Path(video).name, None
                folder = job.out / str(k)
                found = predict_files([video], folder, checkpoint=checkpoint, fmt="json", annotate=True,
                                      options=self.options, progress=False, jobs=1, predictor=predictor,
                                      on_frames=lambda step: setattr(job, "frames", step.to_dict())).records
                tables.add(found[0])
                job.results.append(_result(job, k, found[0], folder))
                job.done = k
            job.state = "done"
        except Exception as error:  # shown on the page; the videos finished before it stay
            job.state, job.message = "failed", f"stopped after {job.done} of {job.total}: {error}"
        finally:
            job.current, job.finished = None, time.time()
            self._release()


def _decode_problem(path: Path, image: bool) -> str | None:
    """Why the file cannot be read as an image or a video, or None when its first frame decodes."""
    if image:
        image = cv2.imread(str(path))
        return None if image is not None else "cannot be decoded as an image (damaged, or not an image)"
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    return None if ok else "cannot be decoded as a video (cut off, damaged, or not a video)"


def _url(job: PredictJob, path: Path) -> str:
    return f"/files/jobs/{job.id}/" + path.relative_to(job.home).as_posix()


def _thin(items: list, limit: int) -> list:
    if len(items) <= limit:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _thumbnails(job: PredictJob, folder: Path, track_id, thumbnails) -> list[dict]:
    """Up to THUMBNAILS of a track's face crops, saved as JPEGs in the video's folder: [{time_s, url}]."""
    out = []
    for n, (time_s, crop) in enumerate(_thin(list(thumbnails), THUMBNAILS)):
        path = folder / "thumbs" / f"{track_id}-{n}.jpg"
        path.parent.mkdir(exist_ok=True)
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if ok:
            write_bytes(path, encoded.tobytes(), fsync=False)
        out.append({"time_s": float(time_s), "url": _url(job, path)})
    return out


def _result(job: PredictJob, k: int, record, folder: Path) -> dict:
    """What the page shows of one video: its summary, its face tracks and its downloads."""
    stem = Path(record.video).stem or "video"
    data = record.to_dict()
    downloads = {}
    if (folder / f"{stem}.json").is_file():
        downloads["json"] = _url(job, folder / f"{stem}.json")
    for annotated in sorted(folder.glob(f"{stem}_annotated.*"))[:1]:
        downloads["annotated " + data.get("media", "video")] = _url(job, annotated)
    summary = data.get("summary") or {}
    if "tracks" in data:  # every face as a track, longest on screen first
        tracks = [_track(d["id"], d, d.get("timeline") or [], _thumbnails(job, folder, d["id"], t.thumbnails),
                         main=d["id"] == summary.get("main_face"))
                  for t, d in zip(record.tracks, data["tracks"])]
    elif data.get("status") == "ok":  # a record of one face per video: one track
        tracks = [_track(1, data, data.get("timeline") or [], _thumbnails(job, folder, 1, record.thumbnails))]
    else:
        tracks = []
    return {"index": k, "name": Path(record.video).name, "media": data.get("media", "video"),
            "status": data.get("status"), "error": data.get("error"),
            "warning": data.get("warning"), "model": data.get("model"), "fps": data.get("fps"),
            "num_frames": data.get("num_frames"), "frames_with_face": data.get("frames_with_face"),
            "summary": summary.get("text"), "main_face": summary.get("main_face"),
            "duration_s": (data["num_frames"] / data["fps"]) if data.get("fps") and data.get("num_frames") else None,
            "cuts": data.get("cuts") or [],
            "tracks": tracks, "downloads": downloads}


def _track(track_id, summary: dict, timeline: list, thumbnails: list, main: bool = False) -> dict:
    """A face track for the page. `summary` holds label, probabilities, key_expression, agreement and
    (records with a trust score) trust; `timeline` one entry per frame: time_s, label, probabilities."""
    classes = list(summary.get("probabilities") or {})
    points = _thin(timeline, MAX_TIMELINE_POINTS)
    has_trust = "trust" in summary
    return {"id": track_id, "main": main, "label": summary.get("label"), "probabilities": summary.get("probabilities"),
            "trust": summary.get("trust") if has_trust else summary.get("agreement"),
            "trust_name": "trust" if has_trust else "agreement of the 4 clips",
            "agreement": summary.get("agreement"), "key_expression": summary.get("key_expression"),
            "classes": classes,
            "timeline": {"time_s": [p["time_s"] for p in points],
                         "label": [p.get("label") for p in points],
                         "probabilities": {c: [(p.get("probabilities") or {}).get(c) for p in points]
                                           for c in classes}},
            "thumbnails": thumbnails}
