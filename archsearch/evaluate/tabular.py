"""Evaluation by table lookup: the NAS-Bench-201 protocol (search on validation, report test)."""

from __future__ import annotations

from pathlib import Path

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.evaluate.table import looked_up
from archsearch.space.base import Architecture, SearchSpace
from archsearch.space.nb201 import NB201Space
from archsearch.tables.nb201 import dataset_name, load_nb201_table


@EVALUATORS.register("nb201-table")
class NB201TableEvaluator(Evaluator):
    """Looks up ``<dataset>_valid`` (objective) and ``<dataset>_test`` (reported).

    Every other numeric column of the row (the other datasets' accuracies, a stored proxy
    score) is reported too, under its column name, and so is ``nb201_index``: a study
    stores them all and may constrain or report any of them, at no extra cost. Each query
    is one evaluation of the study's budget, as in the benchmark's protocol.
    """

    def __init__(self, table: str, dataset: str = "cifar10") -> None:
        self.table_path = str(Path(table).expanduser().resolve())
        self.dataset = dataset_name(dataset)
        self.table = load_nb201_table(table)
        self.objective_name = f"{self.dataset}_valid"
        self.reported_name = f"{self.dataset}_test"
        self.table.column(self.objective_name)  # a table without them fails now
        self.table.column(self.reported_name)

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
        time_limit: float | None = None,
    ) -> EvalResult:
        row, values = looked_up(self.table, arch)
        first = {name: values.pop(name) for name in (self.objective_name, self.reported_name)}
        return EvalResult({**first, **values, "nb201_index": float(row)})

    def value_names(self, space: SearchSpace) -> frozenset[str]:
        return frozenset(self.table.metric_names) | {"nb201_index"}
