"""What `rdfer predict` writes: JSON per video, CSV tables, timeline plots, annotated videos.

- `DIR/<video name>.json`: `VideoPrediction.to_dict()`.
- `DIR/predictions.csv`: one row per face track; `DIR/frames.csv`: one row per frame
  and face of every video (time, label, box, per-class probabilities).
- `DIR/<video name>_timeline.png` (`--plot`), `DIR/<video name>_annotated.mp4` (`--annotate`).

Runs into one folder merge (`CsvTables`): the tables hold every video ever predicted there, and a
video predicted again (the same file, `same_video`) has its earlier rows replaced by the new ones;
the other videos' rows are kept, whichever run wrote them, and runs at the same time lose nobody's
rows (each update is a read-merge-write under the table's `update_lock`). A table that is not
rdfer's (another header, not text) is never touched: the run writes predictions-2.csv beside it.

Video names are the file stems. Nothing else is written over: when a name is taken
(two inputs share a stem, a/x.mp4 and b/x.mp4; the file is already in the
folder, the user's own or another video's; or it is one of the inputs) the
video gets the next free numbered name (x-2, x-3, ...) for all its outputs
(`OutputNames`). Only a video's own earlier outputs (its `NAME.json` says
this video) are replaced. Every file is written to a temporary name in the folder and
renamed into place when complete (`rdfer.utils.outputs.atomic_output`), so a crash or a full disk
never leaves a cut-off file under a real name.
"""

import csv
import io
import itertools
import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from rdfer.errors import RdferError
from rdfer.inference.video import open_media
from rdfer.utils.outputs import atomic_output, write_text
from rdfer.utils.runlock import update_lock

TRACK_COLUMNS = ("video", "status", "error", "warning", "model", "media", "num_tracks", "summary", "track", "main", "label",
                 "probability", "trust", "agreement", "fps", "num_frames", "frames_with_face", "track_frames",
                 "start_s", "end_s", "key_start_s", "key_end_s", "face_size_px")
FRAME_COLUMNS = ("video", "track", "main", "frame", "time_s", "x0", "y0", "x1", "y1", "label", "probability",
                 "raw_label")


def frame_columns(classes) -> list[str]:
    """Columns of frames.csv and `VideoPrediction.to_frame()`."""
    return [*FRAME_COLUMNS, *(f"p_{c}" for c in classes), *(f"raw_p_{c}" for c in classes)]


def output_names(videos) -> list[str]:
    """A distinct output name (file stem, numbered on clashes) for each input path."""
    seen: dict[str, int] = {}
    names = []
    for path in videos:
        stem = Path(path).stem or "video"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def same_video(a, b) -> bool:
    """Whether two video paths name the same file (a relative path is taken from the current folder)."""
    return os.path.realpath(a) == os.path.realpath(b)


def _json_video(path: Path) -> str | None:
    """The `video` of an rdfer prediction JSON at `path` (None: absent, a link, not rdfer's JSON)."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 512 * 2**20:
            return None
        data = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
    except (OSError, ValueError):
        return None
    video = data.get("video") if isinstance(data, dict) else None
    return video if isinstance(video, str) and "status" in data else None


class OutputNames:
    """Free output names in one folder: never an existing file, an input, or a name taken in this run.

        names = OutputNames(out_dir, inputs)
        name = names.claim("clip", [".json", "_timeline.png"])   # "clip", or "clip-2", ... if taken
        name = names.claim("clip", [".json"], video="a/clip.mp4")  # also: a name whose clip.json is a/clip.mp4's
        name in names.replaced                                   # True: that video's earlier outputs are replaced

    With `video`, a name taken by that same video's earlier outputs (its `NAME.json` says so) is
    reused: predicting a video again replaces its own files, never another's or the user's.
    """

    def __init__(self, out_dir: Path, inputs=()):
        self.out_dir = Path(out_dir)
        self._inputs = {os.path.realpath(p) for p in inputs}
        self._claimed: set[str] = set()
        self.replaced: set[str] = set()

    def _free(self, path: Path) -> bool:
        real = os.path.realpath(path)
        return real not in self._claimed and real not in self._inputs and not os.path.lexists(path)

    def _own(self, name: str, paths, video) -> bool:
        """`paths` (the files of `name`) hold `video`'s earlier outputs only: its NAME.json says so, and none
        is an input, a link or taken in this run."""
        if video is None:
            return False
        recorded = _json_video(self.out_dir / f"{name}.json")
        if recorded is None or not same_video(recorded, video):
            return False
        return all(os.path.realpath(p) not in self._claimed | self._inputs and not p.is_symlink()
                   and (p.is_file() or not os.path.lexists(p)) for p in paths)

    def claim(self, stem: str, suffixes, video=None) -> str:
        """The first of `stem`, `stem-2`, ... whose files `name + suffix` are all free (or, with `video`,
        that video's own earlier outputs); they are then taken."""
        return self.claim_group(lambda name: [name + suffix for suffix in suffixes], stem, video)

    def claim_group(self, files, stem: str, video=None) -> str:
        """Like `claim`, for the file names `files(name)` (e.g. predictions-2.csv with frames-2.csv)."""
        for n in itertools.count(1):
            name = stem if n == 1 else f"{stem}-{n}"
            paths = [self.out_dir / f for f in files(name)]
            own = self._own(name, paths, video)
            if own or all(self._free(p) for p in paths):
                self._claimed.update(os.path.realpath(p) for p in paths)
                if own:
                    self.replaced.add(name)
                return name
        raise AssertionError("unreachable")


def write_json(record, path: Path) -> None:
    write_text(path, json.dumps(record.to_dict(), indent=1) + "\n")


def _track_rows(r, classes) -> list[list]:
    """predictions.csv rows of one record: one per track, or one with an empty track for a video without faces."""
    def cell(value):
        return "" if value is None else value

    common = [r.video, r.status, cell(r.error), cell(r.warning), r.model, r.media, len(r.tracks),
              cell((r.summary or {}).get("text"))]
    main = (r.summary or {}).get("main_face")
    tail = [cell(None if r.fps is None else round(r.fps, 4)), r.num_frames, r.frames_with_face]
    if not r.tracks:
        return [[*common, "", "", "", "", "", "", *tail, *[""] * 6, *[""] * len(classes)]]
    return [[*common, t.id, int(t.id == main), t.label, round(t.probability, 5), round(t.trust, 4), cell(t.agreement),
             *tail, t.num_frames, round(t.start_s, 4), round(t.end_s, 4), round(t.key_expression["start_s"], 4),
             round(t.key_expression["end_s"], 4), round(t.face_size_px, 1),
             *(round(t.probabilities[c], 5) for c in classes)]
            for t in r.tracks]


def track_columns(classes) -> list[str]:
    """Columns of predictions.csv and `Predictions.to_table()`."""
    return [*TRACK_COLUMNS, *(f"p_{c}" for c in classes)]


def track_table(records) -> tuple[list[str], list[list]]:
    """(columns, rows) of predictions.csv for `records`: a row per face track, one per file without a face."""
    classes = next((list(r.probabilities) for r in records if r.probabilities), [])
    return track_columns(classes), [row for r in records for row in _track_rows(r, classes)]


def frame_rows(r, classes):
    """Rows of frames.csv / `to_frame()` for one record: one per frame and face (FRAME_COLUMNS + p_, raw_p_)."""
    main = (r.summary or {}).get("main_face")
    for track in r.tracks:
        for e in track.timeline:
            probs, raw = e["probabilities"], e["raw_probabilities"]
            yield [r.video, track.id, track.id == main, e["frame"], round(e["time_s"], 6), *e["box"], e["label"],
                   probs[e["label"]], e["raw_label"], *(probs[c] for c in classes), *(raw[c] for c in classes)]


VIDEO_KEYS = ("video", "status")  # the first columns of an rdfer predictions.csv
FRAME_KEYS = ("video", "track", "main", "frame")  # ... and of an rdfer frames.csv


def _header(path: Path) -> list[str] | None:
    """The header row of a CSV file ([] when absent or empty; None when it is not a readable text table)."""
    try:
        if path.is_symlink() or (os.path.lexists(path) and not path.is_file()):
            return None
        with open(path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])
    except FileNotFoundError:
        return []
    except (OSError, ValueError, csv.Error):
        return None


def is_table(path: Path, keys) -> bool:
    """Whether `path` is absent, empty or an rdfer table starting with the columns `keys` (which may be merged)."""
    header = _header(Path(path))
    return header is not None and (header == [] or tuple(header[:len(keys)]) == tuple(keys))


def claim_tables(names: OutputNames) -> tuple[Path, Path]:
    """(predictions.csv, frames.csv) of a folder, or the first numbered pair (predictions-2.csv, frames-2.csv,
    ...) that is free or rdfer's own tables: a file of the same name that is not rdfer's is never touched."""
    def files(name):
        return [name + ".csv", name.replace("predictions", "frames", 1) + ".csv"]

    for n in itertools.count(1):
        name = "predictions" if n == 1 else f"predictions-{n}"
        paths = [names.out_dir / f for f in files(name)]
        if all(os.path.realpath(p) not in names._inputs for p in paths) and \
                is_table(paths[0], VIDEO_KEYS) and is_table(paths[1], FRAME_KEYS):
            names._claimed.update(os.path.realpath(p) for p in paths)
            return paths[0], paths[1]
    raise AssertionError("unreachable")


class CsvTables:
    """predictions.csv (one row per face track) and frames.csv (one row per frame and face), merged video by video.

    Each `add(record)` rewrites both files atomically (read, merged, written to a temporary
    file, renamed into place) under the file's `update_lock`, so the files on disk always
    hold every finished video and only whole rows, and writers sharing the tables (two
    `rdfer predict` runs into one folder, app jobs, library callers) never drop each other's
    rows. Rows of the same video (`same_video`) written before this writer's first `add` of it
    are replaced by the new ones (`replaced` lists those videos); every other row is kept. A
    table written with other columns (another model's classes) gets the union of both.
    """

    def __init__(self, videos_csv: Path, frames_csv: Path, classes):
        self.videos_csv, self.frames_csv, self.classes = Path(videos_csv), Path(frames_csv), list(classes)
        self.replaced: list[str] = []  # videos whose earlier rows an add() replaced
        self._added: set[str] = set()  # real paths of the videos added by this writer: never replaced again
        self._known: dict = {}  # table -> (its identity, header, {video: real path}) as this writer left it
        self._merge(self.videos_csv, track_columns(self.classes), [], None)  # the header, when new
        self._merge(self.frames_csv, frame_columns(self.classes), [], None)

    def _merge(self, path: Path, columns: list[str], rows, video) -> bool:
        """Add `rows` (in `columns`) to the table at `path`, first dropping `video`'s earlier rows unless this
        writer added them; True when rows were dropped.

        The file is parsed only when needed: when it is as this writer left it (same inode, size and
        time), holds the columns and no earlier row of `video`, the rows are appended to a copy."""
        rows = list(rows)
        mine = video is None or os.path.realpath(video) in self._added  # nothing of it to drop
        with update_lock(path):  # another writer's rows are kept
            known = self._known.get(path)
            with atomic_output(path, fsync=False) as temp:
                if known is not None and known[0] == _identity(path) and set(columns) <= set(known[1]) and \
                        (mine or not any(real == os.path.realpath(video) for real in known[2].values())):
                    header, videos, dropped = known[1], dict(known[2]), False
                    shutil.copyfile(path, temp)
                    kept_bytes = b""
                else:
                    header, kept = _read_table(path)
                    keys = columns[:2] if columns[1] == "status" else columns[:4]  # VIDEO_KEYS or FRAME_KEYS
                    if header is None or (header and header[:len(keys)] != keys):  # another file took its place
                        raise RdferError(f"{path} is no longer an rdfer table (another file took its place); it "
                                         "was left as it is: give another --out")
                    videos = {name: os.path.realpath(name) for name in {row[0] for row in kept}}
                    dropped = False
                    if not mine:
                        real = os.path.realpath(video)
                        dropped = any(videos[row[0]] == real for row in kept)
                        kept = [row for row in kept if videos[row[0]] != real]
                        videos = {name: r for name, r in videos.items() if r != real}
                    header = header + [c for c in columns if c not in header] if header else list(columns)
                    text = io.StringIO()
                    writer = csv.writer(text)
                    writer.writerow(header)
                    writer.writerows(row + [""] * (len(header) - len(row)) for row in kept)
                    kept_bytes = text.getvalue().encode("utf-8", "surrogateescape")
                position = [columns.index(c) if c in columns else None for c in header]
                text = io.StringIO()
                csv.writer(text).writerows([row[k] if k is not None else "" for k in position] for row in rows)
                with open(temp, "ab") as f:
                    f.write(kept_bytes)
                    # A file name with bytes that are not UTF-8 is written escaped (\udce9), not refused.
                    f.write(text.getvalue().encode("utf-8", "backslashreplace"))
            if rows:
                videos[rows[0][0]] = os.path.realpath(rows[0][0])
            self._known[path] = (_identity(path), header, videos)
        return dropped

    def add(self, record) -> None:
        dropped = self._merge(self.frames_csv, frame_columns(self.classes), frame_rows(record, self.classes),
                              record.video)
        dropped |= self._merge(self.videos_csv, track_columns(self.classes), _track_rows(record, self.classes),
                               record.video)
        if dropped and os.path.realpath(record.video) not in self._added:
            self.replaced.append(record.video)
        self._added.add(os.path.realpath(record.video))


def _identity(path: Path):
    """What changes when another writer replaces the file: inode, size, modification time (None: absent)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _read_table(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """(header, rows) of an rdfer table ([] and [] when absent; None when it is not a text table)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            return header, [row for row in reader if row]  # the video is the first column (VIDEO_KEYS)
    except FileNotFoundError:
        return [], []
    except (ValueError, csv.Error):
        return None, []


def write_csv(records, out_dir: Path, classes=None) -> tuple[Path, Path]:
    """predictions.csv (one row per track) and frames.csv (one row per frame and face) in `out_dir`."""
    classes = classes or next((r.classes for r in records if r.classes), [])
    tables = CsvTables(*claim_tables(OutputNames(out_dir)), classes)
    for record in records:
        tables.add(record)
    return tables.videos_csv, tables.frames_csv


TRACK_COLOURS = [(0, 220, 0), (0, 170, 255), (255, 120, 0), (220, 0, 220), (0, 220, 220), (80, 80, 255)]  # BGR


def draw_faces(image: np.ndarray, faces) -> None:
    """Draw each (track id, box, label, probability) on a BGR image in place: box, 'id label p'."""
    thick = max(2, round(min(image.shape[:2]) / 200))
    for tid, (x0, y0, x1, y1), label, p in faces:
        colour = TRACK_COLOURS[(tid - 1) % len(TRACK_COLOURS)]
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thick)
        text = f"{tid} {label} {p:.2f}"
        scale = max(0.45, (x1 - x0) / 250)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick // 2 + 1)
        ty = y0 - 6 if y0 - th - 10 > 0 else y1 + th + 6
        cv2.rectangle(image, (x0, ty - th - 4), (x0 + tw + 4, ty + 4), (0, 0, 0), -1)
        cv2.putText(image, text, (x0 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick // 2 + 1)


def _faces_by_frame(record) -> dict[int, list]:
    faces: dict[int, list] = {}
    for track in record.tracks:
        for e in track.timeline:
            faces.setdefault(e["frame"], []).append((track.id, e["box"], e["label"], e["probabilities"][e["label"]]))
    return faces


def annotate_video(record, path: Path) -> None:
    """Write a copy of the input with every face's box, track id, label and probability drawn.

    Videos: H.264 (yuv420p, `+faststart`) in MP4, which browsers and notebooks
    play, at the record's mean frame rate, with the source's audio stream
    copied (or re-encoded to AAC when MP4 cannot hold it). Images: the same
    drawing in an image file of `path`'s suffix.
    """
    faces = _faces_by_frame(record)
    with atomic_output(path) as temp:
        if record.media == "image":
            with open_media(record.video) as reader:
                frame = next(iter(reader))
            image = frame.image.copy()
            draw_faces(image, faces.get(0, []))
            if not cv2.imwrite(str(temp), image):
                raise OSError(f"cannot write {temp}")
        else:
            _annotate_mp4(record, faces, temp)


MP4_AUDIO = ("aac", "mp3", "alac", "opus", "ac3")  # audio codecs copied into the MP4 as they are


def _annotate_mp4(record, faces: dict[int, list], path: Path) -> None:
    import av

    source = av.open(str(record.video))
    audio_in = next((s for s in source.streams if s.type == "audio"), None)
    copy = audio_in is not None and audio_in.codec_context.name in MP4_AUDIO
    out = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        rate = Fraction(record.fps or 30.0).limit_denominator(1001)
        video_out = None
        audio_out, packets = None, iter(())
        if audio_in is not None:
            if copy:
                audio_out = out.add_stream_from_template(audio_in)
                packets = source.demux(audio_in)
            else:
                audio_out = out.add_stream("aac", rate=audio_in.codec_context.sample_rate or 44100)
                packets = (frame for packet in source.demux(audio_in) for frame in packet.decode())
        pending = None

        def write_audio_until(seconds: float):
            nonlocal pending
            while True:
                item = pending if pending is not None else next(packets, None)
                pending = None
                if item is None:
                    return
                if item.pts is not None and item.time_base is not None and float(item.pts * item.time_base) > seconds:
                    pending = item
                    return
                if isinstance(item, av.Packet):
                    if item.dts is None:
                        continue
                    item.stream = audio_out
                    out.mux(item)
                else:
                    item.pts = None
                    for packet in audio_out.encode(item):
                        out.mux(packet)

        with open_media(record.video) as reader:
            for frame in reader:
                image = frame.image
                if video_out is None:
                    height, width = image.shape[:2]
                    video_out = out.add_stream("libx264", rate=rate)
                    video_out.width, video_out.height = width - width % 2, height - height % 2  # yuv420p: even
                    video_out.pix_fmt = "yuv420p"
                    video_out.options = {"crf": "23", "preset": "veryfast"}
                image = image[:video_out.height, :video_out.width].copy()
                draw_faces(image, faces.get(frame.index, []))
                if audio_out is not None:
                    write_audio_until(frame.index / float(rate))
                for packet in video_out.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                    out.mux(packet)
        if video_out is not None:
            for packet in video_out.encode():
                out.mux(packet)
        if audio_out is not None:
            write_audio_until(float("inf"))
            if not copy:
                for packet in audio_out.encode():
                    out.mux(packet)
    finally:
        out.close()
        source.close()
