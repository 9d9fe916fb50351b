"""Hardware costs of networks: parameter counts and FLOPs, and latency and peak memory
measured on the device the study runs on.

The measuring functions are imported on first use, so that torch-free code (the tables,
the command line) can read :mod:`archsearch.hardware.figures` without importing torch."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "count_flops": "cost",
    "count_params": "cost",
    "Latency": "measure",
    "measure_latency": "measure",
    "peak_memory_mb": "measure",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'archsearch.hardware' has no attribute {name!r}")
    return getattr(import_module(f"archsearch.hardware.{_HOMES[name]}"), name)
