"""What `rdfer predict` writes: JSON per video, CSV tables, timeline plots, annotated videos.

- `DIR/<video name>.json`: `VideoPrediction.to_dict()`.
- `DIR/predictions.csv`: one row per video; `DIR/frames.csv`: one row per frame
  of every video (time, label, box, per-class probabilities).
- `DIR/<video name>_timeline.png` (`--plot`), `DIR/<video name>_annotated.mp4` (`--annotate`).

Video names are the file stems; when two inputs share a stem (a/x.mp4,
b/x.mp4, x.mov) the later ones get a numbered name (x-2, x-3, ...).
"""

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from rdfer.inference.video import VideoReader

VIDEO_COLUMNS = ("video", "status", "error", "model", "label", "agreement", "fps", "num_frames",
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


def write_json(record, path: Path) -> None:
    path.write_text(json.dumps(record.to_dict(), indent=1) + "\n")


def _class_names(records) -> list[str]:
    for record in records:
        if record.probabilities:
            return list(record.probabilities)
    return []


def write_csv(records, out_dir: Path) -> tuple[Path, Path]:
    """predictions.csv (one row per video) and frames.csv (one row per frame) in `out_dir`."""
    classes = _class_names(records)
    videos_csv, frames_csv = out_dir / "predictions.csv", out_dir / "frames.csv"
    with open(videos_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*VIDEO_COLUMNS, *(f"p_{c}" for c in classes)])
        for r in records:
            key = r.key_expression or {}
            probs = r.probabilities or {}
            writer.writerow([r.video, r.status, r.error or "", r.model, r.label or "",
                             "" if r.agreement is None else r.agreement,
                             "" if r.fps is None else round(r.fps, 4), r.num_frames, r.frames_with_face,
                             key.get("start_s", ""), key.get("end_s", ""), *(probs.get(c, "") for c in classes)])
    with open(frames_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*FRAME_COLUMNS, *(f"p_{c}" for c in classes)])
        for r in records:
            for index, entry in enumerate(r.timeline):
                box = entry["box"] or [""] * 4
                probs = entry["probabilities"] or {}
                writer.writerow([r.video, index, round(entry["time_s"], 6), entry["label"] or "", *box,
                                 *(probs.get(c, "") for c in classes)])
    return videos_csv, frames_csv


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
        title += f", {record.label} (p = {record.probabilities[record.label]:.2f}, agreement {record.agreement:.2f})"
    model = record.model.split(" (")[0]
    fig.suptitle(f"{title}\nmodel: {model}; face in {record.frames_with_face} of {record.num_frames} frames",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _thumbnail_strip(thumbnails, count: int):
    """(image (S, count * S, 3), times) of up to `count` evenly spaced face crops, or None."""
    if not thumbnails:
        return None
    picks = np.unique(np.linspace(0, len(thumbnails) - 1, min(count, len(thumbnails))).round().astype(int))
    return np.concatenate([thumbnails[i][1] for i in picks], axis=1), [thumbnails[i][0] for i in picks]


def annotate_video(record, path: Path) -> None:
    """Write a copy of the video (mp4) with the face box and the frame's label drawn on each frame."""
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
