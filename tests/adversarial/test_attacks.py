"""The attacks against gradients known in closed form, and their bounds."""

import keras
import numpy as np
import pytest

from kerascnn.adversarial.attacks import (
    Attack,
    Attacker,
    check_attack,
    objective,
    parse_epsilons,
    perturb,
)
from kerascnn.errors import InvalidArgumentError

CLASSES = 3


@pytest.fixture(scope="module")
def linear():
    """logits = flatten(x) @ W + b, with W and b known to the test."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(16, CLASSES)).astype("float32") * 0.01
    bias = rng.normal(size=(CLASSES,)).astype("float32")
    inputs = keras.Input((4, 4, 1))
    dense = keras.layers.Dense(CLASSES)
    logits = dense(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    dense.set_weights([weights, bias])
    return model, weights, bias


def crossentropy_gradient(images, labels, weights, bias):
    """d CE / d x = (softmax(z) - onehot(y)) W^T, reshaped to the images."""
    flat = images.reshape(len(images), -1).astype("float64")
    z = flat @ weights + bias
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return ((p - np.eye(CLASSES)[labels]) @ weights.T).reshape(images.shape)


def test_fgsm_is_epsilon_times_the_sign_of_the_gradient(linear, random_pixels):
    model, weights, bias = linear
    # Pixels 40-215: a step of 32 either way stays in 0-255, so nothing is clipped.
    images = 40 + random_pixels((5, 4, 4, 1), seed=1) * (175 / 255)
    labels = np.array([0, 1, 2, 0, 1])
    expected = images + 32 * np.sign(crossentropy_gradient(images, labels, weights, bias))
    scores = keras.Model(model.input, model.layers[-1].input)
    found = Attacker(scores, Attack("fgsm", 32.0))(images, labels, 32.0)
    np.testing.assert_allclose(found, expected, atol=1e-3)
    targeted = perturb(scores, images, labels, Attack("fgsm", 32.0, targeted=True))
    np.testing.assert_allclose(targeted, 2 * images - expected, atol=1e-3)


def test_fgsm_clips_to_the_pixel_range(linear):
    model, weights, bias = linear
    scores = keras.Model(model.input, model.layers[-1].input)
    images = np.zeros((1, 4, 4, 1), "float32")
    images[0, :2] = 255.0
    found = np.asarray(perturb(scores, images, np.array([1]), Attack("fgsm", 16.0)))
    step = images + 16 * np.sign(crossentropy_gradient(images, np.array([1]), weights, bias))
    np.testing.assert_allclose(found, np.clip(step, 0, 255), atol=1e-3)


def test_margin_objective_is_best_other_logit_minus_the_labels():
    logits = np.array([[1.0, 5.0, 2.0], [0.5, -1.0, 3.0]], "float32")
    labels = np.array([0, 2])
    np.testing.assert_allclose(objective(logits, labels, "margin"), [4.0, -2.5])
    np.testing.assert_allclose(objective(logits, labels, "margin", targeted=True), [-4.0, 2.5])


@pytest.mark.parametrize("attack", ["fgsm-rs", "pgd"])
def test_pgd_stays_inside_the_ball_and_the_pixel_range(attack, random_pixels):
    inputs = keras.Input((6, 6, 1))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(CLASSES)(keras.layers.Flatten()(hidden)))
    images = random_pixels((8, 6, 6, 1), seed=2)
    images[:, 0] = 0.0
    images[:, -1] = 255.0
    labels = np.arange(8) % CLASSES
    chosen = Attack(attack, 12.0, steps=5, step_size=9.0, restarts=2)
    found = Attacker(model, chosen)(images, labels, 12.0)
    assert np.abs(found - images).max() <= 12.0 + 1e-3
    assert found.min() >= 0.0 and found.max() <= 255.0
    assert np.abs(found - images).max() > 1.0  # it moved


def test_bad_attacks_are_refused_in_one_line():
    with pytest.raises(InvalidArgumentError, match="unknown attack"):
        check_attack("cw", [8.0], 10, None, 1)
    with pytest.raises(InvalidArgumentError, match="steps must be at least 1"):
        check_attack("pgd", [8.0], 0, None, 1)
    with pytest.raises(InvalidArgumentError, match="larger than epsilon 8"):
        check_attack("pgd", [8.0, 16.0], 10, 12.0, 1, allow_large_step=False)
    check_attack("pgd", [8.0, 16.0], 10, 12.0, 1, allow_large_step=True)
    for text in ("-8", "eight", "8,300", ""):
        with pytest.raises(ValueError):
            parse_epsilons(text)
    assert parse_epsilons("32,8,16") == [8.0, 16.0, 32.0]
