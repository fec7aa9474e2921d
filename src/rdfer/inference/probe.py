"""Open every video of a batch once in a separate process, so that one that crashes OpenCV spares the rest.

A decoder that crashes on a file (a segfault inside OpenCV or FFmpeg: a file name
that is not UTF-8 did it, a malformed container can) ends the process that
reads it, and with it every input of the batch not yet predicted. Before a batch
of several videos is predicted, `probe_videos` opens each one and decodes its
first frame in one child process, input after input; when the child dies, the
input it was reading is reported (and skipped by the caller, with status
"error") and a new child goes on with the next. It costs one process start
(about 0.2 s) per batch. It covers what OpenCV does when opening a file and
decoding its first frame: a crash later inside a file still ends the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import rdfer

_CHILD = r"""
import os, sys
import cv2
from rdfer.data.files import opencv_path
cv2.setNumThreads(1)
for line in sys.stdin:
    path = os.fsdecode(bytes.fromhex(line.strip()))
    with opencv_path(path) as readable:
        capture = cv2.VideoCapture(readable)
        if capture.isOpened():
            capture.read()
        capture.release()
    print("ok", flush=True)
"""


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def probe_videos(paths, timeout_s: float = 600.0) -> dict:
    """{path: why} for each video whose opening or first frame crashed a separate process; {} when none did.

    Files that are not regular files are left to the reader (it names them). A probe that
    takes longer than `timeout_s` in all is abandoned (what it found so far is returned).
    """
    pending = [p for p in paths if os.path.isfile(p)]
    crashed = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(rdfer.__file__).resolve().parents[1]),
                                                                      os.environ.get("PYTHONPATH")]))}
    while pending:
        child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, env=env)
        lines = "".join(os.fsencode(str(p)).hex() + "\n" for p in pending).encode()
        try:
            out, _ = child.communicate(lines, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            return crashed
        done = out.decode().split().count("ok")
        if child.returncode == 0 and done == len(pending):
            return crashed
        if done < len(pending):
            how = _describe(child.returncode)
            crashed[pending[done]] = (f"{pending[done]}: reading this file crashed OpenCV ({how}) in a separate "
                                      "probe; left out so that the other inputs go on")
        pending = pending[done + 1:]
    return crashed
