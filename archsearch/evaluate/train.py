"""Evaluation by training: each candidate is trained from scratch and scored on validation.

The protocol is NAS-Bench-201's (Dong & Yang, ICLR 2020): the search sees validation
accuracy, measured on images carved out of the training set; test accuracy is reported
beside it and never steers the search. Training is plain minibatch SGD (or Adam/AdamW) on
tensors already in memory, with a seeded data order.

The step and the batches are the ones the supernets train with too:
:func:`archsearch.training.optimizer_step` (zero the gradients, backpropagate, clip, step)
and :func:`archsearch.training.batches` (one seeded permutation per epoch, whole batches
only). They live in one place so that what a step means cannot drift between this
evaluator, the table builder (which trains through it) and the one-shot methods, and so
that a change to it, such as mixed precision with a loss scaler or gradient accumulation,
lands in every trainer at once. Sharing them moved no figure: every state-dict hash of this
evaluator and of the one-shot methods stayed the same bit for bit.

Reproducibility. On the CPU the same seed and recipe give the same weights to the last bit,
in one process or in another, on an idle or a loaded machine, provided the number of
intra-op threads is the same: what changes the bits is ``torch.get_num_threads()``, which
torch sets to the cores it sees at start-up, because oneDNN and MKL split each convolution's
and matrix product's reductions across threads and so sum in another order. Measured with
``NB201Space(channels=4, cells_per_stage=1)`` on ``digits`` (2 epochs, batch 32, seed 7) on a
2-core AMD EPYC, torch 2.13: twice in one process, in separate processes and beside two
busy-looping processes, 1 thread always gave state-dict hash ``7d95c981``, training loss
0.40395 and 95.5% validation accuracy, and 2 threads always gave ``467bdd59``, 0.39516 and
96.0%; the channels-last layout (``Recipe.channels_last``) changes the bits as well
(``channels_last=False``: ``6cf5fb90`` at 1 thread, ``a4b6ab7f`` at 2), and
``torch.use_deterministic_algorithms(True)`` changes nothing here, so it is not set. A few
ulps early on become a different network after a few hundred SGD steps and a different
choice for a search. The recipe therefore fixes the thread count: ``threads`` (default 1),
set around each training and evaluation and restored afterwards. One thread is also the
fast choice for these small networks on a shared machine: beside two busy loops the run
above took 12 s on 1 thread and 152 s on 2, whose OpenMP threads wait for each other. What
still changes the bits: another CPU instruction set (oneDNN and MKL pick kernels by it),
another torch, oneDNN or MKL version, ``threads=None`` (torch's setting, whatever it is), and
training several models at once in threads of one process (the thread count is global).
Time is never an input to training, except that a ``time_limit`` can end it early; the
result says so (``time_limited``).

The defaults are a CPU-sized recipe for Fashion-MNIST: 10,000 training images, 2 epochs,
batch 64, SGD (lr 0.05, Nesterov momentum 0.9, weight decay 5e-4) with a cosine schedule,
6,000 validation images and the full 10,000-image test split. With a reduced NAS-Bench-201
network (``NB201Space(channels=8, cells_per_stage=1)``) one evaluation of a random cell took
13-29 s of CPU time, median 18.5 s, on one thread of a loaded 2-core AMD EPYC, and reached
80-85% validation accuracy (``benchmarks/train_throughput.py`` prints both).
Figures made before ``threads`` existed used torch's default, the cores torch saw (2 for
``benchmarks/results/main_job.txt``, whose user time is twice its wall time).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.data.base import DATASETS, ImageData, load_dataset, split_train_valid, take
from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult, Evaluator
from archsearch.evaluate.cost import network_costs
from archsearch.runtime import cpu_threads, resolve_device, seeded
from archsearch.space.base import Architecture, SearchSpace
from archsearch.training import batches, optimizer_step

#: images per forward pass when measuring accuracy: on the CPU, batches whose activations fit
#: in cache run faster than very large ones
EVAL_BATCH_SIZE = {"cpu": 256, "cuda": 2048}
#: steps between checks that the loss is still finite (a check reads the loss off the device)
NAN_CHECK_EVERY = 20


def _sgd(params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def _adam(params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _adamw(params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


#: optimizer name -> factory(params, lr, weight_decay)
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": _sgd,  # Nesterov momentum 0.9, as NAS-Bench-201 trains
    "adam": _adam,
    "adamw": _adamw,
}


def _cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _constant(progress: float) -> float:
    return 1.0


def _step(progress: float) -> float:
    return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))


#: schedule name -> learning-rate factor as a function of training progress in [0, 1)
SCHEDULES: dict[str, Callable[[float], float]] = {
    "cosine": _cosine,  # annealed per step to 0 (Loshchilov & Hutter, ICLR 2017), no restarts
    "constant": _constant,
    "step": _step,  # x0.1 at 50% and again at 75% of the steps
}


@dataclass(frozen=True)
class Recipe:
    """How to train one network: what a study stores so that its numbers can be reproduced.

    ``epochs`` may be fractional (a multi-fidelity strategy asking for half an epoch gets
    half an epoch's steps); the schedule always spans the whole run. ``channels_last``
    ``None`` means: on the CPU (see :meth:`use_channels_last`). ``threads`` is the number of
    intra-op CPU threads to train and evaluate with; it is part of the recipe because it
    changes the result's bits (see the module docstring). ``None`` leaves torch's setting.
    """

    epochs: float = 2
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    device: str = "cpu"
    channels_last: bool | None = None
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ArchsearchError(
                f"unknown optimizer {self.optimizer!r}; optimizers: {', '.join(OPTIMIZERS)}"
            )
        if self.schedule not in SCHEDULES:
            raise ArchsearchError(
                f"unknown schedule {self.schedule!r}; schedules: {', '.join(SCHEDULES)}"
            )
        if not (isinstance(self.epochs, int | float) and self.epochs > 0):
            raise ArchsearchError(f"epochs must be > 0, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ArchsearchError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not (isinstance(self.lr, int | float) and self.lr > 0):
            raise ArchsearchError(f"lr must be > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, int | float) and self.weight_decay >= 0):
            raise ArchsearchError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.label_smoothing, int | float) and 0 <= self.label_smoothing < 1):
            raise ArchsearchError(
                f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}"
            )
        if self.channels_last not in (None, True, False):
            raise ArchsearchError(
                f"channels_last must be true, false or null, got {self.channels_last!r}"
            )
        threads = self.threads
        if threads is not None and (type(threads) is not int or threads < 1):
            raise ArchsearchError(
                f"threads must be a positive integer or null, got {self.threads!r}"
            )
        resolve_device(self.device)

    def use_channels_last(self, device: torch.device, input_ndim: int) -> bool:
        """Whether to train in channels-last layout: by default on the CPU, for images.

        On the CPU, oneDNN convolutions of the small widths NAS trains are faster in
        channels-last layout (1.37x for a NAS-Bench-201 cell at C=8 on 28x28 images, see
        ``benchmarks/train_throughput.py``). A model whose ``forward`` calls ``.view`` on
        convolution outputs needs ``channels_last=False``.
        """
        if input_ndim != 4:
            return False
        return device.type == "cpu" if self.channels_last is None else bool(self.channels_last)

    def steps(self, n_train: int) -> int:
        """Optimizer steps for ``n_train`` images: whole batches only, at least one."""
        per_epoch = max(1, n_train // self.batch_size)
        return max(1, round(self.epochs * per_epoch))


@dataclass(frozen=True)
class TrainLog:
    """What :func:`train_model` did: mean loss of the last epoch, steps, seconds.

    ``time_limited`` says that a time limit ended training before the recipe's steps.
    """

    loss: float
    steps: int
    epochs: float
    seconds: float
    images: int
    time_limited: bool = False

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.loss)


def train_model(
    model: nn.Module,
    data: ImageData,
    recipe: Recipe,
    seed: int = 0,
    *,
    time_limit: float | None = None,
) -> TrainLog:
    """Train ``model`` in place on ``data``'s training split; it stays on the recipe's device.

    Images are drawn by a per-epoch permutation of a generator seeded with ``seed``; each
    step trains on one whole batch (a final partial batch is dropped, so BatchNorm never sees
    a batch of one). Training stops at the first non-finite loss, which the log reports as
    its ``loss``. The loop touches nothing but in-memory tensors: no DataLoader, no workers.
    The model is trained in channels-last layout where the recipe says so (see
    :meth:`Recipe.use_channels_last`) and given back in the default layout, with the
    recipe's ``threads``.

    ``time_limit`` (seconds from the call, ``None``: none) ends training at the end of the
    first epoch that finishes once it is spent, so at least one epoch (or the recipe's
    fraction of one) is always trained; the learning-rate schedule still spans the recipe's
    steps, so a cut run is not annealed. The log's ``epochs`` and ``time_limited`` say
    what happened. Whether a limit cuts depends on the clock; the steps trained do not.
    """
    with cpu_threads(recipe.threads):
        return _train(model, data, recipe, seed, time_limit)


def _train(
    model: nn.Module, data: ImageData, recipe: Recipe, seed: int, time_limit: float | None
) -> TrainLog:
    called = time.perf_counter()
    device = resolve_device(recipe.device)
    x, y = data.x_train.to(device), data.y_train.to(device)
    n = len(y)
    batch = min(recipe.batch_size, n)
    total = recipe.steps(n)
    per_epoch = max(1, n // batch)
    channels_last = recipe.use_channels_last(device, x.ndim)
    model.to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)  # free for one-channel images
    optimizer = OPTIMIZERS[recipe.optimizer](model.parameters(), recipe.lr, recipe.weight_decay)
    factor = SCHEDULES[recipe.schedule]
    generator = torch.Generator().manual_seed(int(seed))
    smoothing = float(recipe.label_smoothing)

    started = time.perf_counter()
    step, epoch_loss, epoch_steps = 0, torch.zeros((), device=device), 0
    last_loss = float("nan")
    time_limited = False
    with seeded(seed, device):
        while step < total:
            epoch_loss.zero_()
            epoch_steps = 0
            for xb, yb in batches(x, y, batch, generator):  # one randperm per epoch
                if step == total:
                    break
                lr = recipe.lr * factor(step / total)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                (loss,) = optimizer_step(
                    optimizer,
                    lambda xb=xb, yb=yb: F.cross_entropy(model(xb), yb, label_smoothing=smoothing),
                )
                epoch_loss += loss
                epoch_steps += 1
                step += 1
                if step % NAN_CHECK_EVERY == 0 and not torch.isfinite(epoch_loss):
                    break
            last_loss = float(epoch_loss) / max(1, epoch_steps)  # waits for the device
            if not math.isfinite(last_loss):
                break
            if (
                time_limit is not None
                and step < total
                and time.perf_counter() - called >= time_limit
            ):
                time_limited = True
                break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return TrainLog(
        loss=last_loss, steps=step, epochs=step / per_epoch, seconds=seconds,
        images=step * batch, time_limited=time_limited,
    )  # fmt: skip


@torch.no_grad()  # not inference_mode: the layout change below would make the
def accuracy(  # parameters inference tensors, which torch.export then refuses
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int | None = None,
    channels_last: bool = False,
) -> tuple[float, float]:
    """Top-1 accuracy in percent and mean cross-entropy of ``model`` (left in eval mode).

    ``channels_last`` runs the model in that layout meanwhile (faster on the CPU).
    ``batch_size`` defaults to :data:`EVAL_BATCH_SIZE` for the model's device.
    """
    model.eval()
    device = next(model.parameters()).device
    batch_size = batch_size or EVAL_BATCH_SIZE.get(device.type, 1024)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    correct, loss = 0, 0.0
    try:
        for start in range(0, len(y), batch_size):
            xb = x[start : start + batch_size].to(device, non_blocking=True)
            yb = y[start : start + batch_size].to(device, non_blocking=True)
            logits = model(xb)
            loss += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(dim=1) == yb).sum())
    finally:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
    n = max(1, len(y))
    return 100.0 * correct / n, loss / n


#: what config() stores for data given as tensors: it cannot be written into a study
USER_DATA = "user-data"


@EVALUATORS.register("train")
class TrainingEvaluator(Evaluator):
    """Trains each architecture from scratch; objective validation accuracy (%).

    Args:
        dataset: a registered dataset name (``fashion-mnist``, ``digits``); ignored, and
            stored as ``None``, when ``data`` is given.
        data_dir: where the dataset's files are (``None``: its default place).
        epochs, batch_size, optimizer, lr, weight_decay, schedule, label_smoothing, device,
        channels_last, threads: the training :class:`Recipe`; ``fidelity`` overrides
            ``epochs`` per evaluation. ``threads`` (default 1) fixes torch's intra-op thread
            count while evaluating, which the result's bits depend on; ``None`` leaves it.
        train_size: at most this many training images, the first ones left after the
            validation split (a seeded random subset, since the split permutes; the first
            ones of ``data`` when it comes with its own validation split); ``None``: all.
        valid_size: validation images carved out of the training set: a count, or a fraction
            in (0, 1). Ignored when ``data`` already has a validation split.
        test_size: at most this many test images (a fixed seeded subset) for the reported
            accuracy; ``None`` uses the whole test set.
        split_seed: seeds the validation split and the subsets. Every trial of a study sees
            the same splits; the trial's own ``seed`` only changes initialisation and order.
        data: an :class:`~archsearch.data.ImageData` of your own instead of ``dataset``. A
            study stores no tensors, so a study evaluated this way cannot be resumed from its
            directory alone.

    Returns from :meth:`evaluate`: objective validation accuracy, reported test accuracy (or
    ``None`` without a test set), metrics ``loss`` (mean training loss of the last epoch),
    ``valid_loss``, ``train_seconds`` (the training loop), ``eval_seconds``, ``params``,
    ``flops`` (one image), ``epochs`` (trained), ``train_images``, and the trained model on
    the CPU; given a ``time_limit``, also ``time_limited`` (1.0 when the limit ended training
    before the recipe's epochs, else 0.0). A non-finite training loss ends training and
    returns a NaN objective (a failed trial).
    """

    objective_name = "valid_accuracy"
    reported_name = "test_accuracy"
    supports_fidelity = True
    #: results carry the trained network, so a study keeps the best one's weights
    keeps_model = True

    def __init__(
        self,
        dataset: str = "fashion-mnist",
        data_dir: str | None = None,
        epochs: float = 2,
        batch_size: int = 64,
        optimizer: str = "sgd",
        lr: float = 0.05,
        weight_decay: float = 5e-4,
        schedule: str = "cosine",
        label_smoothing: float = 0.0,
        channels_last: bool | None = None,
        train_size: int | None = 10_000,
        valid_size: int | float = 0.1,
        test_size: int | None = None,
        split_seed: int = 0,
        device: str = "cpu",
        data: ImageData | str | None = None,
        threads: int | None = 1,
    ) -> None:
        self.recipe = Recipe(
            epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
            weight_decay=weight_decay, schedule=schedule, label_smoothing=label_smoothing,
            device=device, channels_last=channels_last, threads=threads,
        )  # fmt: skip
        for option, value in (("train_size", train_size), ("test_size", test_size)):
            if value is not None and not (isinstance(value, int) and value > 0):
                raise ArchsearchError(f"{option} must be a positive integer or None, got {value!r}")
        given = data is not None
        self.dataset = None if given else dataset  # user data replaces the named dataset
        self.data_dir = None if given else data_dir
        self.train_size = train_size
        self.valid_size = valid_size
        self.test_size = test_size
        self.split_seed = int(split_seed)
        self._user_data = data if isinstance(data, ImageData) else None
        self._stored_marker = data if isinstance(data, str) else None
        if data is not None and self._user_data is None and self._stored_marker is None:
            raise ArchsearchError(f"data must be an ImageData, got {type(data).__name__}")
        if not given:
            DATASETS.get(dataset)  # an unknown name fails now, with the known ones
        self._data: ImageData | None = None
        self._on_device: dict[torch.device, ImageData] = {}
        if self._stored_marker is None:
            self._data = self._prepare()  # fail now, before a study is created, on bad data

    # ------------------------------------------------------------------ data
    @property
    def data(self) -> ImageData:
        """The prepared splits: training subset, validation, test subset (on the CPU)."""
        if self._data is None:
            raise ArchsearchError(
                f"this evaluator was stored with {self._stored_marker!r}: a study keeps no "
                "tensors, so build TrainingEvaluator(data=...) again with your data"
            )
        return self._data

    def _prepare(self) -> ImageData:
        source = self._user_data or load_dataset(self.dataset, self.data_dir)
        if source.x_valid is None:
            source = split_train_valid(source, self.valid_size, seed=self.split_seed)
        x_train, y_train = take(source.x_train, source.y_train, self.train_size)
        x_test, y_test = source.x_test, source.y_test
        if x_test is not None:
            x_test, y_test = take(x_test, y_test, self.test_size, seed=self.split_seed)
        return ImageData(
            name=source.name, x_train=x_train, y_train=y_train, num_classes=source.num_classes,
            x_valid=source.x_valid, y_valid=source.y_valid, x_test=x_test, y_test=y_test,
            mean=source.mean, std=source.std,
        )  # fmt: skip

    def _data_on(self, device: torch.device) -> ImageData:
        if device not in self._on_device:
            self._on_device[device] = self.data.to(device)
        return self._on_device[device]

    # ------------------------------------------------------------------ evaluating
    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        called = time.perf_counter()
        recipe = self.recipe
        if fidelity is not None:
            if not fidelity > 0:
                raise ArchsearchError(f"fidelity is a number of epochs > 0, got {fidelity!r}")
            recipe = Recipe(**{**asdict(recipe), "epochs": float(fidelity)})
        with cpu_threads(recipe.threads):
            return self._evaluate(arch, space, recipe, seed, time_limit, called)

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> dict[str, float]:
        """``params`` and ``flops``, as :meth:`evaluate` counts them before training: the
        network is built once more to count it, a fraction of a second for the benchmark's
        largest cell against seconds to hours of training, so that a study never trains an
        architecture over its cost budget. The counts depend on no weight and no device."""
        data = self.data
        return network_costs(space, arch, data.input_shape, data.num_classes)

    def _evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        recipe: Recipe,
        seed: int,
        time_limit: float | None,
        called: float,
    ) -> EvalResult:
        device = resolve_device(recipe.device)
        data = self._data_on(device)
        with seeded(seed, device):  # the initial weights depend on the seed alone
            model = space.build(arch, data.input_shape, data.num_classes)
        from archsearch.hardware import count_flops, count_params

        params, flops = count_params(model), count_flops(model, data.input_shape)
        left = None if time_limit is None else time_limit - (time.perf_counter() - called)
        log = train_model(model, data, recipe, seed=seed, time_limit=left)
        metrics = {
            "loss": log.loss,
            "train_seconds": log.seconds,
            "params": float(params),
            "flops": float(flops),
            "epochs": log.epochs,
            "train_images": float(len(data.y_train)),
        }
        if time_limit is not None:
            metrics["time_limited"] = float(log.time_limited)
        if log.diverged:
            return EvalResult({self.objective_name: float("nan"), **metrics})
        started = time.perf_counter()
        layout = recipe.use_channels_last(device, data.x_valid.ndim)
        valid_accuracy, valid_loss = accuracy(
            model, data.x_valid, data.y_valid, channels_last=layout
        )
        test_accuracy = None
        if data.x_test is not None:
            test_accuracy, _ = accuracy(model, data.x_test, data.y_test, channels_last=layout)
        metrics["valid_loss"] = valid_loss
        metrics["eval_seconds"] = time.perf_counter() - started
        metrics[self.objective_name] = valid_accuracy
        if test_accuracy is not None:
            metrics[self.reported_name] = test_accuracy
        return EvalResult(metrics, model=model.cpu().eval())

    def config(self) -> dict[str, Any]:
        """The derived options, with user data (not storable) replaced by its marker."""
        options = super().config()
        if self._user_data is not None:
            options["data"] = f"{USER_DATA}:{self._user_data.name}"
        elif self._stored_marker is not None:
            options["data"] = self._stored_marker
        return options
