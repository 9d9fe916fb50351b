"""One measurement protocol for every hardware figure a study stores.

A network is measured in eval mode on a zero input of the study's shape: its PyTorch latency
(median and inter-quartile range over timed blocks, a fixed thread count), its ONNX Runtime
latency (same protocol, on the ``torch.onnx`` export) and its peak forward memory. The
figures and their names are the same wherever they are taken (an evaluator, the
NAS-Bench-201 latency table's builder, the latency models' benchmark), so that a table's
``latency_ms`` and a study's ``latency_ms`` are the same quantity.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch

from archsearch.hardware.figures import FIGURES, SOURCE


def measure_network(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    figures: Iterable[str] = FIGURES,
    *,
    batch_size: int = 1,
    threads: int = 1,
    max_run_time: float = 2.0,
) -> dict[str, float]:
    """The requested ``figures`` (names from :data:`FIGURES`) of ``model``; each underlying
    measurement runs once however many of its figures are asked for."""
    from archsearch.hardware.measure import measure_latency, peak_memory_mb

    wanted = list(figures)
    unknown = [name for name in wanted if name not in SOURCE]
    if unknown:
        raise ValueError(f"unknown hardware figures {unknown}; known: {list(FIGURES)}")
    sources = {SOURCE[name] for name in wanted}
    values: dict[str, float] = {}
    if "torch" in sources:
        latency = measure_latency(
            model, input_shape, batch_size=batch_size, threads=threads, max_run_time=max_run_time
        )
        values.update(latency_ms=latency.median_ms, latency_iqr_ms=latency.iqr_ms)
    if "onnx" in sources:
        from archsearch.hardware.onnx import onnx_latency

        latency = onnx_latency(
            model, input_shape, batch_size=batch_size, threads=threads, max_run_time=max_run_time
        )
        values.update(onnx_latency_ms=latency.median_ms, onnx_latency_iqr_ms=latency.iqr_ms)
    if "memory" in sources:
        values["peak_memory_mb"] = peak_memory_mb(model, input_shape, batch_size=batch_size)
    return {name: float(values[name]) for name in wanted}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's garbage collector off while timing (as ``timeit`` does): an eager forward
    pass allocates Python objects, and a collection landing inside a timed block adds its
    time to that one network's figure."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def interleaved_latencies(
    runs: Sequence[Callable[[], object]],
    reference: Callable[[], object],
    *,
    rounds: int = 3,
    min_run_time: float = 0.03,
    threads: int = 1,
) -> tuple[list[tuple[float, float]], float]:
    """Latencies of several networks relative to a reference network, robust to the
    machine's drift.

    On a shared or virtual machine the speed of the CPU drifts over seconds to minutes,
    which no repetition inside one measurement removes (``benchmarks/latency_noise.py``).
    Measuring every network in ``rounds`` interleaved rounds, each opened and closed by the
    ``reference`` network, and dividing by the reference's time in the same round cancels
    what moves every network alike. Returns, per run, the median and inter-quartile range
    over rounds of its time divided by the reference's, and the reference's median
    milliseconds over the rounds (ratio times that is a latency in ms).
    """
    import numpy as np
    from torch.utils.benchmark import Timer

    def timed(run: Callable[[], object]) -> float:
        timer = Timer("run()", globals={"run": run}, num_threads=threads)
        return float(np.median(timer.blocked_autorange(min_run_time=min_run_time).times))

    ratios = np.empty((rounds, len(runs)))
    references = []
    with gc_paused():
        for r in range(rounds):
            before = timed(reference)
            times = [timed(run) for run in runs]
            anchor = (before + timed(reference)) / 2
            ratios[r] = np.asarray(times) / anchor
            references.append(anchor)
    q1, median, q3 = np.percentile(ratios, [25, 50, 75], axis=0)
    return [(float(m), float(h - lo)) for m, lo, h in zip(median, q1, q3, strict=True)], float(
        np.median(references) * 1e3
    )


def runner(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    runtime: str = "torch",
    *,
    batch_size: int = 1,
    threads: int = 1,
) -> Callable[[], object]:
    """A zero-argument callable running one inference of ``model`` (eval mode, no
    gradients) in ``runtime``: ``torch`` or ``onnx`` (a session on its export)."""
    from archsearch.hardware.measure import _input

    model.eval()
    x = _input(model, input_shape, batch_size)
    if runtime == "onnx":
        from archsearch.hardware.onnx import export_onnx, onnx_session

        session = onnx_session(export_onnx(model, input_shape, batch_size), threads)
        feed = {session.get_inputs()[0].name: x.cpu().numpy()}
        return lambda: session.run(None, feed)

    def run() -> object:
        with torch.no_grad():
            return model(x)

    return run


def measure_many(
    models: Sequence[torch.nn.Module],
    input_shape: Sequence[int],
    reference: torch.nn.Module,
    runtime: str = "torch",
    *,
    chunk: int = 10,
    rounds: int = 3,
    threads: int = 1,
    batch_size: int = 1,
) -> tuple[list[float], float]:
    """Milliseconds of several networks by :func:`interleaved_latencies`, ``chunk`` at a
    time against one ``reference``: each network's ratio to the reference times the
    reference's median over every chunk, so all of them are on one scale. Returns the
    latencies and that reference median."""
    import numpy as np

    def run_of(model: torch.nn.Module) -> Callable[[], object]:
        return runner(model, input_shape, runtime, batch_size=batch_size, threads=threads)

    anchor = run_of(reference)
    ratios: list[float] = []
    references: list[float] = []
    for start in range(0, len(models), chunk):
        runs = [run_of(m) for m in models[start : start + chunk]]
        measured, reference_ms = interleaved_latencies(runs, anchor, rounds=rounds, threads=threads)
        ratios += [ratio for ratio, _ in measured]
        references.append(reference_ms)
    scale = float(np.median(references))
    return [ratio * scale for ratio in ratios], scale


#: seeds the one sample of a space that measurements are taken relative to
REFERENCE_SEED = 10**6


def reference_network(space, input_shape: Sequence[int], num_classes: int) -> torch.nn.Module:
    """The network a space's measurements are taken relative to: one seeded sample of the
    space, built under ``torch.manual_seed(0)``. Every table, calibration and benchmark of
    a space uses this one, so their ratios to it share a denominator."""
    import numpy as np

    (arch,) = space.distinct_samples(np.random.default_rng(REFERENCE_SEED), 1)
    torch.manual_seed(0)
    return space.build(arch, input_shape, num_classes)


def architecture_measure(
    space,
    input_shape: Sequence[int],
    num_classes: int,
    runtime: str,
    *,
    threads: int = 1,
    batch_size: int = 1,
) -> Callable[[list], list[float]]:
    """A function from architectures of ``space`` to their whole-network latency (ms) on
    this machine now, measured by :func:`measure_many` against the space's
    :func:`reference_network`: what a specialisation with the device in the loop calls
    (:meth:`archsearch.oneshot.specialise.Specialiser.specialise`)."""
    reference = reference_network(space, input_shape, num_classes)

    def measure(archs: list) -> list[float]:
        torch.manual_seed(0)
        models = [space.build(arch, input_shape, num_classes) for arch in archs]
        measured, _ = measure_many(
            models, input_shape, reference, runtime, threads=threads, batch_size=batch_size
        )
        return measured

    return measure
