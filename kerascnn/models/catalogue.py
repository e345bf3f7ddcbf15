"""What kerascnn knows about each registered model, without building it: ``model_info``.

Parameter and multiply-accumulate counts of every registered model at its default input are
precomputed in ``complexity.json``, with what ``kerascnn models`` lists beside them (title,
paper, default and minimum input), so that the command lists ~70 networks without building
them, or even importing TensorFlow (``kerascnn.recorded``); tests check the table against the
registry and, rebuilding each model, the counts. Regenerate entries with
``python -c "from kerascnn.models import catalogue; catalogue.write_table(['NAME'])"``
(``write_table([])`` refreshes the listed fields of every model without measuring any).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import keras

from kerascnn.models.convert.timm import REPUBLISHED
from kerascnn.models.convert.torchvision import PUBLISHED
from kerascnn.models.counting import multiply_accumulates
from kerascnn.models.factory import create_model
from kerascnn.models.spec import MODELS
from kerascnn.recorded import MODELS_TABLE, TORCHVISION_TABLE_URL, models_table

COUNTS = ("parameters", "trainable_parameters", "multiply_accumulates")


def model_info(name: str) -> dict[str, Any]:
    """What kerascnn knows about a registered model.

    Returns:
        A dict with ``name``, ``title``, ``paper``, ``input_shape`` (default), ``min_size``,
        ``num_classes``, ``parameters``, ``trainable_parameters`` and
        ``multiply_accumulates`` (of one image, computed from the layers; at the paper's
        class count and default input, without auxiliary heads), ``auxiliary_loss_weights``,
        ``keras_application`` (its name, or None), ``weights`` (the published weights
        ``create_model(name, weights=...)`` takes: ``{"imagenet": {...}, "torchvision":
        {"url", "top1", "top5", "source"}, "timm": {"url", "repo", "top1", ...}}``, the
        ImageNet-1K accuracies as torchvision publishes them),
        ``preprocessing`` (``{"mean": ..., "std": ...}`` in raw pixel units), ``options``
        (the family options and their defaults for this variant) and ``description``.
    """
    spec = MODELS.get(name)
    return {
        "name": spec.name,
        "title": spec.title,
        "paper": spec.paper,
        "description": spec.description,
        "input_shape": tuple(spec.input_shape),
        "min_size": tuple(spec.min_size),
        "num_classes": spec.num_classes,
        **figures(name),
        "preprocessing": {"mean": list(spec.mean), "std": list(spec.std)},
        "auxiliary_loss_weights": list(spec.auxiliary_loss_weights),
        "keras_application": spec.keras_application and spec.keras_application.name,
        "weights": available_weights(name),
        "options": {
            **{k: v for k, v in spec.family_options().items() if k not in ("mean", "std")},
            **spec.options,
        },
    }


def available_weights(name: str) -> dict[str, dict[str, Any]]:
    """The published weights of ``name``, by the value of ``weights=`` that loads them."""
    spec = MODELS.get(name)
    available: dict[str, dict[str, Any]] = {}
    if spec.keras_application is not None:
        available["imagenet"] = {"source": f"keras.applications.{spec.keras_application.name}"}
    entry = PUBLISHED.get(name)
    if entry is not None:
        available["torchvision"] = {
            "url": entry.url,
            "weights": entry.weights,
            "top1": entry.top1,
            "top5": entry.top5,
            "resize": entry.resize,
            "source": f"torchvision's model table, {TORCHVISION_TABLE_URL}",
        }
    republished = REPUBLISHED.get(name)
    if republished is not None:  # torchvision's weights, the same accuracy
        available["timm"] = {
            **available["torchvision"],
            "url": republished.url,
            "repo": republished.repo,
            "source": f"torchvision's model table (the weights timm republishes), "
            f"{TORCHVISION_TABLE_URL}",
        }
    return available


def measure(name: str) -> dict[str, int]:
    """Build ``name`` at its default input and paper class count, and count."""
    spec = MODELS.get(name)
    # Counting needs shapes, not values: skip drawing the random weights, which is most
    # of the time it takes to build a 100M-parameter network.
    with keras.StatelessScope(initialize_variables=False):
        model = create_model(name, num_classes=spec.num_classes)
    counts = {
        "parameters": model.count_params(),
        "trainable_parameters": sum(math.prod(w.shape) for w in model.trainable_weights),
        "multiply_accumulates": multiply_accumulates(model),
    }
    keras.backend.clear_session()
    return counts


def listed(name: str) -> dict[str, Any]:
    """What the table records of ``name`` beside its counts, from the registry."""
    spec = MODELS.get(name)
    return {
        "title": spec.title,
        "paper": spec.paper,
        "input_shape": list(spec.input_shape),
        "min_size": list(spec.min_size),
    }


def recorded() -> dict[str, dict[str, Any]]:
    """The precomputed table (empty if missing)."""
    return models_table()


def figures(name: str) -> dict[str, int]:
    """Counts for ``name``: from the table, or measured when the table lacks it."""
    entry = recorded().get(name)
    return {key: entry[key] for key in COUNTS} if entry else _measured(name)


@functools.cache
def _measured(name: str) -> dict[str, int]:
    return measure(name)


def write_table(names: list[str] | None = None) -> None:
    """Measure ``names`` (default: every registered model) into ``complexity.json``, and
    refresh every registered model's listed fields; models no longer registered are dropped."""
    table = {name: entry for name, entry in recorded().items() if name in MODELS}
    for name in MODELS.names() if names is None else names:
        table[name] = measure(name)
        print(f"{name}: {table[name]}", flush=True)
    table = {name: {**listed(name), **table[name]} for name in sorted(table)}
    MODELS_TABLE.write_text(json.dumps(table, indent=1) + "\n")
    models_table.cache_clear()
