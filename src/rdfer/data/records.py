"""What reading a split gives: the validated clips (`ClipRecord`, `Manifest`), the lines of a
split list before their frames are looked at (`ListEntry`), and what was wrong (`Problem`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a dataset.

    Attributes:
        clip_id: the clip's name as written in the split file (DFEW `"1"`,
            FERV39K `"Action/Happy/0015"`, MAFW `"00025"`, CSV: the path as written).
        path: absolute frame folder or video file.
        label: 0-based index into the manifest's `classes`.
        num_frames: frames found when the manifest was built.
    """

    clip_id: str
    path: str
    label: int
    num_frames: int


@dataclass(frozen=True)
class Manifest:
    """The clips of one split of one dataset, validated once.

    Attributes:
        dataset: 'dfew', 'ferv39k', 'mafw' or 'csv' (a packed file keeps the
            name of the dataset it was packed from).
        split: 'train', 'test' (CSV: the value of its split column, or 'all').
        classes: class names; a record's label indexes this tuple.
        records: the usable clips, in split-file order.
        root: the dataset root (or CSV file) the records were read from.
        skipped: human-readable problems of the clips left out (skip_bad=True).
        packed: path of the `rdfer pack` file the frames are read from, or None
            when frames are read from `record.path`.
        sources: the files the split was read from (split list, CSV manifest).
    """

    dataset: str
    split: str
    classes: tuple
    records: tuple
    root: str
    skipped: tuple = ()
    packed: str | None = None
    sources: tuple = ()

    def __len__(self) -> int:
        return len(self.records)

    def inputs(self) -> list:
        """Every file or folder reading this split touches: its sources, its pack or its clips."""
        return [*self.sources, self.packed] if self.packed else [*self.sources, *(r.path for r in self.records)]

    def class_counts(self) -> dict:
        """Clips per class name, in class order."""
        counts = {name: 0 for name in self.classes}
        for record in self.records:
            counts[self.classes[record.label]] += 1
        return counts


@dataclass(frozen=True)
class Problem:
    """One bad line or clip met while building a manifest.

    `kind` is one of 'missing', 'empty', 'unknown_label', 'malformed',
    'duplicate' (and 'unreadable', 'damaged', 'overlap' in `rdfer check-dataset`).
    """

    kind: str
    file: str
    line: int
    clip_id: str
    detail: str

    def __str__(self) -> str:
        clip = f" clip {self.clip_id}:" if self.clip_id else ""
        return f"{self.file}:{self.line}:{clip} {self.detail}"


@dataclass(frozen=True)
class ListEntry:
    """A clip as listed in a split file, before its frames are looked at."""

    clip_id: str
    path: str
    label: int
    file: str
    line: int
