"""Hardware costs of networks: parameter counts and FLOPs."""

from archsearch.hardware.cost import count_flops, count_params

__all__ = ["count_flops", "count_params"]
