"""Checkpoint tensors into a built model: every shape checked before anything is assigned.

PyTorch lays out a convolution kernel as (out, in / groups, kh, kw) and Keras as (kh, kw,
in / groups, out), the same grouping of channels in both, so grouped (ResNeXt) and depthwise
kernels need nothing more than the transpose; a linear layer is (out, in) there and (in, out)
here. Batch normalisation's weight, bias, running mean and running variance are Keras's gamma,
beta, moving mean and moving variance. A fully connected layer reading a flattened feature map
(VGG's fc1) sees the map's values in channel-major order in PyTorch (C, H, W) and channel-last
in Keras (H, W, C): its kernel's rows are permuted accordingly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from kerascnn.errors import InvalidArgumentError
from kerascnn.models.convert.names import NameMap

# Buffers torchvision saves that have no counterpart in inference: BN's update counter.
IGNORED_SUFFIXES = (".num_batches_tracked",)
# Our layers that no checkpoint holds: the raw-pixel normalisation in front.
OWN_LAYERS = frozenset({"preprocessing"})


@dataclass(frozen=True)
class Expected:
    """One of a layer's variables, where it comes from in the checkpoint."""

    key: str
    shape: tuple[int, ...]  # ours
    torch_shape: tuple[int, ...]  # the same variable in PyTorch's layout
    convert: Callable[[np.ndarray], np.ndarray]


def expected_tensors(layer: keras.layers.Layer, prefix: str) -> list[Expected]:
    """The checkpoint tensors of one of our layers, in the order of ``layer.weights``."""
    shapes = [tuple(int(d) for d in w.shape) for w in layer.weights]
    identity = np.asarray
    if isinstance(layer, keras.layers.BatchNormalization):
        if not (layer.scale and layer.center):
            raise InvalidArgumentError(f"{layer.name}: batch norm without scale or centre")
        names = ("weight", "bias", "running_mean", "running_var")
        return [
            Expected(f"{prefix}.{n}", s, s, identity) for n, s in zip(names, shapes, strict=True)
        ]
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, fan_in, out = shapes[0]
        kernel = Expected(f"{prefix}.weight", shapes[0], (out, fan_in, kh, kw), _conv_kernel)
        return [kernel] + [Expected(f"{prefix}.bias", s, s, identity) for s in shapes[1:]]
    if isinstance(layer, keras.layers.Dense):
        fan_in, out = shapes[0]
        flattened = _flattened_map(layer)
        convert = _dense_kernel if flattened is None else _flattened_dense_kernel(flattened)
        kernel = Expected(f"{prefix}.weight", shapes[0], (out, fan_in), convert)
        return [kernel] + [Expected(f"{prefix}.bias", s, s, identity) for s in shapes[1:]]
    raise InvalidArgumentError(
        f"{layer.name}: no conversion for a {type(layer).__name__} layer with weights"
    )


def _conv_kernel(kernel: np.ndarray) -> np.ndarray:
    return np.transpose(kernel, (2, 3, 1, 0))


def _dense_kernel(kernel: np.ndarray) -> np.ndarray:
    return np.transpose(kernel)


def _flattened_dense_kernel(shape: tuple[int, int, int]) -> Callable[[np.ndarray], np.ndarray]:
    height, width, channels = shape

    def convert(kernel: np.ndarray) -> np.ndarray:
        out = kernel.shape[0]
        # (out, C, H, W) -> (out, H, W, C) within each row, then one transpose to (in, out).
        kernel = kernel.reshape(out, channels, height * width).transpose(0, 2, 1)
        return np.ascontiguousarray(kernel).reshape(out, height * width * channels).T

    return convert


def _flattened_map(layer: keras.layers.Layer) -> tuple[int, int, int] | None:
    """(H, W, C) of the map a ``Flatten`` feeds into ``layer`` (through dropout, as in
    torchvision's AlexNet); None for any other input."""
    source = layer.input._keras_history.operation
    while isinstance(source, keras.layers.Dropout):
        source = source.input._keras_history.operation
    if not isinstance(source, keras.layers.Flatten):
        return None
    _, height, width, channels = source.input.shape
    return int(height), int(width), int(channels)


def plan_assignment(
    model: keras.Model, names: NameMap, tensors: dict[str, np.ndarray], *, source: str
) -> list[tuple[keras.layers.Layer, list[np.ndarray]]]:
    """Each weighted layer of ``model`` and its converted values, every shape checked.

    Raises:
        InvalidArgumentError: naming the first tensor that is missing or does not fit, or
            the first tensor of the checkpoint that no layer takes (a checkpoint of a larger
            network); ``model`` is untouched.
    """
    pending, used = [], set()
    for layer in model.layers:
        if not layer.weights or layer.name in OWN_LAYERS:
            continue
        prefix = names.modules.get(layer.name)
        if prefix is None:
            raise InvalidArgumentError(f"{model.name}: no torchvision module for {layer.name}")
        values = []
        for expected in expected_tensors(layer, prefix):
            values.append(_checked(expected, tensors, layer, model, source))
            used.add(expected.key)
        pending.append((layer, values))
    include_top = any(names.modules[layer.name].startswith(names.head) for layer, _ in pending)
    left = [
        key
        for key in tensors
        if key not in used
        and not key.endswith(IGNORED_SUFFIXES)
        and not key.startswith(names.ignored)
        and (include_top or not key.startswith(names.head))
    ]
    if left:
        raise InvalidArgumentError(
            f"{source}: {len(left)} tensors fit no layer of {model.name}, the first "
            f"{left[0]} {tuple(tensors[left[0]].shape)}: a checkpoint of another network"
        )
    return pending


def _checked(expected: Expected, tensors, layer, model, source) -> np.ndarray:
    value = tensors.get(expected.key)
    if value is None:
        raise InvalidArgumentError(
            f"{source} has no tensor {expected.key} for {model.name}'s {layer.name} "
            f"{expected.torch_shape}: a checkpoint of another network"
        )
    if tuple(value.shape) != expected.torch_shape:
        raise InvalidArgumentError(
            f"{source}: tensor {expected.key} {tuple(value.shape)} does not fit "
            f"{model.name}'s {layer.name}, which needs {expected.torch_shape}"
        )
    converted = np.asarray(expected.convert(value.astype(np.float32, copy=False)))
    assert converted.shape == expected.shape, (expected.key, converted.shape)
    return converted


def assign(pending: list[tuple[keras.layers.Layer, list[np.ndarray]]]) -> None:
    """Set what ``plan_assignment`` checked (only once every layer fits: never half-loaded)."""
    for layer, values in pending:
        layer.set_weights(values)
