"""Multiply-accumulates of a model, computed from its layers.

The convention of the papers and of torchvision's ``GFLOPS`` metadata: one
multiply-accumulate per weight use in convolutions and fully connected layers; batch norm,
activations, pooling and additions are not counted. A custom layer with weights reports its
own count through a ``multiply_accumulates(input_shape, output_shape)`` method.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import keras


def multiply_accumulates(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one image through ``model``.

    Raises:
        ValueError: a layer has no known count (a custom layer without the method).
    """
    return sum(layer_multiply_accumulates(layer) for layer in model.layers)


def layer_multiply_accumulates(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.Model):
        return multiply_accumulates(layer)
    if not layer.weights:  # pooling, activations, additions, reshapes
        return 0
    input_shape = _single_shape(layer.input)
    output_shape = _single_shape(layer.output)
    if hasattr(layer, "multiply_accumulates"):
        return int(layer.multiply_accumulates(input_shape, output_shape))
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        depthwise = _positions(output_shape) * input_shape[-1] * layer.depth_multiplier * kh * kw
        return (
            depthwise
            + _positions(output_shape)
            * input_shape[-1]
            * layer.depth_multiplier
            * (output_shape[-1])
        )
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _positions(output_shape) * output_shape[-1] * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        per_output = kh * kw * input_shape[-1] // layer.groups
        return _positions(output_shape) * output_shape[-1] * per_output
    if isinstance(layer, keras.layers.Dense):
        return _positions(output_shape) * input_shape[-1] * output_shape[-1]
    if layer.trainable_weights and not isinstance(
        layer, keras.layers.BatchNormalization | keras.layers.LayerNormalization
    ):
        raise ValueError(
            f"cannot count the multiply-accumulates of layer {layer.name!r} "
            f"({type(layer).__name__}); give it a multiply_accumulates(input_shape, "
            f"output_shape) method"
        )
    return 0


def _single_shape(tensor) -> tuple[int, ...]:
    if isinstance(tensor, list | tuple):
        tensor = tensor[0]
    return tuple(tensor.shape)


def _positions(output_shape: tuple[int, ...]) -> int:
    """Spatial positions a kernel is applied at (1 for a flat Dense input)."""
    return math.prod(output_shape[1:-1])


# Parameter and multiply-accumulate counts of every registered model at its default input,
# precomputed so that `kerascnn models` lists ~70 networks without building them (a
# harness test rebuilds each and checks this table; regenerate entries with
# ``python -c "from kerascnn.models import complexity; complexity.write_table(['NAME'])"``).
TABLE_PATH = Path(__file__).with_name("complexity.json")


def measure(name: str) -> dict[str, int]:
    """Build ``name`` at its default input and paper class count, and count."""
    from kerascnn.models.factory import create_model
    from kerascnn.models.spec import MODELS

    spec = MODELS.get(name)
    # Counting needs shapes, not values: skip drawing the random weights, which is most
    # of the time it takes to build a 100M-parameter network.
    with keras.StatelessScope(initialize_variables=False):
        model = create_model(name, num_classes=spec.num_classes)
    figures = {
        "parameters": model.count_params(),
        "trainable_parameters": sum(math.prod(w.shape) for w in model.trainable_weights),
        "multiply_accumulates": multiply_accumulates(model),
    }
    keras.backend.clear_session()
    return figures


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
    from kerascnn.models.factory import list_models

    table = dict(recorded())
    for name in names or list_models():
        table[name] = measure(name)
        print(f"{name}: {table[name]}", flush=True)
    TABLE_PATH.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")
    recorded.cache_clear()
