"""From a study to a model that runs as plain PyTorch.

The best architecture is built, given trained weights (the study's own, kept when its
evaluator trained networks, or trained now with a recipe the user names when the study only
looked architectures up in a table), and saved with ``torch.export``. Loading needs torch
alone::

    import torch
    model = torch.export.load("model.pt2").module()
    logits = model(images)  # float32, N x C x H x W, raw pixel values in [0, 1]

Normalisation is part of the exported graph, so callers pass raw pixels. What the model
is (architecture, dataset, accuracy, input shape) is stored beside the graph as JSON; read
it with ``torch.export.load(path, extra_files={"archsearch.json": ""})`` or
:func:`load_metadata`.

There is one export path and one metadata format for every study, one-shot studies
included: :func:`train_winner` gives the best trial its trained network (kept weights or a
retraining) and its metadata (:data:`METADATA_KEYS`), :func:`save_winner` writes it.
``archsearch export`` and ``archsearch oneshot --retrain/--export`` both go through them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from archsearch.errors import ArchsearchError, StudyError
from archsearch.runtime import load_checkpoint

if TYPE_CHECKING:
    from archsearch.study.objectives import Constraint

METADATA = "archsearch.json"
#: the keys of every exported model's metadata (a value is None when it does not apply)
METADATA_KEYS = (
    "arch", "space", "method", "study_trial", "study_objective", "objective", "dataset",
    "input_shape", "num_classes", "valid_accuracy", "test_accuracy", "train_seconds", "recipe",
    "input",
)  # fmt: skip
INPUT = "float32 N x C x H x W raw pixels in [0, 1]"


class Normalised(nn.Module):
    """Prepends the dataset's normalisation so the exported model takes raw inputs."""

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        input_shape: Sequence[int],
    ) -> None:
        super().__init__()
        self.model = model
        # one value per channel, broadcast over the remaining input dimensions (none for
        # flat feature vectors)
        shape = (1, -1, *[1] * (len(input_shape) - 1))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def save_model(
    model: nn.Module,
    input_shape: Sequence[int],
    path: str | Path,
    metadata: Mapping[str, Any],
) -> Path:
    """Export ``model`` (eval mode, dynamic batch size) with its metadata to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    example = torch.zeros(2, *input_shape)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    with torch.no_grad():
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path), extra_files={METADATA: json.dumps(dict(metadata))})
    return path


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata stored beside an exported model's graph; a file that is not an
    archsearch export (random bytes, a pickle, another program's archive) is one error."""
    extra = {METADATA: ""}
    try:
        torch.export.load(str(path), extra_files=extra)
        metadata = json.loads(extra[METADATA])
    except Exception as exc:  # torch raises many kinds for a foreign file; none is ours
        raise ArchsearchError(f"{path} is not a model exported by archsearch ({exc})") from None
    if not isinstance(metadata, dict):
        raise ArchsearchError(f"{path} is not a model exported by archsearch (no metadata)")
    return metadata


def data_metadata(data: Any) -> dict[str, Any]:
    """What an exported model says about its input: dataset, shape, classes, pixel range."""
    return {
        "dataset": getattr(data, "name", None),
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "input": INPUT,
    }


def save_trained(
    model: nn.Module, data: Any, path: str | Path, metadata: Mapping[str, Any]
) -> Path:
    """Save a network trained on ``data`` with the data's normalisation in front (raw-pixel
    input) and the data's keys added to ``metadata``."""
    wrapped = Normalised(model, data.mean, data.std, data.input_shape)
    return save_model(wrapped, data.input_shape, path, {**metadata, **data_metadata(data)})


@dataclass
class Winner:
    """The best trial of a study with its trained network, ready to save."""

    model: nn.Module
    data: Any
    metadata: dict[str, Any]


def train_winner(
    directory: str | Path,
    recipe: Mapping[str, Any] | None = None,
    space_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    pick: Sequence[Constraint] = (),
) -> Winner:
    """The best architecture of the study in ``directory`` with trained weights.

    A study whose evaluator trained networks gives the weights it kept for its best trial.
    Otherwise (a tabular or a one-shot study), or when ``recipe`` is given, the winner is
    trained from scratch by the ``train`` evaluator with ``recipe`` (dataset, epochs, ...),
    and the space may be resized by ``space_options`` (e.g. fewer channels for a CPU). A
    one-shot study's recipe defaults to the dataset its supernet was trained on.

    ``pick`` conditions (``params<=1e6``) choose another trial: the front member with the
    best primary objective meeting them (:meth:`Study.pick`). Its weights were not kept
    unless it is the best trial, so a study that trained networks retrains it with its own
    evaluator and the trial's stored seed, which gives the network the search evaluated.
    """
    from archsearch.components import build_evaluator, build_space
    from archsearch.study import Study
    from archsearch.study.study import BEST_WEIGHTS

    study = Study.load(directory, build=True)
    try:
        best = study.best
        if best is None:
            raise StudyError(f"study in {directory} has no successful evaluation to export")
        if pick:
            best = study.pick(pick)
        config = study.config
        space_config = {**config["space"], **(space_options or {})}
        space = build_space(space_config) if space_options else study.space
        arch = space.from_json(best.arch_json)
        weights = Path(directory) / BEST_WEIGHTS
        trained_here = recipe is None and not space_options and weights.is_file()
        oneshot = config.get("oneshot")
        if trained_here and best.number != study.best.number:  # retrain the picked trial
            evaluator = study.evaluator
            result = evaluator.evaluate(arch, space, seed=best.seed, fidelity=best.fidelity)
            if result.diverged or result.model is None:
                raise ArchsearchError(f"retraining trial {best.number} failed: {result.values}")
            model, data, values = result.model, evaluator.data, dict(result.values)
            recipe_used, test_accuracy = config["evaluator"], result.get(evaluator.reported_name)
        elif trained_here:
            evaluator = study.evaluator
            data = evaluator.data  # the training evaluator's dataset
            stored = load_checkpoint(weights, "the study's best weights")
            if not isinstance(stored, Mapping) or stored.get("trial") != best.number:
                raise StudyError(f"{weights} does not hold the weights of trial {best.number}")
            model = space.build(arch, data.input_shape, data.num_classes)
            model.load_state_dict(stored["state_dict"])
            values, recipe_used = dict(best.values), config["evaluator"]
            test_accuracy = best.reported
        else:
            if recipe is None:
                raise StudyError(
                    f"study in {directory} kept no trained weights (evaluator "
                    f"{config['evaluator']['name']!r}): name the data and recipe to train "
                    "the winner, e.g. --dataset fashion-mnist --epochs 10"
                )
            recipe = dict(recipe)
            if isinstance(oneshot, Mapping) and "dataset" not in recipe:
                data_recipe = oneshot.get("data", {})
                recipe["dataset"] = data_recipe.get("dataset")
                if data_recipe.get("data_dir") and "data_dir" not in recipe:
                    recipe["data_dir"] = data_recipe["data_dir"]
            recipe_used = {"name": "train", **recipe}
            evaluator = build_evaluator(recipe_used)
            result = evaluator.evaluate(arch, space, seed=seed)
            if result.diverged or result.model is None:
                raise ArchsearchError(f"training the winner failed: {result.values}")
            model, data, values = result.model, evaluator.data, dict(result.values)
            test_accuracy = result.get(evaluator.reported_name)
        method = oneshot.get("name") if isinstance(oneshot, Mapping) else None
        metadata = {
            "arch": space.to_string(arch),
            "space": space_config,
            "method": method or config.get("strategy", {}).get("name"),
            "study_trial": best.number,
            "study_objective": best.objective,
            "objective": study.declaration.primary.name,
            **data_metadata(data),
            "valid_accuracy": values.get("valid_accuracy"),
            "test_accuracy": test_accuracy,
            "train_seconds": values.get("train_seconds"),
            "recipe": recipe_used,
        }
        return Winner(model, data, {k: metadata[k] for k in METADATA_KEYS})
    finally:
        study.close()


def save_winner(winner: Winner, to: str | Path) -> dict[str, Any]:
    """Write a :class:`Winner` as a torch.export file; returns its metadata."""
    save_trained(winner.model, winner.data, to, winner.metadata)
    return winner.metadata


def export_study(
    directory: str | Path,
    to: str | Path,
    recipe: Mapping[str, Any] | None = None,
    space_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    pick: Sequence[Constraint] = (),
) -> dict[str, Any]:
    """Export the best architecture of the study in ``directory``; returns its metadata.

    :func:`train_winner` says where the weights come from; this is the export path of every
    study, one-shot ones included.
    """
    return save_winner(train_winner(directory, recipe, space_options, seed, pick), to)
