"""A NAS-Bench-201 table evaluator that takes its time, so tests can kill a study mid-flight.

Run as a script (``slow_table.py DIR TABLE [SEED]``) it starts (or resumes) a study in DIR.
"""

import sys
import time

from archsearch.evaluate.base import EVALUATORS
from archsearch.evaluate.tabular import NB201TableEvaluator

if "slow-nb201-table" not in EVALUATORS:

    @EVALUATORS.register("slow-nb201-table")
    class SlowTable(NB201TableEvaluator):
        name = "slow-nb201-table"

        def __init__(self, table, dataset="cifar10", delay=0.05):
            super().__init__(table, dataset)
            self.delay = delay

        def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
            time.sleep(self.delay)
            return super().evaluate(arch, space, seed=seed, fidelity=fidelity)

        def config(self):
            return {**super().config(), "name": self.name, "delay": self.delay}


def config(table, strategy="evolution", seed=0, evaluations=60, delay=0.05):
    return {
        "space": {"name": "nb201"},
        "strategy": {"name": strategy},
        "evaluator": {"name": "slow-nb201-table", "table": str(table), "delay": delay},
        "seed": seed,
        "budget": {"evaluations": evaluations, "seconds": None},
    }


if __name__ == "__main__":
    from archsearch.study import Study

    directory, table = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    Study.from_config(config(table, seed=seed), directory).optimize()
