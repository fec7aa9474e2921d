"""Writing the benchmark: render every clip (worker processes) into an official dataset
layout, its split lists, ground_truth.csv and synth.json.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
from pathlib import Path

import cv2
import numpy as np

from rdfer.data.layouts import DFEW, FERV39K, SPLITS, SYNTH_LAYOUTS
from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES
from rdfer.synth.plan import plan_clip
from rdfer.synth.render import render_frames
from rdfer.synth.tables import (
    NOISE_TYPES, add_noise, name_ferv39k, read_dfew_lists, read_ferv39k_lists, small_dfew, small_ferv39k,
    subset,
)
from rdfer.utils.ground_truth import KIND_COLUMNS
from rdfer.utils.outputs import atomic_open, remove_stale_temporaries, write_bytes, write_text
from rdfer.utils.progress import progress_bar


def _prepare_out(out: Path) -> None:
    """Make `out` ready: empty, or our own earlier output (marked by synth.json)."""
    if out.exists() and not out.is_dir():
        raise RdferError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "synth.json").is_file():
            raise RdferError(f"{out} is not empty and holds no synthetic benchmark (synth.json); "
                             "choose an empty or new folder for --out")
        for name in DFEW.top_folders() + FERV39K.top_folders():
            shutil.rmtree(out / name, ignore_errors=True)
        (out / "ground_truth.csv").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _render_task(task: tuple) -> tuple:
    """Worker: render one clip into its folder; returns (name, apex_start, apex_end, is_hard, kinds)."""
    seed, out, clip, size, actors, nuisance = task
    plan = plan_clip(seed, clip.name, clip.label, clip.num_frames, actors, nuisance)
    folder = Path(out) / clip.folder
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(render_frames(plan, size)):
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RdferError(f"cannot encode frame {t + 1} of clip {clip.name} as JPEG")
        write_bytes(folder / f"{t + 1:05d}.jpg", encoded.tobytes(), fsync=False)
    return clip.name, plan.apex_start, plan.apex_end, int(plan.is_hard), plan.kinds


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one clip per process; OpenCV's own threads would only contend


def _init_pool_worker() -> None:
    _init_worker()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent answers (one line) and ends the pool


def _default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


def _render_all(tasks: list, workers: int, progress: bool) -> dict:
    bar = progress_bar(total=len(tasks), enabled=progress, desc="synth clips", unit="clip")
    results = {}
    if workers <= 1:
        _init_worker()
        for task in tasks:
            name, *rest = _render_task(task)
            results[name] = rest
            bar.update()
    else:
        # Not fork: a child forked after this process ran a parallel OpenCV call
        # hangs in cv2.setNumThreads (OpenCV's pool does not survive fork), and
        # rdfer's callers (pytest, `rdfer predict`) may well have. The forkserver
        # imports this module once; each worker is a fork of that clean process.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            context.set_forkserver_preload([__name__])
        try:
            with context.Pool(workers, initializer=_init_pool_worker) as pool:
                for name, *rest in pool.imap_unordered(_render_task, tasks, chunksize=4):
                    results[name] = rest
                    bar.update()
        except BaseException:
            # Leaving the pool on an error (one worker's full disk, Ctrl-C) terminates the other
            # workers, maybe in the middle of writing a frame: their processes are gone now, so the
            # sweep for stale temporary files removes what they left.
            for seed, out, clip, *_ in tasks:
                remove_stale_temporaries(Path(out) / clip.folder)
            raise
    bar.close()
    return results


def _write_lists(out: Path, clips: list, layout: str) -> None:
    if layout == "dfew":
        ordered = sorted(clips, key=lambda c: int(c.name))
        for fold in DFEW.folds:
            for split in SPLITS:
                path = DFEW.list_file(out, split, fold)
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_open(path, "w", newline="") as f:
                    f.write("video_name,label\n")
                    for c in ordered:
                        if (c.test_fold == fold) == (split == "test"):
                            # Test lists keep the true label; train lists the given one.
                            label = c.label if split == "test" else c.given
                            f.write(f"{c.name},{label + 1}\n")
    else:
        for split in SPLITS:
            path = FERV39K.list_file(out, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "w", newline="") as f:
                for c in clips:
                    if c.split == split:
                        f.write(f"{c.name} {DFEW_CLASSES[c.given]}\n")


# The most pixels one frame per clip may add up to (clips x size^2): the full-scale FERV39K benchmark at
# 224 px is 39,546 x 224^2, about 2.0e9; more is days of rendering and terabytes of frames.
MAX_SYNTH_PIXELS = 2**31


def check_synth_options(*, layout: str = "dfew", clips: int | None = None, noise: float = 0.0,
                        noise_type: str = "symmetric", full_scale: bool = False, size: int = 112,
                        actors: int | None = None, nuisance: float = 1.0) -> None:
    """write_synthetic's options checked before anything is rendered or written (one line each)."""
    if layout not in SYNTH_LAYOUTS:
        raise RdferError(f"unknown synthetic layout {layout!r}; use 'dfew' or 'ferv39k'")
    if not 0.0 <= noise < 1.0:
        raise RdferError(f"--noise {noise} is outside [0, 1): give the share of train labels to flip")
    if noise_type not in NOISE_TYPES:
        raise RdferError(f"--noise-type {noise_type!r} is unknown; use {' or '.join(NOISE_TYPES)}")
    if clips is not None and clips < len(DFEW_CLASSES):
        raise RdferError(f"--clips {clips} is too few: give at least {len(DFEW_CLASSES)} "
                         "(one per class)")
    if size < 16:
        raise RdferError(f"--size {size} is too small: give at least 16 pixels")
    if actors is not None and actors < 1:
        raise RdferError(f"--actors {actors}: give at least 1 (or leave it out for a new person per clip)")
    if not 0.0 <= nuisance <= 1.0:
        raise RdferError(f"--nuisance {nuisance} is outside [0, 1]: 1 is the full benchmark, lower is easier")
    planned = clips or 1000
    if full_scale:
        listed = len(read_dfew_lists() if layout == "dfew" else read_ferv39k_lists())
        planned = min(clips or listed, listed)
    if planned * size * size > MAX_SYNTH_PIXELS:
        raise RdferError(f"{planned} clips of {size}x{size} pixels is more than rdfer renders ({planned} x {size}^2 "
                         f"pixels per frame over {MAX_SYNTH_PIXELS:,}): lower --clips or --size")


def write_synthetic(out, layout: str = "dfew", clips: int | None = None, noise: float = 0.0,
                    noise_type: str = "symmetric", seed: int = 0, full_scale: bool = False, size: int = 112,
                    progress: bool = True, workers: int | None = None, actors: int | None = None,
                    nuisance: float = 1.0) -> Path:
    """Write the synthetic DFER benchmark.

    Args:
        out: output folder; must be empty, new, or an earlier synthetic
            benchmark (marked by synth.json), which is replaced.
        layout: "dfew" (5 folds) or "ferv39k" (train/test).
        clips: number of clips. Default 1000 for the small benchmark; with
            `full_scale`, a class-stratified seeded subset of the real lists
            (default: all of them).
        noise: share of training labels flipped to another class, in [0, 1).
        noise_type: "symmetric" (the other class drawn uniformly) or "pair"
            (the most confusable class, `PAIR_FLIPS`: Fear<->Surprise,
            Angry<->Disgust, Sad<->Neutral, Happy->Neutral).
        seed: fixes every random choice; the same arguments give the same bytes.
        full_scale: reproduce the real dataset's clip ids, fold/split
            structure, labels (as true labels) and per-clip frame counts from
            the lists shipped in `rdfer/splits/`.
        size: frame side in pixels (real DFEW frames are 224).
        progress: show a tqdm bar on stderr.
        workers: rendering processes (default: usable cores, at most 8). The
            output does not depend on it.
        actors: draw each clip's person from a pool of this many actors
            (default: a new person per clip, the hardest setting).
        nuisance: in [0, 1], how much of what is not the expression (subtle
            and distractor expressions, head motion, lighting, occluders,
            pixel noise) the clips carry; 1 (default) is the full benchmark.
            See `plan_clip`.

    Returns:
        The output folder as a Path.
    """
    out = Path(out)
    check_synth_options(layout=layout, clips=clips, noise=noise, noise_type=noise_type, full_scale=full_scale,
                        size=size, actors=actors, nuisance=nuisance)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    if full_scale:
        table = read_dfew_lists() if layout == "dfew" else read_ferv39k_lists()
        if clips is not None and clips < len(table):
            table = subset(rng, table, clips)
        table = add_noise(rng, table, noise, layout, noise_type)
    elif layout == "dfew":
        table = add_noise(rng, small_dfew(rng, clips or 1000), noise, layout, noise_type)
    else:
        table = name_ferv39k(add_noise(rng, small_ferv39k(rng, clips or 1000), noise, layout, noise_type))

    _prepare_out(out)
    options = dict(layout=layout, clips=len(table), noise=noise, noise_type=noise_type, seed=seed,
                   full_scale=full_scale, size=size, actors=actors, nuisance=nuisance)
    write_text(out / "synth.json", json.dumps(options, indent=1) + "\n")
    tasks = [(int(seed), str(out), clip, int(size), actors, float(nuisance)) for clip in table]
    rendered = _render_all(tasks, workers or _default_workers(), progress)
    _write_lists(out, table, layout)
    with atomic_open(out / "ground_truth.csv", "w", newline="") as f:
        f.write(",".join(("video_name,true_label,given_label,is_noisy,is_hard,apex_start,apex_end",
                          *KIND_COLUMNS)) + "\n")
        for c in table:
            apex_start, apex_end, hard, kinds = rendered[c.name]
            f.write(",".join(map(str, (c.name, c.label + 1, c.given + 1, int(c.given != c.label), hard, apex_start,
                                       apex_end, *(int(k in kinds) for k in KIND_COLUMNS)))) + "\n")
    return out
