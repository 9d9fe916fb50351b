"""The one protocol of tabular benchmarks: a space, a file and numeric columns by row.

NAS-Bench-201, NAS-Bench-Graph, the Fashion-MNIST table and any CSV table store different
things, but a search, a diagnosis or an evaluator asks each the same questions: which
architectures have a row (:meth:`Table.row`, ``in``), which numbers a row holds
(:attr:`Table.metric_names`, :meth:`Table.lookup`) and a whole column to rank against
(:meth:`Table.column`). Each table implements them so that code written against
:class:`Table` runs on every benchmark. Every table file is read through
:func:`load_cached` (one cache keyed by resolved path, modification time and size), so an
edited file is never served stale.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from archsearch.errors import DataError, InvalidArchitectureError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.space.files import cached_read

#: the loader every table goes through: ``load_cached(parse, path, what, *args)``
load_cached = cached_read


class Table(ABC):
    """A tabular benchmark: rows of numeric columns for the architectures of ``space``.

    Implementations also have ``path`` (the resolved file the table was read from) and
    ``space`` (the search space whose architectures have rows) as attributes.
    """

    path: str
    space: SearchSpace

    @property
    @abstractmethod
    def metric_names(self) -> tuple[str, ...]:
        """The numeric columns, the keys of :meth:`lookup`."""

    @abstractmethod
    def column(self, name: str) -> np.ndarray:
        """One numeric column as floats, in row order; a DataError names unknown columns."""

    @abstractmethod
    def row(self, arch: Architecture) -> int:
        """The row of ``arch``; DataError or InvalidArchitectureError when it has none."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of rows."""

    def __contains__(self, arch: object) -> bool:
        try:
            self.row(arch)  # type: ignore[arg-type]
        except (DataError, InvalidArchitectureError, KeyError, TypeError):
            return False  # not an architecture of the space, or one without a row
        return True

    def lookup(self, arch: Architecture) -> dict[str, float]:
        """Every numeric value of ``arch``'s row, by column name."""
        return self.row_values(self.row(arch))

    def row_values(self, row: int) -> dict[str, float]:
        """Every numeric value of row ``row``, by column name (an evaluator that also
        reports the row number finds it once, with :meth:`row`)."""
        return {name: float(self.column(name)[row]) for name in self.metric_names}
