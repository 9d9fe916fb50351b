"""The study: a persistent record of a search that can be resumed and inspected."""

from archsearch.study.storage import MemoryStorage, SQLiteStorage, TrialRecord
from archsearch.study.study import Budget, Study

__all__ = ["Budget", "MemoryStorage", "SQLiteStorage", "Study", "TrialRecord"]
