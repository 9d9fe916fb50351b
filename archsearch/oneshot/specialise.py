"""Specialising a trained Once-for-All supernet for devices and latency targets, without
retraining (Cai et al., ICLR 2020, sec. 3.3).

OFA's recipe, at CPU scale:

1. **Score** ``samples`` distinct sub-networks of the supernet with inherited weights: BN
   recalibrated for each path on a few training batches, accuracy on the first
   ``eval_size`` validation images (:class:`~archsearch.oneshot.evaluator.
   InheritedWeights`, SPOS's scoring). The supernet's BN buffers are restored afterwards,
   so the supernet leaves exactly as it came.
2. **Fit a light accuracy predictor** (a registered one, ``gp`` by default, on the one-hot
   encoding) on those scores; ``holdout`` of them are kept out of a first fit to report
   its Kendall tau on sub-networks it has not seen, then it is refitted on all.
3. **Per device** (one :class:`~archsearch.hardware.lut.LatencyTable` each), NSGA-II (the
   registered ``nsga2`` strategy, driven in process: ``population`` proposals asked, priced,
   told, for ``generations`` rounds) maximises the predicted accuracy and minimises the
   table latency. Nothing is trained or run: a proposal costs a predictor call and a table
   sum, so a device costs seconds.
4. **Per target** T, the best predicted network among all the search priced whose table
   latency is at most T: it lies on the Pareto front of what was priced, which is returned
   too (mutually non-dominated, by latency ascending).
5. **Optionally, hardware in the loop** (MnasNet measured every candidate on the phone; a
   table is cheaper but misprices some networks by 10-20%): given a device's ``measure``,
   the front's networks priced up to ``slack`` above T are measured whole, most accurate
   first, ``shortlist`` at a time, and the pick is the best predicted one *measured* at
   most T. A few seconds per target; the table still does all of the search.

Steps 1-2 are :meth:`Specialiser.fit` (the only part that touches the supernet); steps 3-5,
:meth:`Specialiser.specialise`, can then be called for any tables and targets: a new target
or device needs no training and no scoring.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from archsearch.data.base import ImageData
from archsearch.errors import ArchsearchError
from archsearch.hardware.lut import LatencyTable
from archsearch.oneshot.evaluator import InheritedWeights
from archsearch.oneshot.runtime import Runtime
from archsearch.oneshot.supernet import Supernet
from archsearch.space.base import Architecture
from archsearch.space.mobilenet import MobileNetSpace

#: a device's measurement: architectures in, their whole-network ms on the device out
Measure = Callable[[list[Architecture]], Sequence[float]]


@dataclass(frozen=True)
class Candidate:
    """A sub-network as specialisation prices it."""

    arch: Architecture
    arch_string: str
    predicted_accuracy: float
    latency_ms: float
    #: the network measured whole on the device, when specialisation measured it
    measured_ms: float | None = None

    def summary(self) -> dict[str, Any]:
        measured = {} if self.measured_ms is None else {"measured_ms": round(self.measured_ms, 5)}
        return {
            "arch": self.arch_string,
            "predicted_accuracy": round(self.predicted_accuracy, 4),
            "table_ms": round(self.latency_ms, 5),
            **measured,
        }


@dataclass
class DeviceSpecialisation:
    """One device's result: the Pareto front of (predicted accuracy, table latency) over
    everything the search priced, and per target the best network under it (None when
    nothing priced meets the target)."""

    device: str
    runtime: str
    front: list[Candidate]
    targets: dict[float, Candidate | None]
    evaluations: int
    seconds: float
    #: networks measured whole to pick the targets' networks (0 without ``measure``)
    measured: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "runtime": self.runtime,
            "evaluations": self.evaluations,
            "measured": self.measured,
            "seconds": round(self.seconds, 3),
            "fastest_ms": round(min(c.latency_ms for c in self.front), 5),
            "targets": [
                {"target_ms": t, "met": c is not None, **(c.summary() if c else {})}
                for t, c in self.targets.items()
            ],
            "front": [c.summary() for c in self.front],
        }


@dataclass
class PredictorFit:
    """How the accuracy predictor was trained: on how many scored sub-networks, its
    held-out Kendall tau, and the scoring's wall time."""

    predictor: str
    scored: int
    holdout: int
    holdout_kendall_tau: float | None
    scoring_seconds: float
    fit_seconds: float
    accuracy_range: tuple[float, float] = field(default=(0.0, 0.0))

    def summary(self) -> dict[str, Any]:
        return {
            "predictor": self.predictor,
            "scored": self.scored,
            "holdout": self.holdout,
            "holdout_kendall_tau": (
                None if self.holdout_kendall_tau is None else round(self.holdout_kendall_tau, 4)
            ),
            "scoring_seconds": round(self.scoring_seconds, 3),
            "fit_seconds": round(self.fit_seconds, 3),
            "accuracy_range": [round(a, 3) for a in self.accuracy_range],
        }


def subnetwork_space(supernet: Supernet) -> MobileNetSpace:
    """The supernet's space at the one width it holds: what specialisation searches."""
    from archsearch.oneshot.mobile_supernet import MobileNetSupernet

    if not isinstance(supernet, MobileNetSupernet):
        raise ArchsearchError(
            f"specialisation needs a mobilenet supernet (ofa), not {supernet.space.name!r}"
        )
    options = {k: v for k, v in supernet.space.config().items() if k != "name"}
    return MobileNetSpace(**{**options, "widths": [supernet.width]})


class Specialiser:
    """OFA specialisation over one trained supernet (see the module docstring).

    ``samples`` sub-networks are scored (``calibration_batches`` x
    ``calibration_batch_size`` training images recalibrate BN, ``eval_size`` validation
    images measure accuracy) and ``predictor`` (a registered name, with
    ``predictor_options``; one-hot encoding unless they say otherwise) is fitted on them.
    """

    def __init__(
        self,
        supernet: Supernet,
        data: ImageData,
        *,
        samples: int = 300,
        predictor: str = "gp",
        predictor_options: Mapping[str, Any] | None = None,
        holdout: float = 0.2,
        calibration_batches: int = 4,
        calibration_batch_size: int = 64,
        eval_size: int | None = 500,
        seed: int = 0,
        runtime: Runtime | None = None,
    ) -> None:
        from archsearch.predict import PREDICTORS

        if samples < 4:
            raise ArchsearchError(f"samples must be >= 4 (sub-networks to score), got {samples}")
        if not 0 <= holdout < 1:
            raise ArchsearchError(f"holdout must be in [0, 1), got {holdout}")
        PREDICTORS.get(predictor)  # an unknown name fails before any scoring
        self.supernet = supernet
        self.space = subnetwork_space(supernet)
        self.data = data
        self.samples = samples
        self.predictor_name = predictor
        self.predictor_options = {"encoding": "onehot", **(predictor_options or {})}
        self.holdout = holdout
        self.calibration_batches = calibration_batches
        self.calibration_batch_size = calibration_batch_size
        self.eval_size = eval_size
        self.seed = seed
        self.runtime = runtime or Runtime.resolve("cpu")
        self.scored: list[tuple[Architecture, float]] = []
        self.predictor: Any = None
        self.fit_report: PredictorFit | None = None

    # ------------------------------------------------- steps 1-2: the supernet part
    def score(self) -> list[tuple[Architecture, float]]:
        """Inherited-weight accuracy (%) of ``samples`` distinct seeded sub-networks; the
        supernet's state (BN buffers included) is restored afterwards."""
        rng = np.random.default_rng(self.seed)
        archs = self.space.distinct_samples(rng, self.samples)
        net = self.supernet
        saved = {k: v.detach().clone() for k, v in net.state_dict().items()}
        try:
            scorer = InheritedWeights(
                net,
                self.data,
                self.runtime,
                calibration_batches=self.calibration_batches,
                calibration_batch_size=self.calibration_batch_size,
                eval_size=self.eval_size,
                seed=self.seed,
            )
            with torch.no_grad():
                return [(arch, float(scorer.score(arch)[0])) for arch in archs]
        finally:
            net.load_state_dict(saved)

    def fit(self) -> Specialiser:
        """Score sub-networks and fit the accuracy predictor on them (OFA's accuracy
        dataset); the held-out Kendall tau is reported in :attr:`fit_report`."""
        from archsearch.diagnostics import kendall_tau

        started = time.perf_counter()
        self.scored = self.score()
        scoring = time.perf_counter() - started
        started = time.perf_counter()
        archs = [a for a, _ in self.scored]
        accs = np.array([s for _, s in self.scored])
        n_out = int(round(self.holdout * len(archs)))
        tau = None
        if n_out >= 2 and len(archs) - n_out >= 2:
            first = self._predictor().fit(archs[:-n_out], accs[:-n_out])
            tau = float(kendall_tau(first.predict(archs[-n_out:]), accs[-n_out:]))
        self.predictor = self._predictor().fit(archs, accs)
        self.fit_report = PredictorFit(
            predictor=self.predictor_name,
            scored=len(archs),
            holdout=n_out,
            holdout_kendall_tau=tau,
            scoring_seconds=scoring,
            fit_seconds=time.perf_counter() - started,
            accuracy_range=(float(accs.min()), float(accs.max())),
        )
        return self

    def _predictor(self) -> Any:
        from archsearch.predict import make_predictor

        try:
            return make_predictor(
                self.predictor_name, self.space, seed=self.seed, **self.predictor_options
            )
        except TypeError as exc:
            raise ArchsearchError(
                f"bad options for predictor {self.predictor_name!r}: {exc}"
            ) from None

    # ------------------------------------------- steps 3-4: no training, no scoring
    def check_table(self, table: LatencyTable, device: str = "") -> None:
        """Refuse a table that lacks a unit of this supernet's sub-networks."""
        from archsearch.oneshot.latency_aware import ExpectedLatency

        try:
            ExpectedLatency(table, self.supernet)
        except ArchsearchError as exc:
            raise ArchsearchError(f"{device or 'table'}: {exc}") from None

    def latency(self, table: LatencyTable, arch: Architecture) -> float:
        net = self.supernet
        return table.predict(self.space.latency_units(arch, net.input_shape, net.num_classes))

    def specialise(
        self,
        tables: Mapping[str, LatencyTable],
        targets: Sequence[float],
        *,
        population: int = 32,
        generations: int = 30,
        measure: Mapping[str, Measure] | None = None,
        shortlist: int = 10,
        slack: float = 0.25,
    ) -> dict[str, DeviceSpecialisation]:
        """Per device of ``tables``, the Pareto front and the best network under each of
        ``targets`` (ms), by predicted accuracy (see the module docstring). A device in
        ``measure`` picks by measured latency (step 5): its function takes architectures
        and returns their whole-network ms on the device, as measured now
        (:func:`archsearch.hardware.protocol.architecture_measure`) or on the table's
        scale (:meth:`archsearch.hardware.lut.Calibration.measure`, when the table is to
        be compared with measurements taken later)."""
        if self.predictor is None:
            raise ArchsearchError("fit() the specialiser (score sub-networks) first")
        if not tables:
            raise ArchsearchError("specialisation needs at least one latency table")
        bad = [t for t in targets if not (isinstance(t, int | float) and t > 0)]
        if bad:
            raise ArchsearchError(f"latency targets must be positive ms, got {bad[0]!r}")
        if population < 2 or generations < 1:
            raise ArchsearchError(
                f"need population >= 2 and generations >= 1, got {population}, {generations}"
            )
        measure = dict(measure or {})
        if set(measure) - set(tables):
            raise ArchsearchError(
                f"measure for devices without a table: {sorted(set(measure) - set(tables))}"
            )
        if shortlist < 1 or slack < 0:
            raise ArchsearchError(f"need shortlist >= 1 and slack >= 0, got {shortlist}, {slack}")
        for device, table in tables.items():
            self.check_table(table, device)
        results = {}
        for device, table in tables.items():
            result = self._specialise_device(device, table, targets, population, generations)
            if device in measure:
                self._pick_measured(result, targets, measure[device], shortlist, slack)
            results[device] = result
        return results

    @staticmethod
    def _pick_measured(
        result: DeviceSpecialisation,
        targets: Sequence[float],
        measure: Measure,
        shortlist: int,
        slack: float,
    ) -> None:
        """Step 5: per target, walk down the front from the most accurate network priced
        at most ``(1 + slack) * T``, measuring ``shortlist`` at a time, and take the best
        predicted one of the first batch that holds a network measured at most T (None
        when no network of the window does). Each network is measured once per device."""
        started = time.perf_counter()
        measured: dict[Architecture, float] = {}
        for target in map(float, targets):
            window = [c for c in reversed(result.front) if c.latency_ms <= (1 + slack) * target]
            pick = None
            for start in range(0, len(window), shortlist):
                batch = window[start : start + shortlist]
                new = [c.arch for c in batch if c.arch not in measured]
                if new:
                    measured.update(zip(new, map(float, measure(new)), strict=True))
                met = [c for c in batch if measured[c.arch] <= target]
                if met:
                    best = max(met, key=lambda c: (c.predicted_accuracy, -measured[c.arch]))
                    pick = replace(best, measured_ms=measured[best.arch])
                    break
            result.targets[target] = pick
        result.measured = len(measured)
        result.seconds += time.perf_counter() - started

    def _specialise_device(
        self,
        device: str,
        table: LatencyTable,
        targets: Sequence[float],
        population: int,
        generations: int,
    ) -> DeviceSpecialisation:
        from archsearch.strategy.nsga2 import NSGA2
        from archsearch.strategy.pareto import pareto_mask

        started = time.perf_counter()
        strategy = NSGA2(self.space, seed=self.seed, population_size=population, initial=population)
        priced: dict[Architecture, tuple[float, float]] = {}

        def price(archs: list[Architecture]) -> None:
            new = [a for a in dict.fromkeys(archs) if a not in priced]
            if not new:
                return
            accs = np.asarray(self.predictor.predict(new), dtype=float)
            for arch, acc in zip(new, accs, strict=True):
                priced[arch] = (float(acc), self.latency(table, arch))

        # warm start from the scored sub-networks, on the predictor's scale like the rest
        seeds = [a for a, _ in self.scored]
        price(seeds)
        for arch in seeds:
            acc, ms = priced[arch]
            strategy.tell(arch, (acc, -ms))
        for _ in range(generations):
            asked = [strategy.ask() for _ in range(population)]
            price(asked)
            for arch in asked:
                acc, ms = priced[arch]
                strategy.tell(arch, (acc, -ms))
        archs = list(priced)
        points = np.array([[priced[a][0], -priced[a][1]] for a in archs])
        mask = pareto_mask(points)
        front = sorted(
            (self._candidate(a, priced[a]) for a, keep in zip(archs, mask, strict=True) if keep),
            key=lambda c: (c.latency_ms, -c.predicted_accuracy),
        )
        chosen: dict[float, Candidate | None] = {}
        for target in targets:
            under = [c for c in front if c.latency_ms <= float(target)]
            chosen[float(target)] = (
                max(under, key=lambda c: (c.predicted_accuracy, -c.latency_ms)) if under else None
            )
        return DeviceSpecialisation(
            device=device,
            runtime=table.runtime,
            front=front,
            targets=chosen,
            evaluations=len(priced),
            seconds=time.perf_counter() - started,
        )

    def _candidate(self, arch: Architecture, value: tuple[float, float]) -> Candidate:
        return Candidate(arch, self.space.to_string(arch), value[0], value[1])


def specialise(
    supernet: Supernet,
    data: ImageData,
    tables: Mapping[str, LatencyTable],
    targets: Sequence[float],
    *,
    population: int = 32,
    generations: int = 30,
    measure: Mapping[str, Measure] | None = None,
    **options: Any,
) -> tuple[dict[str, DeviceSpecialisation], PredictorFit]:
    """Score, fit and specialise in one call (``options``: :class:`Specialiser`'s;
    ``measure``: :meth:`Specialiser.specialise`'s)."""
    specialiser = Specialiser(supernet, data, **options)
    for device, table in tables.items():  # a bad table fails before any scoring
        specialiser.check_table(table, device)
    specialiser.fit()
    results = specialiser.specialise(
        tables, targets, population=population, generations=generations, measure=measure
    )
    assert specialiser.fit_report is not None
    return results, specialiser.fit_report
