"""Receptive fields, from the layers' kernels and strides (the standard arithmetic).

For a layer with kernel ``k``, stride ``s`` and dilation ``d`` applied to a feature map whose
units see ``r`` input pixels and sit ``j`` input pixels apart (the *jump*, the product of the
strides so far):

    r_out = r_in + (d (k - 1)) j_in,    j_out = j_in s

(Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep learning"; Araujo,
Norris & Sim 2019, "Computing Receptive Fields of Convolutional Neural Networks", Distill).
Where branches merge (an addition, a concatenation) the output sees what its widest input
sees: the maximum over the inputs. Padding moves where a field starts, not its size, so it
is left out. A layer whose output is not a feature map (flatten, global pooling, a dense
layer on a vector) sees the whole input: its field is ``None``. A layer that runs a nested
model (``layers.nested_model``) composes that model's field with its input's:
``r_out = r_in + (R - 1) j_in``, ``j_out = j_in J`` for the nested output's field ``R, J``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerascnn.models.layers import nested_model

Pair = tuple[int, int]

# Layers that change a map's size without moving or widening what a unit sees.
PADDING_LAYERS = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)
GLOBAL_POOLING = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


@dataclass(frozen=True)
class Field:
    """What one unit of a feature map sees: ``size`` (height, width) input pixels, units
    ``jump`` (height, width) input pixels apart; both ``None`` for the whole input."""

    size: Pair | None
    jump: Pair | None

    @property
    def is_global(self) -> bool:
        return self.size is None


WHOLE_INPUT = Field(None, None)
PIXEL = Field((1, 1), (1, 1))


def receptive_fields(model: keras.Model) -> dict[str, Field]:
    """The receptive field at every layer's output, by layer name, in pixels of the input.

    Raises:
        ValueError: a layer changes a map's size in a way the arithmetic does not know (a
            custom layer without ``kernel_size``/``pool_size``/``strides`` attributes).
    """
    fields: dict[str, Field] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            fields[layer.name] = PIXEL
            continue
        inputs = [fields[name] for name in inbound_layer_names(layer)]
        fields[layer.name] = layer_field(layer, inputs)
    return fields


def output_layer_name(model: keras.Model) -> str:
    """The name of the layer that makes ``model``'s (first) output."""
    return model.outputs[0]._keras_history.operation.name


def inbound_layer_names(layer: keras.layers.Layer) -> list[str]:
    """The names of the layers whose outputs ``layer`` was (first) called on."""
    node = layer._inbound_nodes[0]
    return [t._keras_history.operation.name for t in node.input_tensors]


def layer_field(layer: keras.layers.Layer, inputs: list[Field]) -> Field:
    """The field at ``layer``'s output given the fields at its inputs."""
    output_shape = _shape(layer.output)
    if len(output_shape) != 4 or isinstance(layer, GLOBAL_POOLING):
        return WHOLE_INPUT
    spatial = [f for f, shape in zip(inputs, _input_shapes(layer), strict=True) if len(shape) == 4]
    if not spatial or any(f.is_global for f in spatial):
        return WHOLE_INPUT
    merged = Field(
        tuple(max(f.size[axis] for f in spatial) for axis in (0, 1)),
        tuple(max(f.jump[axis] for f in spatial) for axis in (0, 1)),
    )
    nested = nested_model(layer)
    if nested is not None:
        return compose(merged, receptive_fields(nested)[output_layer_name(nested)])
    kernel, stride, dilation = window(layer)
    if kernel is None:
        if not isinstance(layer, PADDING_LAYERS) and not _spatial(layer):
            raise ValueError(
                f"cannot compute the receptive field at layer {layer.name!r} "
                f"({type(layer).__name__}): it resizes the map but has no kernel_size, "
                f"pool_size or strides"
            )
        return merged
    return Field(
        tuple(merged.size[a] + dilation[a] * (kernel[a] - 1) * merged.jump[a] for a in (0, 1)),
        tuple(merged.jump[a] * stride[a] for a in (0, 1)),
    )


def compose(outer: Field, inner: Field) -> Field:
    """The field of ``inner`` (in pixels of a map whose units see ``outer``) in input pixels."""
    if inner.is_global:
        return WHOLE_INPUT
    return Field(
        tuple(outer.size[a] + (inner.size[a] - 1) * outer.jump[a] for a in (0, 1)),
        tuple(outer.jump[a] * inner.jump[a] for a in (0, 1)),
    )


def window(layer: keras.layers.Layer) -> tuple[Pair | None, Pair, Pair]:
    """(kernel, stride, dilation) of a sliding-window layer; kernel None for other layers.

    Read from the attributes Keras's convolutions and poolings have (``kernel_size``,
    ``pool_size``, ``strides``, ``dilation_rate``), so custom layers that keep the same names
    (LeNet's subsampling, the option-A shortcut) are covered too."""
    pool = getattr(layer, "pool_size", None)
    kernel = getattr(layer, "kernel_size", None) or pool
    stride = getattr(layer, "strides", None)
    if kernel is None and stride is None:
        return None, (1, 1), (1, 1)
    kernel = _pair(kernel or 1)
    # A pooling without strides steps by its window (LeNet's subsampling); a convolution by 1.
    stride = _pair(stride or (kernel if pool else 1))
    dilation = _pair(getattr(layer, "dilation_rate", None) or 1)
    return kernel, stride, dilation


def _pair(value) -> Pair:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _shape(tensor) -> tuple:
    if isinstance(tensor, list | tuple):
        tensor = tensor[0]
    return tuple(tensor.shape)


def _input_shapes(layer: keras.layers.Layer) -> list[tuple]:
    return [tuple(t.shape) for t in layer._inbound_nodes[0].input_tensors]


def _spatial(layer: keras.layers.Layer) -> bool:
    """Whether every 4-D input has the output's height and width."""
    out = _shape(layer.output)[1:3]
    return all(shape[1:3] == out for shape in _input_shapes(layer) if len(shape) == 4)
