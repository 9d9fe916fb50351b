"""The registry of search spaces, kept apart so that space modules can import it freely."""

from archsearch.registry import Registry
from archsearch.space.base import SearchSpace

SPACES: Registry[type[SearchSpace]] = Registry("space")
