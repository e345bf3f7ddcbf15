"""Augmentation and preprocessing ops, as the papers describe them (README, "Data").

Every op is a small factory returning a graph-safe function ``op(image, seed) -> image`` on a
float32 (height, width, channels) image of raw 0-255 pixels; ``seed`` is an int32 [2] tensor
and every random draw is a stateless function of it, so a pipeline is deterministic under its
seed (a deterministic op ignores the seed). Ops work the same eagerly and inside ``tf.data``.

Recipes (``RECIPES``, selected with ``--augmentation NAME``) compose the ops:

- ``none``: resize to the model's size.
- ``alexnet``: shorter side to 256/224 of the model's size, random crop, horizontal flip, PCA
  colour lighting (Krizhevsky et al. 2012, section 4.1).
- ``vgg``: scale jitter, shorter side S drawn from [256, 512] (scaled), crop, flip (Simonyan &
  Zisserman 2015, section 3.1).
- ``resnet``: shorter side drawn from [256, 480] (scaled), crop, flip, PCA lighting (He et al.
  2016, section 3.4).
- ``inception``: random-resized crop of 8-100% of the area with aspect 3/4-4/3, colour
  distortion, flip (Szegedy et al. 2015, section 6).
- ``cifar``: 4-pixel zero padding, random crop, flip (He et al. 2016, section 4.2).
- ``translate``: zero padding by 1/8 of the shorter side, random crop, no flip: random
  translation for classes a mirror image changes (digits, characters); 4 pixels at 32x32,
  one pixel of the 8x8 digits upsampled 4 times.

Batch-level ``mixup`` (Zhang et al. 2018) and ``cutmix`` (Yun et al. 2019) mix images and
their one-hot labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from kerascnn.registry import Registry

Op = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

# The published ImageNet RGB eigen-decomposition for pixels in [0, 1] (as fb.resnet.torch and
# the AlexNet re-implementations use it): eigenvalues, and eigenvectors as columns.
IMAGENET_EIGENVALUES = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGENVECTORS = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def _size(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    shape = tf.shape(image)
    return shape[0], shape[1]


def resize(height: int, width: int) -> Op:
    """Resize to exactly (height, width), antialiased."""

    def op(image, seed=None):
        return tf.image.resize(image, (height, width), method="bilinear", antialias=True)

    return op


def _resize_shorter(image: tf.Tensor, side) -> tf.Tensor:
    height, width = _size(image)
    side = tf.cast(side, tf.float32)
    scale = side / tf.cast(tf.minimum(height, width), tf.float32)
    new_height = tf.maximum(tf.cast(tf.round(tf.cast(height, tf.float32) * scale), tf.int32), 1)
    new_width = tf.maximum(tf.cast(tf.round(tf.cast(width, tf.float32) * scale), tf.int32), 1)
    # The shorter side exactly `side`, so a crop of that size always fits.
    side = tf.cast(side, tf.int32)
    new_height = tf.where(height <= width, side, new_height)
    new_width = tf.where(width < height, side, new_width)
    return tf.image.resize(image, (new_height, new_width), method="bilinear", antialias=True)


def resize_shorter(side: int) -> Op:
    """Resize keeping the aspect ratio so the shorter side is ``side``."""

    def op(image, seed=None):
        return _resize_shorter(image, side)

    return op


def random_resize_shorter(low: int, high: int) -> Op:
    """VGG's scale jitter: the shorter side drawn uniformly from the integers [low, high]."""

    def op(image, seed):
        side = tf.random.stateless_uniform([], seed, low, high + 1, dtype=tf.int32)
        return _resize_shorter(image, side)

    return op


def center_crop(height: int, width: int) -> Op:
    def op(image, seed=None):
        h, w = _size(image)
        top, left = (h - height) // 2, (w - width) // 2
        return image[top : top + height, left : left + width]

    return op


def random_crop(height: int, width: int) -> Op:
    """A (height, width) window at a random position inside the image."""

    def op(image, seed):
        channels = image.shape[-1]
        return tf.image.stateless_random_crop(image, (height, width, channels), seed)

    return op


def flip() -> Op:
    """Horizontal flip with probability 1/2."""

    def op(image, seed):
        return tf.image.stateless_random_flip_left_right(image, seed)

    return op


def pad_crop(padding: int) -> Op:
    """Zero-pad every side by ``padding`` pixels, then crop back to the original size."""

    def op(image, seed):
        h, w = _size(image)
        padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
        return tf.image.stateless_random_crop(padded, tf.stack([h, w, image.shape[-1]]), seed)

    return op


def pca_lighting(
    eigenvalues: Sequence[float] = IMAGENET_EIGENVALUES,
    eigenvectors: Sequence[Sequence[float]] = IMAGENET_EIGENVECTORS,
    std: float = 0.1,
) -> Op:
    """AlexNet's colour lighting: add ``V (alpha * lambda)`` to every pixel, alpha ~ N(0, std)
    drawn once per image; eigen-decomposition of the RGB covariance of pixels in [0, 1], the
    shift scaled back to 0-255. Grayscale images are returned unchanged."""
    values = tf.constant(eigenvalues, tf.float32)
    vectors = tf.constant(eigenvectors, tf.float32)

    def op(image, seed):
        if image.shape[-1] != 3:
            return image
        alpha = tf.random.stateless_normal([3], seed, stddev=std)
        shift = 255.0 * tf.linalg.matvec(vectors, alpha * values)
        return image + shift

    return op


def pca_from_pixels(images: np.ndarray) -> tuple[tuple[float, ...], tuple[tuple[float, ...], ...]]:
    """Eigenvalues (descending) and eigenvectors (columns) of the RGB covariance of
    ``images`` (N, H, W, 3) in 0-255, for pixels scaled to [0, 1], as pca_lighting takes."""
    pixels = np.asarray(images, dtype="float64").reshape(-1, 3) / 255.0
    values, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False))
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0, None), vectors[:, order]
    return tuple(map(float, values)), tuple(tuple(map(float, row)) for row in vectors)


def random_resized_crop(
    height: int,
    width: int,
    area: tuple[float, float] = (0.08, 1.0),
    aspect: tuple[float, float] = (3 / 4, 4 / 3),
) -> Op:
    """Inception's crop: a window covering ``area`` of the image with aspect ratio in
    ``aspect``, resized to (height, width)."""

    def op(image, seed):
        h, w = _size(image)
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.stack([h, w, image.shape[-1]]),
            bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            seed=seed,
            min_object_covered=0.0,
            aspect_ratio_range=aspect,
            area_range=area,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        crop = tf.slice(image, begin, size)
        crop.set_shape([None, None, image.shape[-1]])  # a dynamic slice forgets the channels
        return tf.image.resize(crop, (height, width), method="bilinear", antialias=True)

    return op


def color_distortion(
    brightness: float = 32.0, saturation: float = 0.5, hue: float = 0.2, contrast: float = 0.5
) -> Op:
    """Inception's photometric distortion (brightness in pixel units, saturation and contrast
    factors in 1 +- the value, hue as a fraction of the colour wheel), clipped to 0-255.
    Grayscale images get brightness and contrast only."""

    def op(image, seed):
        seeds = tf.random.experimental.stateless_split(seed, 4)
        image = tf.image.stateless_random_brightness(image, brightness, seeds[0])
        image = tf.image.stateless_random_contrast(image, 1 - contrast, 1 + contrast, seeds[1])
        if image.shape[-1] == 3:
            unit = tf.clip_by_value(image / 255.0, 0.0, 1.0)
            unit = tf.image.stateless_random_saturation(
                unit, 1 - saturation, 1 + saturation, seeds[2]
            )
            unit = tf.image.stateless_random_hue(unit, hue, seeds[3])
            image = unit * 255.0
        return tf.clip_by_value(image, 0.0, 255.0)

    return op


def compose(ops: Sequence[Op]) -> Op:
    """Apply ``ops`` in order, each with its own seed split from ``seed``; clip to 0-255."""

    def op(image, seed):
        seeds = tf.random.experimental.stateless_split(seed, max(len(ops), 1))
        channels = image.shape[-1]
        for i, each in enumerate(ops):
            image = each(image, seeds[i])
            # Ops that branch on the channel count must see it in graphs as they do eagerly.
            image.set_shape([None, None, channels])
        return tf.clip_by_value(image, 0.0, 255.0)

    return op


# -- recipes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """A paper's training augmentation and its evaluation view.

    ``base_scale``: before caching, images are resized so their shorter side is this times
    the model's shorter side (None: squashed to the model's size), which bounds the memory
    the cache needs. ``crop_fraction``: evaluation resizes the shorter side to size / fraction
    and takes the centre crop (None: the whole image squashed to the model's size).
    """

    name: str
    build: Callable[..., list[Op]]  # (height, width, lighting) -> ops
    base_scale: float | None
    crop_fraction: float | None
    uses_lighting: bool = False

    def training_op(self, height: int, width: int, lighting: Op | None = None) -> Op:
        return compose(self.build(height, width, lighting or pca_lighting()))


RECIPES: Registry[Recipe] = Registry("augmentation")


def _scaled(value: float, height: int, width: int) -> int:
    """A side given for 224-pixel crops, scaled to the model's size (never below a crop)."""
    return max(int(round(value * min(height, width) / 224)), height, width)


RECIPES.add("none", Recipe("none", lambda h, w, lighting: [], None, None))
RECIPES.add(
    "alexnet",
    Recipe(
        "alexnet",
        lambda h, w, lighting: [random_crop(h, w), flip(), lighting],
        base_scale=256 / 224,
        crop_fraction=224 / 256,
        uses_lighting=True,
    ),
)
RECIPES.add(
    "vgg",
    Recipe(
        "vgg",
        lambda h, w, lighting: [
            random_resize_shorter(_scaled(256, h, w), _scaled(512, h, w)),
            random_crop(h, w),
            flip(),
        ],
        base_scale=512 / 224,
        crop_fraction=224 / 256,
    ),
)
RECIPES.add(
    "resnet",
    Recipe(
        "resnet",
        lambda h, w, lighting: [
            random_resize_shorter(_scaled(256, h, w), _scaled(480, h, w)),
            random_crop(h, w),
            flip(),
            lighting,
        ],
        base_scale=480 / 224,
        crop_fraction=224 / 256,
        uses_lighting=True,
    ),
)
RECIPES.add(
    "inception",
    Recipe(
        "inception",
        lambda h, w, lighting: [random_resized_crop(h, w), color_distortion(), flip()],
        base_scale=256 / 224,
        crop_fraction=0.875,
    ),
)
RECIPES.add(
    "cifar",
    Recipe("cifar", lambda h, w, lighting: [pad_crop(4), flip()], None, None),
)

# The largest shift of ``translate`` as a share of the shorter side: CIFAR's 4 pixels of 32.
TRANSLATION = 1 / 8


def translation_padding(height: int, width: int) -> int:
    """Pixels ``translate`` pads (and so shifts by at most): TRANSLATION of the shorter side."""
    return max(int(round(TRANSLATION * min(height, width))), 1)


RECIPES.add(
    "translate",
    Recipe(
        "translate",
        lambda h, w, lighting: [pad_crop(translation_padding(h, w))],
        base_scale=None,
        crop_fraction=None,
    ),
)


def base_op(
    height: int, width: int, base_scale: float | None, crop_fraction: float | None = None
) -> Op:
    """The deterministic view before any random op: the whole image squashed to (height,
    width); or the shorter side at ``base_scale`` times the model's; or, for evaluation with a
    crop fraction, the centre (height, width) crop of the shorter side at size / fraction."""
    if crop_fraction is not None:
        side = max(int(round(min(height, width) / crop_fraction)), max(height, width))
        grow, crop = resize_shorter(side), center_crop(height, width)
        return lambda image, seed=None: crop(grow(image))
    if base_scale is None:
        return resize(height, width)
    return resize_shorter(max(int(round(base_scale * min(height, width))), max(height, width)))


# -- batch-level mixing -------------------------------------------------------------------


def _beta(alpha: float, seed) -> tf.Tensor:
    seeds = tf.random.experimental.stateless_split(seed, 2)
    a = tf.random.stateless_gamma([], seeds[0], alpha)
    b = tf.random.stateless_gamma([], seeds[1], alpha)
    return a / (a + b)


def mixup(alpha: float) -> Callable:
    """Mixup: ``lam x + (1 - lam) x'`` and the same mix of one-hot labels, lam ~ Beta(alpha,
    alpha) per batch, x' the batch in reverse order."""

    def op(images, labels, seed):
        lam = _beta(alpha, seed)
        mixed = lam * images + (1 - lam) * tf.reverse(images, [0])
        return mixed, lam * labels + (1 - lam) * tf.reverse(labels, [0])

    return op


def cutmix(alpha: float) -> Callable:
    """CutMix: a box covering 1 - lam of the area is pasted from the reversed batch, and the
    labels mixed by the box's actual share of the image."""

    def op(images, labels, seed):
        seeds = tf.random.experimental.stateless_split(seed, 2)
        lam = _beta(alpha, seeds[0])
        shape = tf.shape(images)
        height, width = shape[1], shape[2]
        ratio = tf.sqrt(1.0 - lam)
        box_h = tf.cast(ratio * tf.cast(height, tf.float32), tf.int32)
        box_w = tf.cast(ratio * tf.cast(width, tf.float32), tf.int32)
        centre = tf.random.stateless_uniform([2], seeds[1], 0.0, 1.0)
        cy = tf.cast(centre[0] * tf.cast(height, tf.float32), tf.int32)
        cx = tf.cast(centre[1] * tf.cast(width, tf.float32), tf.int32)
        top, bottom = tf.maximum(cy - box_h // 2, 0), tf.minimum(cy + box_h // 2, height)
        left, right = tf.maximum(cx - box_w // 2, 0), tf.minimum(cx + box_w // 2, width)
        rows = tf.range(height)[:, None]
        cols = tf.range(width)[None, :]
        inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
        mask = tf.cast(inside, images.dtype)[None, :, :, None]
        mixed = images * (1 - mask) + tf.reverse(images, [0]) * mask
        share = tf.cast((bottom - top) * (right - left), tf.float32) / tf.cast(
            height * width, tf.float32
        )
        return mixed, (1 - share) * labels + share * tf.reverse(labels, [0])

    return op
