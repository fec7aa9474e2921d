"""One run per output at a time: a lock that a crashed run never leaves stuck.

    with run_lock(run_dir, "train"):         # train, cv, study, audit, predict --out: a folder
        ...
    with run_lock(cache_file, "features"):   # features --out: a file

The lock file is opened without following links (O_NOFOLLOW; a symbolic link,
a pipe or anything but a regular file planted under its name is refused with
one line, its target never touched). The lock is `fcntl.flock` on a lock file beside the output (`.NAME.lock` in the
output's parent folder, so that the output itself holds only what the run
writes), so the operating system releases it when the process ends, by
a crash or a kill -9 included: there is nothing stale to clean up. A second run
into the same output stops at once with one line naming the output and the
other run's process id. The lock file holds that id; it is removed when the
lock is released.

`rdfer predict` takes the lock shared (`shared=True`): any number of predict runs may write into one
folder at once (they claim names and merge the tables under `update_lock`, losing nobody's rows), while
a run of another command into that folder, which takes it exclusively, stops at once as above.

A process may take a lock it already holds again (the CLI locks `rdfer audit`'s
folder around the folds and the report, and the folds' engine locks it too).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path

from rdfer.errors import RdferError
from rdfer.utils.outputs import open_no_follow, remove_stale_temporaries

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs are not locked there
    fcntl = None

_held: dict = {}  # lock file -> how many times this process holds it
_thread_locks: dict = {}  # update_lock's lock file -> the lock of this process's threads (flock is per process)


def lock_file_for(target) -> Path:
    """The lock file of an output folder or file: `.NAME.lock` beside it (the path resolved); inside an
    existing folder whose parent cannot be written (`--out .` in a home folder)."""
    target = Path(target).resolve()
    beside = target.with_name(f".{target.name}.lock")
    if target.is_dir() and not os.access(target.parent, os.W_OK):
        return target / ".rdfer.lock"
    return beside


def _holder(fd: int) -> str:
    """"rdfer train, process 1234" from an open lock file's "1234 train" (what is known of it)."""
    try:
        pid, _, command = os.pread(fd, 200, 0).decode(errors="replace").strip().partition(" ")
    except OSError:
        pid, command = "", ""
    parts = ([f"rdfer {command}"] if command else []) + ([f"process {pid}"] if pid.isdigit() else [])
    return ", ".join(parts)


@contextlib.contextmanager
def run_lock(target, command: str, shared: bool = False):
    """Hold the lock of output `target` (a folder or a file; its parent is created) while the block runs.

    shared: held together with other shared holders (runs of `predict`), never with an exclusive one.

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
    fd = _acquire(path, target, blocking=False, shared=shared)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {command}".encode())
        _held[path] = 1
        if Path(target).is_dir():  # what a killed run of it left: temporary files of atomic_output
            remove_stale_temporaries(target)
        yield path
    finally:
        _held.pop(path, None)
        _release(path, fd, shared)
        for folder in created:  # deepest first; a folder the run wrote into is not empty and stays
            with contextlib.suppress(OSError):
                folder.rmdir()


def _acquire(path: Path, target, blocking: bool, shared: bool = False, waiting: str | None = None) -> int:
    """The open, flock()ed lock file `path` (created without following links); with blocking=False an
    RdferError naming the holder when another process holds it (shared: an exclusive holder, or for
    a moment a shared one that is releasing it); with blocking=True, `waiting` is printed (stderr) once
    when another process holds it."""
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    deadline = time.monotonic() + 1.0  # a shared holder releasing takes the lock exclusively for a moment
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = open_no_follow(path, os.O_RDWR | os.O_CREAT)  # a planted link or pipe is refused, never followed
        except OSError as error:  # e.g. --out under a file, or in a folder without write permission
            raise RdferError(f"--out {target} cannot be written ({error.strerror or error}); choose a folder you "
                             "can write to") from None
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if blocking:
                if waiting:
                    print(f"{waiting} ({holder or 'another process'})...", file=sys.stderr, flush=True)
                    waiting = None
                fcntl.flock(fd, mode)  # released by the holder, or by the OS when the holder dies
            else:
                os.close(fd)
                if shared and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise RdferError(f"{target} is in use by another run ({holder or 'another process'}); wait "
                                 "for it to finish, or choose another --out") from None
        try:  # the holder before us may have removed the file after we opened it: lock the live one
            if os.fstat(fd).st_ino == os.lstat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _missing_folders(folder: Path) -> list:
    """`folder` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _release(path: Path, fd: int, shared: bool = False) -> None:
    """Remove the lock file and close it; a shared holder removes it only when no other holds it (it then
    takes it exclusively, so nobody can be holding the file it removes)."""
    try:
        if shared:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another shared holder: the file stays theirs
        with contextlib.suppress(OSError):
            os.unlink(path)
    finally:
        os.close(fd)


@contextlib.contextmanager
def update_lock(shared, waiting: str | None = None):
    """Wait until no other process (or thread) updates the shared file `shared`, and hold it while the block
    runs: a read-modify-write of a file several writers share (a batch table, an audit's decisions) then
    loses nobody's rows. The lock is `.NAME.lock` beside it, as `run_lock`'s, removed on release.

    There is no time limit: the holder releases it when its update is done, or the OS when it dies, and
    giving up would lose the finished work the caller is writing. `waiting` (a message) is printed on
    stderr once when another process holds the lock."""
    path = Path(shared).with_name(f".{Path(shared).name}.lock")
    with _thread_locks.setdefault(str(path.resolve()), threading.Lock()):
        if fcntl is None:
            yield path
            return
        fd = _acquire(path, shared, blocking=True, waiting=waiting)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())  # named to a writer that waits for it
            yield path
        finally:
            _release(path, fd)
