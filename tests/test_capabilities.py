"""Spaces declare their optional capabilities, and the declaration cannot lie."""

import pytest

import archsearch.components  # noqa: F401  (fills the registries)
from archsearch.space.base import CAPABILITIES, SearchSpace
from archsearch.space.nb201 import NB201Space
from archsearch.space.registry import SPACES

METHODS = [c for c in CAPABILITIES if c != "operations"]


@pytest.mark.parametrize("name", SPACES.names())
def test_declared_capabilities_are_exactly_the_implemented_ones(name):
    cls = SPACES.get(name)
    assert set(cls.capabilities) <= set(CAPABILITIES)
    for capability in METHODS:
        implemented = getattr(cls, capability) is not getattr(SearchSpace, capability)
        assert implemented == (capability in cls.capabilities), (name, capability)
    if cls.operations is not None:
        assert "operations" in cls.capabilities


def test_callers_ask_instead_of_probing():
    space = NB201Space()
    assert space.supports("graph") and not space.supports("canonical")
    with pytest.raises(NotImplementedError, match="no canonical form"):
        space.canonical({})
    with pytest.raises(ValueError, match="unknown capability"):
        space.supports("teleport")
