"""Magnitude pruning (Han et al. 2015, "Learning both Weights and Connections for Efficient
Neural Networks") on the gradual schedule of Zhu & Gupta 2017 ("To prune, or not to prune").

The kernels of ``Conv2D``, ``DepthwiseConv2D`` and ``Dense`` layers are pruned: the smallest
weights by magnitude (per layer, or against one global threshold) or, ``structured``, whole
output filters by the L1 norm of their kernel (Li et al. 2017, "Pruning Filters for Efficient
ConvNets"; their biases go too, and the gamma and beta of a batch normalisation right after
the layer, so a pruned filter's output is exactly zero and ``shrink`` can delete it). Everything is
written with ``keras.ops`` and ``Variable.assign``, so it runs on any Keras backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import ops

from kerascnn.errors import InvalidArgumentError
from kerascnn.models.layers import flat_layers

# The layers whose kernel's last axis is their output filters, which structured pruning
# removes (a depthwise kernel's last axis is its channel multiplier: it is left whole).
FILTERS_LAST = (keras.layers.Conv2D, keras.layers.Dense)
# Zhu & Gupta's exponent: prune fast while the network is redundant, slowly near the end.
SCHEDULE_POWER = 3


@dataclass(frozen=True)
class Target:
    """One prunable layer: its kernel variable, and its bias and ``followers`` (the gamma and
    beta of a batch normalisation right after it), pruned with whole filters."""

    layer: keras.layers.Layer
    kernel: keras.Variable
    bias: keras.Variable | None
    followers: tuple = ()

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def kind(self) -> str:
        """ "fc" for a Dense kernel, "conv" for any other (Deep Compression's two index widths)."""
        return "fc" if isinstance(self.layer, keras.layers.Dense) else "conv"


def prunable_targets(model: keras.Model, structured: bool = False) -> list[Target]:
    """The kernels magnitude pruning applies to: those of ``Conv2D``, ``DepthwiseConv2D`` and
    ``Dense`` layers and of any other layer with a trainable ``kernel`` (LeNet-5's partially
    connected C3), inside nested models and stochastic depth's branches too; ``structured``,
    only those of ``Conv2D`` and ``Dense``, whose last kernel axis is the output filters.

    Raises:
        InvalidArgumentError: the model has none.
    """
    targets = []
    for layer in flat_layers(model):
        if structured and not isinstance(layer, FILTERS_LAST):
            continue
        kernel = getattr(layer, "kernel", None)
        if isinstance(layer, keras.layers.SeparableConv2D) or kernel is None:
            continue
        if not kernel.trainable or len(kernel.shape) < 2:
            continue
        bias = getattr(layer, "bias", None) if getattr(layer, "use_bias", True) else None
        targets.append(Target(layer, kernel, bias, _followers(layer) if structured else ()))
    if not targets:
        raise InvalidArgumentError(
            f"{model.name} has nothing to prune or share: no Conv2D, DepthwiseConv2D or Dense "
            f"layer, nor any other with a trainable kernel"
        )
    return targets


def only_consumer(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """The one layer that reads ``layer``'s output, or None (several, none, or shared)."""
    nodes = layer._outbound_nodes
    if len(layer._inbound_nodes) != 1 or len(nodes) != 1:
        return None
    return nodes[0].operation


def _followers(layer: keras.layers.Layer) -> tuple:
    """The gamma and beta of a batch normalisation reading ``layer``'s output channels."""
    after = only_consumer(layer)
    if not isinstance(after, keras.layers.BatchNormalization):
        return ()
    weights = (getattr(after, "gamma", None), getattr(after, "beta", None))
    return tuple(w for w in weights if w is not None)


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    if not 0.0 <= float(sparsity) < 1.0:
        raise InvalidArgumentError(f"{name} must be in [0, 1); received {sparsity}")
    return float(sparsity)


def polynomial_sparsity(
    step: int, initial: float, final: float, begin: int, end: int, frequency: int = 1
) -> float:
    """Zhu & Gupta's schedule (their eq. 1): ``s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n
    dt))^3`` for ``t0 <= t <= t0 + n dt``, with ``t`` held at the last multiple of the
    pruning frequency ``dt`` after ``t0``; 0 before ``begin``, ``final`` from ``end`` on."""
    if step < begin:
        return 0.0
    if step >= end or end <= begin:
        return final
    held = begin + (step - begin) // frequency * frequency
    progress = (held - begin) / (end - begin)
    return final + (initial - final) * (1.0 - progress) ** SCHEDULE_POWER


def _lowest(scores, count: int):
    """A 0/1 mask of ``scores``'s shape that is 0 at its ``count`` smallest entries (ties
    broken by position, so exactly ``count`` are zero)."""
    flat = ops.reshape(scores, (-1,))
    size = int(flat.shape[0])
    if count <= 0:
        return ops.ones_like(scores)
    order = ops.argsort(flat)
    ranks = ops.scatter(ops.expand_dims(order, -1), ops.arange(size, dtype="int32"), (size,))
    return ops.reshape(ops.cast(ranks >= count, scores.dtype), ops.shape(scores))


def filter_norms(kernel):
    """L1 norm of each output filter: over every axis but the last (``Conv2D`` (h, w, in,
    out) and ``Dense`` (in, out)); a depthwise kernel (h, w, in, multiplier) per channel."""
    return ops.sum(ops.abs(kernel), axis=tuple(range(len(kernel.shape) - 1)))


def magnitude_masks(
    targets: list[Target],
    sparsity: float,
    scope: str = "layer",
    structured: bool = False,
    layers: dict[str, float] | None = None,
) -> dict[str, tuple]:
    """``{layer name: (kernel mask, filter mask or None)}`` zeroing a ``sparsity`` fraction.

    ``scope="layer"`` prunes each layer to ``sparsity``; ``"global"`` ranks every kernel
    weight of the model against one threshold. ``structured`` ranks whole filters by L1
    norm within each layer and leaves the last layer (the classifier: its filters are
    classes) whole. ``layers`` (``{name: sparsity}``) prunes those layers each to its own
    sparsity, alone; the others follow ``sparsity`` and ``scope``.
    """
    layers = layers or {}
    masks = {}
    if structured:
        for target in targets[:-1]:
            norms = filter_norms(target.kernel)
            count = math.floor(layers.get(target.name, sparsity) * int(norms.shape[0]))
            keep = _lowest(norms, count)
            masks[target.name] = (ops.broadcast_to(keep, target.kernel.shape), keep)
        return masks
    alone = targets
    if scope == "global":
        masks.update(_global_masks([t for t in targets if t.name not in layers], sparsity))
        alone = [t for t in targets if t.name in layers]
    for target in alone:
        count = math.floor(layers.get(target.name, sparsity) * math.prod(target.kernel.shape))
        masks[target.name] = (_lowest(ops.abs(target.kernel), count), None)
    return masks


def _global_masks(targets: list[Target], sparsity: float) -> dict[str, tuple]:
    """Masks ranking every kernel weight of ``targets`` against one threshold."""
    if not targets:
        return {}
    flat = ops.concatenate([ops.reshape(ops.abs(t.kernel), (-1,)) for t in targets])
    keep = _lowest(flat, math.floor(sparsity * int(flat.shape[0])))
    masks, start = {}, 0
    for target in targets:
        size = math.prod(target.kernel.shape)
        masks[target.name] = (ops.reshape(keep[start : start + size], target.kernel.shape), None)
        start += size
    return masks


def apply_masks(targets: list[Target], masks: dict[str, tuple]) -> None:
    """Zero the pruned weights in place (``Variable.assign``); whole filters take their bias
    and followers with them."""
    for target in targets:
        if target.name not in masks:
            continue
        kernel_mask, keep = masks[target.name]
        target.kernel.assign(target.kernel * ops.cast(kernel_mask, target.kernel.dtype))
        if keep is None:
            continue
        for variable in (target.bias, *target.followers):
            if variable is not None:
                variable.assign(variable * ops.cast(keep, variable.dtype))


def sparsity_of(variable) -> float:
    """The fraction of exact zeros in a weight."""
    values = ops.convert_to_numpy(variable)
    return float((values == 0).mean()) if values.size else 0.0
