"""Evaluators: how a candidate architecture is scored."""

from archsearch.evaluate import composite, cost, predictor  # noqa: F401  (registers them)
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.evaluate.proxy import ProxyEvaluator  # noqa: F401  (registers "proxy")
from archsearch.evaluate.table import NASBenchGraphEvaluator, TableEvaluator
from archsearch.evaluate.tabular import NB201TableEvaluator
from archsearch.evaluate.train import TrainingEvaluator

__all__ = [
    "EVALUATORS",
    "EvalResult",
    "Evaluator",
    "NASBenchGraphEvaluator",
    "NB201TableEvaluator",
    "TableEvaluator",
    "TrainingEvaluator",
]
