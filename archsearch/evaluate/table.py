"""Evaluation by lookup in any CSV table (see :mod:`archsearch.tables.generic`)."""

from __future__ import annotations

import math
from typing import Any

from archsearch.errors import DataError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace
from archsearch.tables.generic import CSVTable, TableSpace, read_table


class MissingRowError(LookupError):
    """An architecture has no row in the table.

    Deliberately not an :class:`~archsearch.errors.ArchsearchError`: the study stops on
    those (a configuration error), whereas a missing row is one failed candidate.
    """


@EVALUATORS.register("table")
class TableEvaluator(Evaluator):
    """Looks up ``objective`` (what the search sees) and ``reported`` (what it reports).

    Every other numeric column of the table that is not a decision is stored as a metric.
    The space's decision labels must be columns of the table; with a :class:`TableSpace`
    every proposal has a row, with another space (say a define-by-run one whose labels match
    the columns) an architecture without a row raises :class:`MissingRowError`, which the
    study records as a failed evaluation. A ``nan`` objective is a failed evaluation too.
    Each lookup is one evaluation of the study's budget.
    """

    name = "table"

    def __init__(self, table: str, objective: str, reported: str | None = None) -> None:
        self.data: CSVTable = read_table(table)
        self.table_path = self.data.path
        self.objective_name = objective
        self.reported_name = reported
        self._objective = self.data.metric(objective)
        self._reported = None if reported is None else self.data.metric(reported)
        self._index: tuple[tuple[str, ...], dict[tuple[Any, ...], int]] | None = None

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table_path,
            "objective": self.objective_name,
            "reported": self.reported_name,
        }

    def check_space(self, space: SearchSpace) -> None:
        self._lookup(space)

    def _lookup(self, space: SearchSpace) -> dict[tuple[Any, ...], int]:
        """Row by decision values, for the space's labels (built once per label set)."""
        labels = tuple(d.label for d in space.decisions)
        if self._index is not None and self._index[0] == labels:
            return self._index[1]
        missing = [label for label in labels if label not in self.data.header]
        if missing:
            raise DataError(
                f"space {space.name!r} has decisions {missing} that are not columns of "
                f"{self.table_path}; columns: {list(self.data.header)}"
            )
        metrics = {self.objective_name, self.reported_name}
        if metrics & set(labels):
            raise DataError(f"columns {sorted(metrics & set(labels))} are metrics, not decisions")
        columns = [self.data.values(label) for label in labels]
        index: dict[tuple[Any, ...], int] = {}
        for r, key in enumerate(zip(*columns, strict=True)):
            if key in index:
                first, again = self.data.lines[index[key]], self.data.lines[r]
                values = dict(zip(labels, key, strict=True))
                raise DataError(
                    f"table {self.table_path}: lines {first} and {again} repeat the decisions "
                    f"{values}"
                )
            index[key] = r
        others = [c for c in self.data.header if c not in metrics and c not in labels]
        self._extra = {c: self.data.metric(c) for c in others if self.data.is_numeric(c)}
        self._index = (labels, index)
        return index

    def row(self, arch: Architecture, space: SearchSpace) -> int:
        if isinstance(space, TableSpace) and space.table_path == self.table_path:
            return space.row(arch)
        key = tuple(arch[d.label] for d in space.decisions)
        try:
            return self._lookup(space)[key]
        except KeyError:
            raise MissingRowError(f"{arch} has no row in table {self.table_path}") from None

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,  # a table lookup: nothing to cut short
    ) -> EvalResult:
        self._lookup(space)
        r = self.row(arch, space)
        reported = None if self._reported is None else float(self._reported[r])
        metrics = {"table_row": float(r)}
        metrics.update({c: float(v[r]) for c, v in self._extra.items()})
        return EvalResult(
            objective=float(self._objective[r]),
            reported=reported if reported is None or math.isfinite(reported) else None,
            metrics=metrics,
        )


@EVALUATORS.register("nasbench-graph-table")
class NASBenchGraphEvaluator(Evaluator):
    """NAS-Bench-Graph lookup: validation performance (objective) and test (reported).

    Also stores the benchmark's latency and number of parameters. Performance is the
    benchmark's own figure, accuracy as a fraction (ROC-AUC on proteins). ``path`` reads a
    ``.bench`` file other than the one the ``nas-bench-graph`` package installs.
    """

    name = "nasbench-graph-table"

    def __init__(self, dataset: str = "cora", path: str | None = None) -> None:
        from archsearch.tables.nasbench_graph import load_nasbench_graph

        self.table = load_nasbench_graph(dataset, path)
        self.dataset = self.table.dataset
        self.path = None if path is None else self.table.path
        self.objective_name = f"{self.dataset}_valid"
        self.reported_name = f"{self.dataset}_test"

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "dataset": self.dataset, "path": self.path}

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

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,  # a table lookup: nothing to cut short
    ) -> EvalResult:
        key = space.benchmark_hash(arch)
        r = self.table.row(key)
        return EvalResult(
            objective=float(self.table.valid[r]),
            reported=float(self.table.test[r]),
            metrics={
                "latency": float(self.table.latency[r]),
                "params": float(self.table.params[r]),
                "benchmark_hash": float(key),
            },
        )
