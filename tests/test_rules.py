"""Choice rules: the learner recovers planted rules, describes NAS-Bench-201's best cells from
an evolution search, and ``archsearch rules`` reads a study without writing to it."""

import csv
import json
import os

import numpy as np
import pytest

from archsearch.cli.main import main
from archsearch.errors import ArchsearchError
from archsearch.space import Decision, SearchSpace
from archsearch.study.rules import RuleSet, learn_rules, measure, top_mask

CHOICES = ("p", "q", "r", "s")
SPACE = SearchSpace([Decision(f"x{i}", CHOICES) for i in range(6)])


def uniform(n, seed=0):
    return SPACE.distinct_samples(np.random.default_rng(seed), n)


def planted(arch):
    """Top: x0 is p and x2 is not s (3/16 of the space)."""
    return arch["x0"] == "p" and arch["x2"] != "s"


def planted_union(arch):
    """Top: (x0 is p and x1 is q) or (x3 is r and x4 is s)."""
    return (arch["x0"] == "p" and arch["x1"] == "q") or (arch["x3"] == "r" and arch["x4"] == "s")


def conditions(ruleset):
    return [[c.to_json() for c in rule.conditions] for rule in ruleset.rules]


# -------------------------------------------------------------------------- learner
@pytest.mark.parametrize("surrogate", [True, False])
def test_a_planted_rule_is_recovered_from_a_sample(surrogate):
    archs = uniform(300)
    ruleset = learn_rules(SPACE, archs, [planted(a) for a in archs], surrogate=surrogate)
    assert conditions(ruleset) == [
        [{"decision": "x0", "in": ["p"]}, {"decision": "x2", "not_in": ["s"]}]
    ]
    (rule,) = ruleset.rules
    assert rule.precision == 1.0 and rule.space_share == pytest.approx(3 / 16)
    assert rule.lift == pytest.approx(1 / np.mean([planted(a) for a in archs]))


def test_a_planted_union_is_recovered_as_two_rules():
    archs = uniform(400, seed=1)
    ruleset = learn_rules(SPACE, archs, [planted_union(a) for a in archs])
    assert sorted(map(str, ruleset.rules)) == ["x0 is p and x1 is q", "x3 is r and x4 is s"]
    assert ruleset.n_conditions == 4 and ruleset.precision == 1.0
    whole = list(SPACE.enumerate())
    assert measure(ruleset, whole, [planted_union(a) for a in whole])["coverage"] == 1.0


def test_rules_fit_the_labels_exactly_when_every_architecture_was_evaluated():
    whole = list(SPACE.enumerate())
    ruleset = learn_rules(SPACE, whole, [planted(a) for a in whole])
    assert str(ruleset.rules[0]) == "x0 is p and x2 is not s"
    assert ruleset.support == ruleset.space_share == pytest.approx(3 / 16)


def test_the_json_is_rules_of_conditions_with_support_precision_and_lift():
    archs = uniform(300)
    data = learn_rules(SPACE, archs, [planted(a) for a in archs]).to_json()
    json.dumps(data)  # plain JSON
    assert data["rules"]
    for rule in data["rules"]:
        assert set(rule) == {"conditions", "support", "precision", "lift"}
        for condition in rule["conditions"]:
            (key,) = set(condition) - {"decision"}
            assert key in ("in", "not_in")
            assert set(condition[key]) <= set(SPACE.decision(condition["decision"]).choices)
        assert 0 < rule["support"] <= 1 and 0 < rule["precision"] <= 1 and rule["lift"] > 1
    assert set(data["subspace"]) == {"support", "precision", "lift", "space_share"}


def test_learning_is_deterministic_and_ignores_the_order_of_the_evaluations():
    archs = uniform(250, seed=3)
    rng = np.random.default_rng(7)
    values = [planted(a) + 0.3 * rng.random() for a in archs]  # noisy values
    top = top_mask(values, 0.2)
    first = learn_rules(SPACE, archs, top).to_json()
    assert learn_rules(SPACE, archs, top).to_json() == first
    order = np.random.default_rng(0).permutation(len(archs))
    shuffled = learn_rules(SPACE, [archs[i] for i in order], top[order]).to_json()
    assert shuffled["rules"] == first["rules"]


def test_a_rule_needs_evidence_among_the_evaluations():
    archs = uniform(300)
    assert learn_rules(SPACE, archs, [planted(a) for a in archs], min_support=301).rules == ()
    few = archs[:8]
    assert learn_rules(SPACE, few, [planted(a) for a in few]).rules == ()


def test_the_condition_budget_bounds_all_rules_together():
    archs = uniform(400, seed=1)
    top = [planted_union(a) for a in archs]
    for budget in (1, 2, 3):
        assert learn_rules(SPACE, archs, top, max_conditions=budget).n_conditions <= budget
    with pytest.raises(ArchsearchError, match="max_conditions"):
        learn_rules(SPACE, archs, top, max_conditions=0)


def test_a_condition_lists_the_shorter_of_its_choices_and_its_exclusions():
    archs = uniform(300)
    ruleset = learn_rules(SPACE, archs, [planted(a) for a in archs])
    first, second = ruleset.rules[0].conditions
    assert (first.allowed, second.excluded) == (("p",), ("s",))
    assert first.holds({"x0": "p"}) and not second.holds({"x2": "s"})
    assert "1. x0 is p and x2 is not s" in ruleset.format()
    assert RuleSet((), 5, 1, 0, 0, 0, 0).format().startswith("no rule")


# ------------------------------------------------------------------------------ top
def test_top_is_the_best_fraction_with_ties_included():
    assert top_mask([5, 1, 4, 4, 2], 0.4).tolist() == [True, False, True, True, False]
    assert top_mask([[3.0], [2.0], [1.0]], 0.2).tolist() == [True, False, False]


def test_infeasible_architectures_are_never_top():
    assert top_mask([5, 1, 4, 3], 0.5, feasible=[False, True, True, True]).tolist() == [
        False, False, True, True
    ]  # fmt: skip


def test_several_objectives_take_whole_pareto_fronts_until_the_fraction_is_held():
    points = [[3, 1], [1, 3], [2, 2], [2, 1], [1, 2], [1, 1], [0, 0], [0, 0]]
    fronts = [0, 0, 0, 1, 1, 2, 3, 3]
    for fraction, last_front in [(0.1, 0), (0.375, 0), (0.4, 1), (0.7, 2), (0.8, 3)]:
        expected = [f <= last_front for f in fronts]
        assert top_mask(points, fraction).tolist() == expected, fraction


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, float("nan"), True])
def test_a_top_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ArchsearchError, match="top fraction"):
        top_mask([1, 2, 3], fraction)


# ----------------------------------------------------------------- NAS-Bench-201
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_rules_from_an_evolution_search_describe_the_tables_best_five_percent(nb201_csv, seed):
    """200 evaluations of regularized evolution; the described sub-space holds the whole
    table's best 5% (by cifar10_valid) at lift >= 6 and coverage >= 0.3, in <= 5 conditions."""
    from archsearch.study import Study
    from archsearch.study.rules import study_rows
    from archsearch.tables import load_nb201_table

    study = Study.from_config(
        {
            "space": {"name": "nb201"},
            "strategy": {"name": "evolution"},
            "evaluator": {"name": "nb201-table", "table": str(nb201_csv), "dataset": "cifar10"},
            "seed": seed,
            "budget": {"evaluations": 200, "seconds": None},
        }
    )
    study.optimize()
    archs, vectors, feasible = study_rows(study)
    ruleset = learn_rules(study.space, archs, top_mask(vectors, 0.2, feasible))
    assert ruleset.n_conditions <= 5
    table = load_nb201_table(nb201_csv)
    valid = table.column("cifar10_valid")
    whole = [table.space.from_index(i) for i in range(len(valid))]
    figures = measure(ruleset, whole, top_mask(valid, 0.05))
    assert figures["lift"] >= 6 and figures["precision"] >= 0.3
    assert figures["coverage"] >= 0.3


# ---------------------------------------------------------------------- the CLI
def write_table(path, cost=False):
    """Four decisions of four choices; ``score`` is 10 where a is u and b is not z (3/16
    of the rows), below 1 elsewhere; ``cost`` grows with the choices' positions."""
    header = ["a", "b", "c", "d", "score"] + (["cost"] if cost else [])
    rows = []
    for i, j, k, m in np.ndindex(4, 4, 4, 4):
        a, b, c, d = "uvwx"[i], "wxyz"[j], "uvwx"[k], "uvwx"[m]
        score = 10.0 if a == "u" and b != "z" else (7 * i + 3 * j + 5 * k + 2 * m) % 11 / 11
        rows.append([a, b, c, d, score] + ([float(i + j + k + m)] if cost else []))
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def search(table, out, *extra, budget=100):
    argv = ["search", "--evaluator", "table", "--table", str(table), "--objective", "score",
            *extra, "--strategy", "random", "--budget", str(budget), "--out", str(out),
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """One study for every test of the command (they only read it)."""
    folder = tmp_path_factory.mktemp("rules")
    return search(write_table(folder / "t.csv"), folder / "study")


def rules_json(capsys, *argv):
    capsys.readouterr()
    assert main(["rules", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_rules_of_a_study_print_as_json_and_leave_the_study_untouched(study_dir, capsys):
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in study_dir.iterdir()}
    data = rules_json(capsys, study_dir, "--top", "0.1")  # ties: every score of 10 is top
    assert data["rules"][0]["conditions"] == [
        {"decision": "a", "in": ["u"]},
        {"decision": "b", "not_in": ["z"]},
    ]
    assert data["evaluated"] == 100 and data["top"]["fraction"] == 0.1
    assert data["top"]["objectives"] == [{"name": "score", "direction": "max"}]
    after = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in study_dir.iterdir()}
    assert after == before


def test_rules_print_one_numbered_line_per_rule_with_its_figures(study_dir, capsys):
    capsys.readouterr()
    assert main(["rules", str(study_dir), "--top", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "1. a is u and b is not z" in out
    assert "support" in out and "precision" in out and "lift" in out


def test_a_whole_table_is_learned_from_every_row(study_dir, tmp_path, capsys):
    table = write_table(tmp_path / "t.csv")
    data = rules_json(capsys, study_dir, "--table", table, "--top", "0.1")
    assert data["evaluated"] == 256 and data["top"]["count"] == 48
    assert data["rules"] == [
        {
            "conditions": [{"decision": "a", "in": ["u"]}, {"decision": "b", "not_in": ["z"]}],
            "support": 48 / 256,
            "precision": 1.0,
            "lift": 256 / 48,
        }
    ]
    assert data["subspace"]["space_share"] == 48 / 256


@pytest.mark.slow
def test_a_multi_objective_study_takes_pareto_fronts_as_top(tmp_path, capsys):
    out = search(write_table(tmp_path / "t.csv", cost=True), tmp_path / "mo", "--objective",
                 "cost:min", budget=40)  # fmt: skip
    data = rules_json(capsys, out)
    assert data["top"]["by"] == "first Pareto fronts" and data["top"]["count"] >= 8
    assert data["top"]["objectives"][1] == {"name": "cost", "direction": "min"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{missing}"], "no study in"),
        (["{empty}"], "no study in"),
        (["{study}", "--top", "0"], "--top"),
        (["{study}", "--top", "1.5"], "--top"),
        (["{study}", "--top", "nan"], "--top"),
        (["{study}", "--top", "many"], "invalid float value"),
        (["{study}", "--max-conditions", "0"], "--max-conditions"),
        (["{study}", "--table", "{missing}/t.csv"], "t.csv"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_status_2(study_dir, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    names = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "study": study_dir}
    capsys.readouterr()
    assert main(["rules", *[a.format(**names) for a in argv]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error:") and message in err[0]
    assert os.listdir(tmp_path / "empty") == []
