"""The paper's agreement tables from saved predictions (docs/method.md).

Table V:   share of each class's clips at each agreement level (percent), and
           the number of clips per class.
Table VII: accuracy (prediction == label, percent) of the clips at each
           agreement level and class, with the per-level and per-class totals.

Both are `Table`s: plain rows of numbers that print as Markdown and save as CSV.
"""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from rdfer.analysis.run import Predictions
from rdfer.labels import level_name
from rdfer.utils.outputs import atomic_open, write_text

Cell = Optional[Union[int, float]]


@dataclass(frozen=True)
class Table:
    title: str
    corner: str  # header of the row-label column
    columns: tuple  # column headers after the corner
    rows: tuple  # ((row label, (cell, ...)), ...); None = no clip to compute it from
    note: str = ""

    def value(self, row: str, column: str) -> Cell:
        """The cell at row label `row` and column header `column`."""
        return dict(self.rows)[row][self.columns.index(column)]

    def to_markdown(self, digits: int = 1) -> str:
        def fmt(cell: Cell) -> str:
            if cell is None:
                return "–"
            return str(cell) if isinstance(cell, (int, np.integer)) else f"{cell:.{digits}f}"

        lines = [f"| {self.corner} | " + " | ".join(self.columns) + " |",
                 "|---|" + "---:|" * len(self.columns)]
        lines += [f"| {label} | " + " | ".join(fmt(c) for c in cells) + " |" for label, cells in self.rows]
        return "\n".join(lines) + (f"\n\n{self.note}" if self.note else "")

    def to_csv(self, path) -> Path:
        """Write the table as CSV (empty cell where the Markdown shows –)."""
        path = Path(path)
        with atomic_open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([self.corner, *self.columns])
            for label, cells in self.rows:
                writer.writerow([label, *("" if c is None else (c if isinstance(c, (int, np.integer))
                                                               else f"{c:.4f}") for c in cells)])
        return path


def _percent(part: np.ndarray, whole: np.ndarray) -> Cell:
    """100 * (part & whole).sum() / whole.sum(), or None when `whole` is empty."""
    total = int(whole.sum())
    return 100.0 * int((part & whole).sum()) / total if total else None


def table_v(predictions: Predictions) -> Table:
    """Paper Table V: for each class, the share (%) of its clips at each agreement level.

    Rows: agreement levels present, then "Clips" (number of clips per class).
    Columns: the classes, then "All" (share of all clips at the level).
    """
    p = predictions
    everyone = np.ones(len(p), dtype=bool)
    groups = [p.label == k for k in range(len(p.classes))] + [everyone]  # one mask per column
    rows = []
    for level in p.levels:
        at_level = p.agreement == level
        rows.append((level_name(level), tuple(_percent(at_level, g) for g in groups)))
    rows.append(("Clips", tuple(int(g.sum()) for g in groups)))
    return Table("Table V: share of clips (%) per agreement level and class", "Agreement",
                 (*p.classes, "All"), tuple(rows),
                 note="Agreement = share of a clip's n1 sub-clip predictions that equal their most frequent class. "
                      "Each class column sums to 100 over the agreement levels; 'Clips' counts the class's clips.")


def table_vii(predictions: Predictions) -> Table:
    """Paper Table VII: accuracy (%) of the clips at each agreement level and class.

    Rows: agreement levels present, then "All" (per-class accuracy over all levels).
    Columns: the classes, then "All" (accuracy of all clips at the level; the
    bottom-right cell is the WAR). A cell with no clip is None.
    """
    p = predictions
    correct = p.label == p.prediction
    everyone = np.ones(len(p), dtype=bool)
    groups = [p.label == k for k in range(len(p.classes))] + [everyone]
    rows = []
    for level in p.levels:
        at_level = p.agreement == level
        rows.append((level_name(level), tuple(_percent(correct, g & at_level) for g in groups)))
    rows.append(("All", tuple(_percent(correct, g) for g in groups)))
    return Table("Table VII: accuracy (%) per agreement level and class", "Agreement",
                 (*p.classes, "All"), tuple(rows),
                 note="Accuracy = prediction equals the given label; – marks a cell with no clip.")


def write_table(table: Table, out_dir, stem: str) -> tuple[Path, Path]:
    """Write `stem`.md and `stem`.csv into `out_dir`; returns both paths."""
    out_dir = Path(out_dir)
    md = out_dir / f"{stem}.md"
    write_text(md, f"## {table.title}\n\n{table.to_markdown()}\n")
    return md, table.to_csv(out_dir / f"{stem}.csv")
