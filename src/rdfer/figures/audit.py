"""`rdfer audit`'s figures (PNG, matplotlib loaded on first use): per class, suggested relabels, contact sheets.

`rdfer.audit.report` draws them into OUT/report_files/; `oof` is the audit's held-out predictions
(`rdfer.audit.verdict.OutOfFold`), `judged` its verdicts (`rdfer.audit.verdict.judge`).
"""

from pathlib import Path

import numpy as np

from rdfer.figures.base import FrameSource, Skipped, class_matrix, save_png


def fig_per_class(counts: dict, classes, out_path) -> Path:
    """Bars per given class: clips, flagged by each list, called hard."""
    from matplotlib.figure import Figure

    names = ("clips", "rdfer", "cleanlab", "combined", "hard")
    legend = {"clips": "clips (given label)", "rdfer": "rdfer: likely mislabelled", "cleanlab": "cleanlab: issue",
              "combined": "both", "hard": "rdfer: hard"}
    fig = Figure(figsize=(max(6.0, 1.1 * len(classes) + 2), 4))
    ax = fig.subplots()
    x = np.arange(len(classes))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        ax.bar(x + (j - (len(names) - 1) / 2) * width, counts[name], width, label=legend[name])
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel("clips")
    ax.set_title("Per given class: clips, label issues flagged, hard clips")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, out_path)


def fig_relabels(oof, flagged: np.ndarray, out_path, title: str) -> Path:
    """Counts of (given label -> suggested label) over the flagged clips."""
    k = len(oof.classes)
    counts = np.zeros((k, k), int)
    np.add.at(counts, (oof.label[flagged], oof.probabilities[flagged].argmax(1)), 1)
    cells = {(i, j): (str(counts[i, j]), "white" if counts[i, j] > 0.55 * counts.max() else "#222222")
             for i, j in np.ndindex(counts.shape) if counts[i, j]}
    return class_matrix(counts, cells, oof.classes, [f"{name} ({n})" for name, n in zip(oof.classes, counts.sum(1))],
                        out_path, cmap="Oranges", vmax=max(1, counts.max()), xlabel="suggested label",
                        ylabel="given label (clips flagged)", title=title, colour_label="clips")


def fig_contact_sheet(oof, judged: dict, indices, out_path, title: str, frames: int = 8) -> tuple:
    """One row per clip: `frames` evenly spaced frames, titled with the clip's labels and scores.

    Returns:
        (PNG path or None when no clip could be read, notes on clips not shown).
    """
    from matplotlib.figure import Figure

    rows, notes = [], []
    for i in indices:
        try:
            source = FrameSource(oof.path[i])
            picks = np.linspace(0, len(source) - 1, min(frames, len(source))).round().astype(int)
            rows.append((i, picks, source.read(picks, height=72)))
        except Skipped as reason:
            notes.append(f"clip {oof.clip_id[i]} not shown: {reason}")
    if not rows:
        return None, notes
    height = 1.25 * len(rows) + 0.8  # inches: a row of frames and its title line, plus the sheet's title
    fig = Figure(figsize=(0.9 * frames + 0.2, height))
    grid = fig.add_gridspec(len(rows), frames, hspace=0.55, wspace=0.04, left=0.01, right=0.99,
                            top=1 - 0.75 / height, bottom=0.01)
    classes = oof.classes
    for r, (i, picks, strip) in enumerate(rows):
        for c in range(frames):
            ax = fig.add_subplot(grid[r, c])
            ax.set_axis_off()
            if c < len(strip):
                ax.imshow(strip[c])
            if c == 0:
                ax.set_title(f"clip {oof.clip_id[i]}: given {classes[oof.label[i]]}, suggested "
                             f"{classes[judged['suggested'][i]]} (p {judged['p_suggested'][i]:.2f}), agreement "
                             f"{judged['pooled_agreement'][i]:.2f}, p_given {judged['p_given'][i]:.2f}",
                             loc="left", fontsize=8, x=0.0)
    fig.suptitle(title, x=0.01, y=1 - 0.1 / height, ha="left", va="top", fontsize=10)
    return save_png(fig, out_path), notes
