"""``rules``: where a study's good architectures live, as a few short choice rules.

The rules are learned from the study's finished evaluations (read-only: nothing is written)
or, with ``--table T``, from every row of a whole table, each scored as the study's
evaluator scores it and ranked by the study's objectives. See
:mod:`archsearch.study.rules` for the learner.
"""

from __future__ import annotations

import argparse
from typing import Any

from archsearch.errors import ArchsearchError

#: the best fraction counted as top: of a search's evaluations (a search evaluates mostly
#: good architectures) and of a whole table (its best 5%, the field's usual cut)
STUDY_TOP = 0.2
TABLE_TOP = 0.05
#: a whole table is scored architecture by architecture; a space beyond this is refused
MAX_TABLE_ROWS = 1_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    rules = subparsers.add_parser(
        "rules",
        help="a few short rules over decisions describing where the good architectures are",
        description="Where a study's good architectures live: at most a few short rules over "
        "its decisions (a union of conjunctions), each with its support, precision and lift "
        "on the evaluated architectures.",
    )
    rules.add_argument("directory", help="study directory (read, never written)")
    rules.add_argument(
        "--table",
        metavar="T",
        help="learn from every row of this table (a file the study's evaluator reads) instead",
    )
    rules.add_argument(
        "--top",
        type=float,
        metavar="FRACTION",
        help=f"the best fraction counted as top: default {STUDY_TOP} of a study's evaluations, "
        f"{TABLE_TOP} of a whole table; with several objectives, the first whole Pareto fronts "
        "holding at least that fraction",
    )
    rules.add_argument(
        "--max-conditions",
        dest="max_conditions",
        type=int,
        default=5,
        metavar="N",
        help="conditions in all rules together (5)",
    )
    rules.add_argument("--json", action="store_true", help="print the rules as JSON")
    rules.set_defaults(handler=run_rules)


def run_rules(args: argparse.Namespace) -> int:
    from archsearch.cli.main import print_json
    from archsearch.study import Study
    from archsearch.study.rules import learn_rules, study_rows, top_mask

    if args.max_conditions < 1:
        raise ArchsearchError(f"--max-conditions must be >= 1, got {args.max_conditions}")
    fraction = args.top if args.top is not None else TABLE_TOP if args.table else STUDY_TOP
    if not 0 < fraction < 1:  # also refuses nan
        raise ArchsearchError(f"--top must be a fraction in (0, 1), got {args.top}")
    study = Study.load(args.directory)
    try:
        if args.table:
            space, (archs, vectors, feasible) = table_rows(study, args.table)
            source = f"every row of {args.table}"
        else:
            space, (archs, vectors, feasible) = study.space, study_rows(study)
            source = f"the study in {args.directory}"
        top = top_mask(vectors, fraction, feasible)
        ruleset = learn_rules(space, archs, top, max_conditions=args.max_conditions)
        objectives = study.declaration.objectives
    finally:
        study.close()
    described = {
        "count": ruleset.n_top,
        "fraction": fraction,
        "by": "best fraction" if len(objectives) == 1 else "first Pareto fronts",
        "objectives": [o.to_dict() for o in objectives],
    }
    if args.json:
        print_json({**ruleset.to_json(), "top": described, "source": source})
        return 0
    names = ", ".join(f"{o.name} ({o.direction})" for o in objectives)
    share = f"{100 * fraction:g}%"
    if len(objectives) == 1:
        what = f"the best {share} by {names}"
    else:
        what = f"the first Pareto fronts of {names} holding at least {share}"
    print(f"rules learned from {source}")
    print(f"{ruleset.n_evaluated} architectures; top: {what}, {ruleset.n_top} of them")
    print(ruleset.format())
    return 0


Rows = tuple[list[Any], list[tuple[float, ...]], list[bool]]


def table_rows(study: Any, table: str) -> tuple[Any, Rows]:
    """The study's space (remade from ``table`` when a table made it) and every
    architecture of it that has a row in ``table``, scored by the study's evaluator reading
    ``table`` instead of its own."""
    from archsearch.components import build_evaluator, build_space
    from archsearch.evaluate.table import MissingRowError

    config = study.config
    evaluator_section = dict(config["evaluator"])
    if "table" not in evaluator_section:
        raise ArchsearchError(
            f"--table: the study's evaluator {evaluator_section.get('name')!r} reads no table"
        )
    evaluator_section["table"] = table
    space_section = dict(config["space"])
    space = study.space  # as the study was read: no code it names is imported
    if "table" in space_section:  # a table made the space: remake it from this one
        space = build_space({**space_section, "table": table})
    evaluator = build_evaluator(evaluator_section)
    evaluator.check_space(space)
    archs, vectors, feasible = [], [], []
    for number, arch in enumerate(space.enumerate()):
        if number >= MAX_TABLE_ROWS:
            raise ArchsearchError(
                f"--table: the space has over {MAX_TABLE_ROWS:,} architectures, too many to "
                "score every one"
            )
        try:
            values = evaluator.evaluate(arch, space).values
        except MissingRowError:
            continue
        vector = study.declaration.vector(values)
        if vector is not None:
            archs.append(arch)
            vectors.append(vector)
            feasible.append(study.declaration.feasible(values))
    if not archs:
        raise ArchsearchError(f"--table: no architecture of the space has a row in {table}")
    return space, (archs, vectors, feasible)
