"""Writing outputs safely: never over an input, never a cut-off file under a real name.

    refuse_overwriting_inputs(["out.npz"], inputs, "--out")   # before any work
    with atomic_output(path) as tmp:                          # write tmp; renamed to path when complete
        np.savez(tmp, ...)

Every command that writes checks its outputs against everything it reads (the
split lists or CSV manifest, the clips, the config, the checkpoint, a feature
cache, ground_truth.csv) with `refuse_overwriting_inputs`: the same path, the
same file through a link (symbolic or hard) stops with one line before
anything is written. `atomic_output`
writes beside the target (`NAME.part`) and renames it into place; when
writing fails (a full disk, no permission) the part file is removed and the
error names the file. Only the standard library here.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from rdfer.errors import RdferError


def _identity(path: str):
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


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


def write_error(path, error: OSError) -> RdferError:
    """The one-line error for a file that could not be written (a full disk names it, not just errno 28)."""
    reason = error.strerror or str(error)
    advice = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
              errno.EFBIG: "the file system refuses a file this large",
              errno.EACCES: "choose a folder you can write to", errno.EROFS: "choose a writable folder"}
    hint = advice.get(error.errno, "")
    return RdferError(f"cannot write {path}: {reason}" + (f" ({hint})" if hint else "")
                      + "; nothing was left under that name")


@contextlib.contextmanager
def atomic_output(path, suffix: str = ".part"):
    """Yield a temporary path beside `path`; on success rename it to `path`, on any failure remove it.

    Raises:
        RdferError: writing or renaming failed (the file named, the part file gone).
    """
    path = Path(path)
    tmp = path.with_name(path.name + suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_error(path, error) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
