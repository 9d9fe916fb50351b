"""One-shot methods end to end on scikit-learn's 8x8 digits: every method derives a valid
architecture, DARTS+ stops on skip connections, perturbation selection, the supernet
evaluator inside a study, checkpoints, mixed precision and the ENAS controller."""

import math

import numpy as np
import pytest
import torch

from archsearch.errors import ArchsearchError
from archsearch.oneshot import (
    ONESHOT,
    Controller,
    InheritedWeights,
    Runtime,
    SupernetEvaluator,
    build_supernet,
    load_search_data,
    load_supernet,
    save_supernet,
)
from archsearch.oneshot.data import recipe
from archsearch.oneshot.ranking import supernet_ranking
from archsearch.space import DARTSSpace
from archsearch.strategy import make_strategy
from archsearch.study import Budget, Study

DIGITS = recipe("digits", valid_size=200, train_size=128, seed=0)
FAST = {"epochs": 1, "batch_size": 32, "eval_size": 64, "device": "cpu"}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_search_data(**DIGITS)


def nb201(data, seed: int = 0):
    torch.manual_seed(seed)
    return build_supernet("nb201", data.input_shape, data.num_classes, channels=4,
                          cells_per_stage=1)  # fmt: skip


METHODS = [
    ("darts", {"arch_lr": 3e-3}),
    ("darts", {"arch_lr": 3e-3, "order": 2}),
    ("gdas", {"arch_lr": 3e-3}),
    ("spos", {"search_budget": 6, "strategy": "evolution",
              "strategy_options": {"population_size": 4, "sample_size": 2}}),
    ("rsps", {"search_budget": 4}),
    ("spos", {"search_budget": 2, "sampling": "fair"}),
    ("enas", {"controller_steps": 4, "final_samples": 3}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "options"),
    METHODS,
    ids=[f"{n}{o.get('order', '')}{o.get('sampling', '')}" for n, o in METHODS],
)
@pytest.mark.slow
def test_every_method_searches_nb201_on_digits_and_records_diagnostics(digits, name, options):
    net = nb201(digits)
    result = ONESHOT.get(name)(**FAST, **options).search(net, digits)
    assert net.space.is_valid(result.arch)
    assert result.arch_string == net.space.to_string(result.arch)
    (epoch,) = result.history
    for key in ("train_loss", "valid_loss", "valid_acc", "entropy", "seconds"):
        assert math.isfinite(epoch[key]), key
    assert 0 <= epoch["entropy"] <= math.log(5) + 1e-4
    if name in ("darts", "gdas", "enas"):
        assert 0 <= epoch["skip_share"] <= epoch["parameter_free_share"] <= 1 and "arch" in epoch
    if name in ("darts", "gdas"):
        assert 0 < epoch["skip_weight"] < 1  # mean softmax weight of skip_connect
    assert result.search_seconds > 0
    assert result.summary()["epochs_run"] == 1


def test_fair_sampling_uses_every_operation_of_every_edge_once_per_step(digits):
    method = ONESHOT.get("spos")(**FAST, sampling="fair", search_budget=1)
    method.search(nb201(digits), digits)
    paths = method.fair_paths()
    assert len(paths) == 5
    for e in range(6):
        assert sorted(p["cell"].index[e] for p in paths) == [0, 1, 2, 3, 4]
    with pytest.raises(ArchsearchError, match="fair"):
        darts = build_supernet("darts", digits.input_shape, 10, channels=4, layers=3)
        ONESHOT.get("spos")(**FAST, sampling="fair").search(darts, digits)


def test_gdas_fair_warmup_trains_every_weighted_operation_and_leaves_alpha_alone(digits):
    from archsearch.oneshot.supernet import MixedOp

    net = nb201(digits)
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    gdas = ONESHOT.get("gdas")(**FAST, warmup_epochs=1, warmup_sampling="fair")
    (epoch,) = gdas.search(net, digits).history  # 4 steps: 4 Gumbel paths would miss some
    assert "arch_step_loss" not in epoch  # no architecture step in a warm-up epoch
    after = net.state_dict()
    assert torch.equal(after["alphas.cell"], before["alphas.cell"])
    for name, module in net.named_modules():
        if isinstance(module, MixedOp):
            for k, op in enumerate(module.ops):
                for p, _ in op.named_parameters():
                    key = f"{name}.ops.{k}.{p}"
                    assert not torch.equal(after[key], before[key]), key
    with pytest.raises(ArchsearchError, match="warmup_sampling"):
        ONESHOT.get("gdas")(warmup_sampling="every")


def test_auto_sampling_is_fair_on_nb201_and_uniform_on_darts(digits):
    method = ONESHOT.get("spos")(**FAST, search_budget=1)
    assert method.sampling == "auto"
    method.net = nb201(digits)
    method._setup()
    assert method.path_sampling == "fair"
    method.net = build_supernet("darts", digits.input_shape, 10, channels=4, layers=3)
    method._setup()
    assert method.path_sampling == "uniform"


@pytest.mark.slow
def test_gdas_searches_the_darts_space(digits):
    torch.manual_seed(0)
    net = build_supernet("darts", digits.input_shape, 10, channels=4, layers=3)
    result = ONESHOT.get("gdas")(**FAST, arch_lr=3e-3).search(net, digits)
    assert isinstance(net.space, DARTSSpace) and net.space.is_valid(result.arch)
    assert result.history[0]["skip_share"] == net.skip_count(result.arch) / 8


def test_same_seed_gives_the_same_search(digits):
    runs = [
        ONESHOT.get("gdas")(**FAST, arch_lr=3e-3, seed=3).search(nb201(digits), digits)
        for _ in range(2)
    ]
    assert runs[0].arch == runs[1].arch
    assert runs[0].history[0]["train_loss"] == runs[1].history[0]["train_loss"]


def test_darts_plus_stops_once_the_derived_cell_has_enough_skip_connections(digits):
    net = nb201(digits)
    with torch.no_grad():  # a supernet already collapsed onto skip connections
        net.alphas["cell"][:, net.operations.index("skip_connect")] = 5.0
    method = ONESHOT.get("darts")(**{**FAST, "epochs": 3}, early_stop_skips=2)
    result = method.search(net, digits)
    assert result.stopped_early and len(result.history) == 1
    assert result.history[0]["skip_count"] >= 2
    # the rule lives in the shared loop: GDAS (cheaper) without it runs every epoch
    unstopped = ONESHOT.get("gdas")(**{**FAST, "epochs": 2}).search(nb201(digits), digits)
    assert not unstopped.stopped_early and len(unstopped.history) == 2


def test_perturbation_selection_decides_every_edge_by_removing_operations(digits):
    net = nb201(digits)
    method = ONESHOT.get("darts")(
        **{**FAST, "eval_size": 32}, arch_lr=3e-3, selection="perturbation"
    )
    result = method.search(net, digits)
    trace = result.details["perturbation"]
    assert sorted(t["edge"] for t in trace) == sorted(f"cell:{e}" for e in net.edges["cell"])
    for entry in trace:
        scores = entry["acc_without"]
        assert set(scores) == set(net.operations)
        assert scores[entry["op"]] == min(scores.values())  # its removal hurts most
        label = entry["edge"].split(":")[1]
        assert result.arch[label] == entry["op"]


def test_supernet_evaluator_scores_deterministically_inside_a_study(digits):
    net = nb201(digits)
    ONESHOT.get("spos")(**FAST, search_budget=1).search(net, digits)
    scorer = InheritedWeights(net, digits, Runtime.resolve("cpu"), calibration_batches=2,
                              calibration_batch_size=64, eval_size=100)  # fmt: skip
    evaluator = SupernetEvaluator(scorer=scorer)
    study = Study(net.space, make_strategy("evolution", net.space, seed=0, population_size=4,
                                           sample_size=2),
                  evaluator, budget=Budget(evaluations=8))  # fmt: skip
    best = study.optimize()
    assert study.n_finished == 8 and best is not None
    arch = study.best_arch()
    again = evaluator.evaluate(arch, net.space).values[evaluator.objective_name]
    assert again == pytest.approx(best.objective)
    with pytest.raises(ArchsearchError):
        SupernetEvaluator(scorer=scorer).check_space(DARTSSpace())


def test_finetuned_scores_leave_the_supernet_as_it_was(digits):
    net = nb201(digits)
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k}
    scorer = InheritedWeights(net, digits, Runtime.resolve("cpu"), eval_size=64,
                              finetune_steps=3)  # fmt: skip
    arch = net.space.sample(np.random.default_rng(0))
    first = scorer.score(arch)
    after = {k: v for k, v in net.state_dict().items() if "running" not in k}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert scorer.score(arch) == first  # deterministic: same batches, same start


@pytest.mark.slow
def test_few_shot_spos_trains_one_sub_supernet_per_operation_of_the_split_edge(digits, tmp_path):
    from archsearch.oneshot.few_shot import SplitSupernet

    net = nb201(digits)
    spos = ONESHOT.get("spos")(**FAST, search_budget=2, few_shot_epochs=1, split_edge=2)
    result = spos.search(net, digits)
    split = result.supernet
    assert isinstance(split, SplitSupernet) and len(split.parts) == 5
    assert [r["part"] for r in result.details["few_shot"]] == list(net.operations)
    # part k trained operation k on edge 2 and left the edge's other operations as the
    # one-shot supernet had them: so operation j is equal in every part but part j
    conv = net.operations.index("nor_conv_3x3")
    key = f"layers.0.edges.2.ops.{conv}.1.weight"  # the first search cell's 3x3 conv
    weights = [part.state_dict()[key] for part in split.parts]
    others = [w for k, w in enumerate(weights) if k != conv]
    assert all(torch.equal(others[0], w) for w in others[1:])
    assert not torch.equal(weights[conv], others[0])
    # an architecture is scored by its owner; a checkpoint restores the split
    arch = net.space.make({**net.space.sample(np.random.default_rng(1)),
                           net.edges["cell"][2]: "nor_conv_3x3"})  # fmt: skip
    runtime = Runtime.resolve("cpu")
    score = InheritedWeights(split, digits, runtime, eval_size=100).score(arch)
    owner = InheritedWeights(split.parts[conv], digits, runtime, eval_size=100).score(arch)
    assert score == pytest.approx(owner)
    before = {k: v.clone() for k, v in split.state_dict().items()}
    InheritedWeights(split, digits, runtime, eval_size=100, finetune_steps=2).score(arch)
    assert all(torch.equal(before[k], v) for k, v in split.state_dict().items())
    loaded, _ = load_supernet(save_supernet(tmp_path / "split.pt", split, DIGITS))
    assert isinstance(loaded, SplitSupernet) and loaded.config() == split.config()
    assert InheritedWeights(loaded, digits, runtime, eval_size=100).score(arch) == pytest.approx(
        score
    )
    # bad splits fail before any training: an edge the cell lacks, a DARTS cell (whose
    # edges also choose inputs), parts that are not copies of one supernet
    few_shot = {**FAST, "search_budget": 1, "few_shot_epochs": 1}
    trained = []
    log = trained.append
    with pytest.raises(ArchsearchError, match="split_edge 6 out of range"):
        ONESHOT.get("spos")(**few_shot, split_edge=6, log=log).search(nb201(digits), digits)
    darts = build_supernet("darts", digits.input_shape, 10, channels=4, layers=3)
    with pytest.raises(ArchsearchError, match="few-shot splitting needs"):
        ONESHOT.get("spos")(**few_shot, log=log).search(darts, digits)
    assert trained == []
    with pytest.raises(ArchsearchError, match="copies of one supernet"):
        SplitSupernet([nb201(digits)] * 4 + [build_supernet("nb201", (1, 8, 8), 10)], "cell", 0)


def test_supernet_checkpoint_restores_the_same_scores(digits, tmp_path):
    net = nb201(digits)
    ONESHOT.get("spos")(**FAST, search_budget=1).search(net, digits)
    path = save_supernet(tmp_path / "supernet.pt", net, DIGITS)
    arch = net.space.sample(np.random.default_rng(0))
    here = InheritedWeights(net, digits, Runtime.resolve("cpu"), eval_size=100).score(arch)
    loaded, stored_recipe = load_supernet(path)
    assert stored_recipe == DIGITS and loaded.config() == net.config()
    evaluator = SupernetEvaluator(str(path), device="cpu", eval_size=100)
    assert evaluator.config()["checkpoint"] == str(path.resolve())
    score = evaluator.evaluate(arch, loaded.space).values[evaluator.objective_name]
    assert score == pytest.approx(here[0])
    # a study names it by configuration, like any registered evaluator
    config = {
        "space": {"name": "nb201", "channels": 4, "cells_per_stage": 1},
        "strategy": {"name": "random"},
        "evaluator": evaluator.config(),
        "seed": 0,
        "budget": {"evaluations": 2, "seconds": None},
    }
    study = Study.from_config(config, directory=tmp_path / "study")
    study.optimize()
    assert study.n_finished == 2 and study.summary()["objective"] == "inherited_valid_accuracy"
    study.close()


def test_mixed_precision_and_channels_last_path_runs_on_cpu(digits):
    method = ONESHOT.get("gdas")(**{**FAST, "amp": True, "channels_last": True}, arch_lr=3e-3)
    result = method.search(nb201(digits), digits)
    assert result.runtime["amp"] and result.runtime["channels_last"]
    assert math.isfinite(result.history[0]["train_loss"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ArchsearchError, match="CUDA"):
        Runtime.resolve("cuda")
    with pytest.raises(ArchsearchError, match="amp"):
        Runtime.resolve("cpu", amp="sometimes")


def test_bad_method_options_are_refused_before_training():
    with pytest.raises(ArchsearchError):
        ONESHOT.get("darts")(order=3)
    with pytest.raises(ArchsearchError):
        ONESHOT.get("gdas")(tau_max=0.1, tau_min=1.0)
    with pytest.raises(ArchsearchError):
        ONESHOT.get("spos")(strategy="no-such-strategy")
    with pytest.raises(ArchsearchError):
        ONESHOT.get("darts")(selection="vote")


def test_controller_samples_only_valid_darts_cells_with_finite_log_probabilities():
    space = DARTSSpace()
    torch.manual_seed(0)
    controller = Controller(space, hidden=16)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        arch, log_prob, entropy = controller.sample(generator)
        assert space.is_valid(arch)
        assert math.isfinite(float(log_prob.detach())) and float(entropy.detach()) > 0
    greedy = [controller.sample(greedy=True)[0] for _ in range(2)]
    assert greedy[0] == greedy[1]


def test_ranking_report_compares_inherited_accuracy_with_the_truth(digits):
    net = nb201(digits)
    ONESHOT.get("spos")(**FAST, search_budget=1).search(net, digits)
    scorer = InheritedWeights(net, digits, Runtime.resolve("cpu"), eval_size=100)
    archs = [net.space.sample(np.random.default_rng(i)) for i in range(6)]
    report, estimates = supernet_ranking(scorer, archs, np.arange(6.0))
    assert report["n"] == 6 and -1 <= report["kendall"] <= 1
    assert len(estimates) == 6 and np.all((estimates >= 0) & (estimates <= 100))
