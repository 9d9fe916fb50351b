"""Errors archsearch raises for bad input.

Every error a user can cause derives from :class:`ArchsearchError`, so the command line can
turn each into one clear line and exit status 2 without catching programming errors too.
"""


class ArchsearchError(ValueError):
    """Bad input from a user: the message names the bad value and what is accepted."""


class UnknownComponentError(ArchsearchError):
    """A registry was asked for a name it does not hold."""


class InvalidArchitectureError(ArchsearchError):
    """An architecture is not a member of the space it was given to."""


class DataError(ArchsearchError):
    """A dataset or benchmark file is missing, unreadable or corrupt."""


class StudyError(ArchsearchError):
    """A study directory or database cannot be used as asked."""
