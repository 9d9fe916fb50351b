"""REINFORCE: a policy-gradient controller over the decisions (Zoph & Le, ICLR 2017).

Zoph & Le train an RNN controller with REINFORCE (Williams, 1992). NAS-Bench-201 (Dong &
Yang, ICLR 2020, Sec. 5) benchmarks the simplified form used here: one independent
categorical distribution per decision, ``pi(a) = prod_d softmax(theta_d)[a_d]``, updated
after every evaluation with

    theta <- theta + lr * ( A * grad log pi(a) + beta * grad H(pi) ),   A = (R - b) / s

(Williams' Eq. 11 with a baseline; ``grad_theta_d log pi(a) = onehot(a_d) - p_d``). ``b`` is
an exponential moving average of rewards (Zoph & Le, Sec. 3.2) and ``H`` the policy's
entropy, whose bonus keeps the controller from collapsing on its first lucky draw
(Williams & Peng, 1991). ``s`` is a running mean absolute deviation of ``R - b``, so that
one learning rate serves objectives on any scale (accuracy in %, or as a fraction, or a
ROC-AUC): the same defaults on every benchmark. ``A`` is clipped to [-3, 3], so that one
outlier (a diverged training) cannot wreck the policy in a single step.

Defaults (``lr=0.5``, ``entropy=0.01``, ``baseline_decay=0.9``) were chosen once on the
NAS-Bench-201 table over its three datasets and are not tuned per benchmark; 100 seeds at
100 queries give 94.08 / 72.99 / 46.35 test accuracy (CIFAR-10 / CIFAR-100 /
ImageNet16-120) against 93.74 / 71.47 / 45.48 for random search and the 93.85 published
for REINFORCE on CIFAR-10 (``benchmarks/nb201_search.py --strategies random,reinforce``).
"""

from __future__ import annotations

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Architecture, SearchSpace
from archsearch.strategy.base import STRATEGIES, Observation, Strategy


@STRATEGIES.register("reinforce")
class Reinforce(Strategy):
    """Policy-gradient search with a factorised categorical policy (numpy only).

    Options: ``lr`` (step on the logits per evaluation), ``entropy`` (weight of the entropy
    bonus), ``baseline_decay`` (EMA factor of the reward baseline; 0 = last reward only).

    Proposals are drawn from the policy, re-drawn while they repeat an architecture already
    proposed (on a deterministic benchmark a repeat teaches nothing and spends budget) and,
    on constrained spaces, while they are invalid; define-by-run spaces map each draw to its
    canonical model. When the policy only draws repeats, a uniform unseen sample is used.

    A failed evaluation (``objective=None``) is learnt from as the worst reward seen so far,
    so that the policy moves away from what fails; before any success it teaches nothing.
    Results of architectures the policy did not propose (warm starts, another strategy's
    replays) update it all the same: the score-function estimator is then off-policy, but
    still moves probability toward what scored above the baseline.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        lr: float = 0.5,
        entropy: float = 0.01,
        baseline_decay: float = 0.9,
    ) -> None:
        super().__init__(space, seed)
        if not lr > 0:
            raise ArchsearchError(f"reinforce needs lr > 0, got {lr!r}")
        if not entropy >= 0:
            raise ArchsearchError(f"reinforce needs entropy >= 0, got {entropy!r}")
        if not 0 <= baseline_decay < 1:
            raise ArchsearchError(
                f"reinforce needs 0 <= baseline_decay < 1, got {baseline_decay!r}"
            )
        self.lr = float(lr)
        self.entropy = float(entropy)
        self.baseline_decay = float(baseline_decay)
        self.logits = [np.zeros(len(d.choices)) for d in space.decisions]
        self.baseline: float | None = None
        self.scale: float | None = None  # running mean |R - b|
        self._worst: float | None = None
        # choice indices actually drawn for a proposal; for define-by-run spaces they differ
        # from the canonical architecture's in the decisions the model does not ask
        self._drawn: dict[Architecture, list[int]] = {}
        self._canonical = space.canonical if space.supports("canonical") else None

    # ---------------------------------------------------------------- policy
    def probabilities(self) -> list[np.ndarray]:
        """The policy: one probability vector per decision, in the space's decision order."""
        return [_softmax(theta) for theta in self.logits]

    def _draws(self, probs: list[np.ndarray], count: int) -> np.ndarray:
        """``count`` independent draws of choice indices, shape ``(count, decisions)``."""
        u = self.rng.random((count, len(probs)))
        columns = [
            np.minimum(np.searchsorted(np.cumsum(p), u[:, j], side="right"), len(p) - 1)
            for j, p in enumerate(probs)
        ]
        return np.stack(columns, axis=1)

    def ask(self) -> Architecture:
        probs = self.probabilities()
        for _ in range(5):  # up to 100 draws, 20 at a time
            draws = self._draws(probs, 20)
            _, first = np.unique(draws, axis=0, return_index=True)  # a converged policy repeats
            for row in draws[np.sort(first)]:
                indices = [int(i) for i in row]
                arch = self.space._from_indices(indices)
                if self._canonical is not None:
                    arch = self._canonical(arch)
                elif self.space.constrained and not self.space.is_valid(arch):
                    continue
                if arch in self.seen:
                    continue
                self.seen.add(arch)
                self._drawn[arch] = indices
                return arch
        return self.sample_unseen()  # the policy has (nearly) converged: explore uniformly

    # ---------------------------------------------------------------- learning
    def _observe(self, observation: Observation) -> None:
        indices = self._drawn.pop(observation.arch, None)
        reward = observation.objective
        if reward is None:
            if self._worst is None:
                return
            reward = self._worst
        else:
            self._worst = reward if self._worst is None else min(self._worst, reward)
        if indices is None:
            indices = [d.index(observation.arch[d.label]) for d in self.space.decisions]
        if self.baseline is None:  # the first reward only sets the baseline
            self.baseline = reward
            return
        deviation = reward - self.baseline
        if self.scale is None or self.scale == 0.0:
            self.scale = abs(deviation)
        else:
            self.scale = self.baseline_decay * self.scale + (1 - self.baseline_decay) * abs(
                deviation
            )
        advantage = 0.0 if self.scale == 0.0 else float(np.clip(deviation / self.scale, -3, 3))
        for theta, i in zip(self.logits, indices, strict=True):
            p = _softmax(theta)
            grad_log = -p
            grad_log[i] += 1.0
            log_p = np.log(p)
            grad_entropy = -p * (log_p - np.dot(p, log_p))  # d/dtheta of -sum p log p
            theta += self.lr * (advantage * grad_log + self.entropy * grad_entropy)
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward


def _softmax(theta: np.ndarray) -> np.ndarray:
    z = np.exp(theta - theta.max())
    return z / z.sum()
