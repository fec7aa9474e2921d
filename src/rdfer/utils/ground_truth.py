"""The synthetic benchmark's ground_truth.csv, read one way by everything that scores against it.

Columns (written by `rdfer synth`): video_name, true_label, given_label (1-based
class numbers), is_noisy (the given label was flipped), is_hard (mixed or subtle
expression in files written before the hard kinds; since then: holds a kind of
`rdfer.synth.plan.HARD_KINDS`), apex_start, apex_end, then one 1/0 column per
difficulty of `KIND_COLUMNS`. Readers name the columns they need; the
others may be absent. Flags are 1/0 (true/false and True/False are accepted too).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rdfer.errors import RdferError
from rdfer.labels import clip_key
from rdfer.utils.bounded_tables import csv_table

GROUND_TRUTH_FILE = "ground_truth.csv"
# The difficulties a synthetic clip may hold, one ground-truth column each (docs/method.md, "Hard clips").
KIND_COLUMNS = ("mixed", "subtle", "occluded", "distractor", "short_apex", "lively_motion", "lighting_change",
                "talking")
_FLAGS = {"1": True, "0": False, "true": True, "false": False}


@dataclass(frozen=True)
class TruthRow:
    """One clip of a ground_truth.csv; None where the file has no such column (or an empty cell)."""

    video_name: str
    noisy: Optional[bool]  # is_noisy: the given label differs from the true one
    hard: Optional[bool]  # is_hard
    true_class: Optional[int]  # 0-based class index (the file's true_label - 1)
    given_class: Optional[int]  # 0-based class index (the file's given_label - 1)
    kinds: Optional[frozenset] = None  # the KIND_COLUMNS flagged 1; None for files without those columns
    apex_start: Optional[int] = None  # first frame of the apex (0-based; frame 00001.jpg is 0)
    apex_end: Optional[int] = None  # last frame of the apex, inclusive


def read_ground_truth(path, needed=("video_name", "is_noisy"), missing_hint: str = "") -> dict:
    """{clip key (`rdfer.labels.clip_key` of video_name): TruthRow}, in the file's order.

    Args:
        path: the ground_truth.csv.
        needed: the columns the caller uses; reading stops if one is absent.
        missing_hint: what to do when the file does not exist (appended to the error).
    Raises:
        RdferError: a missing file or column, or a cell that is not a flag / class number
            (naming the file, line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise RdferError(f"ground truth file {path} not found" + (f": {missing_hint}" if missing_hint else ""))
    with csv_table(path, dicts=True) as reader:
        absent = [name for name in needed if name not in (reader.fieldnames or [])]
        if absent:
            raise RdferError(f"{path} needs the columns {', '.join(needed)} (the synthetic benchmark's "
                             f"ground_truth.csv); it lacks {', '.join(absent)}")
        has_kinds = set(KIND_COLUMNS) <= set(reader.fieldnames or [])
        rows = {}
        for line, row in enumerate(reader, start=2):
            kinds = frozenset(k for k in KIND_COLUMNS if _cell(row, k, _flag, path, line)) if has_kinds else None
            rows[clip_key(row["video_name"])] = TruthRow(
                video_name=row["video_name"],
                noisy=_cell(row, "is_noisy", _flag, path, line), hard=_cell(row, "is_hard", _flag, path, line),
                true_class=_cell(row, "true_label", _class, path, line),
                given_class=_cell(row, "given_label", _class, path, line), kinds=kinds,
                apex_start=_cell(row, "apex_start", _frame, path, line),
                apex_end=_cell(row, "apex_end", _frame, path, line))
    return rows


def _flag(text: str) -> bool:
    return _FLAGS[text.lower()]


def _class(text: str) -> int:
    return int(text) - 1


def _frame(text: str) -> int:
    if int(text) < 0:
        raise ValueError(text)
    return int(text)


def _cell(row: dict, column: str, parse, path: Path, line: int):
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        return parse(text)
    except (KeyError, ValueError):
        what = {_flag: "1 or 0", _class: "a class number (1-based)"}.get(parse, "a frame index (0-based)")
        raise RdferError(f"{path} line {line}: {column} = {text!r} is not {what}") from None
