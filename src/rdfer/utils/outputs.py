"""Writing outputs safely: never over an input, never a cut-off file under a real name, never through a link.

    refuse_overwriting_inputs(["out.npz"], inputs, "--out")   # before any work
    with atomic_output(path) as tmp:                          # write tmp; renamed to path when complete
        np.savez(tmp, ...)
    with atomic_open(path, "w") as f:                         # the same, as an open file
        f.write(text)
    write_text(path, text)                                    # the same, in one call
    fd = open_no_follow(path, os.O_RDWR | os.O_CREAT)         # a file rdfer keeps open (a lock)

Every command that writes checks its outputs against everything it reads (the
split lists or CSV manifest, the clips, the config, the checkpoint, a feature
cache, ground_truth.csv) with `refuse_overwriting_inputs`: the same path, the
same file through a link (symbolic or hard) stops with one line before
anything is written.

Every file rdfer writes goes through `atomic_output` (the one home of it): the
data go to a temporary file beside the target, `.rdfer-tmp-PID-RAND-NAME`
(created with O_EXCL and O_NOFOLLOW, so never through a planted link, and
keeping NAME's extension, which savers such as cv2.imwrite read), which is
flushed to disk and renamed over the target when complete; the target itself
must be absent or a regular file (a symbolic link, a folder, a pipe there is
refused: the rename would not write through a link, but the user asked for a
file). When writing fails (a full disk, no permission, an exception, Ctrl-C)
the temporary file is removed and the error (RdferError) names the file and
the cause in one line. A kill -9 cannot remove it: the next rdfer process that
writes into that folder removes every temporary file whose process is gone
(`remove_stale_temporaries`), as does `run_lock` for the folder it locks.
Only the standard library here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
import time
from pathlib import Path

from rdfer.errors import RdferError, WriteError

TEMP_PREFIX = ".rdfer-tmp-"
_TEMP = re.compile(r"^\.rdfer-tmp-(\d+)-[0-9a-f]{6}-")
_LEGACY_TEMP = re.compile(r"^\..+\.(\d+)\.partial(\.[^.]*)?$")  # the temporaries of earlier versions of predict
STALE_AFTER_S = 24 * 3600  # a temporary file this old is removed even if its process id is in use again
_cleaned: set = set()  # folders this process has cleaned of stale temporary files


def _identity(path: str):
    try:
        stat_ = os.stat(path)
    except OSError:
        return None
    return stat_.st_dev, stat_.st_ino


def refuse_overwriting_inputs(outputs, inputs, option: str = "--out") -> None:
    """Stop (one line) when an output would be written over something this command reads.

    Args:
        outputs: the files the command will write (paths; they need not exist yet).
        inputs: every file or folder it reads (None entries are ignored).
        option: the option that named the outputs, for the message.
    """
    inputs = [str(i) for i in inputs if i]
    by_path = {os.path.realpath(read): read for read in inputs}
    by_identity = None  # stat()ed only when an output exists (a hard link is the same file too)
    for output in map(str, outputs):
        read = by_path.get(os.path.realpath(output))
        if read is None and os.path.exists(output):
            if by_identity is None:
                by_identity = {_identity(read): read for read in inputs}
                by_identity.pop(None, None)
            read = by_identity.get(_identity(output))
        if read is not None:
            raise RdferError(f"{option} {output} is {read}, which this command reads: writing there would "
                             "destroy it; give another path")


def write_error(path, error: OSError) -> WriteError:
    """The one-line error for a file that could not be written (a full disk names it, not just errno 28)."""
    reason = error.strerror or str(error)
    reason = reason[:1].lower() + reason[1:]
    advice = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
              errno.EFBIG: "the file system refuses a file this large",
              errno.EACCES: "choose a folder you can write to", errno.EROFS: "choose a writable folder"}
    hint = advice.get(error.errno, "")
    return WriteError(f"cannot write {path}: {reason}" + (f" ({hint})" if hint else "")
                      + "; no half-written file was left", path, reason)

def _kind(mode: int) -> str:
    return ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


def refuse_non_regular(path) -> None:
    """RdferError (one line) when `path` exists and is not a regular file (a link is not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise write_error(path, error) from None
    if not stat.S_ISREG(mode):
        raise WriteError(f"cannot write {path}: it is {_kind(mode)}; rdfer writes only regular files and never "
                         "through a link: remove it or choose another path", path, f"it is {_kind(mode)}")


def open_no_follow(path, flags: int, mode: int = 0o644) -> int:
    """os.open(path, flags | O_NOFOLLOW); RdferError (one line) when `path` is a link or not a regular file."""
    path = str(path)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), mode)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK) or (error.errno == errno.ENXIO):
            refuse_non_regular(path)
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise WriteError(f"cannot write {path}: it is {_kind(status.st_mode)}; rdfer writes only regular files "
                             "and never through a link: remove it or choose another path", path,
                             f"it is {_kind(status.st_mode)}")
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def is_stale_temporary(path) -> bool:
    """Whether `path` is a temporary file of rdfer whose process is gone (or that is older than a day)."""
    path = Path(path)
    match = _TEMP.match(path.name) or _LEGACY_TEMP.match(path.name)
    if not match:
        return False
    try:
        status = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(status.st_mode):
        return False
    return not _alive(int(match.group(1))) or time.time() - status.st_mtime > STALE_AFTER_S


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporary files of rdfer left in `folder` by a process that is gone (kill -9, power loss)."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(".") and is_stale_temporary(entry.path):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def temporary_name(path) -> Path:
    """`.rdfer-tmp-PID-RAND-NAME` beside `path` (NAME's extension kept)."""
    path = Path(path)
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-{path.name}"[:255])


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(path, *, fsync: bool = True):
    """Yield a new temporary path beside `path`; on success rename it to `path`, on any failure remove it.

    fsync: flush the file (and the folder) to disk before and after the rename (off for bulk
        files such as frames, where a power cut costs only a rerun).
    Raises:
        RdferError: `path` is a link or not a regular file, or writing or renaming failed (the
            file and the cause named; the temporary file gone).
    """
    path = Path(path)
    refuse_non_regular(path)
    folder = path.parent
    key = os.path.abspath(folder)
    if key not in _cleaned:
        _cleaned.add(key)
        remove_stale_temporaries(folder)
    tmp = temporary_name(path)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644))
    except OSError as error:
        raise write_error(path, error) from None
    try:
        yield tmp
        refuse_non_regular(tmp)  # the writer may not replace it by something else
        if fsync:
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        refuse_non_regular(path)  # planted while we wrote
        os.replace(tmp, path)
        if fsync:
            _fsync_folder(folder)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error.filename, str) and error.filename not in (str(tmp), str(path)):
            raise  # about another file (an input being read while this one is written): not a failed write
        raise write_error(path, error) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", *, fsync: bool = True, **kwargs):
    """`open()` of a temporary file beside `path` (mode "w", "wb", "x"...); renamed to `path` when the block
    ends without error, removed otherwise (`atomic_output`). kwargs go to open() (newline, encoding...)."""
    with atomic_output(path, fsync=fsync) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_text(path, text: str, *, fsync: bool = True, **kwargs) -> Path:
    """Write `text` to `path` whole or not at all (`atomic_output`); kwargs go to open()."""
    with atomic_open(path, "w", fsync=fsync, **kwargs) as f:
        f.write(text)
    return Path(path)


def write_bytes(path, data: bytes, *, fsync: bool = True) -> Path:
    """Write `data` to `path` whole or not at all (`atomic_output`)."""
    with atomic_open(path, "wb", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def writable_folder(folder, option: str = "--out") -> Path:
    """Create `folder` if needed and check that a file can be written in it (an anonymous one: nothing to
    follow, nothing left); RdferError (one line) if not."""
    import tempfile

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RdferError(f"{option} {folder}: this is a file, not a folder; give the name of a folder for the outputs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise RdferError(f"{option} {folder} cannot be written ({reason}); choose a folder you can write to") from None
    return folder


def append_line(path, line: str) -> None:
    """Append one line (a record of a log such as metrics.jsonl) in one write, never through a link; on a
    full disk the line is taken back (the file keeps only whole lines) and the error names the file."""
    data = (line.rstrip("\n") + "\n").encode()
    try:
        fd = open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except OSError as error:
        raise write_error(path, error) from None
    try:
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"{written} of {len(data)} bytes written")
            os.fsync(fd)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise write_error(path, error) from None
    finally:
        os.close(fd)


def read_jsonl(path, repair: bool = False) -> list[dict]:
    """The records of a JSON-lines log written with `append_line` (metrics.jsonl): [] when it does not exist.

    A torn last line (cut off without its newline by a kill or a full disk) is left out; with `repair`
    (a resume, which rewrites the file) so is any damaged last line. Damage elsewhere is one line (RdferError).
    """
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(errors="replace")
    torn = repair or not text.endswith("\n")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    records = []
    for k, (line_no, line) in enumerate(lines):
        try:
            record = json.loads(line)
        except ValueError as error:
            if torn and k == len(lines) - 1:
                break  # torn while written: that record never finished
            raise RdferError(f"{path}, line {line_no}: not valid JSON ({error})") from None
        if not isinstance(record, dict) or "epoch" not in record:
            raise RdferError(f"{path}, line {line_no}: expected a JSON object with an 'epoch' key")
        records.append(record)
    return records


def open_log(path):
    """A log file (text) opened for appending, never through a link (`open_no_follow`)."""
    try:
        fd = open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except OSError as error:
        raise write_error(path, error) from None
    return os.fdopen(fd, "a")
