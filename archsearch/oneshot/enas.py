"""ENAS: a REINFORCE-trained controller that samples paths of a shared-weight supernet
(Pham et al., ICML 2018).

The controller is an LSTM that emits the space's decisions one after another (each choice
is fed back as the next input), so it can model dependencies between decisions. Training
alternates (Sec. 2.2 of the paper): one epoch of supernet weights, each batch on an
architecture sampled from the controller; then ``controller_steps`` REINFORCE updates, the
reward being the sampled architecture's accuracy on one validation batch with the shared
weights, with a moving-average baseline and an entropy bonus. The final architecture is the
best by validation accuracy among ``final_samples`` samples of the trained controller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.oneshot.base import ONESHOT, OneShotMethod, _Mean
from archsearch.oneshot.runtime import batch_statistics, loss_and_correct
from archsearch.oneshot.supernet import Path
from archsearch.space.base import Architecture, SearchSpace


class Controller(nn.Module):
    """An LSTM policy over the decisions of a space, in the space's decision order.

    A space with constraints may define ``allowed(label, partial) -> list[bool]`` (the DARTS
    space does); the controller then samples only valid choices, so every sample is a valid
    architecture and the log-probability is that of a proper distribution.
    """

    def __init__(self, space: SearchSpace, hidden: int = 64) -> None:
        super().__init__()
        self.space = space
        self.sizes = [len(d.choices) for d in space.decisions]
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in self.sizes)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.sizes)
        self._allowed = space.allowed if space.supports("allowed") else None
        for head in self.heads:  # start from the uniform policy
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def sample(
        self, generator: torch.Generator | None = None, greedy: bool = False
    ) -> tuple[Architecture, torch.Tensor, torch.Tensor]:
        """An architecture, its log-probability and the summed entropy of its decisions."""
        h = c = torch.zeros_like(self.start)
        x = self.start
        assignment: dict[str, Any] = {}
        log_prob = torch.zeros(())
        entropy = torch.zeros(())
        for t, decision in enumerate(self.space.decisions):
            h, c = self.lstm(x, (h, c))
            logits = self.heads[t](h)[0]
            if self._allowed is not None:
                mask = torch.tensor(self._allowed(decision.label, assignment))
                logits = logits.masked_fill(~mask, float("-inf"))
            log_p = logits.log_softmax(dim=-1)
            p = log_p.exp()
            entropy = entropy - (p * log_p.nan_to_num(neginf=0.0)).sum()
            if greedy:
                k = int(torch.argmax(log_p))
            else:
                k = int(torch.multinomial(p.detach(), 1, generator=generator))
            log_prob = log_prob + log_p[k]
            assignment[decision.label] = decision.choices[k]
            x = self.embeddings[t](torch.tensor([k]))
        return self.space.make(assignment), log_prob, entropy


@ONESHOT.register("enas")
class ENAS(OneShotMethod):
    """ENAS with an LSTM controller (see the module docstring).

    Controller settings follow the paper: Adam at ``controller_lr`` (3.5e-4 there; short
    CPU runs need more), baseline decay 0.95, entropy weight 1e-4.
    """

    name = "enas"

    def __init__(
        self,
        *,
        controller_steps: int = 50,
        controller_lr: float = 3.5e-4,
        controller_hidden: int = 64,
        baseline_decay: float = 0.95,
        entropy_weight: float = 1e-4,
        final_samples: int = 20,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if controller_steps < 0 or final_samples <= 0:
            raise ArchsearchError(
                "controller_steps must be >= 0 and final_samples > 0, got "
                f"{controller_steps}, {final_samples}"
            )
        self.controller_steps = controller_steps
        self.controller_lr = controller_lr
        self.controller_hidden = controller_hidden
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.final_samples = final_samples

    def _setup(self) -> None:
        # the controller is tiny and sequential: it stays on the CPU whatever the device
        self.controller = Controller(self.net.space, self.controller_hidden)
        self.c_opt = torch.optim.Adam(self.controller.parameters(), lr=self.controller_lr)
        self.baseline: float | None = None
        self._entropies: list[float] = []

    def _train_epoch(self) -> dict[str, Any]:
        meter = _Mean()
        self.controller.eval()
        for x, y in self.train_batches():
            with torch.no_grad():
                arch, _, _ = self.controller.sample(self.generator)
            self.weight_step(x, y, self.net.path_of(arch), meter)
        rewards = self._train_controller()
        loss, acc = meter.read()
        return {
            "train_loss": round(loss, 5),
            "train_acc": round(acc, 3),
            "reward": round(float(np.mean(rewards)), 4) if rewards else None,
        }

    def _reward(self, arch: Architecture, x: torch.Tensor, y: torch.Tensor) -> float:
        path = self.net.path_of(arch)
        with torch.no_grad(), batch_statistics(self.net), self.runtime.autocast():
            _, correct = loss_and_correct(self.net(x, path), y)
        return float(correct) / len(y)

    def _train_controller(self) -> list[float]:
        self.controller.train()
        rewards, entropies = [], []
        valid = self.valid_batches()
        for _ in range(self.controller_steps):
            batch = next(valid, None)
            if batch is None:
                valid = self.valid_batches()
                batch = next(valid)
            arch, log_prob, entropy = self.controller.sample(self.generator)
            reward = self._reward(arch, *batch)
            # Pham et al.: b <- b - (1 - decay)(b - R), then ascend (R - b) log p + w_H H
            if self.baseline is None:
                self.baseline = reward
            self.baseline -= (1 - self.baseline_decay) * (self.baseline - reward)
            loss = -(reward - self.baseline) * log_prob - self.entropy_weight * entropy
            self.c_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.c_opt.step()
            rewards.append(reward)
            entropies.append(float(entropy.detach()) / len(self.net.space.decisions))
        self._entropies = entropies
        return rewards

    def current_arch(self) -> Architecture:
        with torch.no_grad():
            return self.controller.sample(greedy=True)[0]

    def entropy(self) -> float:
        """Mean per-decision entropy of the controller along its greedy trajectory."""
        with torch.no_grad():
            _, _, entropy = self.controller.sample(greedy=True)
        return float(entropy) / len(self.net.space.decisions)

    def _valid_path(self, arch: Architecture | None) -> Callable[[], Path]:
        assert arch is not None
        path = self.net.path_of(arch)
        return lambda: path

    def _finalize(self) -> tuple[Architecture, dict[str, Any]]:
        started = time.perf_counter()
        candidates: dict[Architecture, float] = {}
        with torch.no_grad():
            samples = [self.current_arch()] + [
                self.controller.sample(self.generator)[0] for _ in range(self.final_samples - 1)
            ]
        for arch in samples:
            if arch not in candidates:
                path = self.net.path_of(arch)
                candidates[arch] = self.path_accuracy(lambda path=path: path)[1]
        best = max(candidates, key=lambda a: candidates[a])
        details = {
            "final_candidates": len(candidates),
            "best_valid_acc": candidates[best],
            "selection_seconds": round(time.perf_counter() - started, 3),
        }
        return best, details
