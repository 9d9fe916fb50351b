"""The stage-wise MobileNet space: canonical members, networks, latency units, training."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.data import FASHION_MNIST_DIR
from archsearch.errors import InvalidArchitectureError
from archsearch.export import save_model
from archsearch.hardware.cost import count_flops, count_params
from archsearch.space import make_space
from archsearch.space.mobilenet import BLOCK_FIELDS, MobileNetSpace, block_label, depth_label
from archsearch.space.mobilenet_network import MBConv, MobileNetNetwork

FMNIST = (1, 28, 28)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def space() -> MobileNetSpace:
    return make_space("mobilenet")


def tiny_space(**options) -> MobileNetSpace:
    """Small enough to enumerate every assignment: 2 widths, 2 stages of up to 2 blocks, 4
    choices per block (kernel 3 or 5, expansion 3, SE or not)."""
    defaults = {
        "widths": (0.75, 1.0), "stages": ((8, 1), (16, 2)), "max_depth": 2,
        "kernels": (3, 5), "expansions": (3,),
    }  # fmt: skip
    return MobileNetSpace(**{**defaults, **options})


def arch_of(space, width=1.0, depths=(2, 2, 2, 2), kernel=3, expand=3, se=0, **changes):
    """A canonical architecture with every active block alike, then ``changes`` applied."""
    assignment = {"width": width}
    for stage, depth in enumerate(depths, start=1):
        assignment[depth_label(stage)] = depth
        for block in range(depth):
            for field, value in zip(BLOCK_FIELDS, (kernel, expand, se), strict=True):
                assignment[block_label(stage, block, field)] = value
    assignment.update({k.replace("__", "."): v for k, v in changes.items()})
    return space.canonical(assignment)


def samples(space, n=30, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


# ------------------------------------------------------------------ decisions
def test_decision_labels_are_the_documented_ones(space):
    labels = [d.label for d in space.decisions]
    assert labels[:5] == ["width", "s1.depth", "s1.b0.kernel", "s1.b0.expand", "s1.b0.se"]
    assert len(labels) == 1 + 4 * (1 + 3 * 3)
    assert space.decision("s4.b2.kernel").choices == (3, 5, 7)
    assert space.decision("s2.b1.expand").choices == (3, 4, 6)
    assert space.decision("s3.b0.se").choices == (0, 1)
    assert space.decision("s1.depth").choices == (1, 2, 3)
    assert space.decision("width").choices == (0.75, 1.0, 1.25)


def test_samples_mutants_and_neighbours_are_canonical_and_mutants_change_the_network(space):
    rng = np.random.default_rng(1)
    for arch in samples(space):
        assert space.canonical(arch) == arch and space.validate(arch) == arch
        child = space.mutate(arch, rng)
        assert space.canonical(child) == child
        changed = {k for k in arch if arch[k] != child[k]}
        assert changed & set(space.active(arch)), "mutated only inactive decisions"
        assert space.to_string(child) != space.to_string(arch)
        neighbours = space.neighbours(arch)
        assert neighbours and arch not in neighbours and len(set(neighbours)) == len(neighbours)
        assert all(space.canonical(n) == n for n in neighbours)
        assert all(space.to_string(n) != space.to_string(arch) for n in neighbours)


def test_size_counts_the_distinct_networks_of_the_whole_product():
    space = tiny_space()
    product = itertools.product(*(d.choices for d in space.decisions))
    labels = [d.label for d in space.decisions]
    distinct = {space.canonical(dict(zip(labels, values, strict=True))) for values in product}
    assert space.size() == len(distinct) == 2 * (4 + 4**2) ** 2  # 4 choices per block
    assert list(space.enumerate()) == list(dict.fromkeys(space.enumerate()))
    assert set(space.enumerate()) == distinct
    assert make_space("mobilenet").size() == 3 * (18 + 18**2 + 18**3) ** 4


def test_blocks_beyond_the_depth_are_inactive_and_canonical_resets_them(space):
    arch = arch_of(space, depths=(1, 2, 3, 1))
    other = arch.replace(**{"s1.b1.kernel": 7, "s1.b2.se": 1, "s4.b2.expand": 6})
    assert other != arch and space.canonical(other) == arch
    assert other not in space
    with pytest.raises(InvalidArchitectureError, match="beyond their stage's depth"):
        space.make(other)
    assert np.array_equal(space.encode(space.canonical(other)), space.encode(arch))
    assert np.array_equal(space.encode(other), space.encode(arch))  # inactive rows stay zero
    assert space.allowed("s1.b1.kernel", {"width": 1.0, "s1.depth": 1}) == [True, False, False]
    assert space.allowed("s1.b1.kernel", {"width": 1.0, "s1.depth": 2}) == [True] * 3


def test_string_and_json_round_trips(space):
    archs = list(dict.fromkeys(samples(space, 20)))
    strings = [space.to_string(a) for a in archs]
    assert len(set(strings)) == len(archs)
    for arch, text in zip(archs, strings, strict=True):
        assert space.from_string(text) == arch
        assert space.from_json(json.loads(json.dumps(space.to_json(arch)))) == arch
        assert space.from_string(json.dumps(space.to_json(arch))) == arch
    arch = space.from_string("w1.25|k3e4,k5e6se|k3e3|k7e6,k3e3,k5e4|k5e4se")
    assert arch["s1.depth"] == 2 and arch["s1.b1.kernel"] == 5 and arch["s1.b1.se"] == 1
    assert arch["s3.depth"] == 3 and arch["s4.b0.se"] == 1 and arch["s2.b1.kernel"] == 3
    for bad in ("w1.0|k3e4", "w1.0|k3e4|k3e4|k3e4|k4e4", "w2.0|k3e4|k3e4|k3e4|k3e4", "|||"):
        with pytest.raises(InvalidArchitectureError):
            space.from_string(bad)


def test_onehot_has_a_fixed_length_and_tells_canonical_architectures_apart(space):
    archs = list(dict.fromkeys(samples(space, 40)))
    codes = [space.encode(a) for a in archs]
    assert {c.shape for c in codes} == {(sum(len(d.choices) for d in space.decisions),)}
    assert len({c.tobytes() for c in codes}) == len(archs)
    # one hot per active decision, nothing for inactive blocks
    for arch, code in zip(archs, codes, strict=True):
        assert code.sum() == len(space.active(arch))


# ------------------------------------------------------------------ networks
def test_networks_give_logits_for_fashion_mnist_cifar_and_imagenet_shapes(space):
    arch = space.sample(np.random.default_rng(3))
    for shape in (FMNIST, (3, 32, 32)):
        model = space.build(arch, shape, 10).eval()
        assert model(torch.zeros(2, *shape)).shape == (2, 10)
    small = arch_of(space, width=0.75, depths=(1, 1, 1, 1))
    model = space.build(small, (3, 224, 224), 1000).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
        assert model.features(torch.zeros(1, 3, 224, 224)).shape[-2:] == (7, 7)  # stride 32
    assert space.strides((224, 224)) == (2, (2, 2, 2, 2))


def test_small_inputs_keep_the_last_feature_map_at_least_4x4(space):
    assert space.strides((28, 28)) == (1, (2, 2, 2, 1))
    deepest = arch_of(space, width=1.25, depths=(3, 3, 3, 3), kernel=7, expand=6, se=1)
    for shape in (FMNIST, (3, 32, 32)):
        model = space.build(deepest, shape, 10).eval()
        with torch.no_grad():
            assert model.features(torch.zeros(1, *shape)).shape[-2:] == (4, 4)
    fixed = make_space("mobilenet", resolution=224)
    assert fixed.strides((28, 28)) == (2, (2, 2, 2, 2))


def test_depth_kernel_expansion_and_se_change_the_network_as_stated(space):
    base = arch_of(space, width=1.0, depths=(1, 2, 3, 1), kernel=3, expand=3, se=0)
    model = space.build(base, FMNIST, 10)
    assert isinstance(model, MobileNetNetwork) and len(model.blocks) == 7
    assert len(space.build(base.replace(**{"s4.depth": 3}), FMNIST, 10).blocks) == 9
    changed = space.canonical(base.replace(**{"s2.b1.kernel": 7, "s2.b1.expand": 6, "s2.b1.se": 1}))
    block = space.build(changed, FMNIST, 10).blocks[2]  # s1.b0, s2.b0, s2.b1
    plain = model.blocks[2]
    assert isinstance(block, MBConv)
    assert (plain.kernel, plain.expansion, plain.se) == (3, 3, None)
    assert (block.kernel, block.expansion) == (7, 6) and block.se is not None
    assert block.depthwise[0].kernel_size == (7, 7)
    assert block.mid_channels == 6 * block.in_channels == block.depthwise[0].in_channels
    assert block.use_residual and not model.blocks[1].use_residual  # s2.b0: stride 2
    wide = space.build(base.replace(width=1.25), FMNIST, 10)
    assert count_params(wide) > count_params(model)
    assert [b.out_channels for b in model.blocks] == [24, 40, 40, 80, 80, 80, 112]


def test_the_network_module_needs_no_archsearch():
    path = Path(__file__).resolve().parents[1] / "archsearch" / "space" / "mobilenet_network.py"
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "collections", "typing", "torch"}, imported


# ------------------------------------------------------------------ latency units
def _run_units(model, units, x):
    """The network's pieces as fresh unit modules holding the network's weights, in order."""
    pieces = [model.stem, model.first, *model.blocks, model.head]
    assert len(pieces) == len(units)
    for piece, unit in zip(pieces, units, strict=True):
        assert tuple(x.shape[1:]) == unit.input_shape, unit.key
        module = unit.build().eval()
        module.load_state_dict(piece.state_dict())  # strict: the same modules
        x = module(x)
    return x


@pytest.mark.parametrize("shape", [FMNIST, (3, 32, 32)])
def test_latency_units_decompose_the_network_exactly(space, shape):
    all_keys = {u.key for u in space.all_latency_units(shape, 10)}
    for arch in samples(space, 4, seed=5):
        torch.manual_seed(0)
        model = space.build(arch, shape, 10)
        with torch.no_grad():  # running statistics away from their initial values
            model(torch.randn(8, *shape))
        model.eval()
        units = space.latency_units(arch, shape, 10)
        assert {u.key for u in units} <= all_keys
        assert sum(count_params(u.build()) for u in units) == count_params(model)
        assert sum(count_flops(u.build(), u.input_shape) for u in units) == count_flops(
            model, shape
        )
        x = torch.randn(3, *shape)
        with torch.no_grad():
            assert torch.equal(_run_units(model, units, x), model(x))


def test_unit_keys_name_their_context_and_block_unit_key_needs_no_architecture(space):
    arch = arch_of(space, width=1.0, depths=(1, 2, 1, 1), kernel=3, expand=3, **{
        "s2__b0__kernel": 5, "s2__b0__expand": 4,
    })  # fmt: skip
    keys = [u.key for u in space.latency_units(arch, FMNIST, 10)]
    assert keys == [
        "stem:conv3:c1>16:s1:r28",
        "first:mbconv:k3:e1:se0:c16>16:s1:r28",
        "s1.b0:mbconv:k3:e3:se0:c16>24:s2:r28",
        "s2.b0:mbconv:k5:e4:se0:c24>40:s2:r14",
        "s2.b1:mbconv:k3:e3:se0:c40>40:s1:r7",
        "s3.b0:mbconv:k3:e3:se0:c40>80:s2:r7",
        "s4.b0:mbconv:k3:e3:se0:c80>112:s1:r4",
        "head:conv1:c112>512:pool:fc10:r4",
    ]
    assert space.block_unit_key(2, 0, 5, 4, 0, 1.0, FMNIST) == keys[3]
    assert space.block_unit_key(2, 0, 5, 4, 0, 1.0, (3, 32, 32)).endswith("c24>40:s2:r16")
    with pytest.raises(InvalidArchitectureError):
        space.block_unit_key(2, 0, 4, 4, 0, 1.0, FMNIST)


def test_all_latency_units_are_exactly_the_units_of_every_architecture():
    space = tiny_space()
    shape = (1, 12, 12)
    found = {u.key for arch in space.enumerate() for u in space.latency_units(arch, shape, 3)}
    listed = [u.key for u in space.all_latency_units(shape, 3)]
    assert len(listed) == len(set(listed)) and set(listed) == found
    default = make_space("mobilenet").all_latency_units(FMNIST, 10)
    assert len({u.key for u in default}) == len(default) == 601


# ------------------------------------------------------------------ training and export
@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(), reason="Fashion-MNIST missing")
def test_a_network_trains_on_fashion_mnist_with_the_train_evaluator(space):
    from archsearch.evaluate.train import TrainingEvaluator

    evaluator = TrainingEvaluator(
        dataset="fashion-mnist", epochs=1, batch_size=64, train_size=2048, valid_size=256,
        test_size=128,
    )  # fmt: skip
    arch = space.canonical({"width": 0.75})  # the smallest network: about 2 s
    result = evaluator.evaluate(arch, space, seed=0)
    assert not result.diverged
    # 32 steps: the loss falls well below chance's ln(10) = 2.30 (1.36 measured) and the
    # validation accuracy above chance's 10% (34% measured)
    assert result.values["loss"] < 2.0
    assert result.values["valid_accuracy"] > 20.0
    assert isinstance(result.model, MobileNetNetwork)


def test_a_built_network_exports_with_torch_export(space, tmp_path):
    arch = space.sample(np.random.default_rng(7))
    model = space.build(arch, FMNIST, 10).eval()
    path = save_model(model, FMNIST, tmp_path / "m.pt2", {"arch": space.to_string(arch)})
    loaded = torch.export.load(str(path)).module()
    x = torch.randn(3, *FMNIST)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
