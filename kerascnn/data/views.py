"""Evaluation views, as the papers tested their networks.

- ``none``: one view, the whole image resized (or, with a crop fraction, the centre crop of
  the image whose shorter side is size / fraction).
- ``ten-crop``: AlexNet's test (Krizhevsky et al. 2012, section 4.1): the four corner crops
  and the centre crop of the image whose shorter side is size / fraction (256 for 224), and
  their horizontal flips; the softmax outputs of the 10 views averaged.
- ``multi-scale``: VGG's multi-scale test (Simonyan & Zisserman 2015, section 4.2) for
  fixed-size networks: the shorter side at 256, 384 and 512 (for 224; scaled to the model's
  size), the centre crop and its flip at each scale, 6 softmax outputs averaged. (VGG ran the
  network densely over the whole image; a crop per scale is the fixed-input equivalent.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from kerascnn.data import ops
from kerascnn.data.pipeline import convert_channels
from kerascnn.data.sources import Split
from kerascnn.errors import InvalidArgumentError

TTA_NAMES = ("none", "ten-crop", "multi-scale")
# AlexNet's 224 crops of 256 images.
DEFAULT_CROP_FRACTION = 224 / 256
MULTI_SCALE_SIDES = (256, 384, 512)


def check_tta(name: str) -> str:
    if name not in TTA_NAMES:
        raise InvalidArgumentError(f"unknown tta {name!r}; choose one of {', '.join(TTA_NAMES)}")
    return name


def view_op(tta: str, height: int, width: int, crop_fraction: float | None = None) -> Callable:
    """A graph-safe function: one float32 image (any size) -> (views, height, width, C)."""
    check_tta(tta)
    if tta == "none":
        base = ops.base_op(height, width, None, crop_fraction)
        return lambda image: base(image)[None]
    if tta == "ten-crop":
        fraction = crop_fraction or DEFAULT_CROP_FRACTION
        side = max(int(round(min(height, width) / fraction)), height, width)
        grow = ops.resize_shorter(side)

        def ten(image):
            image = grow(image)
            h, w = tf.shape(image)[0], tf.shape(image)[1]
            corners = [(0, 0), (0, w - width), (h - height, 0), (h - height, w - width)]
            corners.append(((h - height) // 2, (w - width) // 2))
            crops = [image[t : t + height, s : s + width] for t, s in corners]
            crops += [tf.image.flip_left_right(c) for c in crops]
            return tf.stack(crops)

        return ten
    sides = [
        max(int(round(s * min(height, width) / 224)), height, width) for s in MULTI_SCALE_SIDES
    ]
    crop = ops.center_crop(height, width)

    def multi(image):
        views = []
        for side in sides:
            view = crop(ops.resize_shorter(side)(image))
            views += [view, tf.image.flip_left_right(view)]
        return tf.stack(views)

    return multi


def view_dataset(
    split: Split,
    *,
    image_size: Sequence[int],
    channels: int,
    tta: str,
    crop_fraction: float | None = None,
    batch_size: int = 32,
) -> tf.data.Dataset:
    """Batches of ``(views, labels)``, views float32 (batch, n_views, height, width, C)."""
    height, width = (int(s) for s in image_size)
    make_views = view_op(tta, height, width, crop_fraction)
    if split.in_memory:
        dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
    else:
        dataset = split.stream(False, 0)

    def views(image, label):
        image = convert_channels(tf.cast(image, tf.float32), channels)
        return tf.clip_by_value(make_views(image), 0.0, 255.0), label

    dataset = dataset.map(views, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def predict_views(
    predict: Callable[[np.ndarray], np.ndarray],
    split: Split,
    *,
    image_size: Sequence[int],
    channels: int,
    tta: str,
    crop_fraction: float | None = None,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities averaged over each image's views, and the labels."""
    averaged, labels = [], []
    for views, batch_labels in view_dataset(
        split,
        image_size=image_size,
        channels=channels,
        tta=tta,
        crop_fraction=crop_fraction,
        batch_size=batch_size,
    ).as_numpy_iterator():
        count, per_image = views.shape[:2]
        flat = predict(views.reshape(count * per_image, *views.shape[2:]))
        averaged.append(np.asarray(flat).reshape(count, per_image, -1).mean(axis=1))
        labels.append(batch_labels)
    if not averaged:
        raise InvalidArgumentError("the split has no readable images to evaluate")
    return np.concatenate(averaged), np.concatenate(labels)
