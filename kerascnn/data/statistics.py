"""Pixel statistics of a training set, for the preprocessing the papers baked in: VGG's
per-channel mean, AlexNet's mean image, and AlexNet's PCA colour lighting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kerascnn.data.ops import pca_from_pixels
from kerascnn.data.pipeline import split_arrays
from kerascnn.data.sources import Split

# Statistics come from at most this many training images (evenly spread through the split).
SAMPLE_LIMIT = 2000
NORMALIZATIONS = ("auto", "channel-mean", "mean-image")


@dataclass(frozen=True)
class PixelStatistics:
    mean_image: np.ndarray  # (height, width, channels), raw 0-255 pixel units
    channel_mean: tuple[float, ...]
    eigenvalues: tuple[float, ...] | None  # RGB covariance of [0, 1] pixels; None for gray
    eigenvectors: tuple[tuple[float, ...], ...] | None
    images: int


def pixel_statistics(
    split: Split, *, image_size: Sequence[int], channels: int, limit: int = SAMPLE_LIMIT
) -> PixelStatistics:
    """Statistics of the training split at the model's size (at most ``limit`` images,
    evenly spread through the split)."""
    images, _ = split_arrays(split.spread(limit), image_size=image_size, channels=channels)
    images = images.astype("float64")
    mean_image = images.mean(axis=0)
    values = vectors = None
    if channels == 3:
        values, vectors = pca_from_pixels(images)
    return PixelStatistics(
        mean_image=mean_image.astype("float32"),
        channel_mean=tuple(float(v) for v in mean_image.mean(axis=(0, 1))),
        eigenvalues=values,
        eigenvectors=vectors,
        images=len(images),
    )


def normalization_options(name: str, stats: PixelStatistics) -> dict:
    """create_model's ``mean``/``std`` for a ``--normalization`` choice: ``channel-mean``
    subtracts the training set's mean RGB value (VGG), ``mean-image`` its mean image
    (AlexNet); neither divides (std 1), as in those papers. ``auto`` keeps the model's."""
    channels = len(stats.channel_mean)
    if name == "channel-mean":
        return {"mean": list(stats.channel_mean), "std": [1.0] * channels}
    if name == "mean-image":
        return {"mean": stats.mean_image.tolist(), "std": [1.0] * channels}
    return {}
