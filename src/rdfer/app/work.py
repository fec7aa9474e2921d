"""The server's work folder: the only place `rdfer app` writes to or serves files from.

    work = WorkFolder("rdfer_app")
    work.inside("jobs/ab12/out/clip.json")     # a Path under the folder, or RdferError
    AuditFolders(work).open("/data/audit")      # (key, rdfer.audit.review.AuditFolder), its home in WORK/audits/
"""

import hashlib
import re
import threading
from pathlib import Path

from rdfer.audit.review import ISSUES_FILE, AuditFolder
from rdfer.errors import RdferError


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


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_name(name: str, fallback: str = "file") -> str:
    """A file name without folders or odd characters (the last part of what a browser sends)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    return base[:120] or fallback


class AuditFolders:
    """The audit folders opened in this server, each with its home in WORK/audits/."""

    def __init__(self, work: WorkFolder):
        self.work = work
        self._open: dict[str, AuditFolder] = {}
        self._lock = threading.Lock()

    def open(self, folder: str) -> tuple[str, AuditFolder]:
        """(key, AuditFolder) of an `rdfer audit` output folder; RdferError (one line) for anything else."""
        if not folder or not folder.strip():
            raise RdferError("give the path of a folder written by `rdfer audit --out FOLDER`")
        source = Path(folder.strip()).expanduser()
        if not source.is_dir():
            raise RdferError(f"{source}: no such folder")
        if not (source / ISSUES_FILE).is_file():
            raise RdferError(f"{source} is not an rdfer audit folder: it holds no {ISSUES_FILE} "
                             "(run `rdfer audit --config CFG --out FOLDER` first)")
        source = source.resolve()
        key = f"{safe_name(source.name, 'audit')}-{hashlib.sha1(str(source).encode()).hexdigest()[:8]}"
        with self._lock:
            home = self.work.folder("audits", key)
            # Reopening reads the files again (a rerun of the audit may have re-ranked the list).
            self._open[key] = AuditFolder(source, home)
            return key, self._open[key]

    def get(self, key: str) -> AuditFolder:
        with self._lock:
            if key not in self._open:
                raise RdferError("this audit folder is not open (the server restarted?): open it again")
            return self._open[key]
