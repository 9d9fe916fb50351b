"""Choice rules: a few short descriptions of where the good architectures of a space live.

A *condition* restricts one decision to some of its choices (``{"decision": "3<-0", "in":
["skip_connect"]}`` or ``{"decision": "2<-1", "not_in": ["none"]}``), a *rule* is a
conjunction of conditions and the described sub-space is the union of the rules: RegNet's
design rules (Radosavovic et al., CVPR 2020) and NASBOWL's motifs (Ru et al., ICLR 2021) are
descriptions of this kind. Labels and choices are the space's own, as ``space.to_json``
writes them. Each rule reports, over the evaluated architectures, its ``support`` (the
fraction it covers), ``precision`` (the fraction of those that are *top*) and ``lift``
(precision over the base rate of top); :func:`top_mask` says which are top.

Learning them from a search is not learning them from a sample of the space: a search
evaluates mostly good architectures and their neighbours, so within any sub-space it has
seen the better part, and the more so the larger the sub-space (a covariate shift,
Shimodaira 2000). Precision on the evaluated architectures therefore favours broad rules
that do not hold up on the whole space. The learner corrects for where the search looked:

1. A *surrogate* estimates, for every architecture, the probability that it is top: kernel
   logistic regression on the evaluated architectures, with the kernel
   ``(1 + m/d)**2`` of the number ``m`` of the ``d`` decisions two architectures share
   (main effects of every choice and interactions of every pair of decisions). A model of
   P(top | architecture) is not biased by where the architectures were chosen, which is
   what a covariate shift changes.
2. A *reference population* stands for the space: every architecture when the space has at
   most ``reference_size``, else a seeded uniform sample of that many. Each architecture
   gets its observed label if it was evaluated and the surrogate's probability otherwise,
   so a table evaluated in full is learned from its labels alone.
3. Rules are found on the reference population by *sequential covering* (CN2, Clark and
   Niblett 1989): a beam search for the best rule of at most ``max_rule_length`` (2)
   conditions, whose population is then removed before the next rule is searched, while
   the condition budget lasts and the next rule is nearly as precise as the first (70% of
   its precision, and 1.5 times the base rate). A set-valued condition on a decision is a
   prefix of its choices ordered by their top rate within the rule so far (for two
   classes the best binary split of a categorical variable is such a prefix: Breiman et
   al., CART, 1984). A rule's quality is ``share**0.3 * (precision - base rate)`` on the
   population it is searched on (Kloesgen's 1996 family of subgroup qualities, here
   weighted towards precision), divided by ``1 + 0.5 * (choices listed beyond one per
   condition)``; a condition is added only when it raises the quality.
4. Every rule must hold on the evidence: it covers at least ``min_support`` evaluated
   architectures, ``min_top`` of them top, and a top one the earlier rules miss, so no rule
   describes a region the search never saw.

Everything is deterministic (fixed reference sample, Newton iterations, ordered ties), and
numpy is all it needs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space.base import Choice, SearchSpace
from archsearch.strategy.pareto import non_dominated_sort

#: the best fraction of a search's evaluations counted as top (a search evaluates mostly
#: good architectures, so its best fifth is about the best few percent of its space)
DEFAULT_TOP = 0.2
#: conditions in all rules together
MAX_CONDITIONS = 5
#: conditions in one rule
MAX_RULE_LENGTH = 2
#: evaluated architectures a rule must cover, and top ones among them
MIN_SUPPORT = 10
MIN_TOP = 3
#: architectures standing for the space (all of them in a space no larger)
REFERENCE_SIZE = 20_000
#: evaluated architectures the surrogate is fitted on (a seeded subsample of more)
SURROGATE_SIZE = 1_000

_PRECISION_WEIGHT = 0.3  # share**0.3: quality weighted towards precision
_CHOICE_PENALTY = 0.5  # per choice listed beyond one in a condition
_NEXT_RULE_PRECISION = 0.7  # a further rule is kept when at least this share as precise
_MIN_LIFT = 1.5  # ... and at least this lift over the base rate
_BEAM_WIDTH = 4
_RIDGE = 0.1  # surrogate regularisation


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Condition:
    """One decision restricted to ``allowed`` (the other choices of it are ``excluded``)."""

    decision: str
    allowed: tuple[Choice, ...]
    excluded: tuple[Choice, ...]

    def holds(self, arch: Mapping[str, Choice]) -> bool:
        return arch[self.decision] in self.allowed

    def to_json(self) -> dict[str, Any]:
        """``in`` the allowed choices, or ``not_in`` the excluded ones when fewer."""
        if len(self.excluded) < len(self.allowed):
            return {"decision": self.decision, "not_in": list(self.excluded)}
        return {"decision": self.decision, "in": list(self.allowed)}

    def __str__(self) -> str:
        if len(self.excluded) < len(self.allowed):
            names = _names(self.excluded)
            verb = "is not" if len(names) == 1 else "is none of"
        else:
            names = _names(self.allowed)
            verb = "is" if len(names) == 1 else "is one of"
        return f"{self.decision} {verb} {', '.join(names)}"


@dataclass(frozen=True)
class Rule:
    """A conjunction of conditions and how it does on the evaluated architectures.

    ``space_share`` is the fraction of the space the rule describes (of the reference
    population: exact when the space was enumerated).
    """

    conditions: tuple[Condition, ...]
    support: float
    precision: float
    lift: float
    space_share: float

    def covers(self, arch: Mapping[str, Choice]) -> bool:
        return all(c.holds(arch) for c in self.conditions)

    def to_json(self) -> dict[str, Any]:
        return {
            "conditions": [c.to_json() for c in self.conditions],
            "support": self.support,
            "precision": self.precision,
            "lift": self.lift,
        }

    def __str__(self) -> str:
        return " and ".join(str(c) for c in self.conditions)


@dataclass(frozen=True)
class RuleSet:
    """The rules, and their union measured like each of them."""

    rules: tuple[Rule, ...]
    n_evaluated: int
    n_top: int
    support: float
    precision: float
    lift: float
    space_share: float

    @property
    def n_conditions(self) -> int:
        return sum(len(r.conditions) for r in self.rules)

    def covers(self, arch: Mapping[str, Choice]) -> bool:
        return any(r.covers(arch) for r in self.rules)

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": [r.to_json() for r in self.rules],
            "subspace": {
                "support": self.support,
                "precision": self.precision,
                "lift": self.lift,
                "space_share": self.space_share,
            },
            "evaluated": self.n_evaluated,
            "top": self.n_top,
        }

    def format(self) -> str:
        """The rules as numbered lines, each with its figures, then the union's."""
        if not self.rules:
            return "no rule: no sub-space holds clearly more of the top architectures"
        lines = []
        for number, rule in enumerate(self.rules, start=1):
            lines.append(f"{number}. {rule}")
            lines.append(
                f"   support {rule.support:.2f}  precision {rule.precision:.2f}  "
                f"lift {rule.lift:.1f}  ({_percent(rule.space_share)} of the space)"
            )
        if len(self.rules) > 1:
            lines.append(
                f"together: support {self.support:.2f}  precision {self.precision:.2f}  "
                f"lift {self.lift:.1f}  ({_percent(self.space_share)} of the space)"
            )
        return "\n".join(lines)


# ------------------------------------------------------------------------------ top
def top_mask(
    vectors: Sequence[Sequence[float]] | np.ndarray,
    fraction: float = DEFAULT_TOP,
    feasible: Sequence[bool] | np.ndarray | None = None,
) -> np.ndarray:
    """Which of the evaluated architectures are *top*, from their oriented objective
    vectors (rows, every component higher-is-better).

    One objective: the best ``ceil(fraction * n)``, and every one tied with the last of
    them. Several: whole Pareto fronts (non-dominated sorting), the first ones, until they
    hold at least that many. Infeasible architectures are never top.
    """
    _check_fraction(fraction)
    points = np.asarray(vectors, dtype=float)
    if points.ndim == 1:
        points = points[:, None]
    n = len(points)
    ok = np.ones(n, bool) if feasible is None else np.asarray(feasible, dtype=bool)
    top = np.zeros(n, bool)
    if n == 0 or not ok.any():
        return top
    if not np.isfinite(points[ok]).all():
        raise ArchsearchError("objective values must be finite to rank architectures")
    wanted = math.ceil(fraction * n)
    candidates = np.flatnonzero(ok)
    if points.shape[1] == 1:
        values = points[candidates, 0]
        cut = np.sort(values)[::-1][min(wanted, len(values)) - 1]
        top[candidates[values >= cut]] = True
        return top
    for front in non_dominated_sort(points[candidates]):
        top[candidates[front]] = True
        if top.sum() >= wanted:
            break
    return top


# ---------------------------------------------------------------------------- learner
def learn_rules(
    space: SearchSpace,
    archs: Sequence[Mapping[str, Choice]],
    top: Sequence[bool] | np.ndarray,
    *,
    max_conditions: int = MAX_CONDITIONS,
    max_rule_length: int = MAX_RULE_LENGTH,
    min_support: int = MIN_SUPPORT,
    min_top: int = MIN_TOP,
    surrogate: bool = True,
    reference_size: int = REFERENCE_SIZE,
    seed: int = 0,
) -> RuleSet:
    """Learn rules of at most ``max_conditions`` conditions in all from evaluated
    architectures (mappings from decision label to choice) and which of them are top; see
    the module docstring for the method. Repeated architectures count once, as top if any
    of them is. ``surrogate=False`` learns on the evaluated architectures alone, as if they
    were a uniform sample of the space (they are, for random search)."""
    if max_conditions < 1 or max_rule_length < 1:
        raise ArchsearchError(
            f"need max_conditions >= 1 and max_rule_length >= 1, "
            f"got {max_conditions} and {max_rule_length}"
        )
    top = np.asarray(top, dtype=bool)
    if len(top) != len(archs):
        raise ArchsearchError(f"{len(archs)} architectures but {len(top)} top flags")
    decisions = space.decisions
    n_choices = [len(d.choices) for d in decisions]
    evaluated, labels = _distinct(_encode(space, archs), top)
    reference = _reference(space, reference_size, seed)
    if surrogate:
        population, p = reference, _top_probability(evaluated, labels, reference, n_choices, seed)
    else:
        population, p = evaluated, labels.astype(float)
    found = _covering(
        population,
        p,
        evaluated,
        labels,
        n_choices,
        max_conditions=max_conditions,
        max_rule_length=max_rule_length,
        min_support=min_support,
        min_top=min_top,
    )
    n, n_top = len(labels), int(labels.sum())
    rules = []
    for conditions in found:
        covered = _mask(conditions, evaluated)
        rules.append(
            Rule(
                conditions=tuple(_condition(decisions[j], allowed) for j, allowed in conditions),
                **_figures(covered, labels),
                space_share=float(_mask(conditions, reference).mean()),
            )
        )
    union = _union_mask(found, evaluated)
    return RuleSet(
        rules=tuple(rules),
        n_evaluated=n,
        n_top=n_top,
        **_figures(union, labels),
        space_share=float(_union_mask(found, reference).mean()),
    )


def measure(
    rules: RuleSet | Sequence[Rule],
    archs: Sequence[Mapping[str, Choice]],
    top: Sequence[bool] | np.ndarray,
) -> dict[str, float]:
    """How the union of ``rules`` does on other architectures (a whole table, say):
    ``support``, ``precision``, ``lift`` and ``coverage``, the fraction of the top ones
    inside it."""
    members = rules.rules if isinstance(rules, RuleSet) else tuple(rules)
    top = np.asarray(top, dtype=bool)
    inside = np.array([any(r.covers(a) for r in members) for a in archs], dtype=bool)
    figures = _figures(inside, top)
    figures["coverage"] = float((inside & top).sum() / top.sum()) if top.any() else 0.0
    return figures


# ------------------------------------------------------------------------- internals
def _check_fraction(fraction: float) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ArchsearchError(f"the top fraction must be a number in (0, 1), got {fraction!r}")
    if not 0 < fraction < 1:
        raise ArchsearchError(f"the top fraction must be in (0, 1), got {fraction}")


def _names(choices: Sequence[Choice]) -> list[str]:
    return [c if isinstance(c, str) else json.dumps(c) for c in choices]


def _percent(share: float) -> str:
    return f"{100 * share:.2g}%" if share < 0.1 else f"{100 * share:.0f}%"


def _condition(decision: Any, allowed: tuple[int, ...]) -> Condition:
    chosen = set(allowed)
    return Condition(
        decision=decision.label,
        allowed=tuple(c for i, c in enumerate(decision.choices) if i in chosen),
        excluded=tuple(c for i, c in enumerate(decision.choices) if i not in chosen),
    )


def _figures(inside: np.ndarray, top: np.ndarray) -> dict[str, float]:
    n, covered = len(top), int(inside.sum())
    if n == 0 or covered == 0:
        return {"support": 0.0, "precision": 0.0, "lift": 0.0}
    precision = float((inside & top).sum() / covered)
    base = top.sum() / n
    return {
        "support": covered / n,
        "precision": precision,
        "lift": float(precision / base) if base > 0 else 0.0,
    }


def _encode(space: SearchSpace, archs: Sequence[Mapping[str, Choice]]) -> np.ndarray:
    """Choice indices, one row per architecture and one column per decision."""
    rows = np.empty((len(archs), len(space.decisions)), dtype=np.int64)
    for i, arch in enumerate(archs):
        for j, decision in enumerate(space.decisions):
            if decision.label not in arch:
                raise ArchsearchError(f"an architecture has no decision {decision.label!r}")
            rows[i, j] = decision.index(arch[decision.label])
    return rows


def _distinct(encoded: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per distinct architecture (in first-seen order), top if any repeat is."""
    if len(encoded) == 0:
        return encoded, top
    unique, first, inverse = np.unique(encoded, axis=0, return_index=True, return_inverse=True)
    labels = np.zeros(len(unique), bool)
    np.logical_or.at(labels, inverse.ravel(), top)
    order = np.argsort(first, kind="stable")
    return unique[order], labels[order]


def _reference(space: SearchSpace, size: int, seed: int) -> np.ndarray:
    """Architectures standing for the space: every one when the product of its choices is
    at most ``size``, else ``size`` seeded uniform samples (repeats and all)."""
    n_choices = [len(d.choices) for d in space.decisions]
    if math.prod(n_choices) <= size:
        if not space.constrained:  # the product itself, in the order of ``enumerate``
            grid = np.indices(n_choices).reshape(len(n_choices), -1).T
            return np.ascontiguousarray(grid, dtype=np.int64)
        return _encode(space, list(space.enumerate()))
    rng = np.random.default_rng(seed)
    return _encode(space, [space.sample(rng) for _ in range(size)])


def _one_hot(rows: np.ndarray, n_choices: Sequence[int]) -> np.ndarray:
    offsets = np.concatenate([[0], np.cumsum(n_choices)[:-1]])
    out = np.zeros((len(rows), int(sum(n_choices))))
    out[np.arange(len(rows))[:, None], rows + offsets] = 1.0
    return out


def _kernel(a: np.ndarray, b: np.ndarray, d: int) -> np.ndarray:
    """``(1 + m/d)**2`` for ``m`` shared decisions, from one-hot rows ``a`` and ``b``."""
    return (1.0 + (a @ b.T) / d) ** 2


def _top_probability(
    evaluated: np.ndarray,
    labels: np.ndarray,
    reference: np.ndarray,
    n_choices: Sequence[int],
    seed: int,
) -> np.ndarray:
    """Each reference architecture's observed label, or the surrogate's P(top)."""
    p = np.zeros(len(reference))
    known = {row.tobytes(): float(y) for row, y in zip(evaluated, labels, strict=True)}
    seen = np.array([row.tobytes() in known for row in reference], dtype=bool)
    if not seen.all() and labels.any() and not labels.all():
        train = np.arange(len(labels))
        if len(train) > SURROGATE_SIZE:
            train = np.sort(np.random.default_rng(seed).choice(train, SURROGATE_SIZE, False))
        x_train = _one_hot(evaluated[train], n_choices)
        alpha, bias = _kernel_logistic(_kernel(x_train, x_train, len(n_choices)), labels[train])
        unseen = np.flatnonzero(~seen)
        for start in range(0, len(unseen), 4096):
            chunk = unseen[start : start + 4096]
            scores = _kernel(_one_hot(reference[chunk], n_choices), x_train, len(n_choices))
            p[chunk] = _sigmoid(scores @ alpha + bias)
    elif not seen.all():
        p[~seen] = float(labels.mean()) if len(labels) else 0.0
    p[seen] = [known[row.tobytes()] for row in reference[seen]]
    return p


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _kernel_logistic(kernel: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """L2-regularised kernel logistic regression, ``f = K alpha + b``, by Newton's method
    in the dual: minimising ``sum log-loss(f) + ridge/2 alpha' K alpha`` gives the step
    ``(W K + ridge I) delta = p - y + ridge alpha`` with ``W`` the logistic weights."""
    y = y.astype(float)
    rate = np.clip(y.mean(), 1e-3, 1 - 1e-3)
    bias = math.log(rate / (1 - rate))  # the base rate; the kernel's constant adjusts it
    alpha = np.zeros(len(y))
    eye = np.eye(len(y))
    for _ in range(100):
        p = _sigmoid(kernel @ alpha + bias)
        weights = p * (1 - p)
        step = np.linalg.solve(weights[:, None] * kernel + _RIDGE * eye, p - y + _RIDGE * alpha)
        alpha -= step
        if np.abs(step).max() < 1e-8:
            break
    return alpha, bias


Conditions = tuple[tuple[int, tuple[int, ...]], ...]  # (decision index, allowed choice indices)


def _mask(conditions: Conditions, rows: np.ndarray) -> np.ndarray:
    inside = np.ones(len(rows), bool)
    for j, allowed in conditions:
        inside &= np.isin(rows[:, j], allowed)
    return inside


def _union_mask(rules: Sequence[Conditions], rows: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(rows), bool)
    for conditions in rules:
        inside |= _mask(conditions, rows)
    return inside


def _listed(conditions: Conditions, n_choices: Sequence[int]) -> int:
    """Choices a reader reads beyond one per condition (``in`` or ``not_in``, the shorter)."""
    return sum(min(len(a), n_choices[j] - len(a)) - 1 for j, a in conditions)


def _quality(inside: np.ndarray, p: np.ndarray, base: float, complexity: int) -> float:
    share = inside.mean()
    if share == 0:
        return -math.inf
    gain = share**_PRECISION_WEIGHT * (p[inside].mean() - base)
    return gain / (1 + _CHOICE_PENALTY * complexity)


def _covering(
    reference: np.ndarray,
    p: np.ndarray,
    evaluated: np.ndarray,
    labels: np.ndarray,
    n_choices: Sequence[int],
    *,
    max_conditions: int,
    max_rule_length: int,
    min_support: int,
    min_top: int,
) -> list[Conditions]:
    """Sequential covering: the best rule, then the best on the population it leaves, and
    so on; each rule must cover a top evaluated architecture the earlier ones do not."""
    rules: list[Conditions] = []
    remaining = np.ones(len(reference), bool)
    unexplained = np.ones(len(evaluated), bool)
    budget, first_precision = max_conditions, None
    overall = p.mean() if len(p) else 0.0
    while budget > 0 and remaining.any():
        best = _beam_search(
            reference[remaining],
            p[remaining],
            evaluated,
            labels,
            labels & unexplained,
            n_choices,
            max_length=min(budget, max_rule_length),
            min_support=min_support,
            min_top=min_top,
        )
        if best is None:
            break
        precision = p[_mask(best, reference)].mean()
        if overall <= 0 or precision < _MIN_LIFT * overall:
            break
        if first_precision is not None and precision < _NEXT_RULE_PRECISION * first_precision:
            break
        first_precision = first_precision or precision
        rules.append(best)
        budget -= len(best)
        remaining &= ~_mask(best, reference)
        unexplained &= ~_mask(best, evaluated)
    return rules


def _beam_search(
    rows: np.ndarray,
    p: np.ndarray,
    evaluated: np.ndarray,
    labels: np.ndarray,
    unexplained: np.ndarray,
    n_choices: Sequence[int],
    *,
    max_length: int,
    min_support: int,
    min_top: int,
) -> Conditions | None:
    """The rule of highest quality on ``rows`` with at most ``max_length`` conditions."""
    base = p.mean()
    beam: list[tuple[Conditions, np.ndarray, float]] = [((), np.ones(len(rows), bool), 0.0)]
    best, best_quality = None, 0.0
    for _ in range(max_length):
        candidates: dict[Conditions, tuple[float, np.ndarray]] = {}
        for conditions, inside, parent_quality in beam:
            for j, allowed in _refinements(rows, p, inside, conditions, n_choices):
                rule = tuple(sorted(conditions + ((j, allowed),)))
                if rule in candidates:
                    continue
                evidence = _mask(rule, evaluated)
                if (
                    evidence.sum() < min_support
                    or (evidence & labels).sum() < min_top
                    or not (evidence & unexplained).any()
                ):
                    continue
                narrowed = inside & np.isin(rows[:, j], allowed)
                quality = _quality(narrowed, p, base, _listed(rule, n_choices))
                if quality > parent_quality:  # a condition must earn its place
                    candidates[rule] = (quality, narrowed)
        if not candidates:
            break
        ranked = sorted(
            candidates.items(),
            key=lambda item: (-item[1][0], len(item[0]), _listed(item[0], n_choices), item[0]),
        )
        beam = [(rule, inside, quality) for rule, (quality, inside) in ranked[:_BEAM_WIDTH]]
        if beam[0][2] > best_quality:
            best, best_quality = beam[0][0], beam[0][2]
    return best


def _refinements(
    rows: np.ndarray,
    p: np.ndarray,
    inside: np.ndarray,
    conditions: Conditions,
    n_choices: Sequence[int],
) -> list[tuple[int, tuple[int, ...]]]:
    """For each decision the rule leaves free, the prefixes of its choices ordered by
    their top rate inside the rule (choices absent there cannot be judged: left out)."""
    used = {j for j, _ in conditions}
    out = []
    for j, k in enumerate(n_choices):
        if j in used:
            continue
        counts = np.bincount(rows[inside, j], minlength=k)
        mass = np.bincount(rows[inside, j], weights=p[inside], minlength=k)
        present = [c for c in range(k) if counts[c] > 0]
        order = sorted(present, key=lambda c: (-mass[c] / counts[c], c))
        for length in range(1, len(present)):
            out.append((j, tuple(sorted(order[:length]))))
    return out


def study_rows(study: Any) -> tuple[list[Any], list[Any], list[bool]]:
    """Each evaluated architecture once (its highest-fidelity finished trial, the later on
    a tie), with its oriented objective vector and whether it is feasible."""
    chosen: dict[Any, Any] = {}
    for trial in study.trials:
        if trial.status != "complete" or study.declaration.vector(trial.values) is None:
            continue
        arch = study.space.from_json(trial.arch_json)
        fidelity = math.inf if trial.fidelity is None else trial.fidelity
        held = chosen.get(arch)
        if held is None or fidelity >= held[0]:
            chosen[arch] = (fidelity, trial)
    if not chosen:
        raise ArchsearchError(f"the study in {study.directory} has no finished evaluation")
    archs = list(chosen)
    trials = [chosen[a][1] for a in archs]
    vectors = [study.declaration.vector(t.values) for t in trials]
    feasible = [t.feasible is not False for t in trials]
    return archs, vectors, feasible
