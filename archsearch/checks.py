"""Checks of user-given values made before any work starts: seeds and output paths.

A seed is an integer in ``0..2**63-1``: numpy's generators refuse a negative one and SQLite
stores signed 64-bit integers, so anything else would fail late or be stored wrongly.


A search, a training run or a scoring pass can take minutes; finding out at the end that the
result cannot be written (the path names a directory, sits under a regular file, lies on a
read-only or virtual file system such as ``/proc``, or has a name longer than the file system
allows) wastes all of it. These checks look at the path, and probe its nearest existing
directory by creating and removing a temporary file there, so they hold for root too (a
permission bit does not stop root, a read-only mount or ``/proc`` does). Every refusal is an
:class:`~archsearch.errors.ArchsearchError`: one ``archsearch: error:`` line on the command
line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from archsearch.errors import ArchsearchError

_NAME_MAX = 255
_PATH_MAX = 4096
#: seeds are integers in 0..SEED_LIMIT-1
SEED_LIMIT = 2**63


#: the name of the file :func:`_probe` creates and removes at once: a study directory that
#: holds only such a file is still empty (another process may be probing it)
PROBE_PREFIX = ".archsearch-probe-"


def check_seed(seed: object, what: str = "seed") -> int:
    """``seed`` as an int, refused unless it is an integer in 0..2**63-1 (not a bool)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ArchsearchError(f"{what} must be an integer in 0..2**63-1, got {seed!r}")
    return seed


def check_output_file(path: str | Path, flag: str, *, make_parents: bool = True) -> Path:
    """Refuse a file path that cannot be written; returns it as a Path.

    ``make_parents``: the writer creates missing parent directories (else the parent must
    exist already). An existing file is fine: it is replaced.
    """
    target = _as_path(path, flag)
    if target.is_dir():
        raise ArchsearchError(f"{flag} {path} is a directory; give a file name")
    _check_creatable(target.parent, flag, path)
    if not make_parents and not target.parent.is_dir():
        raise ArchsearchError(f"{flag} {path}: directory {target.parent} does not exist")
    if target.exists() and not os.access(target, os.W_OK):
        raise ArchsearchError(f"{flag} {path} exists and cannot be overwritten")
    return target


def check_output_dir(path: str | Path, flag: str) -> Path:
    """Refuse a directory path that cannot be created or written into; returns it as a Path."""
    target = _as_path(path, flag)
    if target.exists() and not target.is_dir():
        raise ArchsearchError(f"{flag} {path} is a file, not a directory")
    _check_creatable(target, flag, path)
    return target


def _as_path(path: str | Path, flag: str) -> Path:
    """The path, refused when empty (it would silently mean the current directory) or when
    a name in it is too long (any look at it would fail with ENAMETOOLONG)."""
    if not str(path).strip():
        raise ArchsearchError(f"{flag} must name a path, got an empty string")
    target = Path(path).expanduser()
    if len(os.fsencode(target)) > _PATH_MAX:
        raise ArchsearchError(f"{flag}: path too long ({len(os.fsencode(target))} bytes)")
    for part in target.parts:
        if len(os.fsencode(part)) > _NAME_MAX:
            raise ArchsearchError(
                f"{flag}: name too long ({len(os.fsencode(part))} bytes, at most {_NAME_MAX}): "
                f"{part[:40]}..."
            )
    return target


def _check_creatable(target: Path, flag: str, given: str | Path) -> None:
    """``target`` (a directory to create or write into), or its nearest existing ancestor,
    is a directory this process can create files in."""
    ancestor = _nearest_existing(target.absolute())
    if not ancestor.is_dir():
        raise ArchsearchError(f"{flag} {given}: {ancestor} is a file, not a directory")
    _probe(ancestor, flag, given)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (lstat, so a dangling link counts)."""
    for candidate in (path, *path.parents):
        with contextlib.suppress(OSError):
            candidate.lstat()
            return candidate
    return Path(path.anchor)


def _probe(directory: Path, flag: str, given: str | Path) -> None:
    """Create and remove a file in ``directory``: the only test that root cannot pass by
    privilege, and that a read-only mount or a virtual file system fails honestly."""
    try:
        fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=directory)
    except OSError as exc:
        raise ArchsearchError(
            f"{flag} {given}: cannot write in {directory} ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(name)
