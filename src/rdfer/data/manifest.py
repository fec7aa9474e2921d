"""Dataset manifests: a dataset's own split files turned into clip records once.

`build_manifest` reads the split list of one official layout (DFEW, FERV39K,
MAFW), a generic CSV, or a packed file written by `rdfer pack`, checks every
listed clip once (folder present and holding frames, label known, line well
formed, each clip listed once) and returns a frozen `Manifest`. Every problem
found is collected: the one-line `RdferError` gives their count and the first
ten (file, line, clip; `rdfer check-dataset` lists all), or, with
`skip_bad=True`, each is named in a warning and listed in `Manifest.skipped`.
Clips that pass here but none of whose frames decode are met by the loader
(`rdfer.data.loader.CheckedLoader`); `check_disjoint` finds a clip in both splits.

Layouts: DFEW, FERV39K and MAFW as declared in `rdfer.data.layouts`. A split
list must be under ROOT: rdfer ships the official DFEW and FERV39K lists
(`layouts.shipped_split_file`) but never uses them for a user's root on its own, since
a root holding other clips under DFEW ids would silently get the official
labels and split. CSV: `path,label[,split]` (header optional); paths relative
to the CSV's folder or absolute, each a frame folder or a video file; labels
by class name or by 0-based index into the class order (see `build_manifest`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rdfer.data.files import (
    IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, count_video_frames, is_video_file, list_frames, special_file_kind,
)
from rdfer.data.layouts import DFEW, FERV39K, LAYOUTS, MAFW, SOURCES, SPLITS
from rdfer.data.pack import read_pack_manifest
from rdfer.data.records import ClipRecord, ListEntry, Manifest, Problem
from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES, FERV39K_TO_DFEW, MAFW_CLASSES
from rdfer.utils.bounded_tables import csv_table

# How many problems a warning lists, and the one-line error, before "... and N more".
MAX_LISTED_PROBLEMS = 100
MAX_IN_ERROR = 10


@dataclass
class Scan:
    """What reading one split found: usable records and every problem."""

    dataset: str
    split: str
    classes: tuple
    root: str
    list_file: str
    frames_root: str
    listed: int = 0
    records: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    lines: dict = field(default_factory=dict)  # clip_id -> line in list_file


def _check_clip(entry: ListEntry, scan: Scan) -> None:
    """Append a record for `entry` to scan.records, or a problem to scan.problems."""
    where = dict(file=entry.file, line=entry.line, clip_id=entry.clip_id)
    scan.lines[entry.clip_id] = entry.line
    if os.path.isdir(entry.path):
        num_frames = len(list_frames(entry.path))
        if num_frames == 0:
            scan.problems.append(Problem(
                "empty", detail=f"frame folder {entry.path} holds no image files "
                f"({'/'.join(IMAGE_EXTENSIONS)})", **where))
            return
    elif os.path.isfile(entry.path) and is_video_file(entry.path):
        num_frames = count_video_frames(entry.path)
        if num_frames == 0:
            scan.problems.append(Problem(
                "empty", detail=f"video {entry.path} cannot be opened or has no frames", **where))
            return
    elif os.path.isfile(entry.path):
        scan.problems.append(Problem(
            "missing", detail=f"{entry.path} is a file but neither a frame folder nor a video "
            f"({'/'.join(VIDEO_EXTENSIONS)})", **where))
        return
    elif special_file_kind(entry.path):
        scan.problems.append(Problem(
            "missing", detail=f"{entry.path} is {special_file_kind(entry.path)}, not a frame folder or a video "
            "file", **where))
        return
    else:
        scan.problems.append(Problem(
            "missing", detail=f"frame folder {entry.path} does not exist", **where))
        return
    scan.records.append(ClipRecord(entry.clip_id, entry.path, entry.label, num_frames))


# ----------------------------------------------------------------------------- split files


def _check_split(dataset: str, split: str, allowed=("train", "test")) -> None:
    if split not in allowed:
        raise RdferError(f"{dataset}: unknown split {split!r}; use one of {', '.join(allowed)}")


def _check_fold(dataset: str, fold: int) -> None:
    if fold not in (1, 2, 3, 4, 5):
        raise RdferError(f"{dataset}: fold must be 1..5, got {fold!r}")


def _missing_list(name: str, list_file: Path, root: Path, shipped: Path) -> None:
    """Stop: a layout's split file is missing (never fall back to the shipped official lists)."""
    raise RdferError(f"{name} split list {list_file} not found; if {root} holds the official {name} clips, copy "
                     f"rdfer's copy of the official lists there (cp -r {shipped} {list_file.parents[1]}/), else "
                     f"write your own list in that format (or use --dataset csv)")


def _dfew_scan(root: Path, split: str, fold: int) -> tuple:
    _check_split("dfew", split)
    _check_fold("dfew", fold)
    list_file = DFEW.list_file(root, split, fold)
    frames_root = DFEW.frames_root(root)
    if frames_root is None:
        raise RdferError(f"DFEW frames not found: expected {root / DFEW.written}/NNNNN/*.jpg "
                         f"(or clip_224x224/clip_224x224/, clip_224x224_16f/) under {root}; "
                         "pass the folder holding Clip/ and EmoLabel_DataSplit/ as --root")
    if not list_file.is_file():
        _missing_list("DFEW", list_file, root, DFEW.shipped_list(split, fold).parents[1])
    return DFEW.classes, list_file, frames_root, DFEW.parse


def _ferv39k_scan(root: Path, split: str, fold: int) -> tuple:
    _check_split("ferv39k", split)
    list_file = FERV39K.list_file(root, split)
    frames_root = FERV39K.frames_root(root)
    if frames_root is None:
        raise RdferError(f"FERV39K frames not found: expected {root / FERV39K.written}/Scene/Emotion/clip/; "
                         "pass the folder holding 2_ClipsforFaceCrop/ and 4_setups/ as --root")
    if not list_file.is_file():
        _missing_list("FERV39K", list_file, root, FERV39K.shipped_list(split).parents[1])
    return FERV39K.classes, list_file, frames_root, FERV39K.parse


def _mafw_scan(root: Path, split: str, fold: int) -> tuple:
    _check_split("mafw", split)
    _check_fold("mafw", fold)
    list_file = MAFW.list_file(root, split, fold)
    if not list_file.is_file():
        raise RdferError(f"MAFW split list not found: {list_file}; pass the MAFW root "
                         "(holding split/ and data/) as --root")
    frames_root = MAFW.frames_root(root)
    if frames_root is None:
        raise RdferError(f"MAFW frames not found: expected {root / MAFW.written}/NNNNN/")
    return MAFW.classes, list_file, frames_root, MAFW.parse


# ----------------------------------------------------------------------------- generic CSV


def _resolve_classes(classes) -> tuple | None:
    """`classes` may be None, 'dfew', 'mafw', or a sequence of names."""
    if classes is None:
        return None
    if isinstance(classes, str):
        named = {"dfew": DFEW_CLASSES, "ferv39k": DFEW_CLASSES, "mafw": MAFW_CLASSES}
        if classes.lower() in named:
            return named[classes.lower()]
        return tuple(name.strip() for name in classes.split(",") if name.strip())
    return tuple(classes)


def _label_lookup(classes: tuple) -> dict:
    lookup = {name.lower(): index for index, name in enumerate(classes)}
    if classes == DFEW_CLASSES:
        lookup.update({name.lower(): index for name, index in FERV39K_TO_DFEW.items()})
    return lookup


# The columns of a CSV manifest, and words that mark a first line as a header of some other naming.
CSV_COLUMNS = ("path", "label", "split")
HEADER_WORDS = {*CSV_COLUMNS, "video", "file", "filename", "clip", "clip_id", "frames", "folder", "class",
                "emotion", "expression", "category", "target", "fold", "set", "subset"}


def _csv_rows(csv_file: Path) -> tuple:
    """(rows, problems): rows are (line, path, label, split or None)."""
    rows, problems = [], []
    try:
        with csv_table(csv_file) as table:
            lines = list(table)
    except OSError as error:
        raise RdferError(f"cannot read CSV manifest {csv_file}: {error}")
    columns = {"path": 0, "label": 1, "split": 2}
    for number, fields in enumerate(lines, 1):
        fields = [part.strip() for part in fields]
        if not any(fields):
            continue
        lowered = [part.lower() for part in fields]
        if number == 1 and "path" in lowered and "label" in lowered:
            columns = {name: lowered.index(name) for name in ("path", "label", "split")
                       if name in lowered}
            continue
        if number == 1 and set(lowered) & HEADER_WORDS:  # a header, but not rdfer's: never a clip of class "label"
            raise RdferError(f"{csv_file}:1: the header {','.join(fields)!r} is not one rdfer reads: a CSV "
                             f"manifest's columns are {', '.join(CSV_COLUMNS)} (split optional, any order; "
                             "or no header: path,label[,split]); rename its columns")
        width = max(columns.values()) + 1
        if len(fields) < min(width, 2) or len(fields) > max(width, 3) \
                or not fields[columns["path"]] or not fields[columns["label"]]:
            problems.append(Problem("malformed", str(csv_file), number, "",
                                    f"malformed line {','.join(fields)!r}: expected "
                                    "`path,label[,split]`"))
            continue
        split = fields[columns["split"]] if "split" in columns and len(fields) > columns["split"] \
            else None
        rows.append((number, fields[columns["path"]], fields[columns["label"]], split))
    return rows, problems


def _csv_scan(csv_file: Path, split: str, classes) -> Scan:
    if not csv_file.is_file():
        raise RdferError(f"CSV manifest not found: {csv_file}; pass it with --csv FILE")
    rows, problems = _csv_rows(csv_file)
    classes = _resolve_classes(classes)
    if classes is None:
        names = {label for _, _, label, _ in rows if not label.lstrip("-").isdigit()}
        dfew_names = _label_lookup(DFEW_CLASSES)
        if all(name.lower() in dfew_names for name in names):
            classes = DFEW_CLASSES  # also when every label is an index
        elif all(name.lower() in _label_lookup(MAFW_CLASSES) for name in names):
            classes = MAFW_CLASSES
        else:
            classes = tuple(sorted(names))  # over every split of the file, so indices agree
    lookup = _label_lookup(classes)
    split_names = {row_split for _, _, _, row_split in rows if row_split}
    scan = Scan("csv", split, classes, str(csv_file), str(csv_file), str(csv_file.parent))
    scan.problems.extend(problems)
    if split_names and split not in split_names and split != "all":
        raise RdferError(f"{csv_file}: no rows with split {split!r}; its splits are "
                         f"{', '.join(sorted(split_names))}")
    seen = {}  # resolved clip path -> line: "a/b" and "./a/b" are one clip
    for number, path_text, label_text, row_split in rows:
        if split_names and split != "all" and row_split != split:
            continue
        scan.listed += 1
        if label_text.lstrip("-").isdigit():
            label = int(label_text)
            known = 0 <= label < len(classes)
        else:
            label = lookup.get(label_text.lower(), -1)
            known = label >= 0
        if not known:
            scan.problems.append(Problem("unknown_label", str(csv_file), number, path_text,
                                         f"unknown label {label_text!r}; classes are "
                                         f"{', '.join(classes)} (names, or 0-based indices)"))
            continue
        path = (Path(path_text) if os.path.isabs(path_text) else csv_file.parent / path_text).resolve()
        if str(path) in seen:
            scan.problems.append(Problem("duplicate", str(csv_file), number, path_text,
                                         f"listed again (first on line {seen[str(path)]}, same clip)"))
            continue
        seen[str(path)] = number
        _check_clip(ListEntry(path_text, str(path), label, str(csv_file), number), scan)
    return scan


def csv_splits(csv_file: str | os.PathLike) -> tuple:
    """Split names a CSV manifest holds (its split column), or ('all',) without one."""
    rows, _ = _csv_rows(Path(csv_file))
    names = dict.fromkeys(row_split for _, _, _, row_split in rows if row_split)  # file order
    return tuple(names) or ("all",)


# ----------------------------------------------------------------------------- entry points

_LAYOUTS = {"dfew": _dfew_scan, "ferv39k": _ferv39k_scan, "mafw": _mafw_scan}


def scan_split(dataset: str, root, split: str, fold: int = 1, csv_path=None,
               classes=None) -> Scan:
    """Read one split and check every listed clip; never raises for bad clips.

    Used by `build_manifest` and `rdfer check-dataset`. Raises RdferError only
    for problems that stop everything (unknown dataset, no frame folder, no list).
    """
    dataset = dataset.lower()
    if dataset == "csv":
        csv_file = Path(csv_path) if csv_path else Path(root)
        if csv_file.is_dir():
            raise RdferError(f"--dataset csv needs a CSV file: pass --csv FILE (got folder {root})")
        return _csv_scan(csv_file.resolve(), split, classes)
    if dataset not in _LAYOUTS:
        raise RdferError(f"unknown dataset {dataset!r}; use one of {', '.join(SOURCES)}")
    root = Path(root).resolve()
    if not root.is_dir():
        raise RdferError(f"{dataset} root {root} is not a folder")
    classes, list_file, frames_root, parse = _LAYOUTS[dataset](root, split, fold)
    entries, problems = parse(list_file, frames_root)
    scan = Scan(dataset, split, classes, str(root), str(list_file), str(frames_root))
    scan.listed = len(entries) + sum(problem.kind == "unknown_label" for problem in problems)
    scan.problems.extend(problems)
    seen = {}  # clip folder -> line: DFEW's "0004" and "4" name the same clip
    for entry in entries:
        key = os.path.normpath(entry.path)
        if key in seen:
            scan.problems.append(Problem("duplicate", entry.file, entry.line, entry.clip_id,
                                         f"listed again (first on line {seen[key]}, same clip folder)"))
            continue
        seen[key] = entry.line
        _check_clip(entry, scan)
    return scan


def warn_skipped(where: str, problems: list, limit: int = MAX_LISTED_PROBLEMS) -> None:
    """Name every clip left out under skip_bad (up to `limit`) in one warning."""
    lines = [f"  {problem}" for problem in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more (rdfer check-dataset lists them all)")
    warnings.warn(f"skip_bad: {where}: skipped {len(problems)} bad line(s)/clip(s):\n" + "\n".join(lines),
                  stacklevel=3)


def split_validation(train: Manifest, fraction: float, seed: int) -> tuple[Manifest, Manifest]:
    """Hold out a validation part of the training clips, stratified by label and seeded.

    round(fraction * clips) clips (at least 1) are held out, shared among the classes in proportion
    to their clips (largest remainders first, ties broken at random; a class never gives all its
    clips), each class's drawn at random with numpy's generator seeded with `seed`. Both parts keep
    split-file order.

    Returns:
        (the training clips left, the validation clips); the validation part is empty with fraction 0
        and (with a warning) when every class has a single clip.
    """
    empty = replace(train, split=f"{train.split}[val]", records=(), skipped=())
    if fraction <= 0:
        return train, empty
    rng = np.random.default_rng(seed)
    members = [[i for i, r in enumerate(train.records) if r.label == k] for k in range(len(train.classes))]
    room = np.array([max(0, len(m) - 1) for m in members])  # a class keeps at least one training clip
    wanted = min(max(1, round(fraction * len(train.records))), int(room.sum()))
    share = fraction * np.array([len(m) for m in members], dtype=float)
    quota = np.minimum(np.floor(share).astype(int), room)
    order = np.lexsort((rng.random(len(members)), -(share - np.floor(share))))  # largest remainder first
    while quota.sum() < wanted:
        for k in order:
            if quota.sum() < wanted and quota[k] < room[k]:
                quota[k] += 1
    held = set()
    for k, count in enumerate(quota):
        held.update(rng.permutation(members[k])[:count].tolist())
    if not held:  # every class has a single clip: nothing can be spared
        warnings.warn(f"data.val_fraction {fraction}: {train.dataset} {train.split} has one clip per class, too few "
                      "to hold a validation part out: training on all of them, the last epoch reported as best",
                      stacklevel=2)
        return train, empty
    kept = tuple(r for i, r in enumerate(train.records) if i not in held)
    val = tuple(r for i, r in enumerate(train.records) if i in held)
    return replace(train, records=kept), replace(empty, records=val)


def check_disjoint(train: Manifest, test: Manifest, skip_bad: bool = False) -> Manifest:
    """Stop when a clip is in both splits (the test figure would include training clips).

    A clip is the same when its folder or video is (so DFEW's "0004" and "4" match).
    With skip_bad the shared clips are left out of the train split, with a warning.

    Returns:
        the train manifest (without the shared clips under skip_bad).
    """
    test_paths = {os.path.normpath(record.path): record.clip_id for record in test.records}
    shared = [record for record in train.records if os.path.normpath(record.path) in test_paths]
    if not shared:
        return train
    named = ", ".join(f"{record.clip_id} (test: {test_paths[os.path.normpath(record.path)]})"
                      for record in shared[:5]) + (f" and {len(shared) - 5} more" if len(shared) > 5 else "")
    if not skip_bad:
        raise RdferError(f"{len(shared)} clip(s) are in both the {train.split} and the {test.split} split of "
                         f"{train.root}: {named}; a test figure over training clips is wrong: fix the split "
                         "lists, or pass --skip-bad (data.skip_bad: true) to leave them out of training")
    problems = [f"clip {record.clip_id}: also in the {test.split} split, left out of {train.split}"
                for record in shared]
    warn_skipped(f"{train.dataset} {train.split}", problems)
    kept = tuple(record for record in train.records if os.path.normpath(record.path) not in test_paths)
    if not kept:
        raise RdferError(f"every clip of {train.split} is also in {test.split}: fix the split lists")
    return replace(train, records=kept, skipped=train.skipped + tuple(problems))


def format_problems(problems, limit: int = MAX_LISTED_PROBLEMS) -> str:
    lines = [f"  {problem}" for problem in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more (rdfer check-dataset lists them all)")
    return "\n".join(lines)


def build_manifest(dataset: str, root, split: str, fold: int = 1, skip_bad: bool = False,
                   csv_path=None, classes=None) -> Manifest:
    """Read one split of a dataset into a validated `Manifest`.

    Args:
        dataset: 'dfew', 'ferv39k', 'mafw', 'csv', or 'packed' (a file written
            by `rdfer pack`; `root` is that file, `split` must match the packed
            split, frames are then read from the pack).
        root: the dataset root (see the module docstring for each layout); for
            'csv' the CSV file itself when `csv_path` is not given.
        split: 'train' or 'test'; for 'csv' a value of its split column, or
            'all' (a CSV without a split column gives all rows for any split).
        fold: DFEW/MAFW fold 1..5 (ignored by FERV39K and CSV).
        skip_bad: leave out bad clips with a warning instead of raising.
        csv_path: the CSV manifest for dataset='csv'.
        classes: CSV only: 'dfew', 'mafw', or class names in order. By default
            the class order is DFEW's when every label is a DFEW/FERV39K name or
            an index, MAFW's when every name is a MAFW class, else the sorted
            label names of the whole file. Index labels are 0-based.

    Returns:
        Manifest with records in split-file order, labels 0-based in `classes`.

    Raises:
        RdferError: one line with the count of bad lines/clips and the first
            ten (file, line, clip id), unless skip_bad; or when no usable clip
            remains.
    """
    if dataset.lower() == "packed":
        return read_pack_manifest(root, split)
    scan = scan_split(dataset, root, split, fold=fold, csv_path=csv_path, classes=classes)
    where = f"{scan.dataset} {split}" + (f" fold {fold}" if dataset in ("dfew", "mafw") else "")
    if scan.problems and not skip_bad:
        problems = sorted(scan.problems, key=lambda problem: (problem.file, problem.line))
        shown = "; ".join(str(problem) for problem in problems[:MAX_IN_ERROR])
        more = f"; and {len(problems) - MAX_IN_ERROR} more" if len(problems) > MAX_IN_ERROR else ""
        raise RdferError(
            f"{len(scan.problems)} problem(s) in {where} ({scan.list_file}): {shown}{more}; "
            f"`rdfer check-dataset` lists them all; fix them, or pass --skip-bad "
            "(data.skip_bad: true in a config) to leave these clips out")
    if scan.problems:
        warn_skipped(where, [str(problem) for problem in scan.problems])
    if not scan.records:
        raise RdferError(f"{where}: no usable clips in {scan.list_file}")
    return Manifest(dataset=scan.dataset, split=split, classes=tuple(scan.classes),
                    records=tuple(scan.records), root=scan.root,
                    skipped=tuple(str(problem) for problem in scan.problems), sources=(scan.list_file,))


def dataset_files(dataset: str, root) -> list:
    """The split lists of every split and fold of a dataset root, and its ground_truth.csv, where they exist:
    files an output must never replace, whichever split a command reads."""
    layout = LAYOUTS.get(str(dataset).lower())
    if layout is None or not root or not Path(root).is_dir():
        return []
    candidates = [layout.list_file(Path(root), split, fold) for split in SPLITS for fold in (layout.folds or (1,))]
    return [str(path) for path in [*candidates, Path(root) / "ground_truth.csv"] if path.is_file()]


def load_manifests(data) -> tuple:
    """The (train, test) manifests of a config's data section (`rdfer.schema.DataConfig`),
    the clips of the test split left out of (or, without skip_bad, stopping) the train one."""
    if not data.root and data.dataset != "csv":
        raise RdferError("data.root is not set: give --set data.root=PATH (the dataset's root folder)")
    common = dict(fold=data.fold, skip_bad=data.skip_bad, csv_path=data.csv)
    train = build_manifest(data.dataset, data.root, data.train_split, **common)
    test = build_manifest(data.dataset, data.root, data.test_split, **common)
    return check_disjoint(train, test, skip_bad=data.skip_bad), test
