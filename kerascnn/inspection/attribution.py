"""Which pixels a prediction depends on: saliency (Simonyan et al. 2014), guided
backpropagation (Springenberg et al. 2015), Grad-CAM (Selvaraju et al. 2017) and occlusion
(Zeiler & Fergus 2014). Each takes raw pixels (N, H, W, C) and class indices (N,)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from kerascnn.errors import InvalidArgumentError
from kerascnn.inspection.model import (
    feature_map_layer,
    guided_backprop,
    preprocessing_mean,
    score_tensor,
    submodel,
)


def _score_gradients(model: keras.Model, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    scorer = submodel(model, score_tensor(model))
    pixels = tf.constant(images, dtype="float32")
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        scores = scorer(pixels, training=False)
        picked = tf.gather(scores, tf.constant(classes, dtype="int32"), batch_dims=1)
    return tape.gradient(picked, pixels).numpy()


def saliency(model: keras.Model, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """|d score / d pixel|, the maximum over channels: (N, H, W)."""
    return np.abs(_score_gradients(model, images, classes)).max(axis=-1)


def guided_saliency(model: keras.Model, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Guided backpropagation: the same gradient with every activation passing back only
    positive gradients; (N, H, W), the maximum of |gradient| over channels."""
    with guided_backprop(model):
        gradients = _score_gradients(model, images, classes)
    return np.abs(gradients).max(axis=-1)


def gradcam(
    model: keras.Model, images: np.ndarray, classes: np.ndarray, layer: str | None = None
) -> tuple[np.ndarray, str]:
    """Grad-CAM: ReLU(sum_k a_k A_k), a_k the spatial mean of d score / d A_k, on ``layer``
    (default: the last feature map larger than 1x1). Returns the maps (N, h, w) at the
    layer's spatial size, non-negative, and the layer's name."""
    target = feature_map_layer(model, layer)
    both = submodel(model, [target.output, score_tensor(model)])
    pixels = tf.constant(images, dtype="float32")
    with tf.GradientTape() as tape:
        maps, scores = both(pixels, training=False)
        picked = tf.gather(scores, tf.constant(classes, dtype="int32"), batch_dims=1)
    gradients = tape.gradient(picked, maps)
    return _cams(maps, gradients).numpy().astype("float32"), target.name


def _cams(maps, gradients):
    """Grad-CAM from a feature map and the score's gradient with respect to it."""
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))


class Explainer:
    """Grad-CAM (on ``layer``, default as ``gradcam``) and saliency of one model together, for
    many calls (a page serving one image at a time): one forward and one backward pass per
    call, in a function traced once. The same maps as ``gradcam`` and ``saliency``."""

    def __init__(self, model: keras.Model, layer: str | None = None):
        target = feature_map_layer(model, layer)
        self.layer = target.name
        self._both = submodel(model, [target.output, score_tensor(model)])
        images = tf.TensorSpec((None, *model.input_shape[1:]), "float32")
        classes = tf.TensorSpec((None,), "int32")
        self._explain = tf.function(self._maps, input_signature=[images, classes], autograph=False)

    def _maps(self, pixels, classes):
        with tf.GradientTape() as tape:
            tape.watch(pixels)
            maps, scores = self._both(pixels, training=False)
            picked = tf.gather(scores, classes, batch_dims=1)
        map_gradients, pixel_gradients = tape.gradient(picked, [maps, pixels])
        return _cams(maps, map_gradients), tf.reduce_max(tf.abs(pixel_gradients), axis=-1)

    def __call__(self, images: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM maps (N, h, w) at the layer's size and saliency (N, H, W)."""
        cams, saliencies = self._explain(
            tf.constant(images, "float32"), tf.constant(classes, "int32")
        )
        return cams.numpy().astype("float32"), saliencies.numpy()


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) -> (N, H, W), bilinear, for overlays."""
    resized = tf.image.resize(maps[..., None], size, method="bilinear")
    return resized.numpy()[..., 0]


@dataclass
class Occlusion:
    probabilities: np.ndarray  # (N, rows, cols): the class probability, patch at each position
    positions: list[tuple[int, int]]  # top-left (y, x) of each patch, row-major
    patch: int
    fill: np.ndarray  # the patch's raw pixel value per channel
    baseline: np.ndarray  # (N,): the probability without occlusion


def occlusion(
    model: keras.Model,
    images: np.ndarray,
    classes: np.ndarray,
    patch: int = 8,
    stride: int = 4,
    batch_size: int = 256,
) -> Occlusion:
    """Slide a grey ``patch`` x ``patch`` square with ``stride`` over each image and record the
    probability of ``classes``. The grey is the model's preprocessing mean (zero after
    normalisation, so the patch adds no signal of its own), else mid-grey 127.5."""
    _, height, width, channels = images.shape
    if patch < 1 or stride < 1 or patch > min(height, width):
        raise InvalidArgumentError(
            f"--patch must be between 1 and {min(height, width)} and --stride at least 1; "
            f"received patch={patch}, stride={stride}"
        )
    mean = preprocessing_mean(model)
    fill = np.full(channels, 127.5, "float32") if mean is None else np.resize(mean, channels)
    ys = list(range(0, height - patch + 1, stride))
    xs = list(range(0, width - patch + 1, stride))
    positions = [(y, x) for y in ys for x in xs]
    probabilities = np.zeros((len(images), len(positions)), "float32")
    for n, image in enumerate(np.asarray(images, "float32")):
        occluded = np.repeat(image[None], len(positions), axis=0)
        for i, (y, x) in enumerate(positions):
            occluded[i, y : y + patch, x : x + patch] = fill
        outputs = np.concatenate(
            [
                np.asarray(model(occluded[i : i + batch_size], training=False))
                for i in range(0, len(occluded), batch_size)
            ]
        )
        probabilities[n] = outputs[:, classes[n]]
    baseline = np.asarray(model(images, training=False))[np.arange(len(images)), classes]
    return Occlusion(
        probabilities=probabilities.reshape(len(images), len(ys), len(xs)),
        positions=positions,
        patch=patch,
        fill=fill,
        baseline=baseline,
    )
