"""A generic tabular benchmark: any CSV of decisions and metrics is a space and a table.

The rows of the file are searched by :class:`~archsearch.space.table.TableSpace` (space
``"table"``, which lives with the other spaces so that spaces never import tables) and looked
up by :class:`GenericTable` (this protocol's view) or by
:class:`~archsearch.evaluate.table.TableEvaluator` (evaluator ``"table"``). The raw file,
:class:`~archsearch.space.files.CSVTable`, and :func:`read_table` are re-exported here, where
callers have always imported them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archsearch.errors import DataError
from archsearch.space.base import Architecture, Choice, SearchSpace
from archsearch.space.files import CSVTable, read_table
from archsearch.space.table import TableSpace
from archsearch.tables.base import Table

__all__ = [
    "CSVTable",
    "GenericTable",
    "LabelledTable",
    "TableSpace",
    "load_generic_table",
    "read_table",
]


class _CSVMetrics(Table):
    """What both views of a CSV file share: its path, length and metric columns (every
    numeric column that is not one of the space's decisions; ``nan`` stays ``nan``: a failed
    evaluation)."""

    data: CSVTable
    space: SearchSpace
    _metrics: dict[str, np.ndarray]

    def _set_metrics(self) -> None:
        decisions = {d.label for d in self.space.decisions}
        metrics = {
            c: self.data.metric(c)
            for c in self.data.header
            if c not in decisions and self.data.is_numeric(c)
        }
        object.__setattr__(self, "_metrics", metrics)

    @property
    def path(self) -> str:  # type: ignore[override]
        return self.data.path

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self._metrics)

    def column(self, name: str) -> np.ndarray:
        try:
            return self._metrics[name]
        except KeyError:
            raise DataError(
                f"table {self.path} has no metric column {name!r}; metrics: {list(self._metrics)}"
            ) from None

    def __len__(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class GenericTable(_CSVMetrics):
    """A CSV table as the table protocol: the rows of its own ``space``."""

    data: CSVTable
    space: TableSpace
    _metrics: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._set_metrics()

    def row(self, arch: Architecture) -> int:
        return self.space.row(arch)


@dataclass(frozen=True)
class LabelledTable(_CSVMetrics):
    """A CSV table whose rows are found by the values of decisions named like its columns.

    This is how a space that is not the table's own (a define-by-run space whose labels are
    columns, say) is looked up: ``space`` is that space, the row of an architecture is the
    one holding its decision values, and every other numeric column is a metric. The file
    must not repeat an assignment of those columns (the lookup would be ambiguous).
    """

    data: CSVTable
    space: SearchSpace
    _index: dict[tuple, int] = field(init=False, repr=False, compare=False)
    _metrics: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        labels = [d.label for d in self.space.decisions]
        missing = [label for label in labels if label not in self.data.header]
        if missing:
            raise DataError(
                f"space {self.space.name!r} has decisions {missing} that are not columns of "
                f"{self.data.path}; columns: {list(self.data.header)}"
            )
        index: dict[tuple, int] = {}
        columns = [self.data.values(label) for label in labels]
        for r, key in enumerate(zip(*columns, strict=True)):
            if key in index:
                first, again = self.data.lines[index[key]], self.data.lines[r]
                values = dict(zip(labels, key, strict=True))
                raise DataError(
                    f"table {self.data.path}: lines {first} and {again} repeat the decisions "
                    f"{values}"
                )
            index[key] = r
        object.__setattr__(self, "_index", index)
        self._set_metrics()

    def row(self, arch: Architecture) -> int:
        try:
            return self._index[tuple(arch[d.label] for d in self.space.decisions)]
        except KeyError:
            raise DataError(f"{arch} has no row in table {self.path}") from None


def load_generic_table(
    path: str | Path,
    decisions: Sequence[str] | Mapping[str, Sequence[Choice]] | None = None,
    objective: str | None = None,
    reported: str | None = None,
    metrics: Sequence[str] | None = None,
) -> GenericTable:
    """Load a CSV table and its space (the file is cached as every table file is); the
    options are :class:`TableSpace`'s."""
    space = TableSpace(str(path), decisions, objective, reported, metrics)
    return GenericTable(read_table(space.table_path), space)
