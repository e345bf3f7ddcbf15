"""Batch-normalisation statistics recomputed for a model's current weights.

Weights that were not the ones trained last (an average of several epochs' weights, in
stochastic weight averaging) need their own batch statistics: the moving averages kept during
training belong to other weights (Izmailov et al. 2018, "Averaging Weights Leads to Wider
Optima and Better Generalization", section 3.2).
"""

from __future__ import annotations

import keras


def batchnorm_layers(layer: keras.layers.Layer) -> list[keras.layers.BatchNormalization]:
    """Every ``BatchNormalization`` inside ``layer``, nested models included."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [layer]
    found = []
    for inner in getattr(layer, "layers", ()):
        found += batchnorm_layers(inner)
    return found


def recompute_batchnorm_statistics(model: keras.Model, dataset, steps: int) -> int:
    """Set each batch-normalisation layer's moving mean and variance to the average of its
    batch statistics over ``steps`` batches of ``dataset`` (``(images, labels)`` batches),
    with the weights fixed; returns the number of batches used (0 without such layers).

    The momentum of batch ``k`` is ``(k - 1) / k``, so the moving value after ``k`` batches is
    the plain mean of the ``k`` batch values (PyTorch's ``update_bn`` does the same)."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
        layer.moving_variance.assign(keras.ops.zeros_like(layer.moving_variance))
    used = 0
    try:
        for used, (images, *_) in enumerate(dataset.take(steps), 1):
            for layer in layers:
                layer.momentum = (used - 1) / used
            model(images, training=True)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    return used
