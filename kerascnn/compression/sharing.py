"""Weight sharing (Han et al. 2016, "Deep Compression", section 3): each layer's kernel is
clustered by k-means into a codebook of ``2**bits`` values, and every weight becomes an
index into it.

- The centroids start spaced linearly between the smallest and largest weight (the paper's
  linear initialisation, which it found best: it keeps the rare large weights that matter).
- A pruned layer keeps its zeros: 0 is one of its ``2**bits`` codes and never moves.
- During fine-tuning the weights stay tied to their centroids: after each optimiser step,
  each centroid moves by the mean of its members' updates (with plain SGD that is the
  paper's gradient sum over the members, at a learning rate divided by the cluster's size;
  the mean keeps adaptive optimisers, whose per-weight steps are normalised, stable) and
  every member takes the centroid's value again.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from kerascnn.compression.pruning import Target
from kerascnn.errors import InvalidArgumentError

KMEANS_ITERATIONS = 30


def check_bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise InvalidArgumentError(f"cluster bits must be an integer from 1 to 8; received {bits}")
    return bits


def linear_kmeans(values: np.ndarray, clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means with linear initialisation: ``(centroids, index of each value)``."""
    values = np.asarray(values, dtype="float64").ravel()
    centroids = np.linspace(values.min(), values.max(), clusters)
    index = np.zeros(values.shape, dtype="int32")
    for _ in range(KMEANS_ITERATIONS):
        # Sorted centroids: the nearest is found between midpoints, in O(n log k).
        order = np.argsort(centroids)
        centroids = centroids[order]
        new_index = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values).astype("int32")
        counts = np.bincount(new_index, minlength=clusters)
        sums = np.bincount(new_index, weights=values, minlength=clusters)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.array_equal(new_index, index):
            break
        index = new_index
    return centroids.astype("float32"), index


@dataclass
class SharedKernel:
    """One layer's codebook and the index of each of its kernel's weights."""

    target: Target
    codebook: keras.Variable  # (2**bits,)
    index: object  # int32 tensor of the kernel's shape
    pinned_zero: bool  # code 0 is the pruned weights' 0

    @property
    def name(self) -> str:
        return self.target.name


def share_weights(targets: list[Target], bits: int) -> list[SharedKernel]:
    """Cluster each kernel into ``2**bits`` values and tie it to them (the kernel is
    overwritten with its centroids)."""
    shared = []
    codes = 2**bits
    for target in targets:
        kernel = ops.convert_to_numpy(target.kernel)
        nonzero = kernel != 0
        pinned = not nonzero.all()
        learned = codes - 1 if pinned else codes
        index = np.zeros(kernel.shape, dtype="int32")
        if learned and nonzero.any():
            centroids, found = linear_kmeans(kernel[nonzero], learned)
            index[nonzero] = found + (1 if pinned else 0)
        else:
            centroids = np.zeros(learned, "float32")
        codebook = np.concatenate([[0.0] if pinned else [], centroids]).astype("float32")
        variable = keras.Variable(codebook, trainable=False, name=f"{target.name}_codebook")
        entry = SharedKernel(target, variable, ops.convert_to_tensor(index), pinned)
        target.kernel.assign(ops.take(variable, entry.index))
        shared.append(entry)
    return shared


def retie(shared: list[SharedKernel]) -> None:
    """After an optimiser step: each centroid moves by the mean of its members' updates,
    and the members take its value again (pruned weights stay 0)."""
    for entry in shared:
        kernel, codebook = entry.target.kernel, entry.codebook
        codes = int(codebook.shape[0])
        flat_index = ops.reshape(entry.index, (-1,))
        updates = ops.reshape(kernel - ops.take(codebook, entry.index), (-1,))
        sums = ops.segment_sum(updates, flat_index, num_segments=codes)
        counts = ops.segment_sum(ops.ones_like(updates), flat_index, num_segments=codes)
        step = sums / ops.maximum(counts, 1.0)
        if entry.pinned_zero:
            step = step * ops.cast(ops.arange(codes) > 0, step.dtype)
        codebook.assign(codebook + step)
        kernel.assign(ops.take(codebook, entry.index))


def unique_values(variable) -> int:
    return int(np.unique(ops.convert_to_numpy(variable)).size)
