"""Progress of long steps: a bar on a terminal, plain lines in a log.

`rdfer train ... > log 2>&1` must neither fill the log with every bar update (tqdm
rewrites its line with carriage returns, which a file keeps) nor stay silent for
minutes. So `progress_bar` draws tqdm's bar when its stream is a terminal, and
otherwise prints one line at each tenth of the work or every 30 s, whichever
comes first, with done/total, elapsed time and time left:

    encoding train: 300/1000 (30%), 1m12s elapsed, about 2m48s left

A step that ends within its first few seconds prints nothing (its caller's
summary line says enough); one that printed a line prints a last one when done.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_EVERY_S = 30.0  # the longest silence of a step in a log
LOG_STEPS = 10  # a line at each tenth of the work
QUIET_START_S = 3.0  # a step shorter than this prints no line at all

clock = time.monotonic  # tests replace it with a fake clock


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs):
    """A progress indicator over `iterable` (or `total` steps advanced with `.update()`).

    With `enabled` and its stream (`file`, else stderr) a terminal: `tqdm(iterable, **kwargs)`.
    With `enabled` and any other stream: a `LogProgress` printing plain lines (module docstring).
    Without `enabled`: a disabled tqdm (iterates, prints nothing).
    """
    stream = kwargs.get("file") or sys.stderr
    if enabled and not _is_terminal(stream):
        return LogProgress(iterable, total=kwargs.get("total"), desc=kwargs.get("desc"),
                           unit=kwargs.get("unit", "it"), file=stream)
    return tqdm(iterable, disable=not enabled, **kwargs)


class LogProgress:
    """The part of tqdm's interface rdfer uses (iterate, update, write, set_postfix, close), as log lines."""

    def __init__(self, iterable=None, *, total=None, desc=None, unit="it", file=None):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit = total, desc or "progress", unit
        self.file = file if file is not None else sys.stderr
        self.n, self.postfix, self.printed, self.closed = 0, "", False, False
        self.started = self.last_line = clock()
        self.last_step = 0  # the tenth of the work last reported

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __len__(self):
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = clock()
        if now - self.started < QUIET_START_S:
            return
        step = int(self.n * LOG_STEPS // self.total) if self.total else 0
        if step > self.last_step or now - self.last_line >= LOG_EVERY_S:
            if not (self.total and self.n >= self.total):  # the last line is close()'s
                self._line(now)
            self.last_step = step

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{key}={value}" for key, value in items.items())

    def set_description(self, desc=None, refresh=True) -> None:
        self.desc = desc or self.desc

    def write(self, text: str, file=None) -> None:
        print(text, file=file or self.file, flush=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        now = clock()
        if self.printed or now - self.started >= QUIET_START_S:
            count = f"{self.n}/{self.total}" if self.total else f"{self.n} {self.unit}"
            self._print(f"{self.desc}: {count} done in {_duration(now - self.started)}")

    def _line(self, now: float) -> None:
        elapsed = now - self.started
        if self.total:
            text = f"{self.desc}: {self.n}/{self.total} ({100 * self.n / self.total:.0f}%), {_duration(elapsed)} elapsed"
            if self.n:
                text += f", about {_duration(elapsed / self.n * (self.total - self.n))} left"
        else:
            text = f"{self.desc}: {self.n} {self.unit}, {_duration(elapsed)} elapsed"
        self._print(text)
        self.last_line = now

    def _print(self, text: str) -> None:
        if self.postfix:
            text += f" ({self.postfix})"
        print(text, file=self.file, flush=True)
        self.printed = True


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False
