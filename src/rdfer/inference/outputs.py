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
renamed into place when complete (`atomic_path`), so a crash or a full disk
never leaves a cut-off file under a real name.
"""

import contextlib
import csv
import io
import itertools
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from rdfer.inference.video import VideoReader

VIDEO_COLUMNS = ("video", "status", "error", "warning", "model", "label", "agreement", "fps", "num_frames",
                 "frames_with_face", "key_start_s", "key_end_s")
FRAME_COLUMNS = ("video", "frame", "time_s", "label", "x0", "y0", "x1", "y1")


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


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path` (same extension) to write; renamed to `path` on success.

    On any error the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_json(record, path: Path) -> None:
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(record.to_dict(), indent=1) + "\n")


def _video_row(r, classes) -> list:
    key = r.key_expression or {}
    probs = r.probabilities or {}
    return [r.video, r.status, r.error or "", r.warning or "", r.model, r.label or "",
            "" if r.agreement is None else r.agreement,
            "" if r.fps is None else round(r.fps, 4), r.num_frames, r.frames_with_face,
            key.get("start_s", ""), key.get("end_s", ""), *(probs.get(c, "") for c in classes)]


def _frame_rows(r, classes):
    for index, entry in enumerate(r.timeline):
        box = entry["box"] or [""] * 4
        probs = entry["probabilities"] or {}
        yield [r.video, index, round(entry["time_s"], 6), entry["label"] or "", *box,
               *(probs.get(c, "") for c in classes)]


class CsvTables:
    """predictions.csv (one row per video) and frames.csv (one row per frame), grown video by video.

    Each `add(record)` rewrites both files atomically with the new rows added
    (the previous file copied, then the rows appended, then renamed into place),
    so the files on disk always hold every finished video and only whole rows.
    """

    def __init__(self, videos_csv: Path, frames_csv: Path, classes):
        self.videos_csv, self.frames_csv, self.classes = Path(videos_csv), Path(frames_csv), list(classes)
        probs = [f"p_{c}" for c in self.classes]
        self._append(self.videos_csv, [[*VIDEO_COLUMNS, *probs]], fresh=True)
        self._append(self.frames_csv, [[*FRAME_COLUMNS, *probs]], fresh=True)

    def _append(self, path: Path, rows, fresh: bool = False) -> None:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        with atomic_path(path) as temp:
            if not fresh:
                shutil.copyfile(path, temp)
            with open(temp, "a", newline="") as f:
                f.write(text.getvalue())

    def add(self, record) -> None:
        self._append(self.frames_csv, _frame_rows(record, self.classes))
        self._append(self.videos_csv, [_video_row(record, self.classes)])


def write_csv(records, out_dir: Path, classes=None) -> tuple[Path, Path]:
    """predictions.csv (one row per video) and frames.csv (one row per frame) in `out_dir`."""
    classes = classes or next((list(r.probabilities) for r in records if r.probabilities), [])
    tables = CsvTables(Path(out_dir) / "predictions.csv", Path(out_dir) / "frames.csv", classes)
    for record in records:
        tables.add(record)
    return tables.videos_csv, tables.frames_csv


def plot_timeline(record, path: Path) -> None:
    """PNG: a strip of face crops over class probabilities against time, key expression shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = list(record.probabilities or {})
    strip = _thumbnail_strip(record.thumbnails, count=10)
    fig, (top, ax) = plt.subplots(2, 1, figsize=(11, 5.4), gridspec_kw={"height_ratios": [1.1, 3]})
    duration = record.timeline[-1]["time_s"] + 1.0 / (record.fps or 30.0) if record.timeline else 1.0

    if strip is not None:
        images, times = strip
        top.imshow(images)
        width = images.shape[1] / len(times)
        top.set_xticks([(i + 0.5) * width for i in range(len(times))], [f"{t:.1f} s" for t in times], fontsize=8)
        top.tick_params(length=0)
        top.set_yticks([])
        for side in top.spines.values():
            side.set_visible(False)
    else:
        top.axis("off")
        top.text(0.5, 0.5, "no face found", ha="center", va="center", fontsize=12, transform=top.transAxes)

    times = np.array([e["time_s"] for e in record.timeline])
    colours = plt.get_cmap("tab10")
    for k, name in enumerate(classes):
        # NaN where no face: the line breaks instead of bridging the gap.
        values = np.array([e["probabilities"][name] if e["probabilities"] else np.nan for e in record.timeline])
        winner = name == record.label
        ax.plot(times, values, color=colours(k), lw=2.4 if winner else 1.2, alpha=1.0 if winner else 0.8,
                label=name + (" (video label)" if winner else ""))
    if record.key_expression:
        ax.axvspan(record.key_expression["start_s"], record.key_expression["end_s"], color="gold", alpha=0.25,
                   label="key expression")
    no_face = np.array([e["box"] is None for e in record.timeline])
    if no_face.any():
        # Frame i covers [t_i, t_i+1); the last frame lasts until the end of the video.
        ax.fill_between(np.append(times, duration), 0, 1, where=np.append(no_face, no_face[-1]), step="post",
                        color="0.85", alpha=0.6, lw=0, label="no face")
    ax.set_xlim(0, duration)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)

    title = f"{Path(record.video).name}: {record.status}"
    if record.label:
        agreement = "undefined" if record.agreement is None else f"{record.agreement:.2f}"
        title += f", {record.label} (p = {record.probabilities[record.label]:.2f}, agreement {agreement})"
    model = record.model.split(" (")[0]
    fig.suptitle(f"{title}\nmodel: {model}; face in {record.frames_with_face} of {record.num_frames} frames",
                 fontsize=10)
    fig.tight_layout()
    try:
        with atomic_path(path) as temp:
            fig.savefig(temp, dpi=110, format="png")
    finally:
        plt.close(fig)


def _thumbnail_strip(thumbnails, count: int):
    """(image (S, count * S, 3), times) of up to `count` evenly spaced face crops, or None."""
    if not thumbnails:
        return None
    picks = np.unique(np.linspace(0, len(thumbnails) - 1, min(count, len(thumbnails))).round().astype(int))
    return np.concatenate([thumbnails[i][1] for i in picks], axis=1), [thumbnails[i][0] for i in picks]


def annotate_video(record, path: Path) -> None:
    """Write a copy of the video (mp4) with the face box and the frame's label drawn on each frame."""
    with atomic_path(path) as temp:
        _annotate(record, temp)


def _annotate(record, path: Path) -> None:
    writer = None
    try:
        with VideoReader(record.video) as reader:
            for frame, entry in zip(reader, record.timeline):
                image = frame.image
                if writer is None:
                    height, width = image.shape[:2]
                    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), record.fps or 30.0,
                                             (width, height))
                if entry["box"]:
                    x0, y0, x1, y1 = entry["box"]
                    thick = max(2, round(min(image.shape[:2]) / 200))
                    cv2.rectangle(image, (x0, y0), (x1, y1), (0, 220, 0), thick)
                    p = entry["probabilities"][entry["label"]]
                    text = f"{entry['label']} {p:.2f}"
                    scale = max(0.5, (x1 - x0) / 250)
                    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
                    ty = y0 - 6 if y0 - th - 10 > 0 else y1 + th + 6
                    cv2.rectangle(image, (x0, ty - th - 4), (x0 + tw + 4, ty + 4), (0, 0, 0), -1)
                    cv2.putText(image, text, (x0 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick // 2 + 1)
                writer.write(image)
    finally:
        if writer is not None:
            writer.release()
