"""The server's work folder: the only place `rdfer app` writes to or serves files from.

    work = WorkFolder("rdfer_app")
    work.inside("jobs/ab12/out/clip.json")     # a Path under the folder, or RdferError
    write_text_atomic(path, text)              # temp file, fsync, rename: never a cut-off file
"""

import os
import re
from pathlib import Path

from rdfer.errors import RdferError
from rdfer.inference.outputs import atomic_path


class WorkFolder:
    """A folder created on start; `inside` refuses every path that leads out of it."""

    def __init__(self, root):
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise RdferError(f"--work {root}: this is a file, not a folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RdferError(f"--work {root}: cannot create it ({error.strerror or error})") from None
        self.root = root.resolve()

    def inside(self, relative: str) -> Path:
        """`relative` resolved under the work folder (symbolic links followed); RdferError if it leads out."""
        if not relative or "\x00" in relative or Path(relative).is_absolute():
            raise RdferError(f"{relative!r} is not a path inside the work folder")
        path = (self.root / relative).resolve()
        if path != self.root and self.root not in path.parents:
            raise RdferError(f"{relative!r} is not a path inside the work folder")
        return path

    def folder(self, *parts: str) -> Path:
        """A sub-folder of the work folder, created if needed."""
        path = self.inside("/".join(parts))
        path.mkdir(parents=True, exist_ok=True)
        return path


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, flush it to disk, then rename it to `path`."""
    with atomic_path(path) as temp:
        with open(temp, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(name: str, fallback: str = "file") -> str:
    """A file name without folders or odd characters (the last part of what a browser sends)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    return base[:120] or fallback
