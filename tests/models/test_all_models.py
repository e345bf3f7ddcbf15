"""One harness for every registered model (STYLE 9, 12): parametrised over ``list_models()``,
so a newly registered family is tested without writing anything here.

Models are built at their minimum size (with the default channel count) and with a class
count different from the paper's, to keep the run fast and to catch hard-coded sizes."""

import re

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import MODELS

MODEL_NAMES = kerascnn.list_models()
NUM_CLASSES = 3


def small_shape(name):
    spec = MODELS.get(name)
    return (*spec.min_size, spec.input_shape[-1])


def random_pixels(shape, seed=0):
    """Raw pixels, as the models take them (they normalise inside)."""
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype("float32")


@pytest.fixture(scope="module", autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="module", params=MODEL_NAMES)
def name(request):
    return request.param


@pytest.fixture(scope="module")
def model(name):
    """Built once per model and only read by the tests that share it."""
    return kerascnn.create_model(name, input_shape=small_shape(name), num_classes=NUM_CLASSES)


def test_every_family_is_registered():
    assert {"lenet5", "resnet20"} <= set(MODEL_NAMES)


def test_forward_pass_gives_probabilities(name, model):
    images = random_pixels((2, *small_shape(name)))
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (2, NUM_CLASSES)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_raw_pixels_in_preprocessing_inside(name, model):
    assert model.layers[0].name == "images"
    assert tuple(model.input.shape) == (None, *small_shape(name))
    preprocessing = model.layers[1]
    assert preprocessing.name == "preprocessing"
    assert preprocessing.input is model.input
    # An image at the registered per-channel mean normalises to zero.
    spec = MODELS.get(name)
    mean = np.broadcast_to(np.asarray(spec.mean, "float32"), (spec.input_shape[-1],))
    at_mean = np.broadcast_to(mean, (1, *small_shape(name))).copy()
    normalised = keras.ops.convert_to_numpy(preprocessing(at_mean))
    np.testing.assert_allclose(normalised, 0.0, atol=1e-5)


def test_keras_round_trip_gives_identical_outputs(name, model, tmp_path):
    path = tmp_path / f"{name}.keras"
    model.save(path)
    # No custom_objects: the custom layers must be registered serialisables (STYLE 9).
    loaded = keras.models.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    images = random_pixels((2, *small_shape(name)), seed=1)
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )


def test_without_top_pooling_none_avg_max(name):
    shape = small_shape(name)
    feature_map = kerascnn.create_model(name, input_shape=shape, include_top=False)
    assert len(feature_map.output.shape) == 4
    channels = feature_map.output.shape[-1]
    images = random_pixels((2, *shape), seed=2)
    features = feature_map.predict(images, verbose=0)
    reductions = {"avg": features.mean(axis=(1, 2)), "max": features.max(axis=(1, 2))}
    for pooling, expected in reductions.items():
        pooled = kerascnn.create_model(name, input_shape=shape, include_top=False, pooling=pooling)
        assert tuple(pooled.output.shape) == (None, channels)
        # Pooling adds no weights, so the feature map's weights fit the pooled model.
        pooled.set_weights(feature_map.get_weights())
        np.testing.assert_allclose(
            pooled.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5
        )


def test_no_classifier_activation_gives_logits(name, model):
    shape = small_shape(name)
    logits_model = kerascnn.create_model(
        name, input_shape=shape, num_classes=NUM_CLASSES, classifier_activation=None
    )
    logits_model.set_weights(model.get_weights())
    images = random_pixels((4, *shape), seed=3)
    logits = logits_model.predict(images, verbose=0)
    probabilities = model.predict(images, verbose=0)
    assert not np.allclose(logits, probabilities, atol=1e-3)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.softmax(logits)), probabilities, rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("axis", [0, 1])
def test_too_small_input_names_the_model_and_echoes_the_shape(name, axis):
    spec = MODELS.get(name)
    shape = list(small_shape(name))
    shape[axis] -= 1
    shape = tuple(shape)
    with pytest.raises(ValueError) as excinfo:
        kerascnn.create_model(name, input_shape=shape)
    message = str(excinfo.value)
    assert spec.title in message
    assert f"received input_shape={shape}" in message
    min_h, min_w = spec.min_size
    assert re.search(rf"\b{min_h}x{min_w}\b", message)


def test_one_training_step_stays_finite(name):
    shape = small_shape(name)
    model = kerascnn.create_model(name, input_shape=shape, num_classes=NUM_CLASSES)
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    images = random_pixels((8, *shape), seed=4)
    labels = np.arange(8) % NUM_CLASSES
    history = model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    assert np.isfinite(model.predict(images, verbose=0)).all()
