"""From a supernet's pick to a deployable model: retrain from scratch, then export.

Weights inherited from a supernet are not the weights of a trained stand-alone network
(every one-shot paper retrains the derived cell), so the derived architecture goes through
the ``train`` evaluator like any candidate of a black-box search, and its trained network
leaves through :func:`archsearch.export.export_study`, the export path of every study
(``archsearch oneshot --retrain/--export`` uses it on the one-shot study it wrote).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archsearch.data.base import ImageData
from archsearch.errors import ArchsearchError
from archsearch.evaluate.base import EvalResult, Evaluator
from archsearch.space.base import Architecture, SearchSpace


def retrain(
    arch: Architecture,
    space: SearchSpace,
    recipe: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    evaluator: Evaluator | None = None,
) -> tuple[EvalResult, ImageData]:
    """Train ``arch`` from scratch; returns the result (``valid_accuracy``,
    ``test_accuracy`` and the other values, the trained model) and the data it was trained on.

    ``recipe`` holds the options of the ``train`` evaluator (dataset, epochs, train_size,
    ...); or pass an ``evaluator`` built already.
    """
    if evaluator is None:
        from archsearch.components import build_evaluator

        evaluator = build_evaluator({"name": "train", **(recipe or {})})
    result = evaluator.evaluate(arch, space, seed=seed)
    if result.diverged or result.model is None:
        raise ArchsearchError(
            f"retraining {space.to_string(arch)} failed (non-finite loss): {result.values}"
        )
    return result, evaluator.data


def export_model(
    result: EvalResult,
    data: ImageData,
    path: str | Path,
    metadata: Mapping[str, Any],
) -> Path:
    """Save a retrained network with the dataset's normalisation in front (raw-pixel input).

    A thin alias kept for scripts: a study's winner leaves through
    :func:`archsearch.export.export_study`; both write through
    :func:`archsearch.export.save_trained`, so the metadata has one format.
    """
    from archsearch.export import save_trained

    info = {
        **dict(metadata),
        "valid_accuracy": result.get("valid_accuracy"),
        "test_accuracy": result.get("test_accuracy"),
    }
    return save_trained(result.model, data, path, info)
