"""The paper's figures from saved files, as PNG (matplotlib, no display needed).

fig_tsne             Fig. 4: t-SNE of the features, coloured by class, one panel per agreement level
fig_confusion        Fig. 5: row-normalised confusion matrix, annotated
fig_sample_frames    Fig. 3: a strip of frames of a few clips per agreement level
fig_training_curves  loss, WAR/UAR, hard/noisy shares, noisy-set precision/recall per epoch

Each returns the path of the PNG written, or None with a reason when it cannot
be drawn (no features, unreadable frames, ...): see `Skipped`.
"""

import re
from pathlib import Path
from typing import Optional

import numpy as np
from matplotlib.figure import Figure

from rdfer.analysis.run import Predictions
from rdfer.analysis.tables import level_name

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DPI = 120


class Skipped(Exception):
    """A figure that cannot be drawn from the files at hand; the message says why."""


def _class_colours(num_classes: int) -> list:
    from matplotlib import colormaps

    if num_classes <= 10:
        return [colormaps["tab10"](k) for k in range(num_classes)]
    # tab20 pairs a dark and a light shade of each hue: take the 10 dark ones first (MAFW has 11 classes).
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))
    return [colormaps["tab20"](order[k % 20]) for k in range(num_classes)]


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    return path


# --- Fig. 4 -------------------------------------------------------------------


def tsne_embedding(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of (N, D) features -> (N, 2); PCA to 50 dimensions first when D is larger."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)  # no feature dominates by its scale alone
    if x.shape[1] > 50 and x.shape[0] > 50:
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, (x.shape[0] - 1) / 3))
    # Barnes-Hut pays a fixed cost per iteration that dominates on a few hundred points;
    # the exact method is quicker there and O(N^2) memory is small.
    method = "exact" if x.shape[0] <= 300 else "barnes_hut"
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", method=method,
                random_state=seed).fit_transform(x)


def fig_tsne(predictions: Predictions, features: Optional[np.ndarray], out_path, *,
             max_points: int = 2000, seed: int = 0) -> Path:
    """Fig. 4: one t-SNE of all (sub-sampled) clips, drawn once per agreement level.

    Every panel shows the whole embedding in light grey and the clips at its
    level coloured by their label, so panels share axes and can be compared.
    """
    if features is None:
        raise Skipped("no features.npy in the run folder")
    n = len(predictions)
    if n < 10:
        raise Skipped(f"only {n} clips: too few for a t-SNE")
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    xy = tsne_embedding(features[keep], seed)  # (M, 2)
    labels, agreement = predictions.label[keep], predictions.agreement[keep]
    levels = sorted(set(agreement.tolist()))
    colours = _class_colours(len(predictions.classes))

    size = float(np.clip(6000 / len(keep), 9, 40))  # markers grow when there are few points
    fig = Figure(figsize=(4.2 * len(levels) + 1.8, 4.4))
    axes = fig.subplots(1, len(levels), squeeze=False)[0]
    for ax, level in zip(axes, levels):
        ax.scatter(xy[:, 0], xy[:, 1], s=size / 2, c="#dddddd", linewidths=0)
        at = agreement == level
        for k, name in enumerate(predictions.classes):
            mask = at & (labels == k)
            ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=colours[k], label=name, linewidths=0)
        ax.set_title(f"agreement {level_name(level)}  ({int(at.sum())} clips)", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [axes[0].scatter([], [], s=30, color=colours[k]) for k in range(len(predictions.classes))]
    fig.legend(handles, predictions.classes, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
               title="label")
    fig.suptitle(f"t-SNE of clip features by agreement level ({len(keep)} of {n} clips, seed {seed})")
    fig.tight_layout()
    return _save(fig, out_path)


# --- Fig. 5 -------------------------------------------------------------------


def fig_confusion(confusion, classes, out_path, title: str = "Confusion matrix") -> Path:
    """Fig. 5: rows (true class) normalised to percent, each cell annotated.

    Args:
        confusion: (K, K) counts, rows true, columns predicted.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    support = confusion.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(support > 0, 100 * confusion / support, np.nan)
    k = len(classes)
    size = max(4.5, 0.75 * k + 2)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    image = ax.imshow(np.nan_to_num(percent), cmap="Blues", vmin=0, vmax=100)
    for i in range(k):
        for j in range(k):
            if np.isnan(percent[i, j]):
                continue
            ax.text(j, i, f"{percent[i, j]:.0f}", ha="center", va="center", fontsize=9 if k <= 8 else 7,
                    color="white" if percent[i, j] > 55 else ("#222222" if confusion[i, j] else "#aaaaaa"))
    ticks = [f"{name} ({int(n)})" for name, n in zip(classes, support.ravel())]
    ax.set_xticks(range(k), classes, rotation=40, ha="right")
    ax.set_yticks(range(k), ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true label (clips)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of the true class")
    fig.tight_layout()
    return _save(fig, out_path)


# --- Fig. 3 -------------------------------------------------------------------


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def read_frames(path, count: int = 6, height: int = 96) -> list:
    """About `count` frames spread evenly over a clip, as uint8 (H, W, 3) RGB arrays.

    Args:
        path: a folder of frame images or a video file.

    Raises:
        Skipped: the path does not exist or holds no readable frame.
    """
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        files = sorted((f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda f: _natural_key(f.name))
        if not files:
            raise Skipped(f"{path} holds no frame images")
        picks = np.unique(np.linspace(0, len(files) - 1, count).round().astype(int))
        frames = []
        for i in picks:
            try:
                with Image.open(files[i]) as image:
                    image = image.convert("RGB")
                    image.thumbnail((height * 4, height))
                    frames.append(np.asarray(image))
            except OSError as error:
                raise Skipped(f"{files[i]} is not a readable image ({error})") from None
        return frames
    if path.is_file():
        return _read_video_frames(path, count, height)
    raise Skipped(f"{path} not found")


def _read_video_frames(path: Path, count: int, height: int) -> list:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for i in np.unique(np.linspace(0, max(total - 1, 0), count).round().astype(int)):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, frame = capture.read()
            if ok:
                scale = height / frame.shape[0]
                frame = cv2.resize(frame, (max(1, round(frame.shape[1] * scale)), height))
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise Skipped(f"{path} is not a readable video")
    return frames


def fig_sample_frames(predictions: Predictions, out_path, *, per_level: int = 2, frames: int = 6,
                      seed: int = 0) -> tuple[Path, list]:
    """Fig. 3: for each agreement level, `per_level` random clips as strips of `frames` frames.

    Clips whose frames cannot be read are passed over (up to 20 tries per level).

    Returns:
        (PNG path, notes): notes name the clips or levels that could not be shown.

    Raises:
        Skipped: no clip at all could be read.
    """
    rng = np.random.default_rng(seed)
    p = predictions
    chosen, notes = [], []  # chosen: (level, index, frames)
    for level in p.levels:
        candidates = rng.permutation(np.flatnonzero(p.agreement == level))[:20]
        found, failed = 0, []
        for i in candidates:
            try:
                chosen.append((level, int(i), read_frames(p.path[i], frames)))
                found += 1
            except Skipped as reason:
                failed.append(str(reason))
            if found == per_level:
                break
        if failed:
            shown = f"{found} shown" if found else "none shown"
            notes.append(f"Fig. 3, agreement {level_name(level)}: {len(failed)} clip(s) not readable ({shown}), "
                         f"e.g. {failed[0]}")
    if not chosen:
        raise Skipped("no clip's frames could be read: " + "; ".join(notes))

    fig = Figure(figsize=(1.3 * frames, 1.75 * len(chosen)))
    axes = fig.subplots(len(chosen), frames, squeeze=False)
    level_colours = dict(zip(sorted(p.levels), _level_colours(len(p.levels))))
    for row, (level, i, strip) in enumerate(chosen):
        for col in range(frames):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(level_colours[level])
                spine.set_linewidth(2)
            if col < len(strip):
                ax.imshow(strip[col])
            else:
                ax.set_axis_off()
        label, pred = p.classes[p.label[i]], p.classes[p.prediction[i]]
        verdict = "right" if label == pred else "wrong"
        axes[row, 0].set_title(f"agreement {level_name(level)}   clip {p.clip_id[i]}   label {label}, "
                               f"predicted {pred} ({verdict})", loc="left", fontsize=9,
                               color=level_colours[level], fontweight="bold")
    fig.suptitle("Sample clips per agreement level (frames evenly spread over each clip)", x=0.02, ha="left")
    # Row titles are wider than one frame, which tight_layout cannot handle; spacing by hand.
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.5 / len(chosen), bottom=0.02, hspace=0.5, wspace=0.06)
    return _save(fig, out_path), notes


# Dark enough to read as text on white: low agreement (hard) red through to full agreement green.
LEVEL_COLOURS = ("#b03a2e", "#ca6f1e", "#9a7d0a", "#2471a3", "#1e8449")


def _level_colours(n: int) -> list:
    picks = np.linspace(0, len(LEVEL_COLOURS) - 1, n).round().astype(int) if n > 1 else [len(LEVEL_COLOURS) - 1]
    return [LEVEL_COLOURS[i] for i in picks]


# --- training curves ------------------------------------------------------------


def _series(history: list, key: str, scale: float = 1.0):
    points = [(r["epoch"], r[key] * scale) for r in history if r.get(key) is not None]
    return ([e for e, _ in points], [v for _, v in points]) if points else None


def fig_training_curves(history: list, out_path, *, warmup_epochs: Optional[int] = None, title: str = "") -> Path:
    """Per-epoch curves from metrics.jsonl: train loss, test WAR/UAR, hard/noisy shares and,
    when logged (synthetic benchmark), the noisy set's precision and recall.

    Args:
        history: metrics.jsonl records ("epoch" 1-based; "train_loss", "war", "uar" in
            percent, "hard_share", "noisy_share", "noisy_precision", "noisy_recall" as fractions).
        warmup_epochs: draws a line where reweighting starts (after this many epochs).
    """
    if not history:
        raise Skipped("no metrics.jsonl (or it is empty)")
    from matplotlib.ticker import MaxNLocator

    # (title, y limits, [(key, scale, legend label)]); hard/noisy shares can coincide, hence two styles.
    panels = [("train loss", None, [("train_loss", 1.0, "loss")]),
              ("test accuracy (%)", None, [("war", 1.0, "WAR"), ("uar", 1.0, "UAR")]),
              ("share of training clips (%)", (0, None), [("hard_share", 100.0, "hard"),
                                                         ("noisy_share", 100.0, "noisy")]),
              ("noisy set vs. true flips (%)", (0, 100), [("noisy_precision", 100.0, "precision"),
                                                          ("noisy_recall", 100.0, "recall")])]
    panels = [(name, limits, [(label, _series(history, key, scale)) for key, scale, label in lines])
              for name, limits, lines in panels]
    panels = [(name, limits, [line for line in lines if line[1]]) for name, limits, lines in panels]
    panels = [panel for panel in panels if panel[2]]
    fig = Figure(figsize=(4.0 * len(panels), 3.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, limits, lines) in zip(axes, panels):
        for (label, (epochs, values)), (line, marker, width) in zip(lines, (("-", "o", 2.6), ("--", "s", 1.4))):
            ax.plot(epochs, values, linestyle=line, linewidth=width, marker=marker if len(epochs) <= 30 else None,
                    markersize=3.5, label=label)
        if limits:
            ax.set_ylim(*limits)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if warmup_epochs:
            ax.axvline(warmup_epochs + 0.5, color="#888888", linestyle="--", linewidth=1)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=9)
    if warmup_epochs:
        axes[0].annotate("reweighting starts", xy=(warmup_epochs + 0.5, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(3, -12), textcoords="offset points", fontsize=8, color="#666666")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_path)
