"""The benchmark's clip table: which clips, their true and given (train) labels, folds or
splits and frame counts, before anything is rendered.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace

import numpy as np

from rdfer.data.layouts import DFEW, FERV39K, SPLITS
from rdfer.labels import DFEW_CLASSES, FERV39K_TO_DFEW


# Made-up FERV39K scenes for the small benchmark.
FERV_SCENES = ("Lab", "Office", "Street", "Studio")
# Class shares of the small benchmark: halfway between DFEW's single-labeled
# shares and uniform, so it is imbalanced like DFEW (WAR != UAR) but the rare
# classes still have enough clips in a demo of ~1,000.
_DFEW_COUNTS = np.array([2445, 1894, 2669, 2173, 1469, 145, 902], np.float64)
CLASS_SHARES = 0.5 * _DFEW_COUNTS / _DFEW_COUNTS.sum() + 0.5 / len(DFEW_CLASSES)

# Pair noise: each flipped label becomes its most confusable class, the pairs
# real DFER models confuse (Fear/Surprise, Angry/Disgust, Sad/Neutral). Happy,
# confused with little else, flips to Neutral, the class the paper's model drifts
# to on hard clips (its Fig. 5 text), and the one the synthetic Happy face nears
# at low intensity. So the map is not one-to-one: Happy and Sad both flip to Neutral.
PAIR_FLIPS = {"Happy": "Neutral", "Sad": "Neutral", "Neutral": "Sad", "Angry": "Disgust",
              "Surprise": "Fear", "Disgust": "Angry", "Fear": "Surprise"}
_PAIR_INDEX = np.array([DFEW_CLASSES.index(PAIR_FLIPS[c]) for c in DFEW_CLASSES])
NOISE_TYPES = ("symmetric", "pair")


@dataclass(frozen=True)
class BenchClip:
    """One clip of the benchmark, before rendering."""

    name: str          # video_name as written in the split CSVs
    folder: str        # frame folder relative to the output root
    label: int         # true class, 0-based DFEW order
    given: int         # label in the train CSVs (== label unless noisy)
    num_frames: int
    test_fold: int     # DFEW: the fold whose test list holds the clip (1..5); FERV39K: 0
    split: str         # FERV39K: "train" or "test"; DFEW: ""


def stratified_counts(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `shares` (largest remainder),
    at least one per class when total allows."""
    raw = shares / shares.sum() * total
    counts = np.floor(raw).astype(int)
    if total >= len(shares):
        counts = np.maximum(counts, 1)
    while counts.sum() > total:
        counts[np.argmax(counts)] -= 1
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    for i in order[: total - counts.sum()]:
        counts[i] += 1
    return counts


def _small_frame_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    # Mostly 20..80 frames (mean about 44), a few shorter than the 16 a model takes.
    counts = np.round(rng.triangular(20, 32, 80, n)).astype(int)
    short = rng.uniform(size=n) < 0.04
    counts[short] = rng.integers(8, 16, short.sum())
    return counts


def small_dfew(rng: np.random.Generator, clips: int) -> list:
    counts = stratified_counts(clips, CLASS_SHARES)
    labels = rng.permutation(np.repeat(np.arange(len(DFEW_CLASSES)), counts))
    frames = _small_frame_counts(rng, clips)
    # Folds: each class's clips dealt round-robin into the 5 test folds from a
    # random start, so folds are class-stratified and their sizes differ by <= 1.
    folds = np.zeros(clips, int)
    start = 0
    for c in range(len(DFEW_CLASSES)):
        members = rng.permutation(np.flatnonzero(labels == c))
        folds[members] = (start + np.arange(len(members))) % 5 + 1
        start = (start + len(members)) % 5
    return [BenchClip(str(i + 1), DFEW.written_clip(str(i + 1)), int(labels[i]), int(labels[i]),
                  int(frames[i]), int(folds[i]), "") for i in range(clips)]


def small_ferv39k(rng: np.random.Generator, clips: int) -> list:
    counts = stratified_counts(clips, CLASS_SHARES)
    labels = rng.permutation(np.repeat(np.arange(len(DFEW_CLASSES)), counts))
    frames = _small_frame_counts(rng, clips)
    scenes = rng.integers(0, len(FERV_SCENES), clips)
    split = np.array(["train"] * clips, dtype=object)
    for c in range(len(DFEW_CLASSES)):  # 20% of each class for testing
        members = rng.permutation(np.flatnonzero(labels == c))
        split[members[: int(round(0.2 * len(members)))]] = "test"
    # Names (Scene/Emotion/NNNN) are given after the noise is drawn, because a
    # noisy clip sits in its given emotion's folder, as a mislabelled one would.
    return [BenchClip("", "", int(labels[i]), int(labels[i]), int(frames[i]), 0, f"{split[i]}:{scenes[i]}")
            for i in range(clips)]


def name_ferv39k(clips: list) -> list:
    named, counter = [], {}
    for clip in clips:
        split, scene = clip.split.split(":")
        key = (FERV_SCENES[int(scene)], DFEW_CLASSES[clip.given])
        index = counter.get(key, 0)
        counter[key] = index + 1
        name = f"{key[0]}/{key[1]}/{index:04d}"
        named.append(replace(clip, name=name, folder=FERV39K.written_clip(name), split=split))
    return named


def read_dfew_lists() -> list:
    frame_counts = {row["video_name"]: int(row["num_frames"])
                    for row in csv.DictReader(open(DFEW.shipped_dir() / "frame_counts.csv", newline=""))}
    clips = []
    for fold in DFEW.folds:
        for row in csv.DictReader(open(DFEW.shipped_list("test", fold), newline="")):
            label = int(row["label"]) - 1
            clips.append(BenchClip(row["video_name"], DFEW.written_clip(row["video_name"]), label, label,
                                   frame_counts[DFEW.clip_folder(row["video_name"])], fold, ""))
    return clips


def read_ferv39k_lists() -> list:
    frame_counts = {row["clip"]: int(row["num_frames"])
                    for row in csv.DictReader(open(FERV39K.shipped_dir() / "frame_counts.csv", newline=""))}
    clips = []
    for split in SPLITS:
        for line in open(FERV39K.shipped_list(split)):
            name, emotion = line.split()
            label = FERV39K_TO_DFEW[emotion]
            clips.append(BenchClip(name, FERV39K.written_clip(name), label, label, frame_counts[name], 0, split))
    return clips


def subset(rng: np.random.Generator, clips: list, n: int) -> list:
    """A class-stratified random subset of n clips, in the lists' order."""
    labels = np.array([c.label for c in clips])
    counts = stratified_counts(n, np.bincount(labels, minlength=len(DFEW_CLASSES)).astype(float))
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), k, replace=False)
                           for c, k in enumerate(counts) if k > 0])
    return [clips[i] for i in sorted(keep)]


def add_noise(rng: np.random.Generator, clips: list, noise: float, layout: str,
               noise_type: str = "symmetric") -> list:
    """Give round(noise * train clips) clips a different train label.

    The clips to flip are the same for both noise types; "symmetric" draws each
    one's new label uniformly from the other classes, "pair" takes its
    `PAIR_FLIPS` class. DFEW: every clip is a training clip in 4 of the 5 folds
    and carries the same given label in all of them, so the noisy share of each
    fold's train list is about `noise`. FERV39K: only train clips are flipped.
    """
    candidates = [i for i, c in enumerate(clips) if layout == "dfew" or c.split.startswith("train")]
    flipped = rng.choice(candidates, int(round(noise * len(candidates))), replace=False)
    clips = list(clips)
    n_cls = len(DFEW_CLASSES)
    for i in sorted(flipped):
        if noise_type == "pair":
            given = int(_PAIR_INDEX[clips[i].label])
        else:
            given = int((clips[i].label + rng.integers(1, n_cls)) % n_cls)
        clips[i] = replace(clips[i], given=given)
    return clips
