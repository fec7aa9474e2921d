"""The paper's figures from saved files, as PNG (matplotlib, no display needed).

fig_tsne             Fig. 4: t-SNE of the features, coloured by class, one panel per agreement level
fig_confusion        Fig. 5: row-normalised confusion matrix, annotated
fig_sample_frames    Fig. 3: a strip of frames of a few clips per agreement level
fig_training_curves  loss, WAR/UAR, hard/noisy shares, noisy-set precision/recall per epoch
fig_window_vs_apex   the key-expression window (mu, delta) against the true apex, per clip and per epoch

`predictions` is a run's predictions.csv as `rdfer.analysis.run.read_predictions` reads it
(figures import no job package: analysis, audit, engine and inference import them).

Each returns the path of the PNG written, or None with a reason when it cannot
be drawn (no features, unreadable frames, ...): see `rdfer.figures.base.Skipped`.
"""

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from matplotlib.figure import Figure

from rdfer.data.sampling import T_DENSE, T_PLAIN, sample_indices
from rdfer.figures.base import FrameSource, Skipped, class_matrix, save_png
from rdfer.labels import level_name
from rdfer.models.detector import resample_positions

def _class_colours(num_classes: int) -> list:
    from matplotlib import colormaps

    if num_classes <= 10:
        return [colormaps["tab10"](k) for k in range(num_classes)]
    # tab20 pairs a dark and a light shade of each hue: take the 10 dark ones first (MAFW has 11 classes).
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))
    return [colormaps["tab20"](order[k % 20]) for k in range(num_classes)]


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


def fig_tsne(predictions, features: Optional[np.ndarray], out_path, *,
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
    return save_png(fig, out_path)


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
    cells = {(i, j): (f"{percent[i, j]:.0f}", "white" if percent[i, j] > 55 else
                      ("#222222" if confusion[i, j] else "#aaaaaa"))
             for i, j in np.ndindex(percent.shape) if not np.isnan(percent[i, j])}
    return class_matrix(np.nan_to_num(percent), cells, classes,
                        [f"{name} ({int(n)})" for name, n in zip(classes, support.ravel())], out_path,
                        cmap="Blues", vmax=100, xlabel="predicted", ylabel="true label (clips)", title=title,
                        colour_label="% of the true class")


# --- Fig. 3 -------------------------------------------------------------------


def model_frame_indices(clip_length: int, mu: float = float("nan"), delta: float = float("nan")) -> np.ndarray:
    """The 16 frames of a clip that the model classified at evaluation (docs/method.md), as source indices.

    With re-sampling (`mu`, `delta` known): the 64 dense eval frames (segment centres),
    then the 16 re-sampled positions around `mu` with stride `delta`, each shown as
    its nearest dense frame. Without: the 16 eval frames (segment centres).

    Returns:
        int64 (16,) frame indices in [0, clip_length); clip j of the model is frames 4j..4j+3.
    """
    if np.isnan(mu) or np.isnan(delta):
        return sample_indices(clip_length, T_PLAIN, train=False)
    dense = sample_indices(clip_length, T_DENSE, train=False)  # (64,)
    positions = resample_positions(torch.tensor([mu], dtype=torch.float64), torch.tensor([delta], dtype=torch.float64),
                                   T_DENSE, T_PLAIN)[0]  # (16,) in dense-frame units
    return dense[positions.round().long().numpy()]


def fig_sample_frames(predictions, out_path, *, per_level: int = 2, seed: int = 0,
                      clips: int = 4) -> tuple[Path, list]:
    """Fig. 3: for each agreement level, `per_level` random clips, each as the 16 frames
    the model classified, in `clips` groups (the clips whose predictions give the agreement).

    A group's title shows that clip's prediction when predictions.csv has a
    `clip_predictions` column (class indices separated by spaces). Clips whose
    frames cannot be read are passed over (up to 20 tries per level).

    Returns:
        (PNG path, notes): notes name the clips or levels that could not be shown.

    Raises:
        Skipped: no clip at all could be read.
    """
    rng = np.random.default_rng(seed)
    p = predictions
    chosen, notes = [], []  # chosen: (level, row index, frame indices, frames)
    for level in p.levels:
        candidates = rng.permutation(np.flatnonzero(p.agreement == level))[:20]
        found, failed = 0, []
        for i in candidates:
            try:
                source = FrameSource(p.path[i])
                indices = model_frame_indices(len(source), p.mu[i], p.delta[i])
                chosen.append((level, int(i), indices, source.read(indices)))
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

    frames = len(chosen[0][2])
    per_clip = frames // clips
    # Columns: `clips` groups of `per_clip` frames with a narrow gap column between groups.
    ratios = []
    for j in range(clips):
        ratios += [1.0] * per_clip + ([0.25] if j < clips - 1 else [])
    height = 1.3 * len(chosen) + 0.4  # inches: a frame row of ~0.8 in plus two lines of titles above it
    fig = Figure(figsize=(0.8 * frames + 0.2 * (clips - 1), height))
    grid = fig.add_gridspec(len(chosen), len(ratios), width_ratios=ratios, hspace=0.7, wspace=0.04,
                            left=0.01, right=0.99, top=1 - 0.75 / height, bottom=0.01)
    level_colours = dict(zip(sorted(p.levels), _level_colours(len(p.levels))))
    for row, (level, i, indices, strip) in enumerate(chosen):
        colour = level_colours[level]
        for k, frame in enumerate(strip):
            group, within = divmod(k, per_clip)
            ax = fig.add_subplot(grid[row, group * (per_clip + 1) + within])
            ax.imshow(frame)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(colour)
                spine.set_linewidth(1.5)
            if within == 0:  # the clip's title just above its first frame (offsets in points)
                ax.annotate(_clip_title(p, i, group), xy=(0, 1), xycoords="axes fraction", xytext=(0, 2),
                            textcoords="offset points", fontsize=7.5, va="bottom", color="#333333")
            ax.text(0.97, 0.03, str(indices[k]), transform=ax.transAxes, fontsize=6, ha="right", va="bottom",
                    color="white", bbox={"facecolor": "black", "alpha": 0.45, "pad": 1, "linewidth": 0})
            if k == 0:  # the row's title above the clip titles
                label, pred = p.classes[p.label[i]], p.classes[p.prediction[i]]
                window = "" if np.isnan(p.mu[i]) else f"   window mu {p.mu[i]:.2f}, delta {p.delta[i]:.2f}"
                ax.annotate(f"agreement {level_name(level)}   clip {p.clip_id[i]}   label {label}, predicted "
                            f"{pred} ({'right' if label == pred else 'wrong'}){window}", xy=(0, 1),
                            xycoords="axes fraction", xytext=(0, 13), textcoords="offset points", fontsize=9,
                            color=colour, fontweight="bold", va="bottom")
    fig.suptitle("Sample clips per agreement level: the 16 frames the model classified, in its 4 clips "
                 "(numbers: frame index)", x=0.01, y=1 - 0.08 / height, ha="left", va="top", fontsize=11)
    return save_png(fig, out_path), notes


def _clip_title(p, i: int, group: int) -> str:
    if p.clip_predictions is None or group >= len(p.clip_predictions[i]):
        return f"clip {group + 1}"
    return f"clip {group + 1}: {p.classes[p.clip_predictions[i][group]]}"


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
              ("test accuracy (%)", None, [("war", 1.0, "WAR"), ("uar", 1.0, "UAR"),
                                           ("clip_acc", 100.0, "clip acc"),
                                           ("majority_match", 100.0, "clip majority = video")]),
              ("share of training clips (%)", (0, None), [("hard_share", 100.0, "hard"),
                                                         ("noisy_share", 100.0, "noisy")]),
              ("noisy set vs. true flips (%)", (0, 100), [("noisy_precision", 100.0, "precision"),
                                                          ("noisy_recall", 100.0, "recall")]),
              ("flipped training clips (%)", (0, 100), [("memorised", 100.0, "predicted as given (wrong) label"),
                                                        ("flipped_true_acc", 100.0, "predicted as true label")])]
    panels = [(name, limits, [(label, _series(history, key, scale)) for key, scale, label in lines])
              for name, limits, lines in panels]
    panels = [(name, limits, [line for line in lines if line[1]]) for name, limits, lines in panels]
    panels = [panel for panel in panels if panel[2]]
    fig = Figure(figsize=(4.0 * len(panels), 3.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, limits, lines) in zip(axes, panels):
        styles = (("-", "o", 2.6), ("--", "s", 1.4), (":", "^", 1.8), ("-.", "v", 1.4))
        for (label, (epochs, values)), (line, marker, width) in zip(lines, styles):
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
            ax.legend(fontsize=8)
    if warmup_epochs:
        axes[0].annotate("reweighting starts", xy=(warmup_epochs + 0.5, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(3, -12), textcoords="offset points", fontsize=8, color="#666666")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, out_path)


def fig_window_vs_apex(predictions, apex: Optional[np.ndarray], history: list, out_path, *,
                       num_dense: int = T_DENSE, num_out: int = T_PLAIN, title: str = "") -> Path:
    """Does the detector find the key expression? Left: each test clip's mu (its re-sampled
    window as a bar, first to last frame) against the centre of its true apex; right, per
    evaluated epoch (metrics.jsonl): the correlation of mu with the apex centre, the share of
    clips whose window covers the apex and the share of re-sampled frames inside it.

    Args:
        apex: (N, 2) true apex spans as fractions of the clip (`rdfer.analysis.run.read_apex`).
    """
    if np.isnan(predictions.mu).all():
        raise Skipped("the model has no key-expression re-sampling (no mu)")
    if apex is None:
        raise Skipped("no apex frames in the ground truth (the synthetic benchmark's ground_truth.csv has them)")
    known = ~np.isnan(apex).any(axis=1) & ~np.isnan(predictions.mu)
    mu, delta, apex = predictions.mu[known], predictions.delta[known], apex[known]
    centre = apex.mean(axis=1)
    window = ((resample_positions(torch.tensor(mu), torch.tensor(delta), num_dense, num_out) + 0.5)
              / num_dense).numpy()  # (N, K) times of the re-sampled frames
    fig = Figure(figsize=(9.0, 3.8))
    left, right = fig.subplots(1, 2)
    left.vlines(centre, window[:, 0], window[:, -1], color="#1f77b4", alpha=0.25, linewidth=1,
                label="re-sampled window")
    left.scatter(centre, mu, s=9, color="#1f77b4", label="mu")
    left.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=1, label="mu = apex centre")
    r = np.corrcoef(mu, centre)[0, 1] if np.std(mu) > 1e-9 and np.std(centre) > 1e-9 else float("nan")
    left.set(xlim=(0, 1), ylim=(0, 1), xlabel="true apex centre (fraction of the clip)",
             ylabel="mu (fraction of the clip)")
    left.set_title(f"{len(mu)} test clips: r = {r:.2f}, sd(mu) = {np.std(mu):.3f}", fontsize=11)
    left.legend(fontsize=8, loc="upper left")
    lines = [("mu_apex_corr", "corr(mu, apex centre)"), ("apex_covered", "window covers the apex"),
             ("window_on_apex", "re-sampled frames on the apex")]
    for key, label in lines:
        series = _series(history, key)
        if series:
            right.plot(*series, marker="o", markersize=3.5, label=label)
    right.set(ylim=(-0.2, 1.05), xlabel="epoch", title="per evaluated epoch")
    right.grid(alpha=0.3)
    if right.lines:
        right.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, out_path)


def fig_agreement_histograms(history: list, out_path, *, title: str = "") -> Path:
    """Per epoch, the share of clips at each agreement level (stacked bars), training and test.

    Args:
        history: metrics.jsonl records; "train_agreement" / "test_agreement" are
            {"0.25": share, ...} (test only on evaluated epochs).
    """
    sides = [(key, name) for key, name in (("train_agreement", "training clips"), ("test_agreement", "test clips"))
             if any(r.get(key) for r in history)]
    if not sides:
        raise Skipped("no agreement histograms in metrics.jsonl (a run from before they were logged)")
    fig = Figure(figsize=(5.5 * len(sides), 3.4))
    axes = fig.subplots(1, len(sides), squeeze=False)[0]
    for ax, (key, name) in zip(axes, sides):
        records = [r for r in history if r.get(key)]
        epochs = np.array([r["epoch"] for r in records])
        levels = list(records[0][key])
        shares = np.array([[100 * r[key][level] for level in levels] for r in records])  # (E, levels)
        bottom = np.zeros(len(records))
        for j, (level, colour) in enumerate(zip(levels, _level_colours(len(levels)))):
            ax.bar(epochs, shares[:, j], bottom=bottom, color=colour, width=0.85, label=f"agreement {level}")
            bottom += shares[:, j]
        ax.set_ylim(0, 100)
        ax.set_xlabel("epoch")
        ax.set_ylabel("share (%)")
        ax.set_title(f"agreement of the 4 clip predictions, {name}", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_png(fig, out_path)
