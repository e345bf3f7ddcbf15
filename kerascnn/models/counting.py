"""Multiply-accumulates of a model, computed from its layers.

The convention of the papers and of torchvision's ``GFLOPS`` metadata: one
multiply-accumulate per weight use in convolutions and fully connected layers; batch norm,
activations, pooling and additions are not counted. A custom layer with weights reports its
own count through a ``multiply_accumulates(input_shape, output_shape)`` method; a layer that
runs a nested model (``StochasticDepth``'s residual branch) counts as that model's layers.
"""

from __future__ import annotations

import math

import keras

from kerascnn.models.layers import nested_model


def multiply_accumulates(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one image through ``model``.

    Raises:
        ValueError: a layer has no known count (a custom layer without the method).
    """
    return sum(layer_multiply_accumulates(layer) for layer in model.layers)


def layer_multiply_accumulates(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates of one layer (of a nested model, its layers') for one image."""
    nested = nested_model(layer)
    if nested is not None:
        return multiply_accumulates(nested)
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
