"""Costs measured on the device a study runs on: latency and peak memory of a forward pass.

#params and FLOPs are poor stand-ins for latency (a depthwise convolution has few FLOPs
and runs slowly; a skip connection has none and costs a copy), so hardware-aware NAS
measures on the target (MnasNet, ProxylessNAS, FBNet). Both measurements rely on PyTorch's
own tools rather than hand-made timers:

* latency: ``torch.utils.benchmark.Timer.adaptive_autorange`` warms up, then repeats
  blocks of runs until the inter-quartile range is within ``threshold`` of the median (or
  ``max_run_time`` has passed), with a fixed thread count (default 1: a latency on a
  shared multi-core machine is only comparable at a fixed count); it synchronises CUDA
  around each block when the model is on a GPU. The median and the inter-quartile range
  are reported, so that the noise of each figure is stored beside it.
* peak memory: the weights and buffers plus the most bytes the forward pass held at once,
  from the allocation and free events of ``torch.profiler`` (``profile_memory=True``); on
  CUDA, ``torch.cuda.max_memory_allocated`` over the pass.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

MB = 2**20


@dataclass(frozen=True)
class Latency:
    """A measured latency: median and inter-quartile range in milliseconds, and how many
    timed blocks the median is over."""

    median_ms: float
    iqr_ms: float
    blocks: int


def _input(model: torch.nn.Module, input_shape: Sequence[int], batch_size: int) -> torch.Tensor:
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    return torch.zeros(batch_size, *input_shape, device=device, dtype=dtype)


def measure_latency(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    *,
    batch_size: int = 1,
    threads: int = 1,
    threshold: float = 0.1,
    max_run_time: float = 2.0,
) -> Latency:
    """Latency of one inference forward pass (eval mode, no gradients) on a batch of
    ``batch_size`` zero inputs of shape ``input_shape``; see the module docstring.

    On CUDA each run is timed by a pair of CUDA events around it (the host's clock would
    time the launch, not the kernels), synchronised once the run ends."""
    x = _input(model, input_shape, batch_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if x.is_cuda:
                return _cuda_event_latency(lambda: model(x), max_run_time)
            return time_call(lambda: model(x), threads, threshold, max_run_time)
    finally:
        model.train(was_training)


def time_call(
    run: Callable[[], object], threads: int = 1, threshold: float = 0.1, max_run_time: float = 2.0
) -> Latency:
    """Median and inter-quartile range of ``run()`` by ``Timer.adaptive_autorange``: shared
    by PyTorch and ONNX Runtime latencies, so that both follow one protocol."""
    from torch.utils.benchmark import Timer

    from archsearch.hardware.protocol import gc_paused

    timer = Timer("run()", globals={"run": run}, num_threads=threads)
    with gc_paused():
        measured = timer.adaptive_autorange(
            threshold=threshold, min_run_time=0.01, max_run_time=max_run_time
        )
    return Latency(measured.median * 1e3, measured.iqr * 1e3, len(measured.times))


def _cuda_event_latency(run: Callable[[], object], max_run_time: float) -> Latency:
    import time

    import numpy as np

    for _ in range(10):  # warm-up: kernel selection, allocator
        run()
    torch.cuda.synchronize()
    times: list[float] = []
    deadline = time.perf_counter() + max_run_time
    while len(times) < 20 or (time.perf_counter() < deadline and len(times) < 1000):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return Latency(float(median), float(q3 - q1), len(times))


def peak_memory_mb(
    model: torch.nn.Module, input_shape: Sequence[int], *, batch_size: int = 1
) -> float:
    """Megabytes of the weights and buffers plus the activations a forward pass (eval
    mode, no gradients) holds at its peak; see the module docstring."""
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    x = _input(model, input_shape, batch_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            activations = _peak_activation_bytes(model, x)
    finally:
        model.train(was_training)
    return (weights + activations) / MB


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Standard error (the file descriptor, which C++ writes to) sent to /dev/null: the
    profiler's native layer prints two lines per session, which would otherwise interleave
    with a search's progress on every trial."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _peak_activation_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
        before = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        model(x)
        torch.cuda.synchronize(x.device)
        return int(torch.cuda.max_memory_allocated(x.device) - before)
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as run:
        model(x)
    # each operator's own allocations, and the frees (``[memory]`` events), in time order
    events = sorted(
        (e for e in run.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start
    )
    live = peak = 0
    for event in events:
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return int(peak)
