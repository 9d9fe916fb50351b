"""The study: a persistent record of a search that can be resumed and inspected."""

from archsearch.study.objectives import Constraint, Declaration, Objective
from archsearch.study.storage import MemoryStorage, SQLiteStorage, Storage, TrialRecord
from archsearch.study.study import Budget, Study

__all__ = [
    "Budget",
    "Constraint",
    "Declaration",
    "MemoryStorage",
    "Objective",
    "SQLiteStorage",
    "Storage",
    "Study",
    "TrialRecord",
]
