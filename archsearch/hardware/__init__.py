"""Hardware costs of networks: parameter counts and FLOPs, and latency and peak memory
measured on the device the study runs on."""

from archsearch.hardware.cost import count_flops, count_params
from archsearch.hardware.measure import Latency, measure_latency, peak_memory_mb

__all__ = ["Latency", "count_flops", "count_params", "measure_latency", "peak_memory_mb"]
