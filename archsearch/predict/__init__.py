"""Performance predictors: models of ``architecture -> score`` learned from evaluations.

Registered in :data:`PREDICTORS`: ``mlp-ensemble`` (BANANAS), ``gp``, ``lightgbm`` and
``gates`` (a learned graph encoder). Importing this package imports torch; strategies
import it lazily, inside their methods.
"""

from typing import Any

from archsearch.predict.base import LOSSES, PREDICTORS, FeaturePredictor, Predictor
from archsearch.predict.gates import GATESEncoder, GATESPredictor
from archsearch.predict.gp import GaussianProcess
from archsearch.predict.mlp import MLPEnsemble
from archsearch.predict.trees import GradientBoostedTrees
from archsearch.space.base import SearchSpace


def make_predictor(name: str, space: SearchSpace, seed: int = 0, **options: Any) -> Predictor:
    """Construct a registered predictor by name, e.g. ``make_predictor("gates", space)``."""
    return PREDICTORS.get(name)(space, seed=seed, **options)


__all__ = [
    "LOSSES",
    "PREDICTORS",
    "FeaturePredictor",
    "GATESEncoder",
    "GATESPredictor",
    "GaussianProcess",
    "GradientBoostedTrees",
    "MLPEnsemble",
    "Predictor",
    "make_predictor",
]
