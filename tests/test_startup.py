"""Start-up is cheap: ``--help`` and ``list`` import no torch, and the catalog of built-in
components (read without importing them) agrees with what their modules register."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archsearch.catalog import BUILTIN
from archsearch.cli.main import build_parser
from archsearch.errors import UnknownComponentError
from archsearch.registry import _ALL, Registry, list_components

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "optuna")


def _subcommands() -> list[str]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return sorted(action.choices)


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -X importtime -m archsearch ARGV``; fails if a heavy module was imported."""
    done = _python("-X", "importtime", "-m", "archsearch", *argv)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("import time:")]
    heavy = [ln for ln in lines if re.search(r"\|\s+(" + "|".join(HEAVY) + r")$", ln)]
    ours = [ln for ln in lines if "archsearch" in ln]
    assert not heavy, f"'archsearch {' '.join(argv)}' imports {heavy}; via:\n" + "\n".join(ours)
    return done


def test_the_cli_registers_the_usual_subcommands():
    assert {"search", "resume", "show", "list", "export", "proxies", "oneshot"} <= set(
        _subcommands()
    )


def test_help_imports_no_torch():
    assert "usage: archsearch" in _cli("--help").stdout


@pytest.mark.parametrize("command", _subcommands())
def test_subcommand_help_imports_no_torch(command):
    assert f"usage: archsearch {command}" in _cli(command, "--help").stdout


def _defined_in(component: object) -> str:
    return getattr(component, "fn", component).__module__  # a Proxy wraps its function


def _fully_imported() -> set[str]:
    """``kind/name`` of every built-in component once all of archsearch is imported."""
    import archsearch.components  # noqa: F401  (the registries)

    for table in BUILTIN.values():  # evaluators load lazily: import every module named
        for target in table.values():
            importlib.import_module(target.partition(":")[0])
    return {
        f"{kind}/{name}"
        for kind, reg in _ALL.items()
        for name, component in reg._entries.items()
        if _defined_in(component).startswith("archsearch.")
    }


def test_list_imports_no_torch_and_names_what_the_imported_registries_hold():
    listed = _cli("list").stdout.split()
    assert listed == sorted(listed)
    assert set(listed) == _fully_imported()
    grouped = json.loads(_cli("list", "--json").stdout)
    assert {f"{kind}/{name}" for kind, names in grouped.items() for name in names} == set(listed)


@pytest.mark.slow
def test_importing_the_package_imports_no_torch_and_its_names_load_on_use():
    code = (
        "import sys, archsearch; names = archsearch.list_components('strategy/*');"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "assert 'strategy/evolution' in names, names;"
        "from archsearch import Study, make_space; print(Study.__name__, make_space.__name__)"
    )
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["Study", "make_space"]


@pytest.mark.parametrize("kind", sorted(BUILTIN))
def test_every_catalog_entry_registers_itself_under_its_name_and_kind(kind):
    for name, target in BUILTIN[kind].items():
        module_name, _, attribute = target.partition(":")
        component = getattr(importlib.import_module(module_name), attribute)
        reg = _ALL[kind]  # created by the import at the latest
        assert name in reg._entries, f"importing {module_name} did not register {kind} {name!r}"
        registered = reg._entries[name]
        assert registered is component or getattr(registered, "fn", None) is component, target


def test_the_catalog_lists_every_built_in_component():
    catalog = {f"{kind}/{name}" for kind, table in BUILTIN.items() for name in table}
    assert _fully_imported() == catalog
    # other test modules may have registered components of their own in this process
    assert set(list_components()) >= catalog


@pytest.fixture
def lazy_registry(tmp_path, monkeypatch):
    """A registry whose catalog declares 'thing' in a module not imported yet, and 'ghost' in
    one that registers nothing."""
    (tmp_path / "startup_thing.py").write_text(
        "from archsearch.registry import _ALL\n\n"
        "@_ALL['test-kind'].register('thing')\n"
        "class Thing:\n    pass\n"
    )
    (tmp_path / "startup_ghost.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        BUILTIN, "test-kind", {"thing": "startup_thing:Thing", "ghost": "startup_ghost:Ghost"}
    )
    monkeypatch.delitem(sys.modules, "startup_thing", raising=False)
    reg: Registry[type] = Registry("test-kind")
    yield reg
    _ALL.pop("test-kind", None)


def test_lazy_names_are_known_before_their_module_is_imported(lazy_registry):
    assert lazy_registry.names() == ["ghost", "thing"] and "thing" in lazy_registry
    assert "startup_thing" not in sys.modules
    assert list_components("test-kind/*") == ["test-kind/ghost", "test-kind/thing"]
    with pytest.raises(UnknownComponentError, match=r"unknown test-kind 'x'; .*: ghost, thing$"):
        lazy_registry.get("x")
    thing = lazy_registry.get("thing")
    assert thing is sys.modules["startup_thing"].Thing and lazy_registry.get("thing") is thing


def test_a_catalog_name_cannot_be_shadowed_or_left_unregistered(lazy_registry):
    with pytest.raises(ValueError, match="registered twice.*catalog"):
        lazy_registry.register("thing")(type("Impostor", (), {}))
    with pytest.raises(RuntimeError, match="did not register it"):
        lazy_registry.get("ghost")
