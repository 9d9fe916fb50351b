"""The ``archsearch`` command line.

Every user error (unknown component, bad value, missing or corrupt file, a directory holding
another study) becomes one line on stderr, ``archsearch: error: ...``, and exit status 2;
nothing is written before the inputs are validated, so a stored study is never damaged.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from archsearch import __version__
from archsearch.errors import ArchsearchError

EXIT_USAGE = 2
#: the resume hint of an interrupted run, the same for Ctrl-C and SIGTERM
INTERRUPTED = "archsearch: interrupted; 'archsearch resume DIR' continues the study"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it unwinds as Ctrl-C does: the study
    closes its lock and storage, and the trial in flight is evaluated again on resume."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows every default worth showing (not None, False or an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        default = action.default
        empty = default is None or default is False or default == [] or default == "==SUPPRESS=="
        if text is None or empty or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse with our one-line error format and help formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArchsearchError(message)


def _subcommand_modules() -> list[Any]:
    from archsearch.cli import (
        export_cmd,
        latency_table_cmd,
        oneshot,
        plot_cmd,
        proxies,
        report_cmd,
        rules_cmd,
        search_cmd,
        specialise_cmd,
        to_optuna_cmd,
    )

    return [
        search_cmd, export_cmd, plot_cmd, report_cmd, rules_cmd, to_optuna_cmd, proxies, oneshot,
        latency_table_cmd, specialise_cmd,
    ]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; building it imports no component (and so no torch)."""
    parser = _Parser(
        prog="archsearch",
        description="Neural architecture search: spaces, strategies, evaluators, studies.",
    )
    parser.add_argument("--version", action="version", version=f"archsearch {__version__}")
    subparsers = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    for module in _subcommand_modules():
        module.register(subparsers)
    return parser


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`Terminated` (the default would end the
    process silently, status 143, skipping the resume hint). Restored after, so that a
    caller of :func:`main` in-process keeps its own handler."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors are one ``archsearch: error:`` line and status 2."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:  # bare ``archsearch``: show what it can do
            parser.print_help()
            return EXIT_USAGE
        with _sigterm_interrupts():
            return int(args.handler(args) or 0)
    except ArchsearchError as exc:
        # one line even when the message quotes a stored value holding line breaks
        print(f"archsearch: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        print(INTERRUPTED, file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
