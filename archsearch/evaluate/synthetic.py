"""A synthetic load: evaluations that cost a fixed number of seconds of waiting.

Parallel evaluation is about wall time, and a real training run makes each measurement of
it cost minutes and a core per worker. ``sleep`` makes each evaluation wait ``seconds``
(using no CPU, so that 16 workers can be measured on a 2-core machine) and then returns the
values of an ``inner`` evaluator (a table, say: the search is then a real one), or a score
fixed by the architecture's name when there is none. ``benchmarks/scaling.py`` and the
fault-tolerance tests use it; ``log`` appends one line per evaluation (process id, trial
seed, architecture) so that a test can see which worker is running which trial.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Mapping
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace


@EVALUATORS.register("sleep")
class SleepEvaluator(Evaluator):
    """Waits ``seconds`` per evaluation, then scores like ``inner`` (or a fixed hash)."""

    name = "sleep"
    objective_name = "score"

    def __init__(
        self,
        seconds: float = 1.0,
        inner: Mapping[str, Any] | None = None,
        log: str | None = None,
    ) -> None:
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not (math.isfinite(seconds) and seconds >= 0)
        ):
            raise ArchsearchError(f"sleep seconds must be a number >= 0, got {seconds!r}")
        self.seconds = float(seconds)
        self.inner = None if inner is None else dict(inner)
        self.log = log
        self._inner: Evaluator | None = None
        if self.inner is not None:
            from archsearch.build import build_evaluator

            self._inner = build_evaluator(self.inner)
            self.objective_name = self._inner.objective_name
            self.objective_direction = self._inner.objective_direction
            self.reported_name = self._inner.reported_name

    def check_space(self, space: SearchSpace) -> None:
        if self._inner is not None:
            self._inner.check_space(space)

    def value_names(self, space: SearchSpace) -> frozenset[str] | None:
        if self._inner is not None:
            return self._inner.value_names(space)
        return frozenset({"score", "sleep_seconds"})

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> Mapping[str, float]:
        return {} if self._inner is None else self._inner.cheap_values(arch, space)

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        name = space.to_string(arch)
        if self.log is not None:
            with open(self.log, "a") as handle:
                handle.write(f"{os.getpid()} {seed} {name}\n")
        time.sleep(self.seconds)
        if self._inner is not None:
            return self._inner.evaluate(arch, space, seed=seed, fidelity=fidelity)
        digest = hashlib.sha256(name.encode()).digest()
        score = int.from_bytes(digest[:8], "big") / 2**64
        return EvalResult({"score": score, "sleep_seconds": self.seconds})
