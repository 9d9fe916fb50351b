"""Adding a component: a zero-cost proxy, a strategy, a space and an evaluator, each one
class or function and its registration. The README's design section shows these four blocks
(``tests/test_extending.py`` checks that it shows them verbatim and that each one works).

    .venv/bin/python examples/extending.py
"""

# --- proxy
from archsearch.proxies.base import register_proxy


@register_proxy("conv_count", uses_data=False)
def conv_count(model, inputs, targets, loss_fn) -> float:
    """Number of convolutions: more of them predicts a better network (a toy proxy)."""
    from torch import nn

    return float(sum(isinstance(m, nn.Conv2d) for m in model.modules()))


# --- strategy
from archsearch.strategy.base import STRATEGIES, Strategy  # noqa: E402


@STRATEGIES.register("greedy-mutation")
class GreedyMutation(Strategy):
    """Mutates the best architecture so far; samples at random with probability explore."""

    def __init__(self, space, seed: int = 0, explore: float = 0.2) -> None:
        super().__init__(space, seed)
        self.explore = explore

    def ask(self):
        if self.best is None or self.rng.random() < self.explore:
            return self.sample_unseen()
        return self.mutate_unseen(self.best.arch)


# --- space
from archsearch.space.base import Decision, SearchSpace  # noqa: E402
from archsearch.space.registry import SPACES  # noqa: E402


@SPACES.register("mlp")
class MLPSpace(SearchSpace):
    """Multi-layer perceptrons: a depth and one width for every hidden layer."""

    capabilities = frozenset({"build"})

    def __init__(self, max_depth: int = 3) -> None:
        depths = tuple(range(1, max_depth + 1))
        super().__init__([Decision("depth", depths), Decision("width", (32, 64, 128))])

    def build(self, arch, input_shape, num_classes):
        import math

        from torch import nn

        layers, width = [nn.Flatten()], math.prod(input_shape)
        for _ in range(arch["depth"]):
            layers += [nn.Linear(width, arch["width"]), nn.ReLU()]
            width = arch["width"]
        return nn.Sequential(*layers, nn.Linear(width, num_classes))


# --- evaluator
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator  # noqa: E402


@EVALUATORS.register("hidden-units")
class HiddenUnits(Evaluator):
    """The number of hidden units, a cost to minimise (no training needed)."""

    objective_name, objective_direction = "hidden_units", "min"

    def __init__(self, per_unit: float = 1.0) -> None:
        self.per_unit = per_unit

    def evaluate(self, arch, space, *, seed=0, fidelity=None, time_limit=None):
        return EvalResult({"hidden_units": self.per_unit * arch["depth"] * arch["width"]})


# --- end
if __name__ == "__main__":
    from archsearch.study import Budget, Study

    space = MLPSpace()
    study = Study(space, GreedyMutation(space, seed=0), HiddenUnits(), budget=Budget(8))
    best = study.optimize()
    print(f"best: {best.arch} with {best.objective:g} hidden units ({study.config})")
