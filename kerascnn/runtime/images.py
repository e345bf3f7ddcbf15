"""Image files in, ranked classes out: what ``kerascnn predict`` does around an artifact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerascnn.data.pipeline import image_converter
from kerascnn.errors import InvalidArgumentError, MissingFileError


def read_images(paths: Sequence[str | Path], input_shape: Sequence[int]) -> np.ndarray:
    """Decode JPEG/PNG/BMP/GIF files into raw pixels at ``input_shape`` (H, W, C), converting
    grayscale/RGB/RGBA as the model needs (as the training pipeline does)."""
    images = []
    for path in map(Path, paths):
        if not path.is_file():
            raise MissingFileError(f"image not found: {path}")
        images.append(decode_image(path.read_bytes(), input_shape, name=str(path)))
    return np.stack(images)


def decode_image(data: bytes, input_shape: Sequence[int], name: str = "image") -> np.ndarray:
    """One encoded JPEG/PNG/BMP/GIF image into raw pixels at ``input_shape`` (H, W, C), as
    ``read_images`` reads a file; ``name`` is what an error calls it."""
    height, width, channels = input_shape
    try:
        image = tf.io.decode_image(data, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError):
        raise InvalidArgumentError(
            f"cannot decode {name}: not a JPEG, PNG, BMP or GIF image"
        ) from None
    return image_converter((height, width), channels)(image).numpy()


def top_k(probabilities: np.ndarray, class_names: Sequence[str], k: int) -> list[list[dict]]:
    """Per image, the ``k`` most probable classes as ``{"class", "index", "probability"}``."""
    k = min(k, probabilities.shape[-1])
    results = []
    for row in probabilities:
        order = np.argsort(-row)[:k]
        results.append(
            [
                {"class": class_names[i], "index": int(i), "probability": float(row[i])}
                for i in order
            ]
        )
    return results
