"""Evaluators for the parallel-evaluation tests, importable by spawned worker processes
(tests/ is on their sys.path, as it is on pytest's)."""

import os
import signal

from archsearch.evaluate.base import EvalResult, Evaluator


class KillsItsWorker(Evaluator):
    """Every evaluation kills the process running it, as an out-of-memory kill would."""

    name = "kills-its-worker"
    objective_name = "score"

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        os.kill(os.getpid(), signal.SIGKILL)
        return EvalResult({"score": 0.0})


class RaisesForSome(Evaluator):
    """Fails the architectures whose first operation is ``none``, scores the others."""

    name = "raises-for-some"
    objective_name = "score"

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        name = space.to_string(arch)
        if name.startswith("|none"):
            raise RuntimeError("no such network")
        return EvalResult({"score": float(len(name) % 7)})
