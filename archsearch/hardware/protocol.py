"""One measurement protocol for every hardware figure a study stores.

A network is measured in eval mode on a zero input of the study's shape: its PyTorch latency
(median and inter-quartile range over timed blocks, a fixed thread count), its ONNX Runtime
latency (same protocol, on the ``torch.onnx`` export) and its peak forward memory. The
figures and their names are the same wherever they are taken (an evaluator, the
NAS-Bench-201 latency table's builder, the latency models' benchmark), so that a table's
``latency_ms`` and a study's ``latency_ms`` are the same quantity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

#: every figure :func:`measure_network` can take, in the order tables store them
FIGURES: tuple[str, ...] = (
    "latency_ms",
    "latency_iqr_ms",
    "onnx_latency_ms",
    "onnx_latency_iqr_ms",
    "peak_memory_mb",
)
#: which measurement gives each figure
_SOURCE = {
    "latency_ms": "torch",
    "latency_iqr_ms": "torch",
    "onnx_latency_ms": "onnx",
    "onnx_latency_iqr_ms": "onnx",
    "peak_memory_mb": "memory",
}


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
    unknown = [name for name in wanted if name not in _SOURCE]
    if unknown:
        raise ValueError(f"unknown hardware figures {unknown}; known: {list(FIGURES)}")
    sources = {_SOURCE[name] for name in wanted}
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
