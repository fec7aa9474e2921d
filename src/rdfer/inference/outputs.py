"""What `rdfer predict` writes: JSON per video, CSV tables, timeline plots, annotated videos.

- `DIR/<video name>.json`: `VideoPrediction.to_dict()`.
- `DIR/predictions.csv`: one row per video; `DIR/frames.csv`: one row per frame
  of every video (time, label, box, per-class probabilities).
- `DIR/<video name>_timeline.png` (`--plot`), `DIR/<video name>_annotated.mp4` (`--annotate`).

Video names are the file stems. Nothing is written over: when a name is taken
(two inputs share a stem, a/x.mp4 and b/x.mp4; the file is already in the
folder, from an earlier run or the user's own; or it is one of the inputs) the
video gets the next free numbered name (x-2, x-3, ...) for all its outputs
(`OutputNames`). Every file is written to a temporary name in the folder and
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


class OutputNames:
    """Free output names in one folder: never an existing file, an input, or a name taken in this run.

        names = OutputNames(out_dir, inputs)
        name = names.claim("clip", [".json", "_timeline.png"])   # "clip", or "clip-2", ... if taken
    """

    def __init__(self, out_dir: Path, inputs=()):
        self.out_dir = Path(out_dir)
        self._inputs = {os.path.realpath(p) for p in inputs}
        self._claimed: set[str] = set()

    def _free(self, path: Path) -> bool:
        real = os.path.realpath(path)
        return real not in self._claimed and real not in self._inputs and not os.path.lexists(path)

    def claim(self, stem: str, suffixes) -> str:
        """The first of `stem`, `stem-2`, ... whose files `name + suffix` are all free; they are then taken."""
        return self.claim_group(lambda name: [name + suffix for suffix in suffixes], stem)

    def claim_group(self, files, stem: str) -> str:
        """Like `claim`, for the file names `files(name)` (e.g. predictions-2.csv with frames-2.csv)."""
        for n in itertools.count(1):
            name = stem if n == 1 else f"{stem}-{n}"
            paths = [self.out_dir / f for f in files(name)]
            if all(self._free(p) for p in paths):
                self._claimed.update(os.path.realpath(p) for p in paths)
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


class CsvTables:
    """predictions.csv (one row per face track) and frames.csv (one row per frame and face), grown video by video.

    Each `add(record)` rewrites both files atomically with the new rows added
    (the previous file copied, then the rows appended, then renamed into place),
    so the files on disk always hold every finished video and only whole rows;
    it holds the file's `update_lock` meanwhile, so that writers sharing the
    tables (app jobs, library callers) never drop each other's rows.
    """

    def __init__(self, videos_csv: Path, frames_csv: Path, classes):
        self.videos_csv, self.frames_csv, self.classes = Path(videos_csv), Path(frames_csv), list(classes)
        self._append(self.videos_csv, [track_columns(self.classes)], fresh=True)
        self._append(self.frames_csv, [frame_columns(self.classes)], fresh=True)

    def _append(self, path: Path, rows, fresh: bool = False) -> None:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        with update_lock(path), atomic_output(path, fsync=False) as temp:  # another writer's rows are kept
            if not fresh:
                shutil.copyfile(path, temp)
            # A file name with bytes that are not UTF-8 is written escaped (\udce9), not refused.
            with open(temp, "a", newline="", encoding="utf-8", errors="backslashreplace") as f:
                f.write(text.getvalue())

    def add(self, record) -> None:
        self._append(self.frames_csv, frame_rows(record, self.classes))
        self._append(self.videos_csv, _track_rows(record, self.classes))


def write_csv(records, out_dir: Path, classes=None) -> tuple[Path, Path]:
    """predictions.csv (one row per track) and frames.csv (one row per frame and face) in `out_dir`."""
    classes = classes or next((r.classes for r in records if r.classes), [])
    tables = CsvTables(Path(out_dir) / "predictions.csv", Path(out_dir) / "frames.csv", classes)
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
