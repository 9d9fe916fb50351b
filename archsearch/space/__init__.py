"""Search spaces: sets of architectures described as named decisions with choices."""

from archsearch.space.base import Architecture, Decision, SearchSpace
from archsearch.space.darts import DARTSSpace
from archsearch.space.define_by_run import DefineByRunSpace, choice, fixed_choices
from archsearch.space.mobilenet import MobileNetSpace
from archsearch.space.nasbench_graph import NASBenchGraphSpace
from archsearch.space.nb201 import NB201Space
from archsearch.space.registry import SPACES
from archsearch.space.table import TableSpace


def make_space(name: str, **options: object) -> SearchSpace:
    """Construct a registered space by name, e.g. ``make_space("nb201", channels=8)``."""
    return SPACES.get(name)(**options)


__all__ = [
    "SPACES",
    "Architecture",
    "DARTSSpace",
    "Decision",
    "DefineByRunSpace",
    "MobileNetSpace",
    "NASBenchGraphSpace",
    "NB201Space",
    "SearchSpace",
    "TableSpace",
    "choice",
    "fixed_choices",
    "make_space",
]
