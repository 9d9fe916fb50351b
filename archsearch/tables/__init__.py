"""Tabular benchmarks: precomputed results that make a search cost a lookup.

Every table implements :class:`~archsearch.tables.base.Table` (``row``, ``lookup``,
``column``, ``metric_names``, ``space``, ``path``).
"""

from archsearch.tables.base import Table, load_cached
from archsearch.tables.fmnist import FMNISTTable, load_fmnist_table
from archsearch.tables.generic import (
    CSVTable,
    GenericTable,
    TableSpace,
    load_generic_table,
    read_table,
)
from archsearch.tables.nasbench_graph import NASBenchGraphTable, load_nasbench_graph
from archsearch.tables.nb201 import DATASETS, NB201Table, load_nb201_table, nb201_costs

__all__ = [
    "CSVTable",
    "DATASETS",
    "FMNISTTable",
    "GenericTable",
    "NASBenchGraphTable",
    "NB201Table",
    "Table",
    "TableSpace",
    "load_cached",
    "load_fmnist_table",
    "load_generic_table",
    "load_nasbench_graph",
    "load_nb201_table",
    "nb201_costs",
    "read_table",
]
