"""Data files read once: one cache for every table file a space or a benchmark table reads.

A file is parsed again only when its resolved path, modification time or size changes, so an
edited table is never served stale and an unchanged one is parsed once per process however
many spaces, tables and evaluators read it. :class:`CSVTable` is the raw form of a CSV table
(header and rows of strings), which :class:`~archsearch.space.table.TableSpace` searches and
:mod:`archsearch.tables` looks metrics up in.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from archsearch.errors import DataError
from archsearch.space.base import Choice

T = TypeVar("T")
_INT = re.compile(r"[+-]?\d+")


def cached_read(parse: Callable[..., T], path: str | Path, what: str, *args: Hashable) -> T:
    """``parse(resolved_path, *args)``, cached per parser, resolved path, mtime and size.

    ``what`` names the file in the error raised when it does not exist (``"NAS-Bench-201
    table"``); ``parse`` raises :class:`~archsearch.errors.DataError` for a bad file.
    """
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise DataError(f"{what} not found: {path}")
    stat = resolved.stat()
    return _cached(parse, str(resolved), stat.st_mtime_ns, stat.st_size, args)


@lru_cache(maxsize=16)
def _cached(parse: Callable[..., T], path: str, _mtime: int, _size: int, args: tuple) -> T:
    return parse(path, *args)


@dataclass(frozen=True)
class CSVTable:
    """A CSV file as read: header and rows of stripped strings (validated for shape)."""

    path: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]  # each row's line number in the file (blank lines are skipped)
    _parsed: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rows)

    def position(self, column: str) -> int:
        try:
            return self.header.index(column)
        except ValueError:
            raise DataError(
                f"table {self.path} has no column {column!r}; columns: {list(self.header)}"
            ) from None

    def raw(self, column: str) -> list[str]:
        j = self.position(column)
        return [row[j] for row in self.rows]

    def values(self, column: str) -> list[Choice]:
        """The column's values as ints, floats or strings (the narrowest type all fit)."""
        key = ("values", column)
        if key not in self._parsed:  # tables are cached, so parse each column once
            self._parsed[key] = _typed(self.raw(column))
        return list(self._parsed[key])

    def metric(self, column: str) -> np.ndarray:
        """The column as floats; a DataError names the first non-numeric value and its line."""
        key = ("metric", column)
        if key not in self._parsed:
            self._parsed[key] = self._metric(column)
        return self._parsed[key].copy()

    def _metric(self, column: str) -> np.ndarray:
        out = np.empty(len(self.rows))
        for i, text in enumerate(self.raw(column)):
            try:
                out[i] = float(text)
            except ValueError:
                raise DataError(
                    f"table {self.path}, line {self.lines[i]}: metric column {column!r} holds "
                    f"{text!r}, not a number (write nan for a failed evaluation)"
                ) from None
        return out

    def is_numeric(self, column: str) -> bool:
        try:
            self.metric(column)
        except DataError:
            return False
        return True


def read_table(path: str | Path) -> CSVTable:
    """Read a CSV table (cached per resolved path, size and modification time)."""
    return cached_read(_read, path, "table")


def _read(path: str) -> CSVTable:
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise DataError(f"table {path} is empty (expected a header line)")
            header = [h.strip() for h in header]
            if "" in header or len(set(header)) != len(header):
                raise DataError(
                    f"table {path} needs distinct, non-empty column names, got {header}"
                )
            rows, lines = [], []
            for line, row in enumerate(reader, start=2):
                if not row or all(not v.strip() for v in row):
                    continue  # blank line
                if len(row) != len(header):
                    raise DataError(
                        f"table {path}, line {line}: {len(row)} fields, header has {len(header)}"
                    )
                rows.append(tuple(v.strip() for v in row))
                lines.append(line)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read table {path}: {exc}") from None
    if not rows:
        raise DataError(f"table {path} has a header but no rows")
    return CSVTable(path=path, header=tuple(header), rows=tuple(rows), lines=tuple(lines))


def _typed(texts: Sequence[str]) -> list[Choice]:
    if all(_INT.fullmatch(t) for t in texts):
        return [int(t) for t in texts]
    try:
        floats = [float(t) for t in texts]
    except ValueError:
        return list(texts)
    if all(math.isfinite(v) for v in floats):
        return floats
    return list(texts)  # "nan" or "inf" as a choice is a label, not a number
