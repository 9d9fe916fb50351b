"""Argument types shared by the subcommands, so that a meaningless value is refused while the
command line is parsed, before any data is loaded or any network trained.

argparse turns the :class:`argparse.ArgumentTypeError` these raise into
``archsearch: error: argument --seed: ...`` and exit status 2 (see :mod:`archsearch.cli.main`).
"""

from __future__ import annotations

import argparse
import math

from archsearch.checks import check_seed
from archsearch.errors import ArchsearchError


def seed(text: str) -> int:
    """A ``--seed``: an integer in 0..2**63-1."""
    try:
        return check_seed(int(text), "a seed")
    except ValueError as exc:  # ArchsearchError is a ValueError too
        message = str(exc) if isinstance(exc, ArchsearchError) else f"not an integer: {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def valid_size(text: str) -> int | float:
    """A ``--valid-size``: a count of images (an integer >= 1) or a fraction in (0, 1).

    ``1.0`` would hold out the whole training set (and read as a count it is one image, which
    nobody means), so it is refused, as is any other float outside (0, 1) that is not a
    whole count.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if 0.0 < value < 1.0:
        return value
    if value.is_integer() and value >= 1 and "." not in text:
        return int(value)
    raise argparse.ArgumentTypeError(
        f"a validation count is an integer >= 1 and a fraction is in (0, 1), got {text}"
    )


def positive_int(text: str) -> int:
    """A count >= 1 (``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative(text: str) -> float:
    """A finite number >= 0 (``--cpus-per-trial``, ``--trial-timeout``): a whole one is
    returned as an int, so that it reads back as written."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return int(value) if value.is_integer() else value
