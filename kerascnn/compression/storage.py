"""What a compressed model takes on disk.

- ``file_sizes``: the measured bytes of a file a user ships, raw and gzip-compressed (level
  9, what a download or an app bundle's compression gives).
- ``deep_compression_bytes``: the storage of Han et al. 2016 ("Deep Compression"), computed
  as the paper does: per layer, each nonzero weight as a ``bits``-bit index into the layer's
  codebook, its position as the difference from the previous nonzero (``INDEX_BITS``: 8 for
  convolutions, 5 for fully connected layers, section 2), a filler zero whenever a gap
  exceeds what the index bits hold, and the codebook itself in 32-bit floats; then the same
  streams Huffman coded (section 4). Biases and every other parameter stay 32-bit floats.
  It is an estimate of a format the paper describes, not a file anyone can load.
"""

from __future__ import annotations

import gzip
import heapq
from collections import Counter
from pathlib import Path

import keras
import numpy as np

INDEX_BITS = {"conv": 8, "fc": 5}
FLOAT_BITS = 32


def file_sizes(path: str | Path) -> dict[str, int]:
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9))}


def relative_indices(kernel: np.ndarray, index_bits: int) -> list[int]:
    """The gaps between successive nonzero weights of the flattened kernel, each below
    ``2**index_bits``, with a filler entry (a stored zero) wherever a gap was too long."""
    positions = np.flatnonzero(np.asarray(kernel).ravel())
    gaps = np.diff(np.concatenate([[-1], positions]))
    largest = 2**index_bits - 1
    entries: list[int] = []
    for gap in gaps.tolist():
        while gap > largest:  # a filler zero at the furthest reachable position
            entries.append(largest)
            gap -= largest
        entries.append(gap)
    return entries


def huffman_bits(symbols: list) -> int:
    """The total length in bits of ``symbols`` under their optimal Huffman code."""
    counts = list(Counter(symbols).values())
    if len(counts) <= 1:
        return len(symbols)  # one symbol still takes a bit each
    heapq.heapify(counts)
    total = 0
    while len(counts) > 1:
        merged = heapq.heappop(counts) + heapq.heappop(counts)
        total += merged  # every symbol under the merged node gets one more bit
        heapq.heappush(counts, merged)
    return total


def layer_storage(kernel: np.ndarray, kind: str, bits: int | None) -> dict[str, int]:
    """One pruned (and possibly shared) kernel in the paper's sparse format, in bits."""
    index_bits = INDEX_BITS[kind]
    gaps = relative_indices(kernel, index_bits)
    entries = len(gaps)  # nonzero weights plus filler zeros
    flat = np.asarray(kernel).ravel()
    values = flat[np.flatnonzero(flat)].tolist()
    values += [0.0] * (entries - len(values))
    weight_bits = FLOAT_BITS if bits is None else bits
    codebook = 0 if bits is None else 2**bits * FLOAT_BITS
    plain = entries * (weight_bits + index_bits) + codebook
    coded = huffman_bits(gaps) + codebook
    coded += entries * FLOAT_BITS if bits is None else huffman_bits(values)
    return {"entries": entries, "bits": plain, "huffman_bits": coded}


def deep_compression_bytes(
    model: keras.Model,
    kernels: dict[str, tuple[np.ndarray, str]],
    bits: int | None,
    dense_parameters: int | None = None,
) -> dict[str, float]:
    """The paper's storage of ``model`` whose ``kernels`` (``{name: (values, "conv" | "fc")}``)
    are stored sparse; every other parameter at 32 bits. Bytes, against ``dense_parameters``
    (the source model's, where compression changed the count; ``model``'s by default) at 32
    bits."""
    total = sum(int(np.prod(w.shape)) for w in model.weights)
    dense = (dense_parameters or total) * FLOAT_BITS
    sparse_params = sum(values.size for values, _ in kernels.values())
    rest = (total - sparse_params) * FLOAT_BITS
    plain = coded = rest
    for values, kind in kernels.values():
        layer = layer_storage(values, kind, bits)
        plain += layer["bits"]
        coded += layer["huffman_bits"]
    return {
        "dense_bytes": dense / 8,
        "bytes": plain / 8,
        "huffman_bytes": coded / 8,
        "ratio": dense / plain,
        "huffman_ratio": dense / coded,
    }
