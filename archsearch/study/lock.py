"""``study.lock``: who may write a study.

The runner of a study holds an exclusive ``flock`` on ``study.lock`` from before it reads the
stored state until it closes, so a second ``search`` or ``resume`` of the same directory is
refused instead of re-running (and overwriting) what the first one is doing. The lock dies
with its process, kill -9 included, so a crashed study needs no clean-up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from archsearch.errors import StudyError

LOCK_FILE = "study.lock"


class StudyLock:
    """An exclusive, non-blocking lock on ``directory/study.lock``; released by close()."""

    def __init__(self, directory: Path) -> None:
        path = directory / LOCK_FILE
        try:  # O_NOFOLLOW: a symbolic link planted as the lock file is refused, not followed
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise StudyError(f"cannot create the lock file {path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise StudyError(f"the study in {directory} is being run by another process") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def is_held(directory: Path) -> bool:
    """True while some process holds the lock of the study in ``directory``: its runner is
    alive. Reads only (no lock file is created), so ``show`` can ask it of any study."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # no lock file: never run, or run by the first release
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the shared lock just taken
    return False
