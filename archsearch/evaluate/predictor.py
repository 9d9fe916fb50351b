"""Evaluation by a learned performance predictor, fitted once on a table's known results.

A predictor (see :mod:`archsearch.predict`) scores an architecture in milliseconds once it
has learned from a few hundred evaluated ones. As an evaluator it lets any strategy search
a predicted objective (or screen with one inside a composite) through the same study,
storage and analysis as a real one, and lets a predictor's worth be measured by what a
search finds with it.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.space.base import Architecture, Choice, SearchSpace
from archsearch.tables.base import Table


@EVALUATORS.register("predictor")
class PredictorEvaluator(Evaluator):
    """Reports ``predicted_<target>`` (and ``predicted_<target>_std`` for predictors with a
    standard deviation) of a predictor fitted at construction.

    Options:
        train_table: a NAS-Bench-201 CSV (it has an ``arch`` column) or any CSV table of
            decisions and metrics (read as space ``table`` with ``decisions``/``metrics``).
        target: the column learned, e.g. ``cifar10_valid``; rows where it is not finite
            are left out.
        predictor: a registered predictor name (``lightgbm``, ``mlp-ensemble``, ``gp``,
            ``gates``); ``options`` are its constructor options.
        train_size: how many rows to learn from, drawn with ``seed`` (``None``: all of them).
        seed: the seed of the subset and of the predictor, so that the same options always
            give the same predictor and the same predictions (``evaluate``'s per-trial seed
            is ignored: a prediction is not a noisy measurement).

    The training rows are :attr:`train_archs`, so that held-out architectures can be told
    apart. A study's space must have the table's decisions (check_space).
    """

    def __init__(
        self,
        train_table: str,
        target: str,
        predictor: str = "lightgbm",
        options: Mapping[str, Any] | None = None,
        train_size: int | None = None,
        seed: int = 0,
        direction: str = "max",
        decisions: Sequence[str] | Mapping[str, Sequence[Choice]] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> None:
        from archsearch.predict import PREDICTORS

        if direction not in ("max", "min"):
            raise ArchsearchError(f"direction must be max or min, got {direction!r}")
        if train_size is not None and (
            isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 2
        ):
            raise ArchsearchError(f"train_size must be an integer >= 2, got {train_size!r}")
        if options is not None and not isinstance(options, Mapping):
            raise ArchsearchError(f"predictor options must be a mapping, got {options!r}")
        self.decisions, self.metrics = decisions, metrics
        self.table = _training_table(train_table, target, decisions, metrics)
        self.space = self.table.space
        self.target = target
        self.predictor_name = predictor
        self.options = dict(options or {})
        self.train_size = train_size
        self.seed = int(seed)
        self.objective_name = f"predicted_{target}"
        self.objective_direction = direction
        self.train_archs, scores = self._training_set()
        factory = PREDICTORS.get(predictor)
        try:
            self.predictor = factory(self.space, seed=self.seed, **self.options)
        except TypeError as exc:
            raise ArchsearchError(f"bad options for predictor {predictor!r}: {exc}") from None
        self.predictor.fit(self.train_archs, scores)

    def _training_set(self) -> tuple[list[Architecture], np.ndarray]:
        """The seeded subset of rows with a finite target, as architectures and scores."""
        column = self.table.column(self.target)
        archs = [a for a in self.space.enumerate() if np.isfinite(column[self.table.row(a)])]
        if len(archs) < 2:
            raise ArchsearchError(
                f"table {self.table.path} has {len(archs)} rows with a finite {self.target!r}; "
                "a predictor needs at least 2"
            )
        if self.train_size is not None:
            if self.train_size > len(archs):
                raise ArchsearchError(
                    f"train_size {self.train_size} exceeds the {len(archs)} rows of "
                    f"{self.table.path} with a finite {self.target!r}"
                )
            rng = np.random.default_rng(self.seed)
            picked = np.sort(rng.choice(len(archs), size=self.train_size, replace=False))
            archs = [archs[i] for i in picked]
        return archs, np.array([column[self.table.row(a)] for a in archs], dtype=float)

    def check_space(self, space: SearchSpace) -> None:
        if tuple(space.decisions) != tuple(self.space.decisions):
            raise ArchsearchError(
                f"evaluator predictor learned architectures of space {self.space.name!r} from "
                f"{self.table.path}; space {space.name!r} has other decisions"
            )

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        if not self.predictor.has_std:
            return EvalResult({self.objective_name: float(self.predictor.predict([arch])[0])})
        mean, std = self.predictor.predict([arch], return_std=True)
        return EvalResult({
            self.objective_name: float(mean[0]),
            f"{self.objective_name}_std": float(std[0]),
        })  # fmt: skip


def _training_table(
    path: str,
    target: str,
    decisions: Sequence[str] | Mapping[str, Sequence[Choice]] | None,
    metrics: Sequence[str] | None,
) -> Table:
    """A NAS-Bench-201 table when the file has an ``arch`` column, else a generic table."""
    from archsearch.tables.generic import load_generic_table
    from archsearch.tables.nb201 import load_nb201_table

    try:
        with open(Path(path).expanduser(), newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        header = []  # the loader names the problem
    if "arch" in header and decisions is None and metrics is None:
        table: Table = load_nb201_table(path)
    else:
        table = load_generic_table(path, decisions, objective=target, metrics=metrics)
    table.column(target)  # a DataError names a missing target now
    return table
