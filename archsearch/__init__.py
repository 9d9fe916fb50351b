"""archsearch: neural architecture search with swappable spaces, strategies and evaluators."""

from archsearch.errors import ArchsearchError
from archsearch.registry import list_components
from archsearch.space import Architecture, SearchSpace, make_space
from archsearch.strategy import Strategy, make_strategy
from archsearch.study import Budget, Study

__version__ = "0.1.0"

__all__ = [
    "ArchsearchError",
    "Architecture",
    "Budget",
    "SearchSpace",
    "Strategy",
    "Study",
    "list_components",
    "make_space",
    "make_strategy",
]
