"""A generic tabular benchmark: any CSV of decisions and metrics is a space and an evaluator.

A table such as::

    depth,width,kernel,val_acc,test_acc,latency_ms
    2,16,3,81.2,80.9,1.4
    2,16,5,82.0,81.5,1.9
    ...

has one column per decision and one or more metric columns. :class:`TableSpace` (space
``"table"``) searches the rows, :class:`~archsearch.evaluate.table.TableEvaluator`
(evaluator ``"table"``) and :class:`~archsearch.tables.generic.GenericTable` look their
metrics up. An architecture is a row: the space is
*constrained* to the assignments the table holds, samples uniformly over rows and mutates
to rows that differ in one decision, so a strategy never proposes a missing one.

Decisions are declared (``decisions=``) or inferred safely: a column named as the objective,
the reported figure or a metric is not one, nor is a column of fractional floats (a measured
value such as ``val_acc`` or ``latency_ms``) or a test column (``test_acc``, ``cifar10_test``;
never a decision, even declared), so a table's other metrics cannot become choices the
search reads its answers from.

Values keep their type: a column whose every value is an integer holds ints, one whose every
value is a number holds floats, any other column holds strings. Bad files fail on load with
a :class:`~archsearch.errors.DataError` naming the file, line and column: unreadable files,
ragged rows, unknown columns, non-numeric metric values (write ``nan`` for a failed
training; the evaluator reports it as failed), and duplicate rows (two rows with the same
decisions would make the benchmark ambiguous).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from archsearch.errors import DataError, InvalidArchitectureError
from archsearch.space.base import Architecture, Choice, Decision, SearchSpace, choice_order
from archsearch.space.files import CSVTable, read_table
from archsearch.space.registry import SPACES


@SPACES.register("table")
class TableSpace(SearchSpace):
    """The rows of a CSV table as a search space; see the module docstring.

    ``decisions`` names the decision columns: ``None`` (inferred: every column not named a
    metric, except test columns and columns of fractional floats, which are metrics),
    a list of column names (choices inferred: the distinct values, sorted), or a mapping from
    column name to declared choices (their order is kept; rows holding a value outside them
    are left out of the space). ``objective``, ``reported`` and ``metrics`` name the columns
    that are *not* decisions, so that inference can leave them out.
    """

    constrained = True

    not_options = ()  # its ``decisions`` option names columns: it is stored

    def __init__(
        self,
        table: str,
        decisions: Sequence[str] | Mapping[str, Sequence[Choice]] | None = None,
        objective: str | None = None,
        reported: str | None = None,
        metrics: Sequence[str] | None = None,
    ) -> None:
        data = read_table(table)
        self.table_path = data.path
        self.objective = objective
        self.reported = reported
        self.metrics = list(metrics or [])
        not_decisions = [c for c in (objective, reported, *self.metrics) if c is not None]
        for column in not_decisions:
            data.position(column)
        if objective is not None:
            data.metric(objective)  # fail now on a non-numeric objective, not mid-search
        self.declared = isinstance(decisions, Mapping)
        if decisions is None:
            labels = [c for c in data.header if c not in not_decisions and _may_decide(data, c)]
        elif isinstance(decisions, str):
            raise InvalidArchitectureError(
                f"decisions must be a list of column names, got the string {decisions!r}"
            )
        else:
            labels = list(decisions)
            _refuse_test_columns(data, labels)
        if not labels:
            raise DataError(f"table {data.path}: no decision columns (columns: {data.header})")
        clash = [c for c in labels if c in not_decisions]
        if clash:
            raise DataError(f"columns {clash} are named both as decisions and as metrics")

        columns = {label: data.values(label) for label in labels}
        if isinstance(decisions, Mapping):
            choices = {label: _declared(data, label, decisions[label]) for label in labels}
        else:
            choices = {label: sorted(set(columns[label]), key=choice_order) for label in labels}
        super().__init__([Decision(label, tuple(choices[label])) for label in labels])

        lookup = [{v: k for k, v in enumerate(choices[label])} for label in labels]
        self._rows: dict[tuple[int, ...], int] = {}
        for r in range(len(data)):
            try:
                key = tuple(lookup[j][columns[label][r]] for j, label in enumerate(labels))
            except KeyError:
                continue  # a value outside the declared choices: not in this space
            if key in self._rows:
                first = self._rows[key]
                values = {label: columns[label][r] for label in labels}
                raise DataError(
                    f"table {data.path}: lines {data.lines[first]} and {data.lines[r]} repeat "
                    f"the decisions {values}; each architecture needs exactly one row"
                )
            self._rows[key] = r
        if not self._rows:
            raise DataError(f"table {data.path}: no row matches the declared choices")
        self._keys = np.array(sorted(self._rows), dtype=np.int64)
        self._siblings: list[dict[tuple[int, ...], list[int]]] | None = None
        self._decisions_option = (
            {label: list(choices[label]) for label in labels} if self.declared else labels
        )

    # ------------------------------------------------------------ membership
    def _key(self, arch: Architecture) -> tuple[int, ...]:
        return tuple(d.index(arch[d.label]) for d in self.decisions)

    def is_valid(self, arch: Architecture) -> bool:
        try:
            return self._key(arch) in self._rows
        except InvalidArchitectureError:
            return False

    def row(self, arch: Architecture) -> int:
        """The architecture's row (0 = the first after the header; ``lines`` has its line)."""
        try:
            return self._rows[self._key(arch)]
        except KeyError:
            raise InvalidArchitectureError(
                f"{arch} is not a row of table {self.table_path}"
            ) from None

    # ------------------------------------------------------------- exploration
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random row (no rejection: a sparse table would reject most draws)."""
        return self._from_indices(self._keys[int(rng.integers(len(self._keys)))])

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Rows that differ from ``arch`` in exactly one decision, decision by decision."""
        key = self._key(arch)
        siblings = self._sibling_index()
        result = []
        for j, index in enumerate(siblings):
            rest = key[:j] + key[j + 1 :]
            for value in index.get(rest, ()):
                if value != key[j]:
                    result.append(self._from_indices(rest[:j] + (value,) + rest[j:]))
        return result

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A uniformly chosen row among the nearest others: one decision away when any is.

        In a sparse table most rows have no row one decision away; then the nearest rows in
        Hamming distance take their place, so that a mutation still moves (a strategy that
        mutates would otherwise propose the parent again and again).
        """
        options = self.neighbours(arch)
        if options:
            return options[int(rng.integers(len(options)))]
        distance = (self._keys != np.array(self._key(arch))).sum(axis=1)
        distance[distance == 0] = len(self.decisions) + 1
        nearest = np.flatnonzero(distance == distance.min())
        if distance.min() > len(self.decisions):
            return arch  # a one-row table
        return self._from_indices(self._keys[nearest[int(rng.integers(len(nearest)))]])

    def _sibling_index(self) -> list[dict[tuple[int, ...], list[int]]]:
        # per decision j: the other decisions' values -> the values of j found with them
        if self._siblings is None:
            self._siblings = [{} for _ in self.decisions]
            for key in self._rows:
                for j, index in enumerate(self._siblings):
                    index.setdefault(key[:j] + key[j + 1 :], []).append(key[j])
        return self._siblings

    def size(self) -> int:
        return len(self._rows)

    def enumerate(self) -> Iterator[Architecture]:
        """Every row, in the lexicographic order of choice indices."""
        for key in self._keys:
            yield self._from_indices(key)


def _declared(data: CSVTable, label: str, declared: Sequence[Choice]) -> list[Choice]:
    """Declared choices, read with the column's type (a declared ``"3"`` matches an int 3)."""
    if isinstance(declared, str) or not isinstance(declared, Sequence) or not declared:
        raise InvalidArchitectureError(
            f"declared choices of {label!r} must be a non-empty list, got {declared!r}"
        )
    present = data.values(label)
    if present and isinstance(present[0], int | float):
        try:
            cast = int if isinstance(present[0], int) else float
            return [cast(v) for v in declared]
        except (TypeError, ValueError):
            raise DataError(
                f"column {label!r} of {data.path} holds numbers; declared choices {declared!r} "
                f"are not all numbers"
            ) from None
    return [str(v) for v in declared]


def is_test_column(name: str) -> bool:
    """A column named as a test result (``test``, ``test_acc``, ``cifar10_test``): the
    figure a search must never see, so it is never a decision."""
    return "test" in re.split(r"[^a-z0-9]+", name.lower())


def _may_decide(data: CSVTable, label: str) -> bool:
    """Whether inference may take ``label`` as a decision: not a test column, and not a
    column of floats with a fraction (a measured value, such as an accuracy or a latency:
    a metric, which as a decision would leak the benchmark's answers into the search)."""
    if is_test_column(label):
        return False
    values = data.values(label)
    return not any(isinstance(v, float) and not v.is_integer() for v in values)


def _refuse_test_columns(data: CSVTable, labels: Sequence[str]) -> None:
    """Declared decisions may not include a test column (see :func:`is_test_column`)."""
    leaked = [label for label in labels if is_test_column(label)]
    if leaked:
        raise DataError(
            f"table {data.path}: column {leaked[0]!r} is a test result and can never be a "
            "decision (the search would see the figure it is judged by)"
        )
