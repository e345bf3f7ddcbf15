"""Low-rank factorisation of fully connected layers by truncated SVD (Denton et al. 2014,
"Exploiting Linear Structure Within Convolutional Networks for Efficient Evaluation"; the CS231n
efficient-methods lecture): a Dense kernel ``W`` (in x out) becomes ``U_r sqrt(S_r)`` then
``sqrt(S_r) V_r^T``, two Dense layers through ``r`` units, ``r = ceil(fraction * min(in,
out))``, which the fine-tuning then retrains. Most of AlexNet's and VGG's parameters are in
such layers.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from kerascnn.errors import InvalidArgumentError


def check_rank_fraction(fraction: float) -> float:
    if not 0.0 < float(fraction) <= 1.0:
        raise InvalidArgumentError(f"--low-rank must be in (0, 1]; received {fraction}")
    return float(fraction)


def rank_for(layer: keras.layers.Dense, fraction: float) -> int:
    inputs, outputs = layer.kernel.shape
    return max(1, math.ceil(fraction * min(inputs, outputs)))


def factored_names(name: str) -> tuple[str, str]:
    """The names of the two Dense layers that replace the Dense layer ``name``."""
    return f"{name}_svd_u", f"{name}_svd_v"


def factored_dense(layer: keras.layers.Dense, fraction: float) -> keras.Sequential:
    """``layer`` as two Dense layers whose product is its kernel's best rank-``r``
    approximation (Eckart-Young); at full rank they compute what it computes."""
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype("float64")
    u, s, vt = np.linalg.svd(kernel, full_matrices=False)
    rank = rank_for(layer, fraction)
    root = np.sqrt(s[:rank])
    first_name, second_name = factored_names(layer.name)
    first = keras.layers.Dense(rank, use_bias=False, name=first_name)
    config = {**layer.get_config(), "name": second_name}
    second = keras.layers.Dense.from_config(config)
    factored = keras.Sequential([first, second], name=f"{layer.name}_low_rank")
    factored.build((None, kernel.shape[0]))
    first.kernel.assign((u[:, :rank] * root).astype("float32"))
    second.kernel.assign((root[:, None] * vt[:rank]).astype("float32"))
    if layer.use_bias:
        second.bias.assign(layer.bias)
    return factored


def check_factorable(model: keras.Model) -> None:
    if not any(isinstance(layer, keras.layers.Dense) for layer in model.layers):
        raise InvalidArgumentError(f"{model.name} has no Dense layer to factor")


def low_rank_model(model: keras.Model, fraction: float) -> keras.Model:
    """``model`` with each Dense layer factored (the other layers shared with it).

    Raises:
        InvalidArgumentError: the model has no Dense layer.
    """
    check_rank_fraction(fraction)
    check_factorable(model)

    def clone(layer):
        if isinstance(layer, keras.layers.Dense):
            return factored_dense(layer, fraction)
        return layer

    return keras.models.clone_model(model, clone_function=clone)
