"""What every figure shares: writing a PNG, a figure that cannot be drawn (`Skipped`), a clip's frames on disk.

Loads no matplotlib: `FrameSource` also serves the audit page's previews (`rdfer app`).
"""

import re
from pathlib import Path

import numpy as np

from rdfer.utils.outputs import atomic_output

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DPI = 120


class Skipped(Exception):
    """A figure that cannot be drawn from the files at hand; the message says why."""


def save_png(fig, path) -> Path:
    """Write a matplotlib Figure to `path` as PNG (DPI dots per inch, white background); returns the path."""
    path = Path(path)
    with atomic_output(path) as temp:  # whole or absent; a failed write names the file
        fig.savefig(temp, dpi=DPI, bbox_inches="tight", facecolor="white", format="png")
    return path


def class_matrix(values: np.ndarray, cells: dict, classes, row_labels, out_path, *, cmap: str, vmax: float,
                 xlabel: str, ylabel: str, title: str, colour_label: str) -> Path:
    """A (K, K) image over the classes (rows and columns named), `cells` written on it, saved as PNG.

    Args:
        values: (K, K) the colours' values, from 0 to `vmax` in `cmap`.
        cells: {(row, column): (text, text colour)}, written in this order.
        row_labels: K names of the rows (the columns are `classes`).
    """
    from matplotlib.figure import Figure

    k = len(classes)
    size = max(4.5, 0.75 * k + 2)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.subplots()
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax)
    for (i, j), (text, colour) in cells.items():
        ax.text(j, i, text, ha="center", va="center", fontsize=9 if k <= 8 else 7, color=colour)
    ax.set_xticks(range(k), classes, rotation=40, ha="right")
    ax.set_yticks(range(k), row_labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=colour_label)
    fig.tight_layout()
    return save_png(fig, out_path)


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class FrameSource:
    """The frames of one clip on disk: a folder of images (natural name order) or a video file.

    Raises:
        Skipped: the path does not exist or holds no frame.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.files = None
        if self.path.is_dir():
            self.files = sorted((f for f in self.path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES),
                                key=lambda f: _natural_key(f.name))
            self.count = len(self.files)
        elif self.path.is_file():
            import cv2

            capture = cv2.VideoCapture(str(self.path))
            self.count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            capture.release()
        else:
            raise Skipped(f"{self.path} not found")
        if self.count < 1:
            raise Skipped(f"{self.path} holds no readable frame")

    def __len__(self) -> int:
        return self.count

    def read(self, indices, height: int = 96) -> list:
        """Frames at `indices` (0-based) as uint8 (height, W, 3) RGB arrays."""
        return self._read_images(indices, height) if self.files is not None else self._read_video(indices, height)

    def _read_images(self, indices, height: int) -> list:
        from PIL import Image

        frames = []
        for i in indices:
            try:
                with Image.open(self.files[i]) as image:
                    image = image.convert("RGB")
                    width = max(1, round(image.width * height / image.height))
                    frames.append(np.asarray(image.resize((width, height))))
            except OSError as error:
                raise Skipped(f"{self.files[i]} is not a readable image ({error})") from None
        return frames

    def _read_video(self, indices, height: int) -> list:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        try:
            frames = []
            for i in indices:
                capture.set(cv2.CAP_PROP_POS_FRAMES, int(i))
                ok, frame = capture.read()
                if not ok:
                    raise Skipped(f"{self.path}: frame {i} of {self.count} cannot be decoded")
                width = max(1, round(frame.shape[1] * height / frame.shape[0]))
                frames.append(cv2.cvtColor(cv2.resize(frame, (width, height)), cv2.COLOR_BGR2RGB))
        finally:
            capture.release()
        return frames
