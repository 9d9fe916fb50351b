"""``search``, ``resume``, ``show`` and ``list``: running and inspecting studies."""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path
from typing import Any

from archsearch.checks import check_output_dir
from archsearch.cli.types import non_negative, positive_int, seed
from archsearch.errors import ArchsearchError

# Flags that are shortcuts for evaluator options; each is passed only to evaluators that
# take an option of that name, so one flag set serves every evaluator.
EVALUATOR_SHORTCUTS = {
    "table": "table",
    "dataset": "dataset",
    "data_dir": "data_dir",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "train_size": "train_size",
    "device": "device",
    "reported": "reported",
}
QUIET_HELP = "no progress bar: a log line per tenth of the budget (or per minute)"
#: evaluators whose table also defines the space: ``--space`` then defaults to it
TABLE_SPACES = {"table": "table", "nasbench-graph-table": "nasbench-graph"}


def register(subparsers: argparse._SubParsersAction) -> None:
    search = subparsers.add_parser(
        "search",
        help="run a new architecture search",
        epilog="'archsearch list' names every registered component; 'archsearch show DIR' "
        "prints a study's result.",
    )
    search.add_argument(
        "--space",
        help=f"search space: {names('space')} (default: nb201, or the table's own space)",
    )
    search.add_argument(
        "--strategy", default="evolution", help=f"search strategy: {names('strategy')}"
    )
    search.add_argument(
        "--evaluator", default="train", help=f"evaluation strategy: {names('evaluator')}"
    )
    search.add_argument("--budget", type=int, help="number of evaluations")
    search.add_argument("--seconds", type=float, help="search time budget in seconds")
    search.add_argument("--seed", type=seed, default=0, help="seeds the strategy and trials")
    search.add_argument("--out", required=True, help="study directory (created)")
    search.add_argument("--table", help="benchmark table file (tabular evaluators)")
    search.add_argument(
        "--dataset",
        help=f"dataset to train on: {names('dataset')}; a NAS-Bench-201 table's: cifar10, "
        "cifar100, imagenet16",
    )
    search.add_argument("--data-dir", dest="data_dir", help="dataset directory")
    search.add_argument(
        "--epochs", type=int, help="training epochs per evaluation (default: the evaluator's)"
    )
    search.add_argument(
        "--batch-size",
        dest="batch_size",
        type=int,
        help="training batch size (default: the evaluator's)",
    )
    search.add_argument("--lr", type=float, help="learning rate (default: the evaluator's)")
    search.add_argument(
        "--train-size", dest="train_size", type=int, help="training subset size (default: all)"
    )
    search.add_argument("--device", help="cpu, cuda or auto (default: the evaluator's)")
    search.add_argument(
        "--objective",
        action="append",
        metavar="NAME[:max|min]",
        help="a value to optimise, maximised unless ':min' (repeatable; the first is the "
        "primary one); for the generic table evaluator, the first names its objective column",
    )
    search.add_argument(
        "--constraint",
        action="append",
        metavar="'NAME<=VALUE'",
        help="a hard bound on a value: 'params<=1e6' or 'valid_accuracy>=80' (repeatable)",
    )
    search.add_argument(
        "--soft-constraint", dest="soft_constraint", action="append",
        metavar="'NAME<=TARGET'",
        help="MnasNet's soft target: the primary objective is scaled by (NAME/TARGET)^W, so "
        "any single-objective strategy trades it off against the target (repeatable)",
    )  # fmt: skip
    search.add_argument(
        "--soft-weight", dest="soft_weight", type=float, default=-0.07,
        help="the exponent W of --soft-constraint (MnasNet's)",
    )  # fmt: skip
    search.add_argument(
        "--soft-weight-inside", dest="soft_weight_inside", type=float,
        help="the exponent while the target is met (default: --soft-weight; 0: no reward "
        "for undershooting, MnasNet's alpha=0, beta=-1 variant with --soft-weight -1)",
    )  # fmt: skip
    search.add_argument("--reported", help="reported column (generic table evaluator)")
    _add_options(search, "space")
    _add_options(search, "strategy")
    _add_options(search, "evaluator")
    search.add_argument(
        "--measure", action="append", metavar="FIGURE[,FIGURE]",
        help="also measure each network on this machine, without training: latency_ms, "
        "onnx_latency_ms (the onnx extra), peak_memory_mb; objectives and constraints may "
        "name them (repeatable)",
    )  # fmt: skip
    _add_options(search, "measure", help="measurement option, e.g. batch_size=8 or threads=2")
    search.add_argument(
        "--screen", metavar="PROXY",
        help=f"screen first: rank a seeded sample with this zero-cost proxy ({names('proxy')})"
        " and evaluate its best before the strategy proposes (see --screen-sample, --screen-top-k)",
    )  # fmt: skip
    search.add_argument(
        "--screen-sample", dest="screen_sample", type=int, help="architectures ranked (100)"
    )
    search.add_argument(
        "--screen-top-k", dest="screen_top_k", type=int, help="best-ranked ones evaluated (10)"
    )
    search.add_argument(
        "--screen-evaluator", dest="screen_evaluator",
        help="rank the sample with this evaluator instead of a proxy",
    )  # fmt: skip
    _add_options(search, "screen", help="screening evaluator option, e.g. data=fashion-mnist")
    search.add_argument("--json", action="store_true", help="print the result as JSON")
    search.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    _add_execution(search, resume=False)
    search.set_defaults(handler=run_search)

    resume = subparsers.add_parser("resume", help="continue a stopped study")
    resume.add_argument("directory")
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    _add_execution(resume, resume=True)
    resume.set_defaults(handler=run_resume)

    show = subparsers.add_parser("show", help="summary, best architecture and trajectory")
    show.add_argument("directory")
    show.add_argument("--json", action="store_true")
    show.add_argument(
        "--trials", action="store_true",
        help="every trial: number, architecture, status, values and attempts",
    )  # fmt: skip
    show.set_defaults(handler=run_show)

    listing = subparsers.add_parser("list", help="registered components")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)


def _add_execution(parser: argparse.ArgumentParser, *, resume: bool) -> None:
    """How the trials run: workers, backend, resources and faults (not part of the study:
    a resume keeps the stored settings of the last run unless a flag changes one)."""
    kept = " (default: as the study last ran)" if resume else ""
    group = parser.add_argument_group("parallel evaluation" + kept)
    group.add_argument(
        "--workers", type=positive_int, default=None,
        help="trials evaluated at once, asynchronously (default 1: in this process)",
    )  # fmt: skip
    group.add_argument(
        "--ray", nargs="?", const="auto", metavar="ADDRESS",
        help="run trials as Ray tasks: on the cluster at ADDRESS, or with no ADDRESS ('auto') "
        "on the cluster this machine belongs to, else a local Ray started here",
    )  # fmt: skip
    group.add_argument(
        "--cpus-per-trial", dest="cpus_per_trial", type=non_negative, metavar="N",
        help="CPUs one trial uses: Ray's task resource; worker processes cap their BLAS/OpenMP"
        " threads to it",
    )  # fmt: skip
    group.add_argument(
        "--gpus-per-trial", dest="gpus_per_trial", type=non_negative, metavar="N",
        help="GPUs one trial uses (Ray may share one fractionally; worker processes get whole"
        " GPUs each through CUDA_VISIBLE_DEVICES)",
    )  # fmt: skip
    group.add_argument(
        "--retries", type=int, default=None,
        help="times a trial whose worker died is started again before it is recorded as "
        "failed (default 2)",
    )  # fmt: skip
    group.add_argument(
        "--trial-timeout", dest="trial_timeout", type=non_negative, metavar="SECONDS",
        help="cancel a trial that runs longer and record it as failed (runs trials in a "
        "worker process even with one worker)",
    )  # fmt: skip
    group.add_argument(
        "--on-interrupt", dest="on_interrupt", choices=["cancel", "wait"], default=None,
        help="at Ctrl-C or SIGTERM: cancel the running trials (a resume runs them again) or "
        "wait for them and record them (default cancel)",
    )  # fmt: skip


EXECUTION_FLAGS = (
    "workers", "ray", "cpus_per_trial", "gpus_per_trial", "retries", "trial_timeout",
    "on_interrupt",
)  # fmt: skip


def execution_from(args: argparse.Namespace, stored: Any = None) -> Any:
    """The run's :class:`~archsearch.parallel.Execution`: the stored one (a resume's) with
    the flags given on this command line."""
    from archsearch.parallel import Execution

    return Execution.from_dict(stored, **{name: getattr(args, name) for name in EXECUTION_FLAGS})


def names(kind: str) -> str:
    """The registered names of a component kind, read from the catalog (no import)."""
    from archsearch.registry import list_components

    return ", ".join(item.split("/", 1)[1] for item in list_components(f"{kind}/*"))


def _add_options(parser: argparse.ArgumentParser, kind: str, help: str | None = None) -> None:
    parser.add_argument(
        f"--{kind}-opt",
        dest=f"{kind}_opts",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help or f"{kind} option (VALUE parsed as JSON when possible), repeatable",
    )


def parse_options(pairs: list[str], kind: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ArchsearchError(f"--{kind}-opt expects KEY=VALUE, got {pair!r}")
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


def _accepted(factory: Any) -> set[str]:
    return set(inspect.signature(factory).parameters)


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """The study configuration named by the flags, validated against the registries."""
    import archsearch.components  # noqa: F401  (fills the registries)
    from archsearch.evaluate.base import EVALUATORS
    from archsearch.space.registry import SPACES
    from archsearch.strategy.base import STRATEGIES
    from archsearch.study.screening import ALIASES

    if args.budget is None and args.seconds is None:
        raise ArchsearchError("give a budget: --budget N evaluations and/or --seconds S")
    if args.budget is not None and args.budget <= 0:
        raise ArchsearchError(f"--budget must be > 0, got {args.budget}")
    if args.seconds is not None and args.seconds <= 0:
        raise ArchsearchError(f"--seconds must be > 0, got {args.seconds}")
    from archsearch.study.objectives import Constraint, Objective, SoftConstraint

    objectives = [Objective.parse(text) for text in args.objective or []]
    constraints = [Constraint.parse(text) for text in args.constraint or []]
    soft = [
        SoftConstraint.parse(text, args.soft_weight, args.soft_weight_inside)
        for text in args.soft_constraint or []
    ]
    primary = objectives[0].name if objectives else None
    space = args.space or TABLE_SPACES.get(args.evaluator, "nb201")
    space_options = parse_options(args.space_opts, "space")
    if space == "table" and args.evaluator == "table":  # one CSV defines space and scores
        for key, value in (
            ("table", args.table),
            ("objective", primary),
            ("reported", args.reported),
        ):
            if value is not None:
                space_options.setdefault(key, value)
        # the other declared values are metric columns too, not decisions of the space
        others = [o.name for o in objectives[1:]] + [c.name for c in [*constraints, *soft]]
        if others and "metrics" not in space_options:
            space_options["metrics"] = list(dict.fromkeys(others))
    SPACES.get(space)
    if args.strategy not in ALIASES:
        STRATEGIES.get(args.strategy)
    evaluator_cls = EVALUATORS.get(args.evaluator)
    accepted = _accepted(evaluator_cls)
    evaluator_options = {}
    for flag, option in EVALUATOR_SHORTCUTS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if option not in accepted:
            raise ArchsearchError(
                f"evaluator {args.evaluator!r} takes no --{flag.replace('_', '-')}"
            )
        evaluator_options[option] = value
    if primary is not None and "objective" in accepted:  # the generic table's column
        evaluator_options["objective"] = primary
    evaluator_options.update(parse_options(args.evaluator_opts, "evaluator"))
    evaluator_config = _with_measurements(
        {"name": args.evaluator, **evaluator_options},
        args.measure,
        parse_options(args.measure_opts, "measure"),
    )
    config = {
        "space": {"name": space, **space_options},
        "strategy": {"name": args.strategy, **parse_options(args.strategy_opts, "strategy")},
        "evaluator": evaluator_config,
        "seed": args.seed,
        "budget": {"evaluations": args.budget, "seconds": args.seconds},
    }
    if objectives:
        config["objectives"] = [o.to_dict() for o in objectives]
    if constraints:
        config["constraints"] = [c.to_dict() for c in constraints]
    if soft:
        config["soft_constraints"] = [c.to_dict() for c in soft]
    screen = _screen_section(args, EVALUATORS)
    if screen is not None:
        config["screen"] = screen
    return config


def _with_measurements(
    evaluator: dict[str, Any], measure: list[str] | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The evaluator, followed by a ``hardware`` part measuring the ``--measure`` figures
    (a composite), so that any evaluator's study also stores measured costs."""
    if not measure:
        if options:
            raise ArchsearchError("--measure-opt needs --measure FIGURE")
        return evaluator
    figures = [name.strip() for text in measure for name in text.split(",") if name.strip()]
    hardware = {"name": "hardware", "figures": list(dict.fromkeys(figures)), **options}
    return {"name": "composite", "evaluators": [evaluator, hardware]}


def _screen_section(args: argparse.Namespace, evaluators: Any) -> dict[str, Any] | None:
    """The ``screen`` section the --screen* flags name (None when they name none)."""
    given = [args.screen, args.screen_evaluator, args.screen_sample, args.screen_top_k]
    if all(v is None for v in given) and not args.screen_opts:
        return None
    if args.screen is not None and args.screen_evaluator not in (None, "proxy"):
        raise ArchsearchError("--screen PROXY screens with evaluator 'proxy'; drop one of them")
    if args.screen is None and args.screen_evaluator is None:
        raise ArchsearchError("screening needs --screen PROXY (or --screen-evaluator NAME)")
    name = args.screen_evaluator or "proxy"
    evaluators.get(name)
    options = parse_options(args.screen_opts, "screen")
    if args.screen is not None:
        options["proxy"] = args.screen
    section: dict[str, Any] = {"evaluator": {"name": name, **options}}
    for flag, key in (("screen_sample", "sample_size"), ("screen_top_k", "top_k")):
        if getattr(args, flag) is not None:
            section[key] = getattr(args, flag)
    return section


def _finish(study: Any, args: argparse.Namespace) -> int:
    from archsearch.cli.main import print_json

    execution = execution_from(args, study.storage.get_meta("execution"))
    if not study.exhausted():
        study.storage.set_meta("execution", execution.to_dict())
    study.optimize(progress=progress_mode(args), execution=execution)
    summary = study.summary()
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary, study.directory))
    study.close()
    return 0


def progress_mode(args: argparse.Namespace) -> bool | str:
    """A bar on a terminal; plain log lines with --quiet or --json (the terminal is not the
    reader then) or when stderr is a file (see :mod:`archsearch.study.progress`)."""
    return "log" if args.quiet or args.json else True


def run_search(args: argparse.Namespace) -> int:
    from archsearch.study import Study

    out = check_output_dir(args.out, "--out")  # before the components load data
    execution_from(args)  # bad settings are refused before anything is written
    config = build_config(args)
    study = Study.from_config(config, out)
    return _finish(study, args)


def run_resume(args: argparse.Namespace) -> int:
    from archsearch.study import Study

    study = Study.load(args.directory, run=True)
    if "oneshot" in study.config:  # train the supernet if it was interrupted, then select
        from archsearch.cli.oneshot import resume_study

        return resume_study(study, args)
    if study.budget is not None and study.exhausted() and not args.json:
        print(f"study in {args.directory} has already spent its budget")
    return _finish(study, args)


def run_show(args: argparse.Namespace) -> int:
    from archsearch.cli.main import print_json
    from archsearch.study import Study

    study = Study.load(args.directory)
    summary = study.summary()
    summary["trajectory"] = study.trajectory()
    if args.trials:
        summary["trials"] = study.trial_rows()
    if "oneshot" in study.config:  # the one-shot method, its training and epoch records
        from archsearch.oneshot.run import describe

        summary["oneshot"] = describe(study)
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary, study.directory))
        if "oneshot" in summary:
            from archsearch.cli.oneshot import format_oneshot

            print(format_oneshot(summary["oneshot"]))
        print("\ntrajectory (best so far):")
        print(f"{'evals':>6} {'objective':>10} {'best':>10} {'reported':>10}")
        for row in summary["trajectory"]:
            print(
                f"{row['evaluations']:>6} {_num(row['objective']):>10} "
                f"{_num(row['best_objective']):>10} {_num(row['best_reported']):>10}"
            )
        if args.trials:
            print(format_trials(summary["trials"], summary["objective"]))
    study.close()
    return 0


def run_list(args: argparse.Namespace) -> int:
    from archsearch.cli.main import print_json
    from archsearch.registry import list_components

    names = list_components()
    if args.json:
        grouped: dict[str, list[str]] = {}
        for item in names:
            kind, name = item.split("/", 1)
            grouped.setdefault(kind, []).append(name)
        print_json(grouped)
    else:
        for item in names:
            print(item)
    return 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _screen_lines(screen: dict[str, Any] | None) -> list[str]:
    if screen is None:
        return []
    if "tenas" in screen:
        what = "TE-NAS pruned cell"
    else:
        evaluator = screen["evaluator"]
        what = f"{evaluator['name']} {evaluator.get('proxy', '')}".strip()
        what = f"top {screen['top_k']} of {screen['ranked'] or screen['sample_size']} by {what}"
    seconds = "" if screen["seconds"] is None else f" in {screen['seconds']:.1f} s"
    return [f"screened   {what}{seconds}; {screen['evaluated']} evaluated"]


def format_summary(summary: dict[str, Any], directory: Path | None) -> str:
    config, best = summary["config"], summary["best"]
    lines = [
        f"study      {directory}",
        f"space      {config['space']['name']}   strategy {config['strategy']['name']}"
        f"   evaluator {config['evaluator']['name']}   seed {config['seed']}",
        *_screen_lines(summary.get("screen")),
        f"evaluated  {summary['n_evaluations']} ({summary['n_failed']} failed)"
        f" in {summary['elapsed_seconds']:.1f} s",
    ]
    if summary.get("n_rejected"):
        lines.append(
            f"rejected   {summary['n_rejected']} proposals breaking "
            f"{', '.join(_bound(c) for c in summary['constraints'])} before evaluation "
            "(never evaluated, not counted)"
        )
    lines += _running_lines(summary)
    soft = config.get("soft_constraints") or []
    if best is None and summary["n_evaluations"] == 0:
        lines.append("best       none yet (no trial has finished)")
    elif best is None:
        lines.append("best       none (no feasible evaluation succeeded)")
    else:
        name = summary["objective"]
        if soft:  # the objective is MnasNet's reward
            factors = " * ".join(f"({c['name']}/{c['bound']:g})^{c['weight']:g}" for c in soft)
            name = f"reward {name} * {factors}"
        scores = f"           {name} = {_num(best['objective'])}"
        if summary["reported"] is not None:  # e.g. the supernet evaluator reports nothing
            scores += f"   {summary['reported']} = {_num(best['reported'])}"
        lines += [f"best       trial {best['trial']}: {best['arch']}", scores]
    if "pareto" in summary:
        lines += _front_lines(summary)
    return "\n".join(lines)


def _running_lines(summary: dict[str, Any]) -> list[str]:
    """Trials in flight: running (since when) while a runner holds the study, else
    interrupted, with how to continue; a study still on its first trial says so."""
    lines = []
    for trial in summary.get("running", []):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(trial["started"]))
        if summary["runner_active"]:
            ago = max(0.0, time.time() - trial["started"])
            lines.append(f"running    trial {trial['trial']} since {started} ({ago:.0f} s)")
        else:
            lines.append(
                f"interrupted trial {trial['trial']} (started {started}): 'archsearch resume' "
                "evaluates it again"
            )
    if lines and summary["n_evaluations"] == 0:
        lines.append("           none has finished yet")
    return lines


def format_trials(rows: list[dict[str, Any]], objective: str) -> str:
    """Every trial, one line each: number, status, attempts, the objective, architecture."""
    lines = [f"\ntrials:\n{'trial':>6} {'status':<10} {'attempts':>8} {objective:>12}  arch"]
    for row in rows:
        value = row["values"].get(objective)
        lines.append(
            f"{row['number']:>6} {row['status']:<10} {row['attempts']:>8} {_num(value):>12}  "
            f"{row['arch']}" + (f"\n{'':>6} error: {row['error']}" if row.get("error") else "")
        )
    return "\n".join(lines)


def _bound(constraint: dict[str, Any]) -> str:
    return f"{constraint['name']}{constraint['op']}{constraint['bound']:g}"


def _front_lines(summary: dict[str, Any]) -> list[str]:
    """The Pareto front as a table: one row per member, one column per declared value."""
    front = summary["pareto"]
    directions = {o["name"]: o["direction"] for o in summary["objectives"]}
    names = list(front[0]["values"]) if front else list(directions)
    heads = [f"{n}:{directions[n]}" if n in directions else n for n in names]
    widths = [max(len(h), 10) for h in heads]
    volume = summary["hypervolume"]
    lines = [f"\npareto front ({len(front)} feasible trials no other one dominates):"]
    if volume is not None:
        point = ", ".join(f"{k}={v:g}" for k, v in volume["reference"].items())
        lines.append(f"hypervolume {volume['value']:.6g} from reference point ({point})")
    header = " ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True))
    lines.append(f"{'trial':>6} {header}  arch")
    for member in front:
        cells = " ".join(
            f"{_compact(member['values'][n]):>{w}}" for n, w in zip(names, widths, strict=True)
        )
        lines.append(f"{member['trial']:>6} {cells}  {member['arch']}")
    return lines


def _compact(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
