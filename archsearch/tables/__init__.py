"""Tabular benchmarks: precomputed results that make a search cost a lookup."""

from archsearch.tables.nb201 import DATASETS, NB201Table, load_nb201_table

__all__ = ["DATASETS", "NB201Table", "load_nb201_table"]
