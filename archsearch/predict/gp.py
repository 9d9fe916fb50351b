"""A Gaussian process on architecture encodings (as in NASBOT/BANANAS' GP baselines).

Exact GP regression with a Matérn-5/2 kernel plus a white-noise term, hyperparameters by
maximum marginal likelihood (Rasmussen & Williams 2006, eqs. 2.25-2.26 and 5.8), through
scikit-learn's ``GaussianProcessRegressor``. Exact inference costs O(n^3), which is
nothing at the few hundred evaluations a NAS search makes.
"""

from __future__ import annotations

import warnings

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.predict.base import PREDICTORS, FeaturePredictor
from archsearch.space.base import Architecture, SearchSpace


@PREDICTORS.register("gp")
class GaussianProcess(FeaturePredictor):
    """GP mean and standard deviation on (by default) the path encoding.

    The length scale starts at the median distance between training encodings and may not
    fall below the smallest one: on a few dozen cells with heavy-tailed accuracies the
    marginal likelihood otherwise prefers a length scale shorter than any distance, a model
    that memorises the training cells and predicts the mean everywhere else (Kendall's tau
    fell to 0.2 at 78 cells). Noise may explain at most the whole (normalised) variance.
    ``restarts`` adds optimiser starts.
    """

    has_std = True

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        loss: str = "mse",
        encoding: str = "path",
        nu: float = 2.5,
        restarts: int = 0,
    ) -> None:
        super().__init__(space, seed=seed, loss=loss, encoding=encoding)
        if nu not in (0.5, 1.5, 2.5, float("inf")):
            raise ArchsearchError(f"Matérn nu must be one of 0.5, 1.5, 2.5, inf; got {nu!r}")
        self.nu = nu
        self.restarts = restarts

    def _fit(self, archs: list[Architecture], y: np.ndarray) -> None:
        from scipy.spatial.distance import pdist
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        x = self.features(archs).astype(np.float64)
        distances = pdist(x)
        positive = distances[distances > 0]
        scale = float(np.median(positive)) if positive.size else 1.0
        nearest = float(positive.min()) if positive.size else 1.0
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=scale, length_scale_bounds=(nearest, 20 * scale), nu=self.nu
        ) + WhiteKernel(0.1, (1e-4, 1.0))
        self.model = GaussianProcessRegressor(
            kernel=kernel,
            normalize_y=True,
            n_restarts_optimizer=self.restarts,
            random_state=self.seed,
        )
        with warnings.catch_warnings():  # bounds reached on tiny training sets: harmless
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(x, y)

    def _predict(self, archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.model.predict(self.features(archs).astype(np.float64), return_std=True)
        return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
