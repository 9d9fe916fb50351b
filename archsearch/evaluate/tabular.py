"""Evaluation by table lookup: the NAS-Bench-201 protocol (search on validation, report test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.evaluate.table import MissingRowError, looked_up
from archsearch.space.base import Architecture, SearchSpace
from archsearch.space.nb201 import NB201Space
from archsearch.tables.nb201 import (
    COSTS,
    dataset_name,
    load_nb201_table,
    nb201_costs,
    nb201_hardware,
)


@EVALUATORS.register("nb201-table")
class NB201TableEvaluator(Evaluator):
    """Looks up ``<dataset>_valid`` (objective) and ``<dataset>_test`` (reported).

    Every other numeric column of the row (the other datasets' accuracies, a stored proxy
    score) is reported too, under its column name, and so are ``nb201_index`` and the
    network's costs, ``params`` and ``flops``: a study stores them all and may constrain,
    trade off against or report any of them, at no extra cost. Each query is one evaluation
    of the study's budget, as in the benchmark's protocol.

    The costs are those of the benchmark's network (C=16, N=5, whatever the space's
    ``channels``, since the accuracies are that network's too) on ``dataset``'s input and
    classes, as the benchmark's own API gives them per dataset (CIFAR-100's classifier has
    5,850 more parameters; ImageNet16-120's 16x16 images need about a quarter of the
    FLOPs), from the file the package ships (:func:`~archsearch.tables.nb201.nb201_costs`).
    A table with its own ``params`` or ``flops`` column is the user's choice of figures
    (published ones, say, counted otherwise): its column is reported instead. Both are known
    without evaluating (:meth:`cheap_values`), so a study refuses an architecture over a
    cost budget before it spends a query on it.

    On CIFAR-10 the network's measured hardware figures are reported the same way:
    ``latency_ms``, ``onnx_latency_ms`` (with their ``*_iqr_ms``) and ``peak_memory_mb``, as
    this project measured them for all 15,625 cells
    (:func:`~archsearch.tables.nb201.nb201_hardware`), which makes the benchmark an accuracy
    x latency benchmark at table speed. ``hardware`` names a table of one's own instead (the
    same columns, or any figures: ``arch`` and numbers, as ``data/nb201_latency.csv``), say
    measured on one's target device; its figures are reported on every dataset. The
    packaged figures are the CIFAR-10 network's and are not reported on the other datasets,
    whose networks differ.
    """

    def __init__(self, table: str, dataset: str = "cifar10", hardware: str | None = None) -> None:
        self.table_path = str(Path(table).expanduser().resolve())
        self.hardware_path = (
            None if hardware is None else str(Path(hardware).expanduser().resolve())
        )
        self._hardware = {} if hardware is None else load_hardware_table(self.hardware_path)
        self.dataset = dataset_name(dataset)
        #: the packaged figures by row, when no table of one's own replaces them
        self._packaged = nb201_hardware() if hardware is None and self.dataset == "cifar10" else {}
        first = next(iter(self._hardware.values()), {})
        self._hardware_names = frozenset(first) | frozenset(self._packaged)
        self.table = load_nb201_table(table)
        self.objective_name = f"{self.dataset}_valid"
        self.reported_name = f"{self.dataset}_test"
        self.table.column(self.objective_name)  # a table without them fails now
        self.table.column(self.reported_name)
        packaged = nb201_costs(self.dataset)
        self._costs: dict[str, np.ndarray] = {
            name: self.table.column(name) if name in self.table.metric_names else packaged[name]
            for name in COSTS
        }

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
        measured = self._measured(arch, space, row)
        if self._hardware and not measured:
            raise MissingRowError(f"{space.to_string(arch)} has no row in {self.hardware_path}")
        costs = self._costs_of(row)
        return EvalResult({**first, **values, **costs, **measured, "nb201_index": float(row)})

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> dict[str, float]:
        """``params`` and ``flops`` (every cell has a row, so they are one array read), and
        the ``hardware`` table's measured figures of the cell."""
        row = self.table.row(arch)
        return {**self._costs_of(row), **self._measured(arch, space, row)}

    def _measured(self, arch: Architecture, space: SearchSpace, row: int) -> dict[str, float]:
        """The cell's measured figures: the packaged ones by ``row``, or a table's by name."""
        if self._packaged:
            return {name: float(column[row]) for name, column in self._packaged.items()}
        if not self._hardware:
            return {}
        return dict(self._hardware.get(space.to_string(arch), {}))

    def _costs_of(self, row: int) -> dict[str, float]:
        return {name: float(column[row]) for name, column in self._costs.items()}

    def value_names(self, space: SearchSpace) -> frozenset[str]:
        names = frozenset(self.table.metric_names) | set(COSTS) | {"nb201_index"}
        return names | self._hardware_names


def load_hardware_table(path: str) -> dict[str, dict[str, float]]:
    """``arch -> {figure: value}`` from a hardware table; a malformed file is one
    :class:`~archsearch.errors.DataError`."""
    import csv

    from archsearch.errors import DataError

    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as error:
        raise DataError(f"cannot read hardware table {path}: {error.strerror}") from None
    if not rows or not rows[0] or rows[0][0] != "arch" or len(rows[0]) < 2:
        raise DataError(f"{path}: a hardware table starts with 'arch' and a figure column")
    names = rows[0][1:]
    table = {}
    for number, row in enumerate(rows[1:], start=2):
        try:
            if len(row) != len(names) + 1:
                raise ValueError
            table[row[0]] = {name: float(v) for name, v in zip(names, row[1:], strict=True)}
        except ValueError:
            raise DataError(
                f"{path}, line {number}: expected arch and {len(names)} numbers"
            ) from None
    return table
