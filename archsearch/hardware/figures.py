"""The names of the hardware figures a study, a table and a benchmark store.

One list, torch-free, so that the tables (which must load without torch), the ``hardware``
evaluator, the measurement protocol and the NAS-Bench-201 latency table's builder all name
the same quantities the same way: a table's ``latency_ms`` *is* a study's ``latency_ms``.
"""

from __future__ import annotations

#: each figure a study may ask for, with the noise figure measured and stored beside it
WITH_NOISE: dict[str, tuple[str, ...]] = {
    "latency_ms": ("latency_ms", "latency_iqr_ms"),
    "onnx_latency_ms": ("onnx_latency_ms", "onnx_latency_iqr_ms"),
    "peak_memory_mb": ("peak_memory_mb",),
}
#: every figure, in the order tables store them
FIGURES: tuple[str, ...] = tuple(name for names in WITH_NOISE.values() for name in names)
#: which measurement gives each figure: eager PyTorch, ONNX Runtime, or the memory probe
SOURCE: dict[str, str] = {
    "latency_ms": "torch",
    "latency_iqr_ms": "torch",
    "onnx_latency_ms": "onnx",
    "onnx_latency_iqr_ms": "onnx",
    "peak_memory_mb": "memory",
}
