"""A study written as an Optuna study, so that ``optuna-dashboard`` and
``optuna.visualization`` work on it.

Only stored strings are read: the study file is opened read-only and no component it names
is built from a module it names, so converting a study someone sent is safe (a define-by-run
study stores its factory as ``module:attr``; that module is never imported). What maps to
what:

==========================  ==================================================================
archsearch                  Optuna
==========================  ==================================================================
decision                    a parameter, ``CategoricalDistribution`` of its choices (a choice
                            Optuna cannot hold is written as its JSON text)
objective ``max``/``min``   a value with direction ``maximize``/``minimize`` (the raw value; a
                            soft-constrained score is the user attribute ``archsearch_score``)
hard constraint             Optuna's ``constraints`` system attribute of a complete trial, in
                            declaration order, ``value - bound`` for ``<=`` and ``bound -
                            value`` for ``>=`` (feasible when <= 0); a value that is missing or
                            not finite is written as the largest float, i.e. broken
trial ``complete``          ``COMPLETE`` (without a finite objective value: ``FAIL``)
trial ``failed``            ``FAIL``, the error in ``archsearch_reason``
trial ``infeasible``        ``PRUNED``: refused before evaluation, as a pruner stops a trial
                            it judges not worth finishing (``FAIL`` means something broke, and
                            samplers ignore failed trials but rank pruned ones low); the
                            broken constraints are in ``archsearch_reason``
trial ``running``           skipped: it has no result yet, and an Optuna ``RUNNING`` trial
                            that nothing will ever finish would show as running for good
architecture string         the user attribute ``arch``
every stored value          a user attribute of its name (``value:NAME`` if the name is one of
                            the ``archsearch_*`` attributes or ``arch``)
==========================  ==================================================================

Each trial also carries ``archsearch_trial`` (its number in the study), ``archsearch_status``,
``archsearch_origin``, ``archsearch_seed`` and, where they apply, ``archsearch_fidelity`` and
``archsearch_feasible``. Trials keep their start and finish times.

**Choices.** A built-in space other than define-by-run is made again from its stored
options through the catalog (archsearch's own code only), which gives every choice in the
space's order, so a study continued in Optuna suggests from the same distributions. Any
other space, or one that cannot be made here (a table file that has moved), has its choices
inferred from the values its trials hold (sorted: numbers, then text): enough for the
dashboard and importance plots, though a choice no trial took is missing.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from archsearch.catalog import BUILTIN
from archsearch.errors import ArchsearchError, StudyError
from archsearch.space.base import Choice, choice_order
from archsearch.study.objectives import Declaration
from archsearch.study.storage import TrialRecord
from archsearch.study.study import DATABASE, open_stored

SCHEME = "sqlite:///"
#: spaces never made again from their stored options: they would import a module the
#: study file names
NEVER_BUILT = frozenset({"define-by-run"})
#: a constraint value that is missing or not finite: broken, and still a JSON number
BROKEN = sys.float_info.max
OPTUNA_TYPES = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class StoredStudy:
    """What the study file holds, read without building any component."""

    directory: Path
    config: Mapping[str, Any]
    declaration: Declaration
    trials: list[TrialRecord]


@dataclass(frozen=True)
class Conversion:
    """What :func:`write_optuna` wrote: for the command's summary line."""

    study_name: str
    written: int
    skipped_running: int
    choices_from: str


def read_stored(directory: str | Path) -> StoredStudy:
    """The stored configuration, declaration and trials of the study in ``directory``."""
    directory = Path(directory)
    path = directory / DATABASE
    storage, config = open_stored(directory)
    trials = list(storage.trials())
    storage.close()
    if not isinstance(config, Mapping):
        raise StudyError(f"{path}: the stored configuration is not a mapping")
    if config.get("objectives") is None:
        raise StudyError(f"{path}: the stored configuration declares no objectives")
    # a stored configuration holds its whole declaration, so the evaluator's defaults (the
    # only thing the evaluator is asked for) are never needed: no evaluator is built
    declaration = Declaration.from_config(config, SimpleNamespace(reported_name=None))
    for trial in trials:
        _check_trial(trial, path)
    return StoredStudy(directory, config, declaration, trials)


def _check_trial(trial: TrialRecord, path: Path) -> None:
    """Refuse a stored trial whose fields have the wrong types (a damaged or crafted file)."""
    bad = None
    if not isinstance(trial.arch_json, Mapping):
        bad = "its architecture is not a JSON object"
    elif not isinstance(trial.values, Mapping):
        bad = "its values are not a JSON object"
    elif not _number(trial.started) or not (trial.finished is None or _number(trial.finished)):
        bad = "its start or finish time is not a number"
    if bad is not None:
        raise StudyError(f"{path}: trial {trial.number}: {bad}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def optuna_choice(value: Any) -> Choice:
    """``value`` as Optuna can store it: itself if Optuna accepts its type, else its JSON."""
    return value if isinstance(value, OPTUNA_TYPES) else json.dumps(value, sort_keys=True)


def stored_decisions(
    space: Any, trials: Sequence[TrialRecord]
) -> tuple[dict[str, tuple[Choice, ...]], str]:
    """Every decision's choices and where they came from (``"the space"`` or ``"the stored
    trials"``); see the module docstring."""
    seen: dict[str, dict[Choice, None]] = {}
    for trial in trials:
        for label, value in trial.arch_json.items():
            seen.setdefault(label, {})[optuna_choice(value)] = None
    built = _space_decisions(space)
    if built is not None and all(
        label in built and set(values) <= set(built[label]) for label, values in seen.items()
    ):
        return built, "the space"
    inferred = {label: tuple(sorted(values, key=choice_order)) for label, values in seen.items()}
    return inferred, "the stored trials"


def _space_decisions(section: Any) -> dict[str, tuple[Choice, ...]] | None:
    """The decisions of a built-in space made from its stored options, or None."""
    if not isinstance(section, Mapping):
        return None
    options = dict(section)
    name = options.pop("name", None)
    if name not in BUILTIN["space"] or name in NEVER_BUILT:
        return None
    from archsearch.space import make_space

    try:
        space = make_space(name, **options)
    except Exception:  # noqa: BLE001  (any failure, a moved table say: infer instead)
        return None
    return {d.label: tuple(optuna_choice(c) for c in d.choices) for d in space.decisions}


def check_storage(url: str, study_name: str, *, overwrite: bool, study_db: Path) -> None:
    """Refuse, writing nothing, a storage URL this command cannot or must not write: not
    ``sqlite:///PATH``, an unwritable place, a file that is not an Optuna storage (the study's
    own database included), or one holding a study ``study_name`` without ``overwrite``."""
    if not url.startswith(SCHEME) or not url[len(SCHEME) :] or "?" in url:
        raise StudyError(f"--storage must be sqlite:///PATH, e.g. sqlite:///optuna.db; got {url!r}")
    path = Path(url[len(SCHEME) :])
    if path.name == ":memory:":
        raise StudyError("--storage: an in-memory database would be lost at once; name a file")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise StudyError(f"--storage: {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StudyError(f"--storage: cannot write in {parent}")
    if not path.exists():
        return
    if not path.is_file():
        raise StudyError(f"--storage: {path} is not a file")
    if not os.access(path, os.R_OK | os.W_OK):
        raise StudyError(f"--storage: cannot write {path}")
    if study_db.exists() and path.samefile(study_db):
        raise StudyError(f"--storage: {path} is the archsearch study itself")
    if path.stat().st_size == 0:
        return
    names = _optuna_study_names(path)
    if study_name in names and not overwrite:
        raise StudyError(
            f"--storage: {path} already holds an Optuna study {study_name!r}; "
            "use --overwrite to replace it or --study-name to add another"
        )


def _optuna_study_names(path: Path) -> list[str]:
    """The study names in an Optuna SQLite storage, read only; refuses any other file."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(16)
        if header != b"SQLite format 3\x00":
            raise StudyError(f"--storage: {path} is not an SQLite database")
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if not tables:
                return []
            if "studies" not in tables:
                raise StudyError(
                    f"--storage: {path} holds another database (tables "
                    f"{', '.join(sorted(tables))}), not an Optuna storage"
                )
            return [row[0] for row in db.execute("SELECT study_name FROM studies")]
        finally:
            db.close()
    except (OSError, sqlite3.DatabaseError) as exc:
        raise StudyError(f"--storage: cannot read {path}: {exc}") from None


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ArchsearchError("to-optuna needs optuna: pip install 'archsearch[optuna]'") from None
    return optuna


def frozen_trials(stored: StoredStudy, optuna: Any) -> tuple[list[Any], str]:
    """The finished trials as Optuna ``FrozenTrial`` s (running ones left out), and where
    the choices came from."""
    decisions, choices_from = stored_decisions(stored.config.get("space"), stored.trials)
    distributions = {
        label: optuna.distributions.CategoricalDistribution(choices)
        for label, choices in decisions.items()
    }
    out = []
    for trial in stored.trials:
        if trial.status == "running":
            continue
        params = {label: optuna_choice(v) for label, v in trial.arch_json.items()}
        state, values, reason = _state(trial, stored.declaration, optuna.trial.TrialState)
        system_attrs = {}
        if state == optuna.trial.TrialState.COMPLETE and stored.declaration.constraints:
            system_attrs["constraints"] = constraint_values(stored.declaration, trial.values)
        frozen = optuna.trial.create_trial(
            state=state,
            values=values,
            params=params,
            distributions={label: distributions[label] for label in params},
            user_attrs=user_attrs(trial, stored.declaration, reason),
            system_attrs=system_attrs,
        )
        frozen.datetime_start = datetime.datetime.fromtimestamp(trial.started)
        finished = trial.started if trial.finished is None else trial.finished
        frozen.datetime_complete = datetime.datetime.fromtimestamp(finished)
        out.append(frozen)
    return out, choices_from


def _state(
    trial: TrialRecord, declaration: Declaration, states: Any
) -> tuple[Any, list[float] | None, str | None]:
    """Optuna's state, the objective values and the reason a trial has none."""
    if trial.status == "failed":
        return states.FAIL, None, trial.error or "failed"
    if trial.status == "infeasible":
        broken = [
            f"{c.name}={trial.values.get(c.name)} breaks {c}"
            for c in declaration.constraints
            if c.name in trial.values and not c.holds(trial.values[c.name])
        ]
        why = "; ".join(broken) or "a constraint known before evaluation"
        return states.PRUNED, None, f"refused before evaluation: {why}"
    values = [trial.values.get(o.name) for o in declaration.objectives]
    missing = [
        o.name for o, v in zip(declaration.objectives, values, strict=True) if not _number(v)
    ]
    if trial.status != "complete" or missing:
        return states.FAIL, None, f"status {trial.status}, no finite value of {missing}"
    return states.COMPLETE, [float(v) for v in values], None


def constraint_values(declaration: Declaration, values: Mapping[str, Any]) -> list[float]:
    """Optuna's constraint values (feasible when <= 0), in the declaration's order."""
    out = []
    for c in declaration.constraints:
        value = values.get(c.name)
        if not _number(value):
            out.append(BROKEN)
        else:
            out.append(value - c.bound if c.op == "<=" else c.bound - value)
    return out


def user_attrs(trial: TrialRecord, declaration: Declaration, reason: str | None) -> dict[str, Any]:
    """The architecture string, the trial's bookkeeping and every stored value."""
    attrs: dict[str, Any] = {
        "arch": trial.arch,
        "archsearch_trial": trial.number,
        "archsearch_status": trial.status,
        "archsearch_origin": trial.origin,
        "archsearch_seed": trial.seed,
    }
    optional = {
        "archsearch_fidelity": trial.fidelity,
        "archsearch_feasible": trial.feasible,
        "archsearch_reason": reason,
        "archsearch_score": trial.objective if declaration.soft_constraints else None,
    }
    attrs.update({key: value for key, value in optional.items() if value is not None})
    reserved = set(attrs) | set(optional)
    for name, value in trial.values.items():
        attrs[f"value:{name}" if name in reserved else name] = value
    return attrs


def write_optuna(
    directory: str | Path,
    storage: str,
    study_name: str | None = None,
    *,
    overwrite: bool = False,
) -> Conversion:
    """Write the study in ``directory`` as the Optuna study ``study_name`` (default: the
    directory's name) in the SQLite ``storage``. Everything is checked and converted in
    memory before the storage is opened, so a refused conversion writes nothing; with
    ``overwrite`` an Optuna study of that name is deleted first."""
    optuna = import_optuna()
    directory = Path(directory)
    stored = read_stored(directory)
    name = study_name if study_name is not None else directory.resolve().name
    if not name:
        raise StudyError("--study-name must not be empty")
    check_storage(storage, name, overwrite=overwrite, study_db=directory / DATABASE)
    trials, choices_from = frozen_trials(stored, optuna)
    directions = [
        "maximize" if o.direction == "max" else "minimize" for o in stored.declaration.objectives
    ]
    from sqlalchemy.exc import SQLAlchemyError  # optuna's own dependency

    failures = (optuna.exceptions.OptunaError, SQLAlchemyError, RuntimeError, OSError)
    try:
        rdb = optuna.storages.RDBStorage(storage)
        if overwrite and name in optuna.get_all_study_names(storage=rdb):
            optuna.delete_study(study_name=name, storage=rdb)
        study = optuna.create_study(storage=rdb, study_name=name, directions=directions)
    except failures as exc:
        raise StudyError(f"cannot write Optuna storage {storage}: {exc}") from None
    try:
        study.set_user_attr("archsearch_directory", str(directory.resolve()))
        study.set_user_attr("archsearch_config", dict(stored.config))
        study.add_trials(trials)
    except failures as exc:  # nothing half-written stays behind
        optuna.delete_study(study_name=name, storage=rdb)
        raise StudyError(f"cannot write Optuna storage {storage}: {exc}") from None
    skipped = sum(t.status == "running" for t in stored.trials)
    return Conversion(name, len(trials), skipped, choices_from)
