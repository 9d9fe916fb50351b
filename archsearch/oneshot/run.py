"""A one-shot search as a stored study: the same directory, storage, resume and export as
every other search.

A one-shot study directory ``DIR`` holds::

    study.db      the study (storage schema v2); its configuration records the run:
                  {"space", "oneshot": {"name", method options, "supernet": size options,
                  "data": data recipe}, "strategy", "evaluator", "seed", "budget"}
    supernet.pt   the trained supernet (:func:`~archsearch.oneshot.evaluator.save_supernet`,
                  written whole by a rename); the ``supernet`` evaluator scores paths of it
    study.lock    held by the process running the study
    oneshot.json  a summary that ``archsearch oneshot`` writes at the end (a convenience: the
                  study is the record)

and the storage's meta keeps ``oneshot_epochs`` (the per-epoch records the method logs, as
training goes) and ``oneshot_training`` (written once the checkpoint is: how training ended
and, for methods that derive their own architecture, that architecture).

A run has two phases. **Training** (:meth:`OneShotMethod.train`) ends with the checkpoint.
**Selection** runs as the study's trials, scored by the ``supernet`` evaluator over
``DIR/supernet.pt``: SPOS and RSPS search it with their strategy under the study's budget
(their search over inherited weights *is* the study); DARTS, GDAS and ENAS derive the
architecture themselves right after training (ENAS's controller and perturbation
selection's state are not in the checkpoint), and it becomes the study's one trial, of
origin ``oneshot``, with its inherited-weight accuracy; their strategy is the placeholder
``derived``, which proposes nothing.

Resume (:func:`resume`, ``archsearch resume DIR``): once ``oneshot_training`` is stored the
supernet is complete, and the selection continues exactly where it stopped (the study's
replay, as for any search). A run interrupted during training retrains from scratch: the
same seeds give the same supernet, so on the same machine the result is the one an
uninterrupted run gives. There are no per-epoch checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from archsearch.errors import ArchsearchError, StudyError
from archsearch.oneshot.base import ONESHOT, OneShotMethod
from archsearch.oneshot.evaluator import save_supernet
from archsearch.oneshot.supernet import Supernet, build_supernet
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Strategy
from archsearch.study import Study

CHECKPOINT = "supernet.pt"
EPOCHS = "oneshot_epochs"
TRAINING = "oneshot_training"
DERIVED = "derived"


@STRATEGIES.register(DERIVED)
class DerivedArchitecture(Strategy):
    """The strategy of a one-shot study whose method derives its own architecture (DARTS,
    GDAS, ENAS): the study's one trial is given to it (origin ``oneshot``) and told to this
    strategy. Asked for more (a larger budget), it samples uniformly, so that it keeps the
    strategy contract like every registered strategy."""

    max_objectives = 1  # the study's default objective; not offered as multi-objective

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)

    def ask(self) -> Architecture:
        return self.sample_unseen()


def searches(method: OneShotMethod | Mapping[str, Any]) -> bool:
    """True for methods that select by a search over inherited weights (SPOS, RSPS)."""
    from archsearch.oneshot.spos import SPOS

    if isinstance(method, Mapping):
        method = ONESHOT.get(method["name"])
        return issubclass(method, SPOS)
    return isinstance(method, SPOS)


def study_config(
    method: OneShotMethod,
    space: SearchSpace,
    supernet_options: Mapping[str, Any],
    data_recipe: Mapping[str, Any],
    directory: str | Path,
) -> dict[str, Any]:
    """The configuration of the one-shot study of ``method`` in ``directory``.

    The ``evaluator`` section scores as SPOS's in-memory search does (same calibration
    batches, evaluation images and runtime), so the stored study gives SPOS's figures.
    """
    runtime = {"device": method.device, "amp": method.amp, "channels_last": method.channels_last}
    oneshot = {
        "name": method.name,
        **method.options(),
        **runtime,
        "supernet": dict(supernet_options),
        "data": dict(data_recipe),
    }
    evaluator = {
        "name": "supernet",
        "checkpoint": str((Path(directory) / CHECKPOINT).resolve()),
        "data_dir": None,
        "calibration_batches": getattr(method, "calibration_batches", 4),
        "eval_size": method.eval_size,
        "calibration_batch_size": max(method.batch_size, 64),
        "seed": method.seed,
        **runtime,
    }
    if searches(method):
        strategy = {"name": method.strategy, **method.strategy_options}
        budget = method.search_budget
    else:
        strategy, budget = {"name": DERIVED}, 1
    return {
        "space": space.config(),
        "oneshot": oneshot,
        "strategy": strategy,
        "evaluator": evaluator,
        "seed": method.seed,
        "budget": {"evaluations": budget, "seconds": None},
    }


def method_from_config(
    section: Mapping[str, Any], log: Callable[[dict[str, Any]], None] | None = None
) -> OneShotMethod:
    """The method a study's ``oneshot`` section names, built with its stored options."""
    options = {k: v for k, v in section.items() if k not in ("name", "supernet", "data")}
    cls = ONESHOT.get(section["name"])
    try:
        return cls(**options, log=log)
    except TypeError as exc:
        raise ArchsearchError(f"bad options for method {section['name']!r}: {exc}") from None


@dataclass
class OneShotRun:
    """What a one-shot study found: the architecture, the training record and the
    supernet (in memory when this process trained it, else None: load the checkpoint)."""

    study: Study
    arch: Architecture
    arch_string: str
    history: list[dict[str, Any]]
    training: dict[str, Any]
    details: dict[str, Any]
    search_seconds: float
    supernet: Supernet | None = None

    @property
    def checkpoint(self) -> Path:
        return Path(self.study.directory) / CHECKPOINT


def run(
    study: Study,
    *,
    method: OneShotMethod | None = None,
    data: Any = None,
    supernet: Supernet | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
) -> OneShotRun:
    """Train the supernet of ``study`` unless its checkpoint is complete, then select.

    ``method``, ``data`` and ``supernet`` may be passed already built (the command line
    builds them to validate its flags); otherwise they are rebuilt from the configuration,
    the supernet's initial weights seeded with the study seed.
    """
    config = study.config
    section = config.get("oneshot")
    if not isinstance(section, Mapping) or study.directory is None:
        raise StudyError("not a one-shot study (its configuration has no 'oneshot' section)")
    supernet_out = None
    training = study.storage.get_meta(TRAINING)
    if not (isinstance(training, Mapping) and training.get("complete")):
        method = method or method_from_config(section)
        if data is None:
            from archsearch.oneshot.data import load_search_data

            data = load_search_data(**section["data"])
        if supernet is None:
            torch.manual_seed(int(config.get("seed", 0)))
            supernet = build_supernet(
                config["space"]["name"], data.input_shape, data.num_classes, **section["supernet"]
            )
        training = _train(study, method, supernet, data, section, log)
        supernet_out = method.net
    space = study.space
    started = time.perf_counter()
    if searches(section):
        best = study.optimize(progress=progress)
        if best is None:
            raise ArchsearchError("the search over inherited weights scored no architecture")
        arch = study.best_arch()
        details = {
            "search_phase_seconds": round(study.elapsed, 3),
            "evaluations": study.n_finished,
            "best_inherited_acc": best.objective,
            "trajectory": [row["best_objective"] for row in study.trajectory()],
            **training.get("details", {}),
        }
    else:
        arch = space.from_json(training["arch_json"])
        if not study.trials:
            study.evaluate_given(arch, origin="oneshot")
        if not study.exhausted():  # the derived trial was interrupted: evaluate it again
            study.optimize()
        details = dict(training.get("details", {}))
    seconds = training["seconds"] + training.get("selection_seconds", 0.0)
    if searches(section):
        seconds += time.perf_counter() - started
    return OneShotRun(
        study=study,
        arch=arch,
        arch_string=space.to_string(arch),
        history=list(study.storage.get_meta(EPOCHS, [])),
        training=dict(training),
        details=details,
        search_seconds=seconds,
        supernet=supernet_out,
    )


def _train(
    study: Study,
    method: OneShotMethod,
    supernet: Supernet,
    data: Any,
    section: Mapping[str, Any],
    log: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """Train, derive (methods without a search phase), checkpoint, then record training
    as complete: in that order, so a stored ``oneshot_training`` always has its checkpoint."""
    epochs: list[dict[str, Any]] = []
    study.storage.set_meta(EPOCHS, epochs)
    shown = method.log if log is None else log

    def record(entry: dict[str, Any]) -> None:
        epochs.append(json_safe(entry))
        study.storage.set_meta(EPOCHS, epochs)
        if shown is not None:
            shown(entry)

    method.log = record
    result = method.train(supernet, data)
    space = method.net.space
    info: dict[str, Any] = {
        "complete": True,
        "seconds": round(result.seconds, 3),
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "runtime": method.runtime.describe(),
        "supernet": method.net.config(),
        "details": result.details,
    }
    if not searches(method):
        started = time.perf_counter()
        arch, details = method._finalize()
        info["selection_seconds"] = round(time.perf_counter() - started, 3)
        info["arch"] = space.to_string(arch)
        info["arch_json"] = space.to_json(arch)
        info["details"] = {**details, **result.details}
    save_supernet(Path(study.directory) / CHECKPOINT, method.net, section["data"])
    info = json_safe(info)
    study.storage.set_meta(TRAINING, info)
    return info


def resume(
    directory: str | Path,
    *,
    log: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
) -> OneShotRun:
    """Continue the one-shot study in ``directory`` (see the module docstring)."""
    study = Study.load(directory, run=True)
    try:
        return run(study, log=log, progress=progress)
    except BaseException:
        study.close()
        raise


def describe(study: Study) -> dict[str, Any]:
    """The one-shot part of a study's summary: the method, how training ended, the epochs."""
    section = study.config.get("oneshot") or {}
    training = study.storage.get_meta(TRAINING) or {"complete": False}
    return {
        "method": section.get("name"),
        "checkpoint": str(Path(study.directory or ".") / CHECKPOINT),
        "training": training,
        "epochs": study.storage.get_meta(EPOCHS, []),
    }


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON takes it: NaN and infinities become None, numpy numbers and
    tuples plain ones (a diverged epoch must not stop the record)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if hasattr(value, "dtype") and "int" in str(value.dtype):
        return int(value)
    return number if math.isfinite(number) else None
