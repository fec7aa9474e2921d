"""The error boundary of every entry point (the CLI's `main`, the app's routes): an unexpected exception
becomes one line; its traceback goes to a log file, or to the console under RDFER_DEBUG=1.

    except Exception as error:
        print(f"rdfer {command}: error: {unexpected_line(error, inputs)}", file=sys.stderr)

The log is `rdfer-COMMAND-TIME-PID.log` in $RDFER_LOG_DIR, or in the system's temporary folder
under `rdfer-logs/`. Only the standard library here.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

from rdfer.utils.outputs import write_text

DEBUG_ENV = "RDFER_DEBUG"


def debugging() -> bool:
    """Whether RDFER_DEBUG asks for tracebacks on the console (any value but empty, 0, no, false)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "no", "false")


def os_error_line(error: OSError) -> str:
    """'PATH: reason' of an OSError (a symbolic link loop, a folder that cannot be read...), in one line."""
    reason = error.strerror or str(error) or type(error).__name__
    reason = reason[:1].lower() + reason[1:]
    names = [str(n) for n in (error.filename, error.filename2) if n is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def log_traceback(error: BaseException, label: str) -> Path | None:
    """Write `error`'s traceback to a new log file; its path, or None when no log could be written."""
    folder = Path(os.environ.get("RDFER_LOG_DIR") or Path(tempfile.gettempdir()) / "rdfer-logs")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40] or "rdfer"
    path = folder / f"rdfer-{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text(path, "".join(traceback.format_exception(type(error), error, error.__traceback__)), fsync=False)
    except Exception:  # noqa: BLE001 - the log is a courtesy: the one-line error is what counts
        return None
    return path


def unexpected_line(error: BaseException, label: str, inputs=()) -> str:
    """One line for an exception nobody expected: what it was, the inputs involved, where the traceback is."""
    if debugging():
        traceback.print_exception(type(error), error, error.__traceback__)
    message = " ".join(str(error).split())[:200] or "no message"
    named = [str(i) for i in inputs if i not in (None, "", [], ())]
    where = f" while processing {', '.join(named)[:300]}" if named else ""
    log = None if debugging() else log_traceback(error, label)
    tail = (f"; the traceback is in {log}" if log else "") + f" (set {DEBUG_ENV}=1 to print it)"
    return f"unexpected {type(error).__name__}{where}: {message}{tail}; please report it if the inputs are valid"
