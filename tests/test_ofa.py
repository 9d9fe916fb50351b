"""Once-for-All: progressive shrinking samples what each phase allows, in-place distillation
shapes the gradient, and one trained supernet is specialised for two devices and two
latency targets by a predictor trained on inherited-weight accuracies, with no retraining."""

import json

import numpy as np
import pytest
import torch

from archsearch.cli.main import main
from archsearch.diagnostics import kendall_tau
from archsearch.errors import ArchsearchError
from archsearch.hardware.lut import LatencyTable
from archsearch.oneshot import ONESHOT, Specialiser, build_supernet, load_search_data
from archsearch.oneshot.data import recipe
from archsearch.oneshot.specialise import Candidate
from archsearch.strategy.pareto import dominates

DIGITS = recipe("digits", valid_size=200, train_size=256, seed=0)
#: 4 block positions (2 stages of depth 1-2), kernels 3/5, expansions 2/4, SE on/off
TINY = {
    "widths": [1.0], "stages": [[8, 1], [16, 2]], "max_depth": 2, "kernels": [3, 5],
    "expansions": [2, 4], "stem_channels": 8, "first_channels": 8, "head_channels": 32,
}  # fmt: skip
TARGETS = (1.0, 1.6)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    return load_search_data(**DIGITS)


def supernet(seed: int = 0):
    torch.manual_seed(seed)
    return build_supernet("mobilenet", (1, 8, 8), 10, **TINY)


def synthetic_table(net, block_ms, runtime="torch", path=None) -> LatencyTable:
    """0.05 ms per fixed part, ``block_ms(kernel, expansion, se)`` per block."""
    space = net.space
    entries = {u.key: 0.05 for u in space.fixed_latency_units(1.0, net.input_shape, 10)}
    for stage, block in net.positions:
        for k, e, se in net.choices:
            entries[space.block_unit_key(stage, block, k, e, se, 1.0, net.input_shape)] = block_ms(
                k, e, se
            )
    table = LatencyTable(runtime, entries)
    if path is not None:
        table.save(path)
    return table


def kernel_bound(k, e, se):  # a device where the kernel dominates the cost
    return (0.02 * k * k + 0.01 * e) * (1.1 if se else 1.0)


def expansion_bound(k, e, se):  # one where the expansion does
    return (0.05 * e * e + 0.01 * k) * (1.1 if se else 1.0)


def ofa(**options):
    base = {"epochs": 4, "batch_size": 32, "eval_size": 64, "device": "cpu", "lr": 0.05}
    return ONESHOT.get("ofa")(**{**base, **options})


def record_steps(method, monkeypatch):
    steps = []
    inner = method.step_loss

    def recording(x, y, path, phase):
        steps.append((phase, path))
        return inner(x, y, path, phase)

    monkeypatch.setattr(method, "step_loss", recording)
    return steps


def blocks_of(net, path):
    """(kernel, expansion, se) of each active block position, and each stage's depth."""
    depths = [net.depths[d] for d in path["depth"].index]
    active = [
        net.choices[c]
        for c, (s, b) in zip(path["block"].index, net.positions, strict=True)
        if b < depths[s - 1]
    ]
    return active, depths


# ------------------------------------------------------------- progressive shrinking
def test_progressive_shrinking_samples_only_what_each_phase_allows(digits, monkeypatch):
    method = ofa(distill=False)
    steps = record_steps(method, monkeypatch)
    result = method.search(supernet(), digits)
    net = result.supernet
    order = [phase for phase, _ in steps]
    assert order == ["largest"] * 8 + ["kernel"] * 8 + ["depth"] * 8 + ["expand"] * 8
    seen = {}
    for phase, path in steps:
        blocks, depths = blocks_of(net, path)
        seen.setdefault(phase, []).append((blocks, depths))
    largest = ([(5, 4, 1)] * 4, [2, 2])
    assert all(item == largest for item in seen["largest"])

    def values(phase, field):
        if field == "depth":
            return {d for _, depths in seen[phase] for d in depths}
        i = ("kernel", "expand", "se").index(field)
        return {block[i] for blocks, _ in seen[phase] for block in blocks}

    assert values("kernel", "kernel") == {3, 5} and values("kernel", "se") == {0, 1}
    assert values("kernel", "expand") == {4} and values("kernel", "depth") == {2}
    assert values("depth", "kernel") == {3, 5} and values("depth", "depth") == {1, 2}
    assert values("depth", "expand") == {4}
    assert values("expand", "expand") == {2, 4} and values("expand", "depth") == {1, 2}
    assert [h["phases"] for h in result.history] == [
        {"largest": 8}, {"kernel": 8}, {"depth": 8}, {"expand": 8}
    ]  # fmt: skip
    assert result.arch == method.largest_arch()  # the study's one trial: the largest network


def test_phase_fractions_are_checked_and_a_zero_phase_is_skipped(digits, monkeypatch):
    with pytest.raises(ArchsearchError, match="sum to 1"):
        ofa(phases=[0.5, 0.5, 0.5, 0.0])
    with pytest.raises(ArchsearchError, match="4 fractions"):
        ofa(phases=[0.5, 0.5])
    method = ofa(epochs=2, phases=[0.5, 0.0, 0.0, 0.5], distill=False)
    steps = record_steps(method, monkeypatch)
    method.train(supernet(), digits)
    assert [p for p, _ in steps] == ["largest"] * 8 + ["expand"] * 8


def gradients(method, x, y, path, phase):
    method.net.zero_grad(set_to_none=True)
    loss, _, _ = method.step_loss(x, y, path, phase)
    loss.backward()
    return [
        torch.zeros_like(p) if p.grad is None else p.grad.clone()
        for p in method.net.weight_parameters()
    ]


@pytest.mark.parametrize("distill", [True, False])
def test_the_teachers_logits_shape_the_gradient_only_with_distillation(digits, distill):
    method = ofa(epochs=1, distill=distill)
    method.train(supernet(), digits)
    x, y = digits.x_train[:16], digits.y_train[:16]
    path = method.phase_path("expand")
    method.net.eval()  # BN on running statistics: the same forward every time
    teachers = []
    real = method.teacher_logits

    def teacher(xb, logits=None):
        teachers.append(1)
        return real(xb) if logits is None else logits

    method.teacher_logits = teacher
    one = gradients(method, x, y, path, "expand")
    method.teacher_logits = lambda xb: teacher(xb, torch.randn(len(xb), 10) * 5)
    other = gradients(method, x, y, path, "expand")
    differs = any(not torch.equal(a, b) for a, b in zip(one, other, strict=True))
    assert differs == distill
    assert len(teachers) == (2 if distill else 0)  # off: no teacher forward at all
    method.teacher_logits = teacher
    teachers.clear()
    gradients(method, x, y, method.largest_path(), "largest")
    assert not teachers  # the largest network is not distilled from itself


# ------------------------------------------------------------------ specialisation
@pytest.fixture(scope="module")
def specialised(digits):
    torch.set_num_threads(1)
    result = ofa().search(supernet(), digits)
    net = result.supernet
    tables = {
        "cpu": synthetic_table(net, kernel_bound),
        "onnx": synthetic_table(net, expansion_bound, runtime="onnx"),
    }
    specialiser = Specialiser(
        net, digits, samples=120, eval_size=200, calibration_batches=2, seed=0
    ).fit()
    found = specialiser.specialise(tables, TARGETS, population=24, generations=12)
    return specialiser, tables, found


def test_each_device_gets_a_network_under_each_target_by_its_own_table(specialised):
    specialiser, tables, found = specialised
    net, space = specialiser.supernet, specialiser.space
    for device, table in tables.items():
        for target in TARGETS:
            chosen = found[device].targets[target]
            assert chosen is not None, (device, target)
            units = space.latency_units(chosen.arch, net.input_shape, net.num_classes)
            assert table.predict(units) == pytest.approx(chosen.latency_ms)
            assert chosen.latency_ms <= target
        # a looser target never gets a worse predicted network
        low, high = (found[device].targets[t] for t in TARGETS)
        assert high.predicted_accuracy >= low.predicted_accuracy
    for target in TARGETS:
        assert found["cpu"].targets[target].arch != found["onnx"].targets[target].arch


def test_the_returned_front_is_mutually_non_dominated(specialised):
    _, _, found = specialised
    for result in found.values():
        points = [(c.predicted_accuracy, -c.latency_ms) for c in result.front]
        assert len(points) >= 3
        assert not any(dominates(a, b) for a in points for b in points)
        assert [c.latency_ms for c in result.front] == sorted(c.latency_ms for c in result.front)
        chosen = {c.arch for c in result.targets.values()}
        assert chosen <= {c.arch for c in result.front}


def test_a_new_target_needs_no_training_and_no_scoring(specialised, monkeypatch):
    specialiser, tables, _ = specialised
    before = {k: v.clone() for k, v in specialiser.supernet.state_dict().items()}

    def no_scoring():
        raise AssertionError("specialising scored a sub-network")

    monkeypatch.setattr(specialiser, "score", no_scoring)
    again = specialiser.specialise({"cpu": tables["cpu"]}, [1.3], population=24, generations=4)
    assert again["cpu"].targets[1.3].latency_ms <= 1.3
    after = specialiser.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN buffers included


def test_the_accuracy_predictor_ranks_held_out_sub_networks(specialised):
    specialiser, _, _ = specialised
    report = specialiser.fit_report
    assert report.scored == 120 and report.holdout == 24
    assert report.holdout_kendall_tau > 0.3  # random ranking: 0 +- 0.14 at 24 networks
    archs = [a for a, _ in specialiser.scored]
    accs = [s for _, s in specialiser.scored]
    assert kendall_tau(specialiser.predictor.predict(archs), accs) > report.holdout_kendall_tau


def test_an_unreachable_target_is_reported_not_met(specialised):
    specialiser, tables, _ = specialised
    (result,) = specialiser.specialise({"cpu": tables["cpu"]}, [0.1], generations=1).values()
    assert result.targets[0.1] is None
    assert result.summary()["targets"] == [{"target_ms": 0.1, "met": False}]


def se_underpriced(k, e, se):  # the device as measured: SE costs more than the table says
    return (0.02 * k * k + 0.01 * e) * (1.6 if se else 1.0)


def test_hardware_in_the_loop_picks_by_measured_latency(specialised):
    specialiser, tables, _ = specialised
    net, space = specialiser.supernet, specialiser.space
    truth = synthetic_table(net, se_underpriced)
    calls = []

    def true_ms(candidate):
        return truth.predict(space.latency_units(candidate.arch, net.input_shape, 10))

    def measure(archs):
        calls.append(len(archs))
        return [true_ms(Candidate(a, "", 0.0, 0.0)) for a in archs]

    table_only = specialiser.specialise({"cpu": tables["cpu"]}, TARGETS, population=24,
                                        generations=12)["cpu"]  # fmt: skip
    assert any(true_ms(table_only.targets[t]) > t for t in TARGETS)  # the table misprices
    calls.clear()
    looped = specialiser.specialise(
        {"cpu": tables["cpu"]}, TARGETS, population=24, generations=12,
        measure={"cpu": measure}, shortlist=100, slack=0.5,
    )["cpu"]  # fmt: skip
    assert looped.front == table_only.front  # the search itself is the table's
    for target in TARGETS:
        pick = looped.targets[target]
        assert pick.measured_ms == pytest.approx(true_ms(pick)) and pick.measured_ms <= target
        feasible = [
            c for c in looped.front if c.latency_ms <= 1.5 * target and true_ms(c) <= target
        ]
        assert pick.predicted_accuracy == max(c.predicted_accuracy for c in feasible)
    assert looped.measured == sum(calls)  # each network measured once
    assert looped.summary()["targets"][0]["measured_ms"] == round(
        looped.targets[1.0].measured_ms, 5
    )
    calls.clear()
    short = specialiser.specialise(
        {"cpu": tables["cpu"]}, TARGETS, population=24, generations=12,
        measure={"cpu": measure}, shortlist=2,
    )["cpu"]  # fmt: skip
    assert all(n <= 2 for n in calls)
    assert short.measured < sum(c.latency_ms <= 1.25 * max(TARGETS) for c in short.front)
    assert all(c is None or c.measured_ms <= t for t, c in short.targets.items())
    with pytest.raises(ArchsearchError, match="measure for devices without a table"):
        specialiser.specialise({"cpu": tables["cpu"]}, TARGETS, measure={"gpu": measure})


def test_a_table_without_the_supernets_units_is_refused_before_scoring(digits):
    net = supernet()
    other = build_supernet("mobilenet", (1, 8, 8), 10, **{**TINY, "kernels": [3, 7]})
    specialiser = Specialiser(net, digits, samples=8)
    with pytest.raises(ArchsearchError, match="onnx: latency table lacks"):
        specialiser.check_table(synthetic_table(other, kernel_bound), "onnx")
    with pytest.raises(ArchsearchError, match="mobilenet supernet"):
        Specialiser(build_supernet("nb201", (1, 8, 8), 10, channels=4, cells_per_stage=1), digits)


# -------------------------------------------------------------------- command line
CLI = [
    "oneshot", "--method", "ofa", "--space", "mobilenet", "--dataset", "digits",
    "--train-size", "128", "--valid-size", "200", "--epochs", "2", "--batch-size", "32",
    "--device", "cpu", "--eval-size", "64", "--quiet",
    *(x for k, v in TINY.items() for x in ("--space-opt", f"{k}={json.dumps(v)}")),
]  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("ofa")
    assert main([*CLI, "--out", str(root / "run")]) == 0
    net = supernet()
    synthetic_table(net, kernel_bound, path=root / "cpu.csv")
    synthetic_table(net, expansion_bound, runtime="onnx", path=root / "onnx.csv")
    return root


def test_the_command_specialises_a_stored_ofa_study_for_two_devices(study, capsys):
    capsys.readouterr()
    argv = [
        "specialise", str(study / "run"), "--latency-table", f"cpu={study / 'cpu.csv'}",
        "--latency-table", f"onnx={study / 'onnx.csv'}", "--target", "1.0", "--target", "1.6",
        "--samples", "24", "--eval-size", "100", "--generations", "3", "--json",
        "--out", str(study / "spec.json"),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((study / "spec.json").read_text())
    assert set(printed["devices"]) == {"cpu", "onnx"}
    assert printed["predictor"]["scored"] == 24
    for device in printed["devices"].values():
        assert [t["target_ms"] for t in device["targets"]] == [1.0, 1.6]
        assert all(t["met"] and t["table_ms"] <= t["target_ms"] for t in device["targets"])


def test_the_command_measures_a_device_in_the_loop(study, capsys):
    capsys.readouterr()
    argv = [
        "specialise", str(study / "run"), "--latency-table", f"cpu={study / 'cpu.csv'}",
        "--latency-table", f"onnx={study / 'onnx.csv'}", "--target", "1.0", "--target", "1.6",
        "--samples", "24", "--eval-size", "100", "--generations", "3", "--measure", "cpu",
        "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    devices = json.loads(capsys.readouterr().out)["devices"]
    assert devices["cpu"]["measured"] >= 1 and devices["onnx"]["measured"] == 0
    for target in devices["cpu"]["targets"]:  # these tiny networks run in well under 1 ms
        assert target["met"] and 0 < target["measured_ms"] <= target["target_ms"]
    assert not any("measured_ms" in t for t in devices["onnx"]["targets"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--latency-table", "cpu"], "DEVICE=PATH"),
        (["--latency-table", "cpu=MISSING"], "cannot read latency table"),
        (["--latency-table", "cpu=CPU", "--latency-table", "cpu=CPU"], "twice"),
        (["--latency-table", "cpu=OTHER"], "lacks"),
        (["--latency-table", "cpu=CPU", "--target", "-1"], "positive"),
        (["--latency-table", "cpu=CPU", "--samples", "0"], "--samples"),
        (["--latency-table", "cpu=CPU", "--measure", "gpu"], "no --latency-table"),
    ],
)
def test_bad_specialise_input_is_one_error_line_and_exit_2(study, capsys, extra, message):
    other = build_supernet("mobilenet", (1, 8, 8), 10, **{**TINY, "kernels": [3, 7]})
    synthetic_table(other, kernel_bound, path=study / "other.csv")
    names = {"MISSING": "missing.csv", "CPU": "cpu.csv", "OTHER": "other.csv"}
    for name, file in names.items():
        extra = [a.replace(name, str(study / file)) for a in extra]
    if "--target" not in extra:
        extra += ["--target", "1.0"]
    capsys.readouterr()
    assert main(["specialise", str(study / "run"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archsearch: error:")
    assert message in err[0]


def test_specialise_refuses_a_directory_without_a_supernet(tmp_path, capsys):
    argv = ["specialise", str(tmp_path), "--latency-table", "cpu=x.csv", "--target", "1"]
    assert main(argv) == 2
    assert "holds no trained supernet" in capsys.readouterr().err


def test_a_seeded_specialisation_is_deterministic(digits):
    net = supernet()
    table = {"cpu": synthetic_table(net, kernel_bound)}
    picks = []
    for _ in range(2):
        sp = Specialiser(net, digits, samples=12, eval_size=50, calibration_batches=1).fit()
        (result,) = sp.specialise(table, [1.2], population=8, generations=3).values()
        picks.append((result.targets[1.2].arch, [c.arch for c in result.front]))
    assert picks[0] == picks[1]
    assert np.isfinite(sp.fit_report.accuracy_range).all()
