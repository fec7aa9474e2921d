"""Progress bars that draw on a terminal only.

`rdfer train ... > log 2>&1` must not fill the log with every bar update (tqdm
rewrites its line with carriage returns, which a file keeps): a bar whose stream is
not a terminal is off, and the per-epoch lines and summaries still print.
"""

import sys

from tqdm import tqdm


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """`tqdm(iterable, **kwargs)`, disabled unless `enabled` and its stream (`file`, else stderr) is a terminal."""
    stream = kwargs.get("file") or sys.stderr
    return tqdm(iterable, disable=not (enabled and _is_terminal(stream)), **kwargs)


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False
