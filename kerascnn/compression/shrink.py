"""Deleting pruned filters for real (Li et al. 2017, "Pruning Filters for Efficient ConvNets",
section 3.2): after structured pruning, a filter whose kernel, bias and following batch
normalisation's gamma and beta are zero outputs exactly zero, so it is removed from its layer
together with the weights that read its channel in the next ``Conv2D`` or ``Dense`` layer. The
smaller network computes the same function with fewer parameters, multiply-accumulates and
milliseconds; masking alone saves none of them.

A channel is followed from the pruned layer through layers that map zero to zero channel by
channel (batch normalisation whose output at zero is zero, ReLU-like activations, pooling,
padding, dropout, global pooling, flattening) to the layer that reads it. Where a channel
meets anything else (an addition of a residual block, a concatenation, LRN, a model output),
its filters stay: in a ResNet that leaves the last convolution of each block whole and
shrinks the first, as Li et al. do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from kerascnn.compression.pruning import only_consumer

L = keras.layers
PRODUCERS = (L.Conv2D, L.Dense)
NOT_PRODUCERS = (L.DepthwiseConv2D, L.SeparableConv2D, L.Conv2DTranspose)
PASS_THROUGH = (
    L.BatchNormalization,
    L.Activation,
    L.ReLU,
    L.LeakyReLU,
    L.MaxPooling2D,
    L.AveragePooling2D,
    L.GlobalAveragePooling2D,
    L.GlobalMaxPooling2D,
    L.ZeroPadding2D,
    L.Dropout,
    L.SpatialDropout2D,
    L.Flatten,
)


@dataclass(frozen=True)
class Cut:
    """Filters ``keep`` (of ``channels``) of ``producer``, read through ``path`` by
    ``consumer`` at its input rows ``rows``."""

    producer: str
    channels: int
    keep: np.ndarray
    path: tuple[str, ...]
    consumer: str
    rows: np.ndarray


def dead_filters(layer: keras.layers.Layer) -> np.ndarray:
    """Per output filter: kernel and bias all zero, and the layer's activation zero at zero."""
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    dead = (kernel == 0).reshape(-1, kernel.shape[-1]).all(axis=0)
    if getattr(layer, "use_bias", False):
        dead &= keras.ops.convert_to_numpy(layer.bias) == 0
    return dead & _zero_at_zero(layer.activation)


def _zero_at_zero(activation) -> bool:
    return bool(keras.ops.convert_to_numpy(activation(keras.ops.zeros((1,))))[0] == 0)


def zero_stays_zero(layer: keras.layers.Layer, channels: int) -> np.ndarray:
    """Per channel: whether ``layer`` maps a channel that is zero everywhere to zero."""
    if isinstance(layer, L.BatchNormalization):
        if layer.axis not in (-1, len(layer.input.shape) - 1):
            return np.zeros(channels, bool)
        at_zero = np.zeros(channels, "float32")
        if layer.center:  # beta - gamma * mean / sqrt(variance + epsilon)
            at_zero += keras.ops.convert_to_numpy(layer.beta)
        mean = keras.ops.convert_to_numpy(layer.moving_mean)
        deviation = np.sqrt(keras.ops.convert_to_numpy(layer.moving_variance) + layer.epsilon)
        scale = keras.ops.convert_to_numpy(layer.gamma) if layer.scale else 1.0
        return at_zero - scale * mean / deviation == 0
    if isinstance(layer, L.Activation):
        return np.full(channels, _zero_at_zero(layer.activation))
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return np.zeros(channels, bool)
    return np.ones(channels, bool)


def plan_cuts(model: keras.Model) -> list[Cut]:
    """Every pruned layer whose dead filters can be deleted, and where their channels go."""
    outputs = {id(t._keras_history.operation) for t in model.outputs}
    cuts = []
    for layer in model.layers:
        if not isinstance(layer, PRODUCERS) or isinstance(layer, NOT_PRODUCERS):
            continue
        if id(layer) in outputs or len(layer._inbound_nodes) != 1:
            continue
        dead, path, spatial = dead_filters(layer), [], 1
        after = only_consumer(layer)
        while isinstance(after, PASS_THROUGH) and dead.any() and id(after) not in outputs:
            dead &= zero_stays_zero(after, len(dead))
            if isinstance(after, L.Flatten):
                spatial = math.prod(after.input.shape[1:-1])
            path.append(after.name)
            after = only_consumer(after)
        if not isinstance(after, PRODUCERS) or isinstance(after, NOT_PRODUCERS):
            continue
        if not dead.any() or dead.all() or len(after._inbound_nodes) != 1:
            continue
        keep = np.flatnonzero(~dead)
        rows = (np.arange(spatial)[:, None] * len(dead) + keep[None, :]).ravel()
        cuts.append(Cut(layer.name, len(dead), keep, tuple(path), after.name, rows))
    return cuts


def shrink(model: keras.Model) -> tuple[keras.Model, list[Cut]]:
    """``model`` without the filters structured pruning zeroed (the same outputs), and the
    cuts made; ``model`` itself when there is nothing to delete."""
    cuts = plan_cuts(model)
    if not cuts:
        return model, []
    sizes = {cut.producer: len(cut.keep) for cut in cuts}

    def clone(layer):
        config = layer.get_config()
        if layer.name in sizes:
            config["filters" if isinstance(layer, L.Conv2D) else "units"] = sizes[layer.name]
        return layer.__class__.from_config(config)

    smaller = keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, smaller.layers, strict=True):
        new.set_weights(_sliced(old, cuts))
    return smaller, cuts


def _sliced(layer: keras.layers.Layer, cuts: list[Cut]) -> list[np.ndarray]:
    """``layer``'s weights without the deleted filters' outputs, inputs and channels."""
    weights = layer.get_weights()
    for cut in cuts:
        if layer.name == cut.producer:  # kernel [..., out] and bias [out]
            weights = [w[..., cut.keep] for w in weights]
        if layer.name in cut.path:  # per-channel weights (batch normalisation)
            weights = [w[..., cut.keep] for w in weights]
        if layer.name == cut.consumer:  # kernel [..., in, out]: rows of the input axis
            weights[0] = np.take(weights[0], cut.rows, axis=-2)
    return weights
