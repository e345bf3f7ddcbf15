"""What kerascnn knows about each registered model, without building it: ``model_info``.

Parameter and multiply-accumulate counts of every registered model at its default input are
precomputed in ``complexity.json``, so that `kerascnn models` lists ~70 networks without
building them; a harness test rebuilds each and checks the table. Regenerate entries with
``python -c "from kerascnn.models import catalogue; catalogue.write_table(['NAME'])"``.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import keras

from kerascnn.models.convert.torchvision import PUBLISHED, TABLE_URL
from kerascnn.models.counting import multiply_accumulates
from kerascnn.models.factory import create_model
from kerascnn.models.spec import MODELS

TABLE_PATH = Path(__file__).with_name("complexity.json")


def model_info(name: str) -> dict[str, Any]:
    """What kerascnn knows about a registered model.

    Returns:
        A dict with ``name``, ``title``, ``paper``, ``input_shape`` (default), ``min_size``,
        ``num_classes``, ``parameters``, ``trainable_parameters`` and
        ``multiply_accumulates`` (of one image, computed from the layers; at the paper's
        class count and default input, without auxiliary heads), ``auxiliary_loss_weights``,
        ``keras_application`` (its name, or None), ``weights`` (the published weights
        ``create_model(name, weights=...)`` takes: ``{"imagenet": {...}, "torchvision":
        {"url", "top1", "top5", "source"}}``, the ImageNet-1K accuracies as torchvision
        publishes them),
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
            "source": f"torchvision's model table, {TABLE_URL}",
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


@functools.cache
def recorded() -> dict[str, dict[str, int]]:
    """The precomputed table (empty if missing)."""
    if not TABLE_PATH.is_file():
        return {}
    return json.loads(TABLE_PATH.read_text())


def figures(name: str) -> dict[str, int]:
    """Counts for ``name``: from the table, or measured when the table lacks it."""
    table = recorded()
    return dict(table[name]) if name in table else _measured(name)


@functools.cache
def _measured(name: str) -> dict[str, int]:
    return measure(name)


def write_table(names: list[str] | None = None) -> None:
    """Measure ``names`` (default: every registered model) into ``complexity.json``."""
    table = dict(recorded())
    for name in names or MODELS.names():
        table[name] = measure(name)
        print(f"{name}: {table[name]}", flush=True)
    TABLE_PATH.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")
    recorded.cache_clear()
