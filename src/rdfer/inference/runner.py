"""Many videos in one run: one progress bar, a status per file, a summary at the end.

A file that cannot be decoded or shows no face gets its own status and the
run goes on; the exit code is 0 when every file was read (even without a
face) and 1 when any failed to decode.
"""

import sys
from collections import Counter
from pathlib import Path

from rdfer.errors import RdferError
from rdfer.inference.faces import make_detector
from rdfer.inference.outputs import annotate_video, output_names, plot_timeline, write_csv, write_json
from rdfer.inference.predict import STATUSES, PredictOptions, predict_video
from rdfer.inference.predictors import load_predictor
from rdfer.inference.video import list_videos

FORMATS = ("json", "csv")


def predict_files(paths, out_dir, *, checkpoint=None, fmt: str = "json", plot: bool = False,
                  annotate: bool = False, options: PredictOptions | None = None, progress: bool = True):
    """Predict every video in `paths` (files and directories) and write the outputs to `out_dir`.

    Args:
        paths: video files and/or directories (searched recursively for videos).
        out_dir: output folder (created).
        checkpoint: a `rdfer train` checkpoint, or None for the built-in default model.
        fmt: "json" (DIR/<name>.json per video) or "csv" (predictions.csv + frames.csv).
        plot, annotate: also write DIR/<name>_timeline.png / DIR/<name>_annotated.mp4.
        options: PredictOptions (detector, detect_every, ...).
        progress: show a tqdm bar and per-file lines on stderr.

    Returns:
        (records, exit_code, summary line).
    Raises:
        RdferError: bad checkpoint, options or an empty directory (nothing processed).
    """
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise RdferError(f"unknown --format {fmt!r}; choose json or csv")
    options = options or PredictOptions()
    videos = list_videos(paths)
    predictor, detector = load_predictor(checkpoint, options.device), make_detector(options.detector)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    records = []
    bar = tqdm(videos, desc="rdfer predict", unit="video", disable=not progress, file=sys.stderr)
    for video, name in zip(bar, output_names(videos)):
        record = predict_video(video, options=options, predictor=predictor, face_detector=detector)
        records.append(record)
        if fmt == "json":
            write_json(record, out_dir / f"{name}.json")
        if plot and record.status != "error":
            plot_timeline(record, out_dir / f"{name}_timeline.png")
        if annotate and record.status != "error":
            annotate_video(record, out_dir / f"{name}_annotated.mp4")
        if progress:
            detail = record.label if record.status == "ok" else (record.error or "")
            bar.write(f"{video}: {record.status}" + (f" ({detail})" if detail else ""), file=sys.stderr)
    if fmt == "csv":
        write_csv(records, out_dir)

    counts = Counter(r.status for r in records)
    summary = (f"rdfer predict: {len(records)} video(s): "
               + ", ".join(f"{counts[s]} {s}" for s in STATUSES) + f"; outputs in {out_dir}")
    return records, (1 if counts["error"] else 0), summary
