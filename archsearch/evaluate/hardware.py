"""Evaluation by measurement on the device the study runs on: latency and peak memory.

FLOPs and parameter counts rank networks poorly by latency (a depthwise convolution has few
FLOPs and runs slowly; an operator whose output nothing reads costs time in PyTorch and none
in a deployment runtime), so a hardware-aware search measures. The figures need no data
and no training, which makes them objectives and, through :meth:`cheap_values`, hard
constraints checked before anything trains; combine them with an accuracy through
:mod:`archsearch.evaluate.composite`::

    {"name": "composite", "evaluators": [
        {"name": "train", "dataset": "fashion-mnist"},
        {"name": "hardware", "figures": ["latency_ms", "onnx_latency_ms"]}]}

A measurement is noisy, and the contract asks :meth:`evaluate` to report what
:meth:`cheap_values` said, so each architecture is measured once per evaluator and
remembered. Measure with ``--workers 1`` (or one core per worker): a latency taken while
other trials load the machine measures the load.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EVALUATORS, EvalResult
from archsearch.evaluate.cost import NetworkEvaluator, build_quietly
from archsearch.hardware.figures import WITH_NOISE
from archsearch.space.base import Architecture, SearchSpace

DEVICES = ("cpu", "cuda")
_MEMO_SIZE = 4096


@EVALUATORS.register("hardware")
class HardwareEvaluator(NetworkEvaluator):
    """Reports the measured ``figures`` of ``space.build(arch, input_shape, num_classes)``.

    Figures: ``latency_ms`` (PyTorch, eval mode, ``threads`` threads on the CPU, CUDA events
    on ``device="cuda"``), ``onnx_latency_ms`` (ONNX Runtime's CPU provider on the
    ``torch.onnx`` export; the ``onnx`` extra) and ``peak_memory_mb`` (weights plus the
    forward pass's live activations at their peak); each latency comes with its
    inter-quartile range (``latency_iqr_ms``, ``onnx_latency_iqr_ms``). All are taken on a
    batch of ``batch_size`` by :func:`archsearch.hardware.protocol.measure_network`. The
    objective is the first figure, minimised; the reported value is ``peak_memory_mb`` when
    measured, else the first figure.
    """

    objective_direction = "min"

    def __init__(
        self,
        figures: Sequence[str] = ("latency_ms", "peak_memory_mb"),
        input_shape: Sequence[int] | None = None,
        num_classes: int = 10,
        batch_size: int = 1,
        threads: int = 1,
        max_run_time: float = 1.0,
        device: str = "cpu",
    ) -> None:
        super().__init__(input_shape, num_classes)
        if isinstance(figures, str) or not isinstance(figures, Sequence) or not figures:
            raise ArchsearchError(f"figures must be a list of names, got {figures!r}")
        unknown = [name for name in figures if name not in WITH_NOISE]
        if unknown:
            raise ArchsearchError(
                f"unknown hardware figure {unknown[0]!r}; known: {', '.join(WITH_NOISE)}"
            )
        for option, value in (("batch_size", batch_size), ("threads", threads)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArchsearchError(f"{option} must be a positive integer, got {value!r}")
        if not isinstance(max_run_time, int | float) or not max_run_time > 0:
            raise ArchsearchError(f"max_run_time must be a positive number, got {max_run_time!r}")
        if device not in DEVICES:
            raise ArchsearchError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if "onnx_latency_ms" in figures:
            from archsearch.hardware.onnx import EXTRA_HINT, onnx_runtime_available

            if not onnx_runtime_available():
                raise ArchsearchError(EXTRA_HINT)
        self.figures = tuple(dict.fromkeys(figures))
        self.batch_size = batch_size
        self.threads = threads
        self.max_run_time = float(max_run_time)
        self.device = device
        self.objective_name = self.figures[0]
        self.reported_name = "peak_memory_mb" if "peak_memory_mb" in figures else self.figures[0]
        self._memo: OrderedDict[tuple[str, Architecture], dict[str, float]] = OrderedDict()

    def check_space(self, space: SearchSpace) -> None:
        super().check_space(space)
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ArchsearchError("evaluator hardware: device cuda, and no GPU is visible")

    def value_names(self, space: SearchSpace) -> frozenset[str]:
        return frozenset(name for figure in self.figures for name in WITH_NOISE[figure])

    def evaluate(
        self,
        arch: Architecture,
        space: SearchSpace,
        *,
        seed: int = 0,
        fidelity: float | None = None,
        time_limit: float | None = None,
    ) -> EvalResult:
        return EvalResult(dict(self.measure(arch, space)))

    def cheap_values(self, arch: Architecture, space: SearchSpace) -> dict[str, float]:
        """What :meth:`evaluate` reports: the same measurement, remembered."""
        return dict(self.measure(arch, space))

    def measure(self, arch: Architecture, space: SearchSpace) -> dict[str, float]:
        """This evaluator's figures of ``arch``, measured on its first request."""
        key = (repr(sorted(space.config().items())), arch)
        known = self._memo.get(key)
        if known is not None:
            self._memo.move_to_end(key)
            return known
        from archsearch.hardware.protocol import measure_network

        shape = self.shape_for(space)
        model = build_quietly(space, arch, shape, self.num_classes, 0)
        if self.device == "cuda":
            model = model.cuda()
        wanted = [name for figure in self.figures for name in WITH_NOISE[figure]]
        known = measure_network(
            model,
            shape,
            wanted,
            batch_size=self.batch_size,
            threads=self.threads,
            max_run_time=self.max_run_time,
        )
        self._memo[key] = known
        if len(self._memo) > _MEMO_SIZE:
            self._memo.popitem(last=False)
        return known
