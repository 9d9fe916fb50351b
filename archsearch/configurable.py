"""Stored options derived from the constructor: what a component was built with, recorded.

A study stores each component as its registered name plus options, and rebuilds it from
them on resume. Hand-written ``options()``/``config()`` methods that copy the constructor's
arguments drift from it (an option added to ``__init__`` but not to the copy is silently
lost on resume), so components inherit from :class:`Configurable` instead: the arguments
of the outermost ``__init__`` call, defaults included, are recorded before it runs, and
:meth:`Configurable.init_options` returns them. A subclass's ``super().__init__(...)`` call
adds the parent's parameters it does not name itself (a subclass that forwards ``**kwargs``
stores its parent's defaults too) and never overwrites the subclass's values.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any


def _recording(init: Callable[..., None]) -> Callable[..., None]:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            bound = None  # the call itself is wrong: let __init__ raise its own error
        if bound is not None:
            bound.apply_defaults()
            options = _flatten(signature, bound.arguments)
            recorded = self.__dict__.setdefault("_init_options", {})
            for key, value in options.items():  # an outer (subclass) call's values win
                recorded.setdefault(key, value)
        init(self, *args, **kwargs)

    return wrapped


def _flatten(signature: inspect.Signature, arguments: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in list(arguments.items())[1:]:  # [0] is self
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            options.update(value)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            options[name] = value
    return options


class Configurable:
    """Records the arguments of the outermost ``__init__`` call (see the module docstring)."""

    #: constructor parameters that are not stored options (a strategy's space and seed)
    not_options: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not hasattr(init, "__wrapped__"):
            cls.__init__ = _recording(init)  # type: ignore[method-assign]

    def init_options(self) -> dict[str, Any]:
        """The constructor's arguments (defaults included), less :attr:`not_options`."""
        recorded = self.__dict__.get("_init_options", {})
        return {k: _plain(v) for k, v in recorded.items() if k not in self.not_options}


def _plain(value: Any) -> Any:
    """Tuples as lists and paths as strings, as JSON stores them, so that a stored option
    compares equal to itself."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
