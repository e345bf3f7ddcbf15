"""Blocks shared by several families. Custom layers are serialisable (STYLE 9)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from kerascnn.errors import InvalidArgumentError

POOLINGS = (None, "avg", "max")


def image_input(
    input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The model's input (raw 0-255 pixels) and its normalisation ``(x - mean) / std``.

    ``mean``/``std`` are per channel; a single value, or statistics for a different channel
    count (RGB statistics on a grayscale input), collapse to their average so the same
    registered model works on grayscale and colour data.
    """
    channels = int(input_shape[-1])
    mean = _per_channel(mean, channels)
    std = _per_channel(std, channels)
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = keras.layers.Normalization(mean=mean, variance=[s * s for s in std], name="preprocessing")(
        inputs
    )
    return inputs, x


def _per_channel(values: Sequence[float] | float, channels: int) -> list[float]:
    values = np.atleast_1d(np.asarray(values, dtype="float64"))
    if values.size != channels:
        values = np.full(channels, values.mean())
    return [float(v) for v in values]


def classifier(
    x: keras.KerasTensor,
    num_classes: int,
    classifier_activation: str | None,
    **dense_kwargs,
) -> keras.KerasTensor:
    """The final ``predictions`` Dense layer and its activation, kept in float32 so a
    softmax stays exact under mixed precision."""
    x = keras.layers.Dense(num_classes, name="predictions", **dense_kwargs)(x)
    return activation_output(x, classifier_activation)


def activation_output(x: keras.KerasTensor, classifier_activation: str | None) -> keras.KerasTensor:
    if classifier_activation is None:
        return x
    return keras.layers.Activation(
        classifier_activation, dtype="float32", name="classifier_activation"
    )(x)


def global_pool(x: keras.KerasTensor, pooling: str | None) -> keras.KerasTensor:
    """Feature-extraction pooling for ``include_top=False``: None keeps the 4-D map."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def check_head_arguments(num_classes: int, include_top: bool, pooling: str | None) -> None:
    if pooling not in POOLINGS:
        raise InvalidArgumentError(f"pooling must be None, 'avg' or 'max'; received {pooling!r}")
    if include_top and (not isinstance(num_classes, numbers.Integral) or num_classes < 1):
        raise InvalidArgumentError(
            f"num_classes must be a positive integer; received {num_classes!r}"
        )


@keras.saving.register_keras_serializable(package="kerascnn")
class ZeroPadShortcut(keras.layers.Layer):
    """He et al. 2015's option-A shortcut: identity, subsampled by ``strides`` and with the
    extra channels zero-padded, so increasing dimensions adds no parameters."""

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, x):
        if self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        extra = self.filters - x.shape[-1]
        if extra > 0:
            # Pad symmetrically, as the reference CIFAR implementations do.
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if self.strides > 1:
            height = None if height is None else -(-height // self.strides)
            width = None if width is None else -(-width // self.strides)
        return (batch, height, width, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}
