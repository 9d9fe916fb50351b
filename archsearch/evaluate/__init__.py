"""Evaluators: how a candidate architecture is scored.

Importing this package imports no evaluator's module: the registry imports each one on its
first use (:mod:`archsearch.catalog`), so that a worker process evaluating a table never pays
for torch, which the training and proxy evaluators import. The classes below are loaded on
first access too.
"""

from __future__ import annotations

import importlib
from typing import Any

from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator

_LAZY = {
    "NASBenchGraphEvaluator": "archsearch.evaluate.table",
    "NB201TableEvaluator": "archsearch.evaluate.tabular",
    "ProxyEvaluator": "archsearch.evaluate.proxy",
    "TableEvaluator": "archsearch.evaluate.table",
    "TrainingEvaluator": "archsearch.evaluate.train",
}

__all__ = ["EVALUATORS", "EvalResult", "Evaluator", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archsearch.evaluate' has no attribute {name!r}")
