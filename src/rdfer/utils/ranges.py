"""The ranges of numeric options, checked one way wherever a number is read.

    RANGES = {"lr": Range(0, None, low_open=True), "t_h": Range(0, 1)}   # on a config dataclass
    check_number("optim.lr", value, Range(0, low_open=True))            # -> None, or what to give
    p.add_argument("--threads", type=bounded(int, 1, 256))              # on the command line

Every number must be finite (no nan, no inf: `--set optim.lr=.inf` stops at
once), then lie in its field's range. Config dataclasses declare their ranges
in a class attribute `RANGES` ({field: Range}); `rdfer.schema` checks every
section's and every model config's fields against them when a config is read,
and the CLI's numeric options use `bounded` (argparse then prints one line and
exits 2). Only the standard library here: the CLI parser imports it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Range:
    """low <= value <= high (either end may be None: unbounded; `low_open`: low itself excluded).

    `max_items`: for a list field, at most this many items (each item in the range).
    """

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    max_items: Optional[int] = None

    def admits(self, value) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        items = f", at most {self.max_items} items" if self.max_items is not None else ""
        return self._describe_value() + items

    def _describe_value(self) -> str:
        if self.low is not None and self.high is not None and not self.low_open:
            return f"{_fmt(self.low)}..{_fmt(self.high)}"
        parts = []
        if self.low is not None:
            parts.append(f"{'above' if self.low_open else 'at least'} {_fmt(self.low)}")
        if self.high is not None:
            parts.append(f"at most {_fmt(self.high)}")
        return " and ".join(parts) or "a finite number"


def _fmt(value) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(value, limits: Optional[Range] = None) -> Optional[str]:
    """None when `value` is a finite number inside `limits`; else what to give instead (for the message)."""
    if not is_number(value):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"give a finite number{' ' + limits._describe_value() if limits else ''}"
    if limits is not None and not limits.admits(value):
        return f"give {limits._describe_value()}"
    return None


def check_fields(cls, values: dict) -> Optional[tuple]:
    """The first (key, value, advice) of `values` that breaks `cls.RANGES` or is not finite; None if all fit.

    `values` maps field names of dataclass `cls` to (typed) values.
    """
    ranges = getattr(cls, "RANGES", {})
    for key, value in values.items():
        items = value if isinstance(value, (tuple, list)) else (value,)
        limits = ranges.get(key)
        if isinstance(value, (tuple, list)) and limits is not None and limits.max_items is not None \
                and len(value) > limits.max_items:
            return key, f"a list of {len(value)} items", f"give at most {limits.max_items} items"
        for item in items:
            advice = check_number(item, ranges.get(key))
            if advice:
                return key, value, advice
    return None


def bounded(kind, low=None, high=None, low_open: bool = False):
    """An argparse `type=` that reads an int or float and refuses values outside [low, high] in one line."""
    limits = Range(low, high, low_open)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        advice = check_number(value, limits)
        if advice:
            raise argparse.ArgumentTypeError(f"{text}: {advice}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    parse.limits = limits  # what the option admits (tests check that every numeric option has both ends)
    return parse
