"""Dataset layouts, declared once: where each dataset keeps its split lists and frames.

Read by the manifests (`rdfer.data.manifest`), `rdfer check-dataset`, the synthetic
benchmark's writers (`rdfer.synth`), `rdfer bench data`'s stand-in and the CLI's
`--dataset` choices. ROOT is the dataset root the user passes:

- DFEW: `ROOT/EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv`
  (`video_name,label`, labels 1..7 in DFEW order); frames in
  `ROOT/Clip/clip_224x224/NNNNN/*.jpg` (also the doubled
  `clip_224x224/clip_224x224/` and `clip_224x224_16f/`).
- FERV39K: `ROOT/4_setups/All_scenes/{train,test}_All.csv`, one
  `Scene/Emotion/clip Emotion` per line (header or not); frames in
  `ROOT/2_ClipsforFaceCrop/Scene/Emotion/clip/`. Names map onto DFEW order.
- MAFW: `ROOT/split/single/no_caption/set_{1..5}/{train,test}.txt`, lines
  `NNNNN.mp4 label` with the label a class name (`anger`, as in MAFW's files)
  or its 1-based number (1 = Anger ... 11 = Disappointment, the order of
  `rdfer.labels.MAFW_CLASSES`); frames in `ROOT/data/faces/NNNNN/` (or
  `ROOT/data/frames/NNNNN/`).
- CSV: `path,label[,split]` (one file, no fixed folders; see `rdfer.data.manifest`).

rdfer ships the official DFEW and FERV39K lists (`shipped_split_file`, with
`frame_counts.csv` beside them) for `rdfer check-dataset`'s official sizes and
the full-scale synthetic benchmark; it never reads them for a user's root.

This module imports nothing heavy (the CLI reads `DATASETS` while building its parser).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

from rdfer.data.records import ListEntry, Problem
from rdfer.labels import DFEW_CLASSES, FERV39K_TO_DFEW, MAFW_CLASSES
from rdfer.utils.bounded_tables import text_lines

# `--dataset` choices; a config's data.dataset may also be "packed" (a file written by `rdfer pack`).
DATASETS = ("dfew", "ferv39k", "mafw", "csv")
SOURCES = DATASETS + ("packed",)
SPLITS = ("train", "test")
# The layouts `rdfer synth` writes its benchmark in (the CLI's --layout choices).
SYNTH_LAYOUTS = ("dfew", "ferv39k")


@dataclass(frozen=True)
class Layout:
    """Where one official dataset keeps its split lists and frames (paths relative to ROOT).

    Attributes:
        name, title: "dfew" / "DFEW".
        classes: class names in label order.
        folds: the folds of its lists (DFEW, MAFW 1..5), or () for one train/test split.
        lists: the split list of (split, fold): a format string with {split} and {fold}.
        frames: folders that may hold the clips' frame folders; the first that exists wins.
        written: the one of `frames` that rdfer's writers (the synthetic benchmark) fill.
        clip_folder: a clip id -> its frame folder's name under the frames folder.
        parse: (list file, frames folder or None) -> (ListEntry list, Problem list).
        shipped: rdfer carries the official lists (under rdfer/splits/NAME/, same paths).
    """

    name: str
    title: str
    classes: tuple
    folds: tuple
    lists: str
    frames: tuple
    written: str
    clip_folder: Callable[[str], str]
    parse: Callable
    shipped: bool = False

    def list_file(self, root, split: str, fold: int = 1) -> Path:
        """ROOT's split list of `split` (and `fold`)."""
        return Path(root) / self.lists.format(split=split, fold=fold)

    def frames_root(self, root) -> Optional[Path]:
        """The first of `frames` that exists under ROOT, or None."""
        for candidate in self.frames:
            if (Path(root) / candidate).is_dir():
                return Path(root) / candidate
        return None

    def written_clip(self, clip_id: str) -> str:
        """A clip's frame folder relative to ROOT, where rdfer's writers put it."""
        return f"{self.written}/{self.clip_folder(clip_id)}"

    def top_folders(self) -> tuple:
        """ROOT's first-level folders that this layout's lists and written frames live in."""
        return tuple(dict.fromkeys(path.split("/")[0] for path in (self.lists, self.written)))

    def shipped_dir(self) -> Path:
        """rdfer's copy of the official lists (`frame_counts.csv` beside them)."""
        if not self.shipped:
            raise ValueError(f"no shipped split list for {self.name!r}")
        return Path(str(resources.files("rdfer") / "splits" / self.name))

    def shipped_list(self, split: str, fold: int = 1) -> Path:
        """rdfer's copy of the official list of (split, fold)."""
        return self.list_file(self.shipped_dir(), split, fold)


def read_lines(path: Path) -> list:
    """(line number, stripped text) of each non-blank line of a split list (within rdfer.utils.bounded_tables'
    bounds)."""
    return text_lines(path, "split list")




def parse_dfew_list(path: Path, frames_root: Path | None) -> tuple:
    """(ListEntry list, Problem list) of a DFEW split CSV (`video_name,label`, labels 1..7)."""
    entries, problems = [], []
    for number, line in read_lines(path):
        fields = [part.strip() for part in line.split(",")]
        if number == 1 and not fields[0].isdigit():
            continue  # header `video_name,label`
        if len(fields) != 2 or not fields[0].isdigit() or not fields[1].lstrip("-").isdigit():
            problems.append(Problem("malformed", str(path), number, "",
                                    f"malformed line {line!r}: expected `video_name,label` "
                                    "(clip number, label 1..7)"))
            continue
        clip_id, label = fields[0], int(fields[1])
        if not 1 <= label <= len(DFEW_CLASSES):
            problems.append(Problem("unknown_label", str(path), number, clip_id,
                                    f"unknown label {label}: DFEW labels are 1..7 "
                                    f"({', '.join(DFEW_CLASSES)})"))
            continue
        folder = frames_root / DFEW.clip_folder(clip_id) if frames_root else Path(DFEW.clip_folder(clip_id))
        entries.append(ListEntry(clip_id, str(folder), label - 1, str(path), number))
    return entries, problems


def parse_ferv39k_list(path: Path, frames_root: Path | None) -> tuple:
    """Entries and problems of a FERV39K split list (`Scene/Emotion/clip Emotion`)."""
    by_name = {name.lower(): index for name, index in FERV39K_TO_DFEW.items()}
    entries, problems = [], []
    for number, line in read_lines(path):
        fields = line.replace(",", " ").split()
        if number == 1 and fields and "/" not in fields[0]:
            continue  # header line
        if len(fields) != 2 or "/" not in fields[0]:
            problems.append(Problem("malformed", str(path), number, "",
                                    f"malformed line {line!r}: expected `Scene/Emotion/clip Emotion`"))
            continue
        clip_id, name = fields
        if name.lower() not in by_name:
            problems.append(Problem("unknown_label", str(path), number, clip_id,
                                    f"unknown emotion {name!r}; expected one of "
                                    f"{', '.join(FERV39K_TO_DFEW)}"))
            continue
        folder = frames_root / clip_id if frames_root else Path(clip_id)
        entries.append(ListEntry(clip_id, str(folder), by_name[name.lower()], str(path), number))
    return entries, problems


def parse_mafw_list(path: Path, frames_root: Path | None) -> tuple:
    """Entries and problems of a MAFW split list (`NNNNN.mp4 label`)."""
    by_name = {name.lower(): index for index, name in enumerate(MAFW_CLASSES)}
    entries, problems = [], []
    for number, line in read_lines(path):
        fields = line.replace(",", " ").split()
        if len(fields) != 2:
            problems.append(Problem("malformed", str(path), number, "",
                                    f"malformed line {line!r}: expected `NNNNN.mp4 label`"))
            continue
        clip_id = os.path.splitext(fields[0])[0]
        label_text = fields[1]
        if label_text.isdigit() and 1 <= int(label_text) <= len(MAFW_CLASSES):
            label = int(label_text) - 1
        elif label_text.lower() in by_name:
            label = by_name[label_text.lower()]
        else:
            problems.append(Problem("unknown_label", str(path), number, clip_id,
                                    f"unknown label {label_text!r}: MAFW labels are 1..11 or "
                                    f"names ({', '.join(MAFW_CLASSES)})"))
            continue
        folder = frames_root / clip_id if frames_root else Path(clip_id)
        entries.append(ListEntry(clip_id, str(folder), label, str(path), number))
    return entries, problems


DFEW = Layout("dfew", "DFEW", DFEW_CLASSES, (1, 2, 3, 4, 5), "EmoLabel_DataSplit/{split}(single-labeled)/set_{fold}.csv",
              ("Clip/clip_224x224/clip_224x224", "Clip/clip_224x224", "Clip/clip_224x224_16f"), "Clip/clip_224x224",
              lambda clip_id: clip_id.zfill(5), parse_dfew_list, shipped=True)
FERV39K = Layout("ferv39k", "FERV39K", DFEW_CLASSES, (), "4_setups/All_scenes/{split}_All.csv",
                 ("2_ClipsforFaceCrop",), "2_ClipsforFaceCrop", lambda clip_id: clip_id, parse_ferv39k_list,
                 shipped=True)
MAFW = Layout("mafw", "MAFW", MAFW_CLASSES, (1, 2, 3, 4, 5), "split/single/no_caption/set_{fold}/{split}.txt",
              ("data/faces", "data/frames"), "data/faces", lambda clip_id: clip_id, parse_mafw_list)
LAYOUTS = {layout.name: layout for layout in (DFEW, FERV39K, MAFW)}


def shipped_split_file(dataset: str, split: str, fold: int = 1) -> Path:
    """The official split list shipped inside rdfer (DFEW and FERV39K only)."""
    if dataset not in LAYOUTS:
        raise ValueError(f"no shipped split list for {dataset!r}")
    return LAYOUTS[dataset].shipped_list(split, fold)
