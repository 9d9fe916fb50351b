"""The ``archsearch`` command line.

Every user error (unknown component, bad value, missing or corrupt file, a directory holding
another study) becomes one line on stderr, ``archsearch: error: ...``, and exit status 2;
nothing is written before the inputs are validated, so a stored study is never damaged.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from archsearch.errors import ArchsearchError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with our one-line error format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArchsearchError(message)


def _subcommand_modules() -> list[Any]:
    from archsearch.cli import (
        export_cmd,
        oneshot,
        plot_cmd,
        proxies,
        report_cmd,
        rules_cmd,
        search_cmd,
    )  # fmt: skip

    return [search_cmd, export_cmd, plot_cmd, report_cmd, rules_cmd, proxies, oneshot]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="archsearch",
        description="Neural architecture search: spaces, strategies, evaluators, studies.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in _subcommand_modules():
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args) or 0)
    except ArchsearchError as exc:
        # one line even when the message quotes a stored value holding line breaks
        print(f"archsearch: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "archsearch: interrupted; 'archsearch resume DIR' continues the study", file=sys.stderr
        )
        return 130


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
