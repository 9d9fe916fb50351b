"""Tabular benchmarks: precomputed results that make a search cost a lookup."""

from archsearch.tables.fmnist import FMNISTTable, load_fmnist_table
from archsearch.tables.generic import CSVTable, TableSpace, read_table
from archsearch.tables.nasbench_graph import NASBenchGraphTable, load_nasbench_graph
from archsearch.tables.nb201 import DATASETS, NB201Table, load_nb201_table

__all__ = [
    "CSVTable",
    "DATASETS",
    "FMNISTTable",
    "NASBenchGraphTable",
    "NB201Table",
    "TableSpace",
    "load_fmnist_table",
    "load_nasbench_graph",
    "load_nb201_table",
    "read_table",
]
