"""`rdfer predict`'s figure: each face's expression over time (`VideoPrediction.plot()`, NAME_timeline.png).

`record` is an `rdfer.inference.records.VideoPrediction`. matplotlib is imported when a figure is
drawn, not with this module (`rdfer predict` loads this module at start-up).
"""

from pathlib import Path

import numpy as np

from rdfer.utils.outputs import atomic_output


def timeline_figure(record, max_tracks: int = 4):
    """matplotlib Figure: per track (longest first, at most `max_tracks`), a strip of its face
    crops above its class probabilities over time (smoothed; the track's label thick, its raw
    per-frame probability dotted), key expression shaded gold, shot cuts as dashed lines."""
    import matplotlib.pyplot as plt

    tracks = record.tracks[:max_tracks]
    main = (record.summary or {}).get("main_face")
    classes = record.classes
    duration = (record.num_frames / record.fps) if record.fps and record.num_frames else 1.0
    rows = max(len(tracks), 1)
    fig = plt.figure(figsize=(11, 1.2 + 3.6 * rows))
    grid = fig.add_gridspec(2 * rows, 1, height_ratios=[1, 2.6] * rows)
    colours = plt.get_cmap("tab10")
    if not tracks:
        ax = fig.add_subplot(grid[:, 0])
        ax.axis("off")
        ax.text(0.5, 0.5, record.error or "no face found", ha="center", va="center", wrap=True, fontsize=10,
                transform=ax.transAxes)
    for row, track in enumerate(tracks):
        top, ax = fig.add_subplot(grid[2 * row, 0]), fig.add_subplot(grid[2 * row + 1, 0])
        strip = thumbnail_strip(track.thumbnails, count=10)
        top.axis("off")
        if strip is not None:
            images, times = strip
            top.imshow(images)
            top.set_title(f"face {track.id}{' (main)' if track.id == main else ''}: {track.label} "
                          f"p = {track.probability:.2f}, trust {track.trust:.2f}, "
                          f"{track.start_s:.1f}-{track.end_s:.1f} s", fontsize=9, loc="left")
        times = np.array([e["time_s"] for e in track.timeline])
        for k, name in enumerate(classes):
            winner = name == track.label
            values = np.array([e["probabilities"][name] for e in track.timeline])
            ax.plot(times, values, color=colours(k), lw=2.4 if winner else 1.2, alpha=1.0 if winner else 0.8,
                    label=name)
            if winner:
                raw = np.array([e["raw_probabilities"][name] for e in track.timeline])
                ax.plot(times, raw, color=colours(k), lw=0.8, ls=":", alpha=0.9, label="the face's label, per frame")
        ax.axvspan(track.key_expression["start_s"], track.key_expression["end_s"], color="gold", alpha=0.25,
                   label="key expression")
        for cut in record.cuts:
            ax.axvline(cut, color="0.3", ls="--", lw=0.8)
        ax.set_xlim(0, duration)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.grid(alpha=0.3)
        if row == 0:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
        if row == rows - 1:
            ax.set_xlabel("time (s); thick: each face's label (smoothed), dotted: its value per frame"
                          + ("; dashed: shot cuts" if record.cuts else ""))
    more = len(record.tracks) - len(tracks)
    model = record.model.split(" (")[0]
    headline = (record.summary or {}).get("text") or f"{len(record.tracks)} face track(s)"
    fig.suptitle(f"{Path(record.video).name}: {record.status}, {headline}"
                 + (f" ({more} more not drawn)" if more > 0 else "")
                 + f"\nmodel: {model}; a face in {record.frames_with_face} of {record.num_frames} frames", fontsize=10)
    fig.tight_layout()
    return fig


def plot_timeline(record, path: Path) -> None:
    """PNG of `timeline_figure(record)`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = timeline_figure(record)
    try:
        with atomic_output(path) as temp:
            fig.savefig(temp, dpi=100, format="png")
    finally:
        plt.close(fig)


def thumbnail_strip(thumbnails, count: int):
    """(image (S, count * S, 3), times) of up to `count` evenly spaced face crops, or None."""
    if not thumbnails:
        return None
    picks = np.unique(np.linspace(0, len(thumbnails) - 1, min(count, len(thumbnails))).round().astype(int))
    return np.concatenate([thumbnails[i][1] for i in picks], axis=1), [thumbnails[i][0] for i in picks]
