"""Evaluation by lookup in any CSV table (see :mod:`archsearch.tables.generic`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from archsearch.errors import ArchsearchError, DataError, InvalidArchitectureError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace
from archsearch.tables.base import Table
from archsearch.tables.generic import CSVTable, GenericTable, LabelledTable, TableSpace, read_table


class MissingRowError(LookupError):
    """An architecture has no row in the table.

    Deliberately not an :class:`~archsearch.errors.ArchsearchError`: the study stops on
    those (a configuration error), whereas a missing row is one failed candidate.
    """


def looked_up(table: Table, arch: Any) -> tuple[int, dict[str, float]]:
    """``arch``'s row and every numeric value in it, through the table protocol.

    The protocol signals a missing row with a DataError or InvalidArchitectureError (user
    errors, on which a study stops); for an evaluator it is one failed candidate, so it
    becomes a :class:`MissingRowError`. Shared by every table evaluator.
    """
    try:
        row = table.row(arch)
    except (DataError, InvalidArchitectureError):
        raise MissingRowError(f"{arch} has no row in table {table.path}") from None
    return row, table.row_values(row)


@EVALUATORS.register("table")
class TableEvaluator(Evaluator):
    """Looks up ``objective`` (what the search sees) and ``reported`` (what it reports).

    Every other numeric column of the table that is not a decision is reported too, under
    its column name, and so is ``table_row``. The space's decision labels must be columns
    of the table: the space's own :class:`TableSpace` is looked up as a
    :class:`~archsearch.tables.generic.GenericTable` (every proposal has a row), another
    space (say a define-by-run one whose labels match the columns) as a
    :class:`~archsearch.tables.generic.LabelledTable`, where an architecture without a row
    raises :class:`MissingRowError`, which the study records as a failed evaluation. A
    ``nan`` objective is a failed evaluation too. Each lookup is one evaluation of the
    study's budget.

    ``cheap_columns`` names the columns that are costs known without training (``params``,
    ``flops``, a measured latency): :meth:`cheap_values` gives them, so that a study refuses
    an architecture that breaks a hard constraint on them before it spends an evaluation.
    None by default, because on a table every column is a lookup: declaring an accuracy
    cheap would let a constraint on it read the result of what is really an evaluation
    without counting one.
    """

    def __init__(
        self,
        table: str,
        objective: str,
        reported: str | None = None,
        cheap_columns: Sequence[str] = (),
    ) -> None:
        self.data: CSVTable = read_table(table)
        self.table_path = self.data.path
        self.objective_name = objective
        self.reported_name = reported
        self.data.metric(objective)  # a missing or non-numeric column fails now
        if reported is not None:
            self.data.metric(reported)
        if isinstance(cheap_columns, str | bytes) or not isinstance(cheap_columns, Sequence):
            raise ArchsearchError(
                f"cheap_columns must be a list of column names, got {cheap_columns!r}"
            )
        for name in cheap_columns:
            if not isinstance(name, str) or name not in self.data.header:
                raise ArchsearchError(
                    f"cheap column {name!r} is not a column of {self.table_path}; "
                    f"columns: {list(self.data.header)}"
                )
            self.data.metric(name)  # a non-numeric one fails now, named
        self.cheap_columns = tuple(dict.fromkeys(cheap_columns))
        self._view: tuple[SearchSpace, Table] | None = None

    def check_space(self, space: SearchSpace) -> None:
        self.view(space)

    def view(self, space: SearchSpace) -> Table:
        """The table as the protocol sees it for ``space`` (built once per space)."""
        if self._view is not None and self._view[0] is space:
            return self._view[1]
        labels = {d.label for d in space.decisions}
        metrics = {self.objective_name, self.reported_name, *self.cheap_columns}
        if metrics & labels:
            raise DataError(f"columns {sorted(metrics & labels)} are metrics, not decisions")
        # LabelledTable checks that the labels are columns and no assignment repeats
        labelled = LabelledTable(self.data, space)
        own = isinstance(space, TableSpace) and space.table_path == self.table_path
        table: Table = GenericTable(self.data, space) if own else labelled
        self._view = (space, table)
        return table

    def value_names(self, space: SearchSpace) -> frozenset[str]:
        return frozenset(self.view(space).metric_names) | {"table_row"}

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        row, values = looked_up(self.view(space), arch)
        out = {self.objective_name: values.pop(self.objective_name), "table_row": float(row)}
        if self.reported_name is not None:
            reported = values.pop(self.reported_name)
            if math.isfinite(reported):
                out[self.reported_name] = reported
        out.update(values)
        return EvalResult(out)

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> dict[str, float]:
        """The ``cheap_columns`` of ``arch``'s row, as :meth:`evaluate` reports them (a
        ``nan`` reported value is left out there, so here too); nothing for an architecture
        without a row, whose evaluation then fails as it would have."""
        if not self.cheap_columns:
            return {}
        try:
            values = self.evaluate(arch, space).values
        except MissingRowError:
            return {}
        return {name: values[name] for name in self.cheap_columns if name in values}


@EVALUATORS.register("nasbench-graph-table")
class NASBenchGraphEvaluator(Evaluator):
    """NAS-Bench-Graph lookup: validation performance (objective) and test (reported).

    Also stores the benchmark's latency and number of parameters, which are known without
    evaluating (:meth:`cheap_values`). Performance is the benchmark's own figure, accuracy
    as a fraction (ROC-AUC on proteins). ``path`` reads a ``.bench`` file other than the one
    the ``nas-bench-graph`` package installs.
    """

    #: the table's columns that are costs, not results of training
    cheap_names = ("latency", "params")

    def __init__(self, dataset: str = "cora", path: str | None = None) -> None:
        from archsearch.tables.nasbench_graph import load_nasbench_graph

        self.table = load_nasbench_graph(dataset, path)
        self.dataset = self.table.dataset
        self.path = None if path is None else self.table.path
        self.objective_name = f"{self.dataset}_valid"
        self.reported_name = f"{self.dataset}_test"

    def check_space(self, space: SearchSpace) -> None:
        from archsearch.tables.nasbench_graph import NASBenchGraphSpace, operations_for

        if not isinstance(space, NASBenchGraphSpace):
            raise DataError(
                f"evaluator nasbench-graph-table needs space nasbench-graph, got {space.name!r}"
            )
        if space.operations != operations_for(self.dataset):
            raise DataError(
                f"NAS-Bench-Graph {self.dataset} was trained with operations "
                f"{list(operations_for(self.dataset))}, the space has {list(space.operations)}: "
                f"use space nasbench-graph with dataset={self.dataset!r}"
            )

    def value_names(self, space: SearchSpace) -> frozenset[str]:
        others = set(self.table.metric_names) - {"valid", "test"}
        return frozenset({self.objective_name, self.reported_name, "benchmark_hash", *others})

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        key = space.benchmark_hash(arch)
        _, values = looked_up(self.table, key)
        return EvalResult({
            self.objective_name: values.pop("valid"),
            self.reported_name: values.pop("test"),
            **values,
            "benchmark_hash": float(key),
        })  # fmt: skip

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> dict[str, float]:
        """``latency`` and ``params`` of ``arch``'s class; nothing when the benchmark has no
        result for it (its evaluation then fails as it would have)."""
        try:
            row = self.table.row(space.benchmark_hash(arch))
        except DataError:
            return {}
        return {name: float(self.table.column(name)[row]) for name in self.cheap_names}
