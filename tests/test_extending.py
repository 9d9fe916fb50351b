"""The README's "adding a component" examples are real code that works."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from archsearch.components import build_evaluator, build_space  # noqa: E402
from archsearch.study import Budget, Study  # noqa: E402


def load_examples():
    """Imported in the test, not at collection, so that the example components do not join
    the registries that other test modules parametrize over."""
    sys.path.insert(0, str(ROOT / "examples"))
    import extending

    return extending


def blocks() -> dict[str, str]:
    """The example file's blocks between ``# --- NAME`` markers, as the README shows them."""
    text = (ROOT / "examples" / "extending.py").read_text().replace("  # noqa: E402", "")
    parts = re.split(r"^# --- (\w+)\n", text, flags=re.M)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_readme_shows_each_example_verbatim():
    readme = (ROOT / "README.md").read_text()
    examples = {k: v for k, v in blocks().items() if k != "end"}
    assert set(examples) == {"proxy", "strategy", "space", "evaluator"}
    for name, body in examples.items():
        assert body in readme, f"the README's {name} example differs from examples/extending.py"


def test_each_example_component_works():
    from archsearch.proxies.base import compute_proxy
    from archsearch.space.nb201 import NB201Space

    extending = load_examples()
    space = build_space({"name": "mlp", "max_depth": 2})
    assert space.size() == 6 and space.config() == {"name": "mlp", "max_depth": 2}
    evaluator = build_evaluator({"name": "hidden-units", "per_unit": 2.0})
    study = Study(space, extending.GreedyMutation(space, seed=0), evaluator, budget=Budget(6))
    best = study.optimize()
    assert best.objective == 64.0 and study.config["strategy"] == {
        "name": "greedy-mutation",
        "explore": 0.2,
    }
    import torch

    model = space.build(best_arch := study.best_arch(), (1, 8, 8), 10)
    assert best_arch["depth"] == 1
    assert compute_proxy("conv_count", model, torch.zeros(2, 1, 8, 8)) == 0.0  # an MLP
    cells = NB201Space(channels=4, cells_per_stage=1)
    convs, skips = (
        {label: op for label in (d.label for d in cells.decisions)}
        for op in ("nor_conv_3x3", "skip_connect")
    )
    scores = [
        compute_proxy(
            "conv_count", cells.build(cells.make(a), (3, 8, 8), 10), torch.zeros(2, 3, 8, 8)
        )
        for a in (convs, skips)
    ]
    assert scores[0] == scores[1] + 6 * 3  # six convolutional edges in each of three cells
