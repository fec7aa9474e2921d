"""Finding a clip's frames on disk: image files sorted naturally, or a video file (its frames counted,
opened under a name OpenCV can take); what kind of file a path is; a clip's stamp."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile

import cv2

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def natural_key(name: str):
    """Sort key that puts 2.jpg before 10.jpg (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frames(folder: str) -> list:
    """Image file names inside `folder`, sorted naturally; [] if it has none.

    Raises:
        FileNotFoundError / NotADirectoryError when `folder` is not a folder.
    """
    with os.scandir(folder) as entries:
        names = [
            entry.name
            for entry in entries
            if entry.name.lower().endswith(IMAGE_EXTENSIONS) and not entry.name.startswith(".")
        ]
    return sorted(names, key=natural_key)


# Containers whose header counts every frame (mp4/mov sample tables, AVI's index). Matroska and
# WebM store a duration at most (none when written by a live encoder): the frame count OpenCV
# derives from it (duration x mean rate) is wrong for a variable frame rate, so their frames are counted
# by decoding.
EXACT_COUNT_EXTENSIONS = (".mp4", ".mov", ".m4v", ".avi")


def is_video_file(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def special_file_kind(path) -> str | None:
    """What a path is when it is neither a regular file nor a folder ("a named pipe (FIFO)", ...), else None.

    Opening a named pipe with OpenCV would wait forever for a writer; callers name it instead.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), None)


@contextlib.contextmanager
def opencv_path(path):
    """A path to `path` that OpenCV can open: the path itself, or a temporary ASCII-named link to it.

    OpenCV takes file names as UTF-8 C strings: a name holding a byte that is not UTF-8 (Python
    keeps it as a lone surrogate) crashed OpenCV's FFmpeg backend with a segfault. Such a file is
    opened through a symbolic link with a plain name in a temporary folder.
    """
    text = os.fspath(path)
    try:
        text.encode("utf-8")
        yield text
        return
    except UnicodeEncodeError:
        pass
    with tempfile.TemporaryDirectory(prefix="rdfer-") as folder:
        link = os.path.join(folder, "clip" + os.path.splitext(text.encode("utf-8", "replace").decode())[1])
        os.symlink(os.path.abspath(text), link)
        yield link


def count_video_frames(path: str) -> int:
    """Frames of a video file (0 when it cannot be opened).

    The container's count where it is exact (EXACT_COUNT_EXTENSIONS, and a header that gives one);
    else the frames decoded (a WebM without a duration, a variable-frame-rate Matroska file).
    """
    if special_file_kind(path):
        return 0
    with opencv_path(path) as readable:
        capture = cv2.VideoCapture(readable)
        try:
            if not capture.isOpened():
                return 0
            reported = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            if reported > 0 and path.lower().endswith(EXACT_COUNT_EXTENSIONS):
                return reported
            count = 0
            while capture.grab():
                count += 1
            return count
        finally:
            capture.release()


def clip_stamp(path: str) -> tuple:
    """(files, bytes, newest modification in ns) of a clip's frame folder or video file: what changes
    when a clip is rewritten (a feature cache records it to know it is still current)."""
    if os.path.isdir(path):
        entries = [entry.stat() for entry in os.scandir(path)
                   if entry.name.lower().endswith(IMAGE_EXTENSIONS) and not entry.name.startswith(".")]
    else:
        entries = [os.stat(path)]
    return (len(entries), sum(e.st_size for e in entries), max((e.st_mtime_ns for e in entries), default=0))
