"""Optimisers by name. Each factory takes the learning rate and returns a Keras optimiser."""

from __future__ import annotations

from collections.abc import Callable

import keras

from kerascnn.registry import Registry

OPTIMIZERS: Registry[Callable[[float], keras.optimizers.Optimizer]] = Registry("optimizer")

OPTIMIZERS.add("sgd", lambda lr: keras.optimizers.SGD(lr, momentum=0.9))
OPTIMIZERS.add("adam", lambda lr: keras.optimizers.Adam(lr))
OPTIMIZERS.add("adamw", lambda lr: keras.optimizers.AdamW(lr))
OPTIMIZERS.add("rmsprop", lambda lr: keras.optimizers.RMSprop(lr))
OPTIMIZERS.add("adagrad", lambda lr: keras.optimizers.Adagrad(lr))


def create_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """``sgd`` (momentum 0.9), ``adam``, ``adamw``, ``rmsprop`` or ``adagrad``."""
    return OPTIMIZERS.get(name)(learning_rate)
