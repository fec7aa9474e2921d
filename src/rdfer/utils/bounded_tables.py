"""Reading the CSV tables, text lists and JSON files rdfer is given, within bounds.

    with csv_table(path) as rows:                   # csv.reader's rows, bounded
        header = next(rows, [])
    with csv_table(path, dicts=True) as reader:     # a csv.DictReader, bounded
        records = list(reader)
    lines = text_lines(path)                        # (line number, stripped text) of each non-blank line
    values = read_json(path)

Every file a user hands rdfer (split lists, CSV manifests, decisions, ground
truth, predictions, audit files, model specs) is read through these, so that a
small or hostile file cannot cost unbounded memory or time: at most
`MAX_TABLE_BYTES` per table (`MAX_JSON_BYTES` per JSON file), `MAX_ROWS` rows,
`MAX_FIELDS` fields in a row (the header too) and `MAX_FIELD_CHARS` characters
in a field. The maxima are far above any real input (FERV39K, the largest
dataset, lists about 39,000 clips; a predictions table has a column per class).
Anything beyond them, text that is not UTF-8 or a CSV the csv module cannot
parse stops with one line naming the file and the line.
"""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path
from typing import Optional

from rdfer.errors import RdferError

MAX_TABLE_BYTES = 512 * 2**20
MAX_JSON_BYTES = 64 * 2**20
MAX_ROWS = 5_000_000
MAX_FIELDS = 10_000
MAX_FIELD_CHARS = 100_000


def check_size(path, limit: Optional[int] = None, what: str = "a table") -> None:
    """RdferError (one line) when the file at `path` is larger than `limit` bytes (MAX_TABLE_BYTES unless
    given); nothing is read."""
    limit = MAX_TABLE_BYTES if limit is None else limit
    size = Path(path).stat().st_size
    if size > limit:
        raise RdferError(f"{path}: {size:,} bytes, more than the {limit:,} {what} may have; is this the right file?")


class BoundedRows:
    """csv.reader's rows of one file, each checked against the bounds (one line naming file and line)."""

    def __init__(self, handle, path):
        self.path = path
        self._reader = csv.reader(handle)
        self._rows = 0

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self):
        return self

    def __next__(self) -> list:
        try:
            row = next(self._reader)
        except csv.Error as error:
            raise RdferError(f"{self.path} line {self._reader.line_num}: not a readable CSV ({error})") from None
        except UnicodeDecodeError as error:
            raise RdferError(f"{self.path} near line {self._reader.line_num + 1}: not UTF-8 text ({error.reason})") \
                from None
        self._rows += 1
        where = f"{self.path} line {self._reader.line_num}"
        if self._rows > MAX_ROWS:
            raise RdferError(f"{where}: more than {MAX_ROWS:,} rows; is this the right file?")
        if len(row) > MAX_FIELDS:
            raise RdferError(f"{where}: {len(row):,} fields, more than the {MAX_FIELDS:,} a row may have")
        long = next((len(field) for field in row if len(field) > MAX_FIELD_CHARS), None)
        if long:
            raise RdferError(f"{where}: a field of {long:,} characters, more than the {MAX_FIELD_CHARS:,} allowed")
        return row


@contextlib.contextmanager
def csv_table(path, *, dicts: bool = False, encoding: str = "utf-8-sig"):
    """The rows of the CSV file `path` (a csv.DictReader with `dicts`), read within the bounds."""
    check_size(path)  # (csv's own field limit, 131,072 characters, stops a longer field before it is held)
    with open(path, newline="", encoding=encoding) as handle:
        rows = BoundedRows(handle, path)
        if dicts:
            reader = csv.DictReader(handle)
            reader.reader = rows  # DictReader reads its header and rows through `reader`
            yield reader
        else:
            yield rows


def text_lines(path, what: str = "text file") -> list:
    """(line number, stripped text) of each non-blank line of a UTF-8 text file, within the bounds."""
    check_size(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise RdferError(f"{path}: not a UTF-8 {what} ({error})") from None
    lines = text.splitlines()
    if len(lines) > MAX_ROWS:
        raise RdferError(f"{path} line {MAX_ROWS + 1:,}: more than the {MAX_ROWS:,} lines (rows) a {what} may have")
    longest = max((len(line) for line in lines), default=0)
    if longest > MAX_FIELD_CHARS:
        number = next(n for n, line in enumerate(lines, 1) if len(line) == longest)
        raise RdferError(f"{path} line {number}: {longest:,} characters, more than the {MAX_FIELD_CHARS:,} a line "
                         "may have")
    return [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]


def read_json(path, what: str = "JSON file"):
    """The values in a JSON file of at most MAX_JSON_BYTES (RdferError naming the file otherwise)."""
    check_size(path, MAX_JSON_BYTES, f"a {what}")  # (the module's value at call time: tests lower it)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise RdferError(f"{path}: not a valid {what} ({reason})") from None
