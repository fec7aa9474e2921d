"""Reading a written benchmark back: its ground truth and a short human description.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np

from rdfer.data.layouts import DFEW, FERV39K, LAYOUTS, SPLITS
from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES, FERV39K_TO_DFEW
from rdfer.synth.plan import HARD_KINDS
from rdfer.utils.ground_truth import GROUND_TRUTH_FILE, KIND_COLUMNS, read_ground_truth


def describe_synthetic(out) -> str:
    """A short human summary of a synthetic benchmark folder: clips per split
    and class, noisy and hard counts, frame size and frame counts."""
    out = Path(out)
    rows = list(read_ground_truth(out / GROUND_TRUTH_FILE, ("video_name", "true_label", "given_label", "is_noisy",
                                                            "is_hard"),
                                  missing_hint=f"run `rdfer synth --out {out}` first").values())
    if not (out / "synth.json").is_file():
        raise RdferError(f"{out / 'synth.json'} not found: {out} is not a complete synthetic "
                         f"benchmark; run `rdfer synth --out {out}` again")
    options = json.loads((out / "synth.json").read_text())
    layout = options["layout"]
    n_cls = len(DFEW_CLASSES)
    true = np.array([r.true_class for r in rows])
    noisy = np.array([r.noisy for r in rows], bool)
    hard = np.array([r.hard for r in rows], bool)
    lines = [f"Synthetic DFER benchmark in {out} ({layout} layout, seed {options['seed']}, "
             f"{'full scale' if options['full_scale'] else 'small'}): {len(rows)} clips"]
    width = max(len(c) for c in DFEW_CLASSES)
    header = f"  {'split':<20}" + "".join(f"{c[:width]:>{width + 1}}" for c in DFEW_CLASSES) + "   total"

    def count_line(title, labels):
        counts = np.bincount(labels, minlength=n_cls)
        return f"  {title:<20}" + "".join(f"{k:>{width + 1}}" for k in counts) + f"{len(labels):>8}"

    lines += ["Clips per class (true labels):", header, count_line("all", true)]
    if layout == "dfew":
        for split in SPLITS:
            path = DFEW.list_file(out, split, 1)
            labels = np.array([int(r["label"]) - 1 for r in csv.DictReader(open(path, newline=""))], int)
            lines.append(count_line(f"fold 1 {split}" + (" (given)" if split == "train" else ""), labels))
        n_train = len(rows) - sum(1 for _ in csv.DictReader(open(DFEW.list_file(out, "test", 1), newline="")))
        lines.append("  5 folds; each clip is in one test list and in the other four train lists")
        noisy_desc = (f"{noisy.sum()} clips ({noisy.mean():.1%}) carry a wrong label in every "
                      f"train list they are in (fold 1: {n_train} train clips)")
    else:
        for split in SPLITS:
            labels = np.array([FERV39K_TO_DFEW[line.split()[1]] for line in open(FERV39K.list_file(out, split))],
                              int)
            lines.append(count_line(f"{split} (given)", labels))
        n_train = sum(1 for _ in open(FERV39K.list_file(out, "train")))
        noisy_desc = f"{noisy.sum()} of {n_train} train clips ({noisy.sum() / max(n_train, 1):.1%})"
    noise_type = options.get("noise_type", "symmetric")  # benchmarks written before pair noise
    if noise_type == "pair":
        given = np.array([r.given_class for r in rows])
        pairs, counts = np.unique(np.stack([true[noisy], given[noisy]], 1), axis=0, return_counts=True)
        flips = ", ".join(f"{DFEW_CLASSES[a]}->{DFEW_CLASSES[b]} {k}" for (a, b), k in zip(pairs, counts))
        kind = f"pair noise, each to its most confusable class: {flips or 'none'}"
    else:
        kind = "symmetric noise, each to a uniformly drawn other class"
    lines.append(f"Noisy labels ({kind}): {noisy_desc}; test labels are clean")
    kinds = [r.kinds for r in rows]
    held = "" if kinds[0] is None else "; clips holding each difficulty: " + ", ".join(
        f"{kind} {sum(kind in k for k in kinds)}" for kind in KIND_COLUMNS)
    lines.append(f"Hard clips (a difficulty of {', '.join(HARD_KINDS)}): {hard.sum()} ({hard.mean():.1%}){held}")
    actors, nuisance = options.get("actors"), options.get("nuisance", 1.0)
    lines.append(f"People: {f'a pool of {actors} actors' if actors else 'a new person per clip'}; "
                 f"nuisance {nuisance:g} (1 = the full benchmark, lower is easier)")
    frames = []
    first = None
    for r in rows:
        folder = _folder_of(out, layout, r.video_name)
        names = [e.name for e in os.scandir(folder) if e.name.endswith(".jpg")] if folder.is_dir() else []
        frames.append(len(names))
        if first is None and names:
            first = folder / min(names)
    frames = np.array(frames)
    shape = cv2.imread(str(first)).shape if first is not None else (0, 0)
    lines.append(f"Frames: {shape[1]}x{shape[0]} JPEG, {frames.sum()} in all, per clip "
                 f"min {frames.min()} / median {int(np.median(frames))} / max {frames.max()}, "
                 f"{int((frames < 16).sum())} clips shorter than 16")
    lines.append(f"Ground truth: {out / 'ground_truth.csv'}")
    return "\n".join(lines)


def _folder_of(out: Path, layout: str, name: str) -> Path:
    return out / LAYOUTS[layout].written_clip(name)
