"""The keras.applications weight-parity check, shared by the harness (every registered model
with a ``keras_application``) and the family tests that vary an option of one."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import MODELS


def preprocess_input_of(name):
    """The ``preprocess_input`` that ``name``'s application expects: its keras.applications
    module's (``keras.applications.resnet.preprocess_input`` for ResNet50)."""
    constructor = getattr(keras.applications, MODELS.get(name).keras_application.name)
    module = getattr(keras.applications, constructor.__module__.rsplit(".", 1)[-1])
    return module.preprocess_input


def randomise_statistics(model, seed=1):
    """Random batch-norm statistics, scales and offsets, and biases: ``weights=None`` leaves
    them 1 and 0, under which a layer paired with the wrong one would not show."""
    rng = np.random.default_rng(seed)
    draws = {
        "gamma": lambda shape: rng.uniform(0.5, 1.5, shape),
        "moving_variance": lambda shape: rng.uniform(0.5, 1.5, shape),
        "beta": lambda shape: rng.normal(0.0, 0.1, shape),
        "moving_mean": lambda shape: rng.normal(0.0, 0.1, shape),
        "bias": lambda shape: rng.normal(0.0, 0.1, shape),
    }
    for variable in model.weights:
        if variable.name in draws:
            variable.assign(draws[variable.name](tuple(variable.shape)))


def build_keras_application(name, **kwargs):
    """``name``'s keras.applications model (no download: ``weights=None``), built with the
    spec's values of the options it shares with ours, with random statistics and biases."""
    spec = MODELS.get(name)
    application = spec.keras_application
    options = {key: spec.options[key] for key in application.options if key in spec.options}
    model = getattr(keras.applications, application.name)(weights=None, **{**options, **kwargs})
    randomise_statistics(model)
    return model


def run(model, images):
    """An eager call: tracing predict()'s function costs more than these small batches."""
    return keras.ops.convert_to_numpy(model(images, training=False))


@pytest.fixture(scope="session")
def keras_application():
    """``keras_application(name, **kwargs)``: ``name``'s keras.applications model, random
    weights, statistics and biases (``build_keras_application``)."""
    return build_keras_application


@pytest.fixture
def keras_application_parity(tmp_path, random_pixels):
    """``check(name, include_top=..., size=..., **options)``: weights saved from ``name``'s
    keras.applications model (random, ``weights=None``) load into ours through
    ``create_model(name, weights=path)`` (``pretrained.keras_application_model``, then
    ``transfer_weights``, which flips BGR kernels), and ours on raw RGB pixels computes what the
    application computes on its own ``preprocess_input`` of them (BGR, mean subtracted, or
    scaled), to 1e-4 of the output's scale. With the classifier, logits are compared."""

    def check(name, *, include_top, size, **options):
        input_shape = (size, size, 3)
        arguments = dict(include_top=include_top, input_shape=input_shape)
        application = build_keras_application(
            name, **arguments, **options, classifier_activation=None
        )
        path = tmp_path / f"{name}.weights.h5"
        application.save_weights(path)
        ours = kerascnn.create_model(
            name, weights=path, **arguments, **options, classifier_activation=None
        )
        pixels = random_pixels((2, *input_shape), seed=1)
        expected = run(application, preprocess_input_of(name)(pixels.copy()))
        actual = run(ours, pixels)
        assert actual.shape == expected.shape
        scale = float(np.abs(expected).max())
        assert scale > 0
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * scale)

    return check
