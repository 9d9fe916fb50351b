"""Define-by-run search spaces: a user's own model asks for its choices by label.

The model is ordinary PyTorch; its constructor calls :func:`choice` wherever it needs a
decision (as Optuna's ``trial.suggest_categorical`` and NNI's model spaces do)::

    class MyCNN(nn.Module):
        def __init__(self, input_shape, num_classes):
            super().__init__()
            depth = choice("depth", [1, 2, 3])
            for i in range(depth):
                kernel = choice(f"layer{i}.kernel", [3, 5])
                ...

    space = DefineByRunSpace(MyCNN, input_shape=(1, 8, 8), num_classes=10)

Labels are explicit, so a stored architecture keeps its meaning when the code around a
choice changes; they are never derived from call order. What :func:`choice` returns depends
on the *resolver* active in the current context (a :mod:`contextvars` variable, so threads
and async tasks building models at once do not see each other's answers):

* outside archsearch, the first option: ``MyCNN(shape, n)`` stays usable on its own and is
  the space's default architecture. (Raising instead would make the user's class unusable
  without archsearch, for no gain: the first option is as good a default as any.)
* while :class:`DefineByRunSpace` discovers, probes or builds, the value it assigns.
* inside ``with fixed_choices(arch):``, the value stored in ``arch``, so that a found model
  can be rebuilt in the user's code without the space.

**Discovery.** Running the factory once shows only the labels asked under default answers;
a label asked only when ``depth >= 3`` stays hidden. The space therefore explores until no
new label appears (a fixed point, bounded by ``max_probes`` runs): every option of every
known label is tried in a run that asks that label (its *witness*: the answers of the run
that first asked it), which reaches nested conditions; then ``random_probes`` seeded random
assignments look for labels that only appear when several decisions change at once, and
any label they find is explored the same way. Discovery is deterministic, so a study
resumed in another process sees the same decisions in the same order.

**Inactive decisions and canonical form.** An architecture assigns every decision, but a
given model asks only some labels; the rest are *inactive* and do not change the model. So
that equal models are equal architectures (and a strategy never spends an evaluation on a
duplicate), the space is *constrained* to canonical architectures, whose inactive
decisions hold their first choice; :meth:`DefineByRunSpace.canonical` maps any assignment
there, and :meth:`~DefineByRunSpace.size` counts distinct models.

**Probes** (running the factory to learn which labels an assignment asks) build modules, so
they run under ``torch.device("meta")``, which allocates no memory and initialises nothing;
a factory that needs real tensors in its constructor (``.item()``, data-dependent shapes)
falls back to ordinary CPU runs. Probes are cached in a decision tree: a node is the next
label the factory asks, its children the answers given. Every assignment that describes the
same model walks to the same leaf, so each distinct model is probed at most once. This
relies on the factory being deterministic: which labels it asks, and in which order, may
depend only on the answers it gets (and on the input shape and number of classes).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.errors import ArchsearchError, InvalidArchitectureError, StudyError
from archsearch.space.base import Architecture, Choice, Decision
from archsearch.space.conditional import ConditionalSpace
from archsearch.space.registry import SPACES

if TYPE_CHECKING:
    import torch

Factory = Callable[[tuple[int, ...], int], Any]

#: how :meth:`DefineByRunSpace.config` marks a factory that a new process cannot import
NOT_IMPORTABLE = "<not importable>"
_CHOICE_TYPES = (str, int, float, bool, type(None))


# ------------------------------------------------------------------- resolvers
class _Resolver:
    """Answers :func:`choice` calls and records which labels were asked, in order.

    ``answers`` gives values by label; an unanswered label gets its first option. ``known``
    holds the decisions of the space: asking a known label with other options is an error,
    and with ``strict`` so is asking a label that is not known at all.
    """

    def __init__(
        self,
        answers: Mapping[str, Choice],
        known: Mapping[str, Decision] | None = None,
        *,
        strict: bool = False,
    ) -> None:
        self.answers = answers
        self.known = known if known is not None else {}
        self.strict = strict
        self.asked: dict[str, Decision] = {}

    def __call__(self, decision: Decision) -> Choice:
        label = decision.label
        previous = self.asked.get(label) or self.known.get(label)
        if previous is not None and previous.choices != decision.choices:
            raise InvalidArchitectureError(
                f"label {label!r} is asked with choices {list(decision.choices)} but elsewhere "
                f"with {list(previous.choices)}; one label must always offer the same choices "
                f"(give different decisions different labels, e.g. f'layer{{i}}.kernel')"
            )
        if previous is None and self.strict:
            raise InvalidArchitectureError(
                f"the model asks for label {label!r} (choices {list(decision.choices)}), which "
                f"the space does not know; known labels: {list(self.known)}. Discovery missed "
                f"it: raise random_probes, or check that the model asks the same labels for "
                f"the same answers"
            )
        self.asked.setdefault(label, decision)
        if label in self.answers:
            value = self.answers[label]
            decision.index(value)  # a stale or foreign assignment fails here, by name
            return value
        return self.unanswered(decision)

    def unanswered(self, decision: Decision) -> Choice:
        return decision.choices[0]


class _FixedResolver(_Resolver):
    """Answers only from the given assignment: a missing label means a mismatched model."""

    def unanswered(self, decision: Decision) -> Choice:
        raise InvalidArchitectureError(
            f"the model asks for label {decision.label!r}, which the fixed assignment lacks; "
            f"it has {sorted(self.answers)}"
        )


_RESOLVER: ContextVar[_Resolver | None] = ContextVar("archsearch_resolver", default=None)


@contextlib.contextmanager
def _resolving(resolver: _Resolver) -> Iterator[_Resolver]:
    token = _RESOLVER.set(resolver)
    try:
        yield resolver
    finally:
        _RESOLVER.reset(token)


def _as_decision(label: str, options: Sequence[Choice]) -> Decision:
    if not isinstance(label, str) or not label:
        raise ArchsearchError(f"a choice needs a non-empty string label, got {label!r}")
    if isinstance(options, str | bytes) or not isinstance(options, Sequence):
        raise ArchsearchError(f"choice {label!r} needs a list of options, got {options!r}")
    bad = [o for o in options if not isinstance(o, _CHOICE_TYPES)]
    if bad:
        raise ArchsearchError(
            f"choice {label!r} has options {bad} that are not str, int, float, bool or None; "
            f"architectures are stored as JSON, so choose by name and map the name to the "
            f"object in your model"
        )
    if len(set(options)) != len(options):
        raise ArchsearchError(f"choice {label!r} repeats an option: {list(options)}")
    if not options:
        raise ArchsearchError(f"choice {label!r} has no options")
    return Decision(label, tuple(options))


def choice(label: str, options: Sequence[Choice]) -> Choice:
    """The option chosen for decision ``label`` in the architecture being built.

    Call it in a model's constructor. ``label`` names the decision explicitly and must
    always come with the same ``options`` (a list of str, int, float, bool or None).
    Outside any archsearch context this returns the first option, so the model class
    works on its own and builds the space's default architecture.
    """
    decision = _as_decision(label, options)
    resolver = _RESOLVER.get()
    if resolver is None:
        return decision.choices[0]
    return resolver(decision)


@contextlib.contextmanager
def fixed_choices(assignment: Mapping[str, Choice]) -> Iterator[None]:
    """Within this block, :func:`choice` answers from ``assignment`` (e.g. a stored best arch).

    Lets a user rebuild a found model in their own code, without the space::

        with fixed_choices(study.best_arch()):
            model = MyCNN((1, 8, 8), 10)

    A label the model asks that ``assignment`` lacks is an error rather than a silent
    default, since it means the assignment belongs to another version of the model.
    """
    with _resolving(_FixedResolver(dict(assignment))):
        yield


# -------------------------------------------------------------------- factories
def import_factory(path: str) -> Factory:
    """The callable named by an import string ``"package.module:Qualified.name"``."""
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise ArchsearchError(
            f"factory {path!r} is not an import string of the form 'package.module:Callable'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArchsearchError(f"cannot import the module of factory {path!r}: {exc}") from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ArchsearchError(
                f"module {module_name!r} has no {qualname!r} (factory {path!r})"
            ) from None
    if not callable(obj):
        raise ArchsearchError(f"factory {path!r} is not callable")
    return obj


def check_importable(path: str, directory: Path) -> None:
    """Refuse a stored factory that is not importable from the user's own environment.

    The module is looked for without executing any code (not even a parent package's
    ``__init__``), and one that lies in the study's ``directory`` is refused: a study someone
    sent must not bring the code that opening it runs.
    """
    module_name = path.partition(":")[0]
    spec = find_module(module_name) if module_name else None
    if spec is None:
        raise StudyError(
            f"the study's space factory {path!r} is not importable here (no module "
            f"{module_name!r} on the Python path); install or add the module that defines it"
        )
    places = [spec.origin, *(spec.submodule_search_locations or [])]
    inside = [p for p in places if p and Path(p).resolve().is_relative_to(directory.resolve())]
    if inside:
        raise StudyError(
            f"the study's space factory {path!r} would be imported from {inside[0]}, inside "
            "the study directory; archsearch does not import code that came with a study"
        )


def find_module(name: str) -> ModuleSpec | None:
    """The spec of module ``name``, found by the import system's finders without executing
    any module (``importlib.util.find_spec`` imports a dotted name's parents)."""
    spec: ModuleSpec | None = None
    locations: list[str] | None = None
    parts = name.split(".")
    for i in range(len(parts)):
        qualified = ".".join(parts[: i + 1])
        loaded = sys.modules.get(qualified)
        if loaded is not None:
            spec = getattr(loaded, "__spec__", None) or ModuleSpec(qualified, None)
            locations = list(getattr(loaded, "__path__", None) or []) or None
        else:
            spec = _ask_finders(qualified, locations)
            locations = None if spec is None else spec.submodule_search_locations
        if spec is None or (i < len(parts) - 1 and locations is None):
            return None
    return spec


def _ask_finders(name: str, locations: list[str] | None) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = None if find is None else find(name, locations)
        if spec is not None:
            return spec
    return None


def import_path(factory: Callable[..., Any]) -> str | None:
    """``"module:qualname"`` if a new process can import ``factory`` by it, else None.

    ``__main__`` does not count: a resumed study runs in another main module (the CLI).
    """
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    path = f"{module}:{qualname}"
    try:
        return path if import_factory(path) is factory else None
    except ArchsearchError:
        return None


def _describe(factory: Callable[..., Any]) -> str:
    module = getattr(factory, "__module__", "?")
    return f"{module}.{getattr(factory, '__qualname__', repr(factory))}"


# ---------------------------------------------------------------- probe cache
_END = object()  # the label of a leaf: the run asked nothing more


class _Node:
    """A decision-tree node: the next label asked, and a child per answer given."""

    __slots__ = ("label", "children")

    def __init__(self) -> None:
        self.label: Any = None  # None = not probed yet
        self.children: dict[Choice, _Node] = {}


# -------------------------------------------------------------------- the space
@SPACES.register("define-by-run")
class DefineByRunSpace(ConditionalSpace):
    """The space of models a user's factory builds, discovered by running it.

    ``factory(input_shape, num_classes)`` returns a ``torch.nn.Module`` and calls
    :func:`choice` for its decisions; a model class with that constructor is a factory.
    Give it as an import string ``"package.module:Callable"``, or as a callable: one that a
    new process can import (module level, outside ``__main__``) is recorded by its import
    string so that a stored study can rebuild the space; any other works in this process
    only, and resuming its study fails with an explanation.

    See the module docstring for discovery, canonical form and probing.
    """

    inactive_reason = "are not asked by the model of this architecture"

    capabilities = frozenset({"build", "canonical"})

    constrained = True

    def __init__(
        self,
        factory: str | Factory,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        random_probes: int = 32,
        max_probes: int = 10_000,
    ) -> None:
        if isinstance(factory, str):
            if factory.startswith(NOT_IMPORTABLE):
                origin = factory[len(NOT_IMPORTABLE) :].strip() or "a callable"
                raise ArchsearchError(
                    f"this define-by-run space was made from {origin}, which a new process "
                    f"cannot import (it lives in __main__, inside a function, or is a lambda "
                    f"or partial); define it at module level of an importable module, or "
                    f"pass factory='package.module:Callable'"
                )
            self.factory_path: str | None = factory
            self.factory = import_factory(factory)
        elif callable(factory):
            self.factory_path = import_path(factory)
            self.factory = factory
        else:
            raise ArchsearchError(
                f"factory must be a callable or an import string 'module:Callable', got {factory!r}"
            )
        self.input_shape = tuple(int(n) for n in input_shape)
        self.num_classes = int(num_classes)
        if random_probes < 0 or max_probes < 1:
            raise ArchsearchError(
                f"need random_probes >= 0 and max_probes >= 1, got {random_probes}, {max_probes}"
            )
        self.random_probes = random_probes
        self.max_probes = max_probes
        self._tree = _Node()
        self._meta_ok = True
        super().__init__(self._discover())
        if not self.decisions:
            raise ArchsearchError(
                f"factory {_describe(self.factory)} asks for no choice(); there is nothing "
                f"to search"
            )

    @classmethod
    def stored_code(cls, options: Mapping[str, Any]) -> str | None:
        factory = options.get("factory")
        if isinstance(factory, str) and not factory.startswith(NOT_IMPORTABLE):
            return factory
        return None  # building refuses it before importing anything

    def config(self) -> dict[str, Any]:
        if self.factory_path is not None:
            factory = self.factory_path
        else:
            factory = f"{NOT_IMPORTABLE} {_describe(self.factory)}"
        config: dict[str, Any] = {
            "name": self.name,
            "factory": factory,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
        }
        if self.random_probes != 32:
            config["random_probes"] = self.random_probes
        if self.max_probes != 10_000:
            config["max_probes"] = self.max_probes
        return config

    # -------------------------------------------------------------- running
    def _run(
        self,
        resolver: _Resolver,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        *,
        probe: bool,
    ) -> Any:
        """Call the factory under ``resolver``; probes run on the meta device when they can."""
        import torch

        shape = self.input_shape if input_shape is None else tuple(input_shape)
        classes = self.num_classes if num_classes is None else num_classes
        if probe and self._meta_ok:
            try:
                with _resolving(resolver), torch.device("meta"):
                    return self.factory(shape, classes)
            except ArchsearchError:
                raise
            except Exception:  # noqa: BLE001  (the factory needs real tensors: run it on CPU)
                self._meta_ok = False
                resolver.asked.clear()
        with _resolving(resolver):
            return self.factory(shape, classes)

    def _probe(
        self, answers: Mapping[str, Choice], known: Mapping[str, Decision], *, strict: bool
    ) -> dict[str, Decision]:
        """The decisions a run asks under ``answers`` (default first option), in order."""
        resolver = _Resolver(answers, known, strict=strict)
        try:
            self._run(resolver, probe=True)
        except ArchsearchError:
            raise
        except Exception as exc:
            raise ArchsearchError(
                f"factory {_describe(self.factory)} failed for choices {dict(answers)}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._remember(resolver.asked, answers)
        return resolver.asked

    def _remember(self, asked: Mapping[str, Decision], answers: Mapping[str, Choice]) -> None:
        node = self._tree
        for label, decision in asked.items():
            if node.label is None:
                node.label = label
            elif node.label != label:
                raise ArchsearchError(
                    f"factory {_describe(self.factory)} asked {label!r} where an earlier run "
                    f"with the same answers asked {node.label!r}; the labels a model asks must "
                    f"depend only on the answers it gets"
                )
            node = node.children.setdefault(answers.get(label, decision.choices[0]), _Node())
        if node.label is None:
            node.label = _END
        elif node.label is not _END:
            raise ArchsearchError(
                f"factory {_describe(self.factory)} stopped asking where an earlier run with "
                f"the same answers asked {node.label!r}; the labels a model asks must depend "
                f"only on the answers it gets"
            )

    def _discover(self) -> list[Decision]:
        known: dict[str, Decision] = {}
        pending: deque[tuple[str, dict[str, Choice]]] = deque()  # (label, witness) to explore
        probes = 0

        def visit(answers: dict[str, Choice]) -> None:
            nonlocal probes
            probes += 1
            if probes > self.max_probes:
                raise ArchsearchError(
                    f"discovering the decisions of {_describe(self.factory)} took more than "
                    f"max_probes={self.max_probes} runs; raise max_probes if the space is "
                    f"really that large"
                )
            asked = self._probe(answers, known, strict=False)
            witness = {label: answers.get(label, d.choices[0]) for label, d in asked.items()}
            for label, decision in asked.items():
                if label not in known:
                    known[label] = decision
                    pending.append((label, witness))

        def explore() -> None:
            while pending:
                label, witness = pending.popleft()
                for value in known[label].choices:
                    if value != witness[label]:
                        visit({**witness, label: value})

        visit({})
        explore()
        rng = np.random.default_rng(0)
        for _ in range(self.random_probes):
            decisions = list(known.values())
            visit({d.label: d.choices[int(rng.integers(len(d.choices)))] for d in decisions})
            explore()
        return list(known.values())

    # ----------------------------------------------------- activity and canonical form
    def active(self, arch: Mapping[str, Choice]) -> tuple[str, ...]:
        """The labels the model of ``arch`` asks for, in the order it asks them."""
        arch = self._full(arch)
        node, path = self._tree, []
        while node is not None and node.label is not None:
            if node.label is _END:
                return tuple(path)
            path.append(node.label)
            node = node.children.get(arch[node.label])
        return tuple(self._probe(arch, self._by_label, strict=True))

    # ------------------------------------------------------------- exploration
    def enumerate(self) -> Iterator[Architecture]:
        """Every distinct model once, in decision-tree order.

        Costs one factory run per model not probed before (the tree is walked, not the
        product of all choices), which :meth:`size` inherits.
        """
        stack: list[dict[str, Choice]] = [{}]
        while stack:
            prefix = stack.pop()
            arch = self.canonical(prefix)
            yield arch
            children = []
            path = dict(prefix)
            for label in self.active(arch):
                if label in prefix:
                    continue
                for value in self._by_label[label].choices[1:]:
                    children.append({**path, label: value})
                path[label] = arch[label]
            stack.extend(reversed(children))

    def size(self) -> int:
        """The number of distinct models (canonical architectures); see :meth:`enumerate`."""
        return sum(1 for _ in self.enumerate())

    # ---------------------------------------------------------------- encoding
    def encode(self, arch: Architecture, kind: str = "onehot") -> np.ndarray:
        """One-hot per decision, with an all-zero row for an inactive one.

        Zero rows let a predictor tell "layer 3 absent" from "layer 3 with kernel 3".
        """
        vector = super().encode(arch, kind)
        active = set(self.active(arch))
        start = 0
        for d in self.decisions:
            if d.label not in active:
                vector[start : start + len(d.choices)] = 0.0
            start += len(d.choices)
        return vector

    # ---------------------------------------------------------------- building
    def build(
        self, arch: Architecture, input_shape: Sequence[int], num_classes: int
    ) -> torch.nn.Module:
        """Run the factory with ``arch``'s values; every label it asks must be a decision."""
        import torch

        resolver = _Resolver(self._full(arch), self._by_label, strict=True)
        model = self._run(resolver, input_shape, num_classes, probe=False)
        if not isinstance(model, torch.nn.Module):
            raise ArchsearchError(
                f"factory {_describe(self.factory)} returned {type(model).__name__}, "
                f"not a torch.nn.Module"
            )
        return model
