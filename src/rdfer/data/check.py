"""`rdfer check-dataset`: what a dataset root holds, split by split.

For each split: clips listed, found (usable), missing, empty, unreadable (no
frame decodes: training stops on it, or leaves it out under skip_bad),
damaged (some frames do not decode or are cut short: the loader replaces an
undecodable frame by its nearest readable one), bad labels, malformed lines,
duplicates, clips also in the train split (overlap), per-class counts, and
for DFEW/FERV39K the official split sizes from the lists shipped with rdfer.

Every frame of every clip is decoded, as the loader decodes it (OpenCV), at
1/8 size (libjpeg still reads every byte of the file), on `workers` threads.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import cv2

from rdfer.data.files import EXACT_COUNT_EXTENSIONS, is_video_file, list_frames, opencv_path
from rdfer.data.frames import read_bytes
from rdfer.data.layouts import LAYOUTS
from rdfer.data.manifest import csv_splits, scan_split
from rdfer.data.records import Problem
from rdfer.utils.progress import progress_bar

COUNT_COLUMNS = ("listed", "found", "missing", "empty", "unreadable", "damaged", "unknown_label",
                 "malformed", "duplicate", "overlap")
_SIGNATURES = {  # extension -> (leading bytes, bytes that must appear near the end)
    ".jpg": (b"\xff\xd8\xff", b"\xff\xd9"),
    ".jpeg": (b"\xff\xd8\xff", b"\xff\xd9"),
    ".png": (b"\x89PNG\r\n\x1a\n", b"IEND"),
}


def image_looks_whole(path: str) -> bool:
    """Quick check: the file starts with its format's signature and ends with its end marker.

    A truncated JPEG (no end-of-image marker) or a zero-byte file fails.
    Formats without a known signature pass when non-empty.
    """
    try:
        size = os.path.getsize(path)
        if size == 0:
            return False
        head, tail = _SIGNATURES.get(os.path.splitext(path)[1].lower(), (b"", b""))
        with open(path, "rb") as handle:
            if handle.read(len(head)) != head:
                return False
            handle.seek(max(0, size - 64))
            return tail in handle.read()
    except OSError:
        return False


def decode_clip(path: str) -> tuple:
    """Decode every frame of a clip as the loader would.

    Returns:
        (frames, undecodable, truncated): frames listed (a video: those decoded, or
        the count its container's header gives where that is exact, an .mp4's,
        if more: the rest is cut off), frames that do not decode, frames that
        decode but lack their end marker (cut short).
    """
    if is_video_file(path) and os.path.isfile(path):
        with opencv_path(path) as readable:
            capture = cv2.VideoCapture(readable)
            try:
                reported = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0) if capture.isOpened() else 0
                decoded = 0
                while capture.isOpened() and capture.grab() and capture.retrieve()[0]:
                    decoded += 1
            finally:
                capture.release()
        # A WebM or Matroska header holds at most a duration: OpenCV's count from it is an estimate
        # (0 without one, wrong for a variable frame rate), never a sign of missing frames.
        frames = max(reported, decoded) if path.lower().endswith(EXACT_COUNT_EXTENSIONS) else decoded
        return frames, frames - decoded, 0
    names = list_frames(path)
    undecodable = truncated = 0
    for name in names:
        file = os.path.join(path, name)
        data = read_bytes(file)
        if data is None or data.size == 0 or cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
            undecodable += 1
        elif not image_looks_whole(file):
            truncated += 1
    return len(names), undecodable, truncated


def _clip_problem(record, scan, status) -> Problem | None:
    frames, undecodable, truncated = status
    where = dict(file=scan.list_file, line=scan.lines[record.clip_id], clip_id=record.clip_id)
    if frames == 0 or undecodable == frames:
        return Problem("unreadable", detail=f"none of the {frames} frames of {record.path} decodes: training "
                       "stops on it (or leaves it out with --skip-bad)", **where)
    if undecodable or truncated:
        parts = [f"{undecodable} of {frames} frames do not decode"] if undecodable else []
        parts += [f"{truncated} of {frames} frames are cut short"] if truncated else []
        return Problem("damaged", detail=f"{record.path}: {', '.join(parts)} (the loader replaces an "
                       "undecodable frame by its nearest readable one)", **where)
    return None


def official_counts(dataset: str, split: str, fold: int) -> dict | None:
    """{class name: clips} of the official split shipped with rdfer (DFEW/FERV39K), else None."""
    layout = LAYOUTS.get(dataset)
    if layout is None or not layout.shipped:
        return None
    entries, _ = layout.parse(layout.shipped_list(split, fold), None)
    counts = Counter(entry.label for entry in entries)
    return {name: counts[index] for index, name in enumerate(layout.classes)}


def check_dataset(dataset: str, root, fold: int = 1, csv_path=None, classes=None,
                  progress: bool = True, workers: int | None = None) -> dict:
    """Scan every split of a dataset root, decoding every frame; never raises for bad clips.

    Args:
        workers: decoding threads (default: the CPU count).

    Returns:
        dict: dataset, root, fold, classes, frames_root, splits {split: {counts
        per COUNT_COLUMNS, "per_class": {name: n}, "official": {name: n} or
        None}}, problems (list of Problem, every split).
    """
    dataset = dataset.lower()
    splits = csv_splits(csv_path or root) if dataset == "csv" else ("train", "test")
    report = {"dataset": dataset, "root": str(root), "fold": fold, "splits": {}, "problems": []}
    train_paths = {}
    for split in splits:
        scan = scan_split(dataset, root, split, fold=fold, csv_path=csv_path, classes=classes)
        records = []
        with ThreadPoolExecutor(workers or os.cpu_count()) as pool:
            statuses = pool.map(lambda record: decode_clip(record.path), scan.records)
            for record, status in zip(scan.records, progress_bar(statuses, enabled=progress, total=len(scan.records),
                                                                 desc=f"check {split}", unit="clip")):
                problem = _clip_problem(record, scan, status)
                if problem is not None:
                    scan.problems.append(problem)
                if problem is None or problem.kind == "damaged":
                    records.append(record)
        if split == "train":
            train_paths = {os.path.normpath(record.path): record.clip_id for record in records}
        elif train_paths:
            for record in records:
                if os.path.normpath(record.path) in train_paths:
                    scan.problems.append(Problem(
                        "overlap", scan.list_file, scan.lines[record.clip_id], record.clip_id,
                        f"also in the train split (as {train_paths[os.path.normpath(record.path)]}): a test "
                        "figure over training clips is wrong"))
        kinds = Counter(problem.kind for problem in scan.problems)
        per_class = Counter(scan.classes[record.label] for record in records)
        row = {column: kinds[column] for column in COUNT_COLUMNS}
        row.update(listed=scan.listed, found=len(records),
                   per_class={name: per_class[name] for name in scan.classes},
                   official=official_counts(dataset, split, fold))
        report["splits"][split] = row
        report["problems"].extend(scan.problems)
        report.update(classes=tuple(scan.classes), frames_root=scan.frames_root,
                      root=scan.root)
    return report


def _table(header: list, rows: list) -> list:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = []
    for row in [header] + rows:
        cells = [str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_report(report: dict, max_problems: int = 30) -> str:
    """Human-readable tables of a `check_dataset` report."""
    fold = f" fold {report['fold']}" if report["dataset"] in ("dfew", "mafw") else ""
    lines = [f"{report['dataset'].upper()}{fold} at {report['root']}",
             f"frames: {report.get('frames_root', '?')}", ""]
    splits = report["splits"]
    header = ["split", "listed", "found", "missing", "empty", "unreadable", "damaged", "bad-label",
              "malformed", "duplicate", "in-train", "official"]
    rows = []
    for split, row in splits.items():
        official = sum(row["official"].values()) if row["official"] else "-"
        rows.append([split] + [row[column] for column in COUNT_COLUMNS] + [official])
    lines += _table(header, rows) + [""]
    header = ["class"]
    for split, row in splits.items():
        header += [split] + ([f"{split}-official"] if row["official"] else [])
    rows = []
    for name in report.get("classes", ()):
        cells = [name]
        for row in splits.values():
            cells += [row["per_class"][name]] + ([row["official"][name]] if row["official"] else [])
        rows.append(cells)
    total = ["total"]
    for row in splits.values():
        total += [row["found"]] + ([sum(row["official"].values())] if row["official"] else [])
    lines += _table(header, rows + [total])
    for split, row in splits.items():
        if row["official"] and row["found"] != sum(row["official"].values()):
            lines.append(f"note: {split} has {row['found']} usable clips, the official split "
                         f"{sum(row['official'].values())}")
    problems = report["problems"]
    if problems:
        lines += ["", f"{len(problems)} problem(s)" + (f", first {max_problems}:"
                                                         if len(problems) > max_problems else ":")]
        lines += [f"  [{problem.kind}] {problem}" for problem in problems[:max_problems]]
    else:
        lines += ["", "no problems found"]
    return "\n".join(lines)


def report_has_problems(report: dict) -> bool:
    return bool(report["problems"])

