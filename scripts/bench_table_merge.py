"""What merging into a large `predict` table costs (rdfer.inference.outputs.CsvTables), in seconds.

    python scripts/bench_table_merge.py --rows 300000

Writes a frames.csv of ROWS rows (3000 per video, 7 classes) in a temporary folder, then times: opening
it for a run (one parse), adding a new video (a copy and an append: the file is as this writer left it),
and another writer re-predicting a video already in it (parse, drop its rows, rewrite). Load-dependent:
run it on the machine you care about.
"""

import argparse
import csv
import tempfile
import time
from pathlib import Path

from rdfer.inference.outputs import CsvTables, frame_columns
from rdfer.inference.records import VideoPrediction

CLASSES = ["A", "B", "C", "D", "E", "F", "G"]


def _failed(video: str) -> VideoPrediction:
    return VideoPrediction(video, None, 0, 0, "error", "x", "m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="frames.csv rows before the run (default 300000)")
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        with open(folder / "frames.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(frame_columns(CLASSES))
            for i in range(rows):
                writer.writerow([f"/videos/v{i // 3000}.mp4", 1, True, i, i / 30, 1, 2, 3, 4, "A", 0.5, "A"]
                                + [0.1] * 2 * len(CLASSES))
        size = (folder / "frames.csv").stat().st_size / 1e6
        started = time.perf_counter()
        tables = CsvTables(folder / "predictions.csv", folder / "frames.csv", CLASSES)
        opened = time.perf_counter() - started
        started = time.perf_counter()
        for k in range(10):
            tables.add(_failed(f"/videos/new{k}.mp4"))
        added = (time.perf_counter() - started) / 10
        started = time.perf_counter()
        other = CsvTables(folder / "predictions.csv", folder / "frames.csv", CLASSES)
        other.add(_failed("/videos/v0.mp4"))
        again = time.perf_counter() - started
    print(f"frames.csv of {rows} rows ({size:.0f} MB): open {opened:.2f} s; add a new video {added:.3f} s (mean "
          f"of 10); another writer re-predicting a stored video (open, drop its rows, rewrite) {again:.2f} s")


if __name__ == "__main__":
    main()
