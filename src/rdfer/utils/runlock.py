"""One run per output at a time: a lock that a crashed run never leaves stuck.

    with run_lock(run_dir, "train"):         # train, cv, study, audit, predict --out: a folder
        ...
    with run_lock(cache_file, "features"):   # features --out: a file

The lock is `fcntl.flock` on a lock file beside the output (`.NAME.lock` in the
output's parent folder, so that the output itself holds only what the run
writes), so the operating system releases it when the process ends, by
a crash or a kill -9 included: there is nothing stale to clean up. A second run
into the same output stops at once with one line naming the output and the
other run's process id. The lock file holds that id; it is removed when the
lock is released.

A process may take a lock it already holds again (the CLI locks `rdfer audit`'s
folder around the folds and the report, and the folds' engine locks it too).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from rdfer.errors import RdferError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs are not locked there
    fcntl = None

_held: dict = {}  # lock file -> how many times this process holds it


def lock_file_for(target) -> Path:
    """The lock file of an output folder or file: `.NAME.lock` beside it (the path resolved); inside an
    existing folder whose parent cannot be written (`--out .` in a home folder)."""
    target = Path(target).resolve()
    beside = target.with_name(f".{target.name}.lock")
    if target.is_dir() and not os.access(target.parent, os.W_OK):
        return target / ".rdfer.lock"
    return beside


def _holder(path: Path) -> str:
    """"rdfer train, process 1234" from a lock file's "1234 train" (what is known of it)."""
    try:
        pid, _, command = path.read_text().strip().partition(" ")
    except OSError:
        pid, command = "", ""
    parts = ([f"rdfer {command}"] if command else []) + ([f"process {pid}"] if pid.isdigit() else [])
    return ", ".join(parts)


@contextlib.contextmanager
def run_lock(target, command: str):
    """Hold the lock of output `target` (a folder or a file; its parent is created) while the block runs.

    Folders created for the lock are removed again when the run leaves them empty (a failed run leaves
    no empty `runs/` behind).

    Raises:
        RdferError: another live process holds it (one line: the output, the other run's
            command, e.g. "train", and its process id).
    """
    path = lock_file_for(target)
    if fcntl is None or _held.get(path):
        _held[path] = _held.get(path, 0) + 1
        try:
            yield path
        finally:
            _held[path] -= 1
        return
    created = _missing_folders(path.parent)  # removed again at the end if the run left them empty
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:  # e.g. --out under a file, or in a folder without write permission
            raise RdferError(f"--out {target} cannot be written ({error.strerror or error}); choose a folder you "
                             "can write to") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RdferError(f"{target} is in use by another run ({_holder(path) or 'another process'}); wait "
                             "for it to finish, or choose another --out") from None
        try:  # the holder before us may have removed the file after we opened it: lock the live one
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {command}".encode())
        _held[path] = 1
        yield path
    finally:
        _held.pop(path, None)
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
        for folder in created:  # deepest first; a folder the run wrote into is not empty and stays
            with contextlib.suppress(OSError):
                folder.rmdir()


def _missing_folders(folder: Path) -> list:
    """`folder` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
