"""Evaluation by table lookup: the NAS-Bench-201 protocol (search on validation, report test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace
from archsearch.space.nb201 import NB201Space
from archsearch.tables.nb201 import dataset_name, load_nb201_table


@EVALUATORS.register("nb201-table")
class NB201TableEvaluator(Evaluator):
    """Looks up ``<dataset>_valid`` (objective) and ``<dataset>_test`` (reported).

    Each query is one evaluation of the study's budget, as in the benchmark's protocol.
    """

    name = "nb201-table"

    def __init__(self, table: str, dataset: str = "cifar10") -> None:
        self.table_path = str(Path(table).expanduser().resolve())
        self.dataset = dataset_name(dataset)
        self.table = load_nb201_table(table)
        self.objective_name = f"{self.dataset}_valid"
        self.reported_name = f"{self.dataset}_test"
        self._valid = self.table.column(self.objective_name)
        self._test = self.table.column(self.reported_name)

    def check_space(self, space: SearchSpace) -> None:
        if not isinstance(space, NB201Space):
            raise ArchsearchError(f"evaluator nb201-table needs space nb201, got {space.name!r}")

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,  # a table lookup: nothing to cut short
    ) -> EvalResult:
        i = self.table.space.index(arch)
        return EvalResult(
            objective=float(self._valid[i]),
            reported=float(self._test[i]),
            metrics={"nb201_index": float(i)},
        )

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "table": self.table_path, "dataset": self.dataset}
