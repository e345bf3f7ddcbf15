"""Inputs made by gradients: class models (Simonyan et al. 2014, with the blur and L2
regularisation of Yosinski et al. 2015) and fooling images by iterated fast gradient sign
(Goodfellow et al. 2015; Kurakin et al. 2016). All in raw pixel units, 0-255."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from kerascnn.inspection.model import preprocessing_mean, score_tensor, submodel


def _blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    radius = max(1, int(round(2 * sigma)))
    x = np.arange(-radius, radius + 1, dtype="float32")
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    channels = images.shape[-1]
    rows = np.tile(kernel[:, None, None, None], (1, 1, channels, 1))
    cols = np.tile(kernel[None, :, None, None], (1, 1, channels, 1))
    images = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    images = tf.nn.depthwise_conv2d(images, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(images, cols, [1, 1, 1, 1], "VALID")


def class_model(
    model: keras.Model,
    classes: list[int],
    *,
    steps: int = 200,
    step_size: float = 4.0,
    l2_decay: float = 0.01,
    blur_sigma: float = 0.5,
    blur_every: int = 4,
) -> np.ndarray:
    """For each class, an image that maximises its score: normalised gradient ascent from
    zeros (``step_size`` pixel units a step), with L2 regularisation as a decay of the image
    towards the preprocessing mean by ``l2_decay`` each step (scale-free, unlike a penalty
    added to a score of unknown scale) and a Gaussian blur every ``blur_every`` steps; kept
    in 0-255. Returns raw pixels (len(classes), H, W, C)."""
    scorer = submodel(model, score_tensor(model))
    shape = (len(classes), *model.input_shape[1:])
    mean = preprocessing_mean(model)
    centre = np.full(shape[-1], 127.5, "float32") if mean is None else np.resize(mean, shape[-1])
    pixels = tf.Variable(tf.zeros(shape, "float32"))
    index = tf.constant(classes, dtype="int32")
    for step in range(steps):
        with tf.GradientTape() as tape:
            scores = tf.gather(scorer(pixels, training=False), index, batch_dims=1)
            objective = tf.reduce_sum(scores)
        gradient = tape.gradient(objective, pixels)
        # Normalised per image, so step_size is in pixel units whatever the score's scale.
        scale = tf.reduce_max(tf.abs(gradient), axis=(1, 2, 3), keepdims=True) + 1e-12
        updated = pixels + step_size * gradient / scale
        updated = centre + (1.0 - l2_decay) * (updated - centre)
        if blur_sigma > 0 and (step + 1) % blur_every == 0:
            updated = _blur(updated, blur_sigma)
        pixels.assign(tf.clip_by_value(updated, 0.0, 255.0))
    return pixels.numpy()


@dataclass
class Fooling:
    original: np.ndarray  # (H, W, C) raw pixels
    adversarial: np.ndarray  # (H, W, C) raw pixels, within epsilon of original and 0-255
    original_class: int
    original_probability: float
    adversarial_class: int
    adversarial_probability: float
    steps: int  # gradient-sign steps taken
    epsilon: float
    fooled: bool

    @property
    def perturbation(self) -> np.ndarray:
        return self.adversarial - self.original


def fooling(
    model: keras.Model,
    image: np.ndarray,
    label: int | None = None,
    *,
    epsilon: float = 64.0,
    step_size: float = 2.0,
    max_steps: int = 64,
) -> Fooling:
    """Iterated fast gradient sign: step ``step_size`` pixel units up the cross-entropy of
    ``label`` (default: the predicted class), staying within ``epsilon`` of the image and in
    0-255, until the predicted class changes or ``max_steps`` steps are spent.

    The step follows the sign of the margin ``max_other_score - score[label]`` rather than
    the cross-entropy, whose gradient vanishes once the softmax saturates at 1.0 (LeNet-5's
    RBF scores do)."""
    original = np.asarray(image, "float32")
    probabilities = np.asarray(model(original[None], training=False))[0]
    label = int(np.argmax(probabilities)) if label is None else int(label)
    scorer = submodel(model, score_tensor(model))
    x = tf.Variable(original[None])
    low = np.clip(original - epsilon, 0, 255)[None]
    high = np.clip(original + epsilon, 0, 255)[None]
    predicted, current, steps = int(np.argmax(probabilities)), probabilities, 0
    while predicted == label and steps < max_steps:
        with tf.GradientTape() as tape:
            scores = scorer(x, training=False)[0]
            others = tf.tensor_scatter_nd_update(scores, [[label]], [-np.inf])
            loss = tf.reduce_max(others) - scores[label]
        gradient = tape.gradient(loss, x)
        x.assign(tf.clip_by_value(x + step_size * tf.sign(gradient), low, high))
        steps += 1
        current = np.asarray(model(x, training=False))[0]
        predicted = int(np.argmax(current))
    return Fooling(
        original=original,
        adversarial=x.numpy()[0],
        original_class=label,
        original_probability=float(probabilities[label]),
        adversarial_class=predicted,
        adversarial_probability=float(current[predicted]),
        steps=steps,
        epsilon=float(epsilon),
        fooled=predicted != label,
    )
