"""Writing a file inside a study directory without following a symbolic link planted there.

A study directory may come from someone else, so a name in it (``best_weights.pt``, its
temporary file) may be a link to a file outside. Every write goes to a temporary file
created exclusively (``O_EXCL | O_NOFOLLOW``: a link or any existing file there is never
opened), and is then renamed over the final name, which replaces a link itself rather than
the file it points to; readers see the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from archsearch.errors import StudyError

_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a fresh temporary file beside ``path``, then rename it to ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = _create(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create(tmp: Path) -> int:
    """The temporary file, created here; whatever held its name (a file a killed run of the
    same process id left, or a planted link) is removed, never opened."""
    for _ in range(2):
        try:
            return os.open(tmp, _EXCLUSIVE, 0o644)
        except FileExistsError:
            tmp.unlink()
        except OSError as exc:
            raise StudyError(f"cannot create {tmp}: {exc.strerror}") from None
    raise StudyError(f"cannot create {tmp}: another process keeps creating it")


def is_regular(path: Path) -> bool:
    """A regular file at ``path`` itself, not a link to one."""
    return path.is_file() and not path.is_symlink()
