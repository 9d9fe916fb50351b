"""Scoring architectures with inherited supernet weights, as an archsearch evaluator.

SPOS (Guo et al., ECCV 2020) and random search with weight sharing (Li & Talwalkar, UAI
2019) train a supernet once and then search over its paths: an architecture's score is the
validation accuracy of its path with the supernet's weights, after recomputing the BN
statistics on a few training batches for that path alone (SPOS Sec. 3.3). Any strategy of
:mod:`archsearch.strategy` can drive that search through :class:`SupernetEvaluator`, which a
study uses like any other evaluator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Any

import torch

from archsearch.data.base import ImageData
from archsearch.errors import ArchsearchError, DataError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.oneshot.runtime import (
    Runtime,
    batches,
    evaluate,
    loss_and_correct,
    on_device,
    recalibrate_batch_norm,
)
from archsearch.oneshot.supernet import Path, Supernet, supernet_from_config
from archsearch.runtime import load_checkpoint
from archsearch.space.base import Architecture, SearchSpace
from archsearch.study.safe_write import write_atomically
from archsearch.training import optimizer_step

CHECKPOINT_FORMAT = "archsearch-supernet-1"


class InheritedWeights:
    """Scores paths of a trained supernet on a fixed validation set.

    The calibration batches (``calibration_batches`` x ``calibration_batch_size`` training
    images) and the evaluation images (the first ``eval_size`` validation images) are fixed
    at construction, so an architecture's score is deterministic.

    ``finetune_steps > 0`` trains the path alone for that many SGD steps (``finetune_lr``,
    momentum 0.9, a fixed seeded batch order) before scoring, and restores the supernet
    afterwards: inherited weights were trained for every path at once, and a short
    stand-alone adjustment is a known remedy for the ranking error that causes (the
    "few-shot fine-tuning" of weight-sharing evaluations, e.g. Yu et al., ICLR 2020 Sec. 4).
    """

    def __init__(
        self,
        supernet: Supernet,
        data: ImageData,
        runtime: Runtime | None = None,
        *,
        calibration_batches: int = 4,
        calibration_batch_size: int = 128,
        eval_size: int | None = None,
        batch_size: int = 500,
        seed: int = 0,
        finetune_steps: int = 0,
        finetune_lr: float = 0.01,
        finetune_batch_size: int = 64,
    ) -> None:
        if calibration_batches <= 0 or calibration_batch_size <= 0:
            raise ArchsearchError(
                "calibration_batches and calibration_batch_size must be > 0, got "
                f"{calibration_batches}, {calibration_batch_size}"
            )
        self.runtime = runtime or Runtime.resolve()
        self.net = self.runtime.module(supernet)
        self.data = on_device(data, self.runtime)
        order = torch.randperm(
            len(self.data.x_train), generator=torch.Generator().manual_seed(seed)
        )
        take = order[: calibration_batches * calibration_batch_size].to(self.runtime.device)
        self.calibration = list(self.data.x_train[take].split(calibration_batch_size))
        n = len(self.data.x_valid) if eval_size is None else min(eval_size, len(self.data.x_valid))
        self.valid = self.data.x_valid[:n], self.data.y_valid[:n]
        self.batch_size = batch_size
        if finetune_steps < 0 or not finetune_lr > 0:
            raise ArchsearchError(
                f"need finetune_steps >= 0 and finetune_lr > 0, got {finetune_steps}, {finetune_lr}"
            )
        self.finetune_steps = finetune_steps
        self.finetune_lr = finetune_lr
        self.finetune_batch_size = finetune_batch_size
        self.seed = seed

    def score(self, arch: Architecture) -> tuple[float, float]:
        """Validation accuracy (%) and loss of ``arch``'s path, BN recalibrated."""
        path = self.net.path_of(arch)
        net = self.net.path_module(path)  # a split supernet: only the part that owns arch

        def forward(x: torch.Tensor) -> torch.Tensor:
            with self.runtime.autocast():
                return net(x, path)

        saved = None
        if self.finetune_steps:
            saved = {k: v.detach().clone() for k, v in net.state_dict().items()}
            self._finetune(net, path)
        try:
            recalibrate_batch_norm(net, forward, self.calibration)
            loss, accuracy = evaluate(forward, *self.valid, self.runtime, self.batch_size)
        finally:
            if saved is not None:
                net.load_state_dict(saved)
        return accuracy, loss

    def _finetune(self, net: Supernet, path: Path) -> None:
        weights = net.weight_parameters()
        optimizer = torch.optim.SGD(weights, lr=self.finetune_lr, momentum=0.9)
        generator = torch.Generator().manual_seed(self.seed)
        x, y = self.data.x_train, self.data.y_train
        net.train()
        step = 0
        while step < self.finetune_steps:
            for xb, yb in batches(x, y, self.finetune_batch_size, generator):
                optimizer_step(
                    optimizer,
                    lambda xb=xb, yb=yb: loss_and_correct(net(xb, path), yb)[0],
                    autocast=self.runtime.autocast,
                )
                step += 1
                if step == self.finetune_steps:
                    break


@EVALUATORS.register("supernet")
class SupernetEvaluator(Evaluator):
    """Inherited-weight validation accuracy of a trained supernet's paths.

    Built either from a checkpoint file written by :func:`save_supernet` (what a stored
    study records, so it can be resumed) or in memory from an :class:`InheritedWeights`
    scorer. The objective is a proxy for the accuracy after training from scratch, and
    nothing is reported: retrain the winner to know its accuracy.

    The checkpoint is read on first use, not at construction: a one-shot study names its
    evaluator before its supernet is trained, and ``show`` builds it without scoring
    anything. The scoring options (``calibration_batch_size``, ``seed``, ``amp``,
    ``channels_last``) are those of :class:`InheritedWeights` and :class:`Runtime`, so that a
    stored study scores exactly as SPOS's in-memory search does.
    """

    name = "supernet"
    objective_name = "inherited_valid_accuracy"
    reported_name = None

    def __init__(
        self,
        checkpoint: str | None = None,
        *,
        scorer: InheritedWeights | None = None,
        data_dir: str | None = None,
        device: str = "auto",
        calibration_batches: int = 4,
        eval_size: int | None = None,
        calibration_batch_size: int = 128,
        seed: int = 0,
        amp: bool | str = "auto",
        channels_last: bool | str = "auto",
    ) -> None:
        self.checkpoint = None if checkpoint is None else str(FilePath(checkpoint).resolve())
        self.data_dir = data_dir
        self.device = device
        self.calibration_batches = calibration_batches
        self.eval_size = eval_size
        self.calibration_batch_size = calibration_batch_size
        self.seed = seed
        self.amp = amp
        self.channels_last = channels_last
        if scorer is None and checkpoint is None:
            raise ArchsearchError(
                "evaluator supernet needs a checkpoint (a trained supernet saved by "
                "'archsearch oneshot ... --out DIR': DIR/supernet.pt)"
            )
        if scorer is None:
            Runtime.resolve(device, amp, channels_last)  # a bad option fails now
        self._scorer = scorer
        self._loaded: tuple[tuple[int, int], Supernet, dict[str, Any]] | None = None

    def _load(self) -> tuple[Supernet, dict[str, Any]]:
        """The checkpoint's supernet and data recipe, read again only when the file changed
        (a one-shot study writes it after naming this evaluator)."""
        assert self.checkpoint is not None
        try:
            stat = os.stat(self.checkpoint)
        except OSError:
            raise DataError(
                f"supernet checkpoint {self.checkpoint} does not exist (yet): train the "
                "supernet first"
            ) from None
        key = (stat.st_mtime_ns, stat.st_size)
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = (key, *load_supernet(self.checkpoint))
        return self._loaded[1], self._loaded[2]

    @property
    def scorer(self) -> InheritedWeights:
        """The scorer over the checkpoint's supernet, built on first use."""
        if self._scorer is None:
            supernet, recipe = self._load()
            self._loaded = None  # the scorer owns the supernet from here on
            from archsearch.oneshot.data import load_search_data

            data_dir = {"data_dir": self.data_dir} if self.data_dir else {}
            data = load_search_data(**{**recipe, **data_dir})
            self._scorer = InheritedWeights(
                supernet,
                data,
                Runtime.resolve(self.device, self.amp, self.channels_last),
                calibration_batches=self.calibration_batches,
                calibration_batch_size=self.calibration_batch_size,
                eval_size=self.eval_size,
                seed=self.seed,
            )
        return self._scorer

    def check_space(self, space: SearchSpace) -> None:
        if self._scorer is not None:
            mine = self._scorer.net.space
        elif os.path.exists(self.checkpoint):
            mine = self._load()[0].space
        else:
            return  # not trained yet: the first evaluation checks it
        if space.name != mine.name:
            raise ArchsearchError(
                f"evaluator supernet holds a {mine.name!r} supernet, not space {space.name!r}"
            )

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        started = time.perf_counter()
        accuracy, loss = self.scorer.score(arch)
        seconds = time.perf_counter() - started
        return EvalResult({self.objective_name: accuracy, "loss": loss, "eval_seconds": seconds})

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "checkpoint": self.checkpoint,
            "data_dir": self.data_dir,
            "device": self.device,
            "calibration_batches": self.calibration_batches,
            "eval_size": self.eval_size,
            "calibration_batch_size": self.calibration_batch_size,
            "seed": self.seed,
            "amp": self.amp,
            "channels_last": self.channels_last,
        }


def save_supernet(
    path: str | FilePath, supernet: Supernet, data_recipe: Mapping[str, Any] | None = None
) -> FilePath:
    """Save a trained supernet with what is needed to rebuild it and its data split.

    The file is written whole or not at all (a temporary file, then a rename), so a kill
    during the save leaves the previous checkpoint or none, never a truncated one.
    """
    path = FilePath(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in supernet.state_dict().items()}
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "supernet": supernet.config(),
        "state_dict": state,
        "data": dict(data_recipe or {}),
    }
    write_atomically(path, lambda handle: torch.save(checkpoint, handle))
    return path


def load_supernet(path: str | FilePath) -> tuple[Supernet, dict[str, Any]]:
    """The supernet saved at ``path`` and its data recipe."""
    stored = load_checkpoint(path, "supernet checkpoint")
    if not isinstance(stored, dict) or stored.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path} is not an archsearch supernet checkpoint")
    supernet = supernet_from_config(stored["supernet"])
    supernet.load_state_dict(stored["state_dict"])
    return supernet, dict(stored["data"])
