"""Batch-norm moving statistics that describe the trained network.

Keras's ``BatchNormalization`` keeps exponential moving averages of each batch's mean and
variance (``moving = momentum * moving + (1 - momentum) * batch``, momentum 0.99 by default):
an average over roughly the last ``1 / (1 - momentum)`` steps (100), which starts from mean 0
and variance 1 and trails the weights while they move. After a short run they are far from
the statistics of the final network: a ResNet-20 trained 2 epochs (80 steps) on digits scores
93% on its test split with batch statistics and 10% (chance) in inference mode. Recomputing
them with forward passes over the training split in training mode, the weights untouched (what
PyTorch's ``torch.optim.swa_utils.update_bn`` does), gives the inference model the statistics
of the network it is.

``recompute_statistics`` does that; ``should_recompute`` is the rule ``--recompute-bn-stats
auto`` applies.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras

MODES = ("auto", "always", "never")
# "auto" recomputes when the best checkpoint was reached in fewer optimiser steps than this
# many averaging windows (1 / (1 - momentum) steps): after 5 windows the initial values weigh
# momentum ** (5 / (1 - momentum)) < 1% (0.99 ** 500 = 0.0066), and the average covers the
# last few hundred steps of a run long enough for its weights to have settled.
AUTO_WINDOWS = 5
# The training images the statistics are averaged over, at most (the first of the split).
MAX_IMAGES = 10_000


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The trainable batch-norm layers of ``model`` (nested models included): those whose
    statistics training updates (a frozen one runs in inference mode and keeps its own)."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def averaging_window(model: keras.Model) -> float:
    """The longest moving-average window of ``model``'s batch norms, in steps (0: none)."""
    momenta = [layer.momentum for layer in batchnorm_layers(model)]
    return max((1.0 / (1.0 - m) for m in momenta if m < 1.0), default=0.0)


def should_recompute(mode: str, model: keras.Model, steps: int) -> bool:
    """Whether ``mode`` recomputes the statistics of ``model`` trained for ``steps`` steps."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    window = averaging_window(model)
    if mode == "never" or not window:
        return False
    return mode == "always" or steps < AUTO_WINDOWS * window


def recompute_statistics(
    model: keras.Model, batches: Iterable, max_images: int = MAX_IMAGES
) -> int:
    """Set every trainable batch norm's moving mean and variance of ``model`` to the average
    of its batch statistics over ``batches`` ((images, labels) or images), each batch weighted
    by its size; the weights are not changed. Returns the images averaged over (0 when the
    model has no batch norm to update)."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
        layer.moving_variance.assign(keras.ops.ones_like(layer.moving_variance))
    seen = 0
    try:
        for batch in batches:
            images = batch[0] if isinstance(batch, tuple | list) else batch
            count = int(keras.ops.shape(images)[0])
            # A cumulative average: the moving value keeps seen / (seen + count) of itself.
            for layer in layers:
                layer.momentum = seen / (seen + count)
            model(images, training=True)
            seen += count
            if seen >= max_images:
                break
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return seen
