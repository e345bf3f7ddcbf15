"""One harness for every registered model (STYLE 9, 12): parametrised over ``list_models()``,
so a newly registered family is tested without writing anything here.

Models are built at their minimum size (with the default channel count) and with a class
count different from the paper's, to keep the run fast and to catch hard-coded sizes."""

import json
import os
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.export.saved_model import export_saved_model
from kerascnn.export.tflite import convert_tflite
from kerascnn.models import MODELS, catalogue
from kerascnn.models.counting import layer_multiply_accumulates, multiply_accumulates
from kerascnn.models.layers import StochasticDepth
from kerascnn.runtime import TFLiteRunner

# Cheapest first, so that each layer set below is first met in its smallest network.
MODEL_NAMES = sorted(
    kerascnn.list_models(),
    key=lambda name: catalogue.recorded().get(name, {}).get("multiply_accumulates", 1e30),
)
NUM_CLASSES = 3


def small_shape(name):
    spec = MODELS.get(name)
    return (*spec.min_size, spec.input_shape[-1])


def run(model, images):
    """An eager call: no tf.function to trace, which for a 1000-layer network costs far more
    than the forward pass on two small images."""
    return keras.ops.convert_to_numpy(model(images, training=False))


@pytest.fixture(scope="module", params=MODEL_NAMES)
def name(request):
    return request.param


# Over 1,000 layers: Keras takes 20-40 s per build, and the harness builds each model about six
# times. Their builders and blocks are those of resnet110 and preact_resnet164, which run the
# whole harness; these two get the default-size build and a training step.
THOUSAND_LAYER_MODELS = {"resnet1202", "preact_resnet1001"}


@pytest.fixture(scope="module")
def model(name):
    """Built once per model and only read by the tests that share it."""
    if name in THOUSAND_LAYER_MODELS:
        pytest.skip("a 1,000-layer variant of a family the harness covers in full")
    return kerascnn.create_model(name, input_shape=small_shape(name), num_classes=NUM_CLASSES)


def test_every_family_is_registered():
    assert {"lenet5", "resnet20"} <= set(MODEL_NAMES)


def test_forward_pass_gives_probabilities(name, model, random_pixels):
    """In training mode (batch statistics): untrained, a 1,000-layer residual network's
    inference output overflows, because its batch-norm moving statistics are still the
    identity and every block doubles the variance; training, not the layout, fixes that."""
    images = random_pixels((4, *small_shape(name)))
    assert run(model, images).shape == (4, NUM_CLASSES)
    probabilities = keras.ops.convert_to_numpy(model(images, training=True))
    assert probabilities.shape == (4, NUM_CLASSES)
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


def test_keras_round_trip_gives_identical_outputs(name, model, tmp_path, random_pixels):
    path = tmp_path / f"{name}.keras"
    model.save(path)
    # No custom_objects: the custom layers must be registered serialisables (STYLE 9).
    loaded = keras.models.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    images = random_pixels((2, *small_shape(name)), seed=1)
    np.testing.assert_array_equal(run(loaded, images), run(model, images))


def builder_of(name):
    builder = MODELS.get(name).builder
    return builder.__module__, builder.__qualname__


# Each builder wires pooling once for all its variants: every model is checked with "avg",
# and the cheapest model of each builder with "max" too.
MAX_POOLING_MODELS = {
    next(name for name in MODEL_NAMES if builder_of(name) == builder)
    for builder in {builder_of(name) for name in MODEL_NAMES}
}


def test_without_top_pooling_none_avg_max(name, random_pixels):
    if name in THOUSAND_LAYER_MODELS:
        pytest.skip("a 1,000-layer variant of a family the harness covers in full")
    shape = small_shape(name)
    feature_map = kerascnn.create_model(name, input_shape=shape, include_top=False)
    assert len(feature_map.output.shape) == 4
    channels = feature_map.output.shape[-1]
    images = random_pixels((2, *shape), seed=2)
    features = run(feature_map, images)
    reductions = {"avg": features.mean(axis=(1, 2))}
    if name in MAX_POOLING_MODELS:
        reductions["max"] = features.max(axis=(1, 2))
    for pooling, expected in reductions.items():
        pooled = kerascnn.create_model(name, input_shape=shape, include_top=False, pooling=pooling)
        assert tuple(pooled.output.shape) == (None, channels)
        # Pooling adds no weights, so the feature map's weights fit the pooled model.
        pooled.set_weights(feature_map.get_weights())
        np.testing.assert_allclose(run(pooled, images), expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def logits_model(name):
    """The model as training builds it: no softmax (shared by the two tests below)."""
    return kerascnn.create_model(
        name, input_shape=small_shape(name), num_classes=NUM_CLASSES, classifier_activation=None
    )


def test_no_classifier_activation_gives_logits(name, model, logits_model, random_pixels):
    logits_model.set_weights(model.get_weights())
    images = random_pixels((4, *small_shape(name)), seed=3)
    logits = run(logits_model, images)
    probabilities = run(model, images)
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


def test_one_training_step_stays_finite(name, logits_model, random_pixels):
    """One eager forward and backward step, as training takes it: on logits, with the
    model's regularisation losses, in training mode (dropout, batch statistics)."""
    import tensorflow as tf

    before = [w.copy() for w in logits_model.get_weights()]
    images = random_pixels((8, *small_shape(name)), seed=4)
    labels = np.arange(8) % NUM_CLASSES
    crossentropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = logits_model(images, training=True)
        loss = crossentropy(labels, logits) + sum(logits_model.losses)
    variables = logits_model.trainable_variables
    gradients = tape.gradient(loss, variables)
    assert np.isfinite(float(loss))
    # A residual branch that stochastic depth dropped in this step was not run: no gradient.
    skipped = {
        id(v)
        for layer in logits_model.layers
        if isinstance(layer, StochasticDepth)
        for v in layer.branch.trainable_variables
    }
    missing = [
        v.path
        for v, g in zip(variables, gradients, strict=True)
        if g is None and id(v) not in skipped
    ]
    assert not missing, f"trainable weights get no gradient: {missing}"
    gradients = [
        keras.ops.zeros_like(v) if g is None else g
        for v, g in zip(variables, gradients, strict=True)
    ]
    keras.optimizers.SGD(0.01).apply(gradients, variables)
    after = logits_model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    assert np.isfinite(keras.ops.convert_to_numpy(logits_model(images, training=True))).all()


def layer_set(model):
    """What a TFLite conversion can fail on: each layer type with its activation, groups and
    padding (an op, not a depth)."""

    def describe(layer):
        config = layer.get_config()
        return (
            type(layer).__name__,
            str(config.get("activation")),
            config.get("groups", 1),
            str(config.get("padding")),
        )

    return sorted({describe(layer) for layer in model.layers}, key=str)


# TFLite conversion costs 10-60 s for a deep network, so by default each layer set is converted
# once, in the cheapest network that has it; the sets are recorded in layer_sets.json (checked
# against every build below, so a new layer is noticed) to make that choice before the run, the
# same on every pytest-xdist worker. KERASCNN_CONVERT_EVERY_MODEL=1 converts every model.
LAYER_SETS_FILE = Path(__file__).with_name("layer_sets.json")
RECORDED_LAYER_SETS = json.loads(LAYER_SETS_FILE.read_text())
CONVERT_EVERY_MODEL = os.environ.get("KERASCNN_CONVERT_EVERY_MODEL") == "1"


def converted_in():
    """Each layer (as ``layer_set`` describes it) and the cheapest model that has it, whose
    conversion covers it."""
    covered: dict[tuple, str] = {}
    for name in MODEL_NAMES:
        for layer in map(tuple, RECORDED_LAYER_SETS.get(name, [])):
            covered.setdefault(layer, name)
    return covered


def test_converts_to_tflite_with_the_same_outputs(name, model, tmp_path, random_pixels):
    """Every network's layers convert (custom layers included) and the converted model
    agrees with Keras."""
    layers_used = [list(layer) for layer in layer_set(model)]
    assert RECORDED_LAYER_SETS.get(name) == layers_used, (
        f"{name}'s layers differ from tests/models/layer_sets.json; regenerate it with "
        "python tests/models/test_all_models.py"
    )
    covered = converted_in()
    if not CONVERT_EVERY_MODEL and all(covered[tuple(layer)] != name for layer in layers_used):
        converters = ", ".join(sorted({covered[tuple(layer)] for layer in layers_used}))
        pytest.skip(f"each of its layers is converted in a cheaper network: {converters}")

    export_saved_model(model, tmp_path / "saved_model")
    runner = TFLiteRunner(convert_tflite(tmp_path / "saved_model"))
    images = random_pixels((2, *small_shape(name)), seed=5)
    np.testing.assert_allclose(runner(images), run(model, images), rtol=1e-3, atol=1e-5)


def test_counts_multiply_accumulates_of_every_layer_with_weights(name, model):
    """Every weighted layer has a count (a custom layer without one would raise), and the
    total is at least the classifier's (one per Dense weight)."""
    total = multiply_accumulates(model)
    assert total > 0
    assert total >= sum(
        layer_multiply_accumulates(layer)
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    )


@pytest.mark.slow
def test_default_build_matches_the_recorded_complexity(name):
    """Builds at the paper's default input and class count; ``kerascnn models`` reads its
    figures from complexity.json, which must equal what the layers give (regenerate with
    ``catalogue.write_table([NAME])``)."""
    assert name in catalogue.recorded(), f"{name} is missing from complexity.json"
    recorded = catalogue.recorded()[name]
    assert catalogue.measure(name) == {key: recorded[key] for key in catalogue.COUNTS}


def test_the_recorded_table_lists_the_registry():
    """``kerascnn models`` lists complexity.json without importing the registry: the table
    holds exactly the registered models, each with the registry's title, paper and inputs
    (regenerate with ``catalogue.write_table([])``)."""
    recorded = catalogue.recorded()
    assert sorted(recorded) == kerascnn.list_models()
    for name in kerascnn.list_models():
        assert {key: recorded[name][key] for key in catalogue.listed(name)} == catalogue.listed(
            name
        ), name


# --- keras.applications weights ----------------------------------------------------------------
# Every model with a keras_application: weights saved from that model (random, no download) load
# into ours through create_model(weights=path), and ours on raw pixels gives what the application
# gives on its preprocess_input of them. Without the classifier, at the smallest input both take
# (Keras's minimum is 32x32, 75x75 for Inception); with it (logits), at twice that, a 2x2 map
# before the classifier's pooling or flattening, so that VGG's flattened order shows. Keras takes
# seconds to build these networks, three times per check: the cheapest network of each
# keras.applications module is checked by default, its deeper siblings (ResNet101/152,
# DenseNet169/201: the same code) without the classifier and with the slow tests, and so are the
# classifiers of the DenseNet and Inception graphs (300 to 800 layers, 10-30 s per check).

KERAS_MINIMUM_SIZE = 32
SLOW_TO_BUILD_MODULES = {"densenet", "inception_v3", "inception_resnet_v2"}
APPLICATION_NAMES = [name for name in MODEL_NAMES if MODELS.get(name).keras_application]


def application_module(name):
    """The keras.applications module of the model's application (``resnet`` for ResNet50)."""
    constructor = getattr(keras.applications, MODELS.get(name).keras_application.name)
    return constructor.__module__.rsplit(".", 1)[-1]


CHEAPEST_OF_MODULE = {
    next(name for name in APPLICATION_NAMES if application_module(name) == module)
    for module in {application_module(name) for name in APPLICATION_NAMES}
}


def application_cases():
    """(name, include_top, size) of each check, marked slow as described above."""
    for name in APPLICATION_NAMES:
        size = max(*MODELS.get(name).min_size, KERAS_MINIMUM_SIZE)
        slow = [] if name in CHEAPEST_OF_MODULE else [pytest.mark.slow]
        yield pytest.param(name, False, size, marks=slow, id=f"{name}-features")
        if name in CHEAPEST_OF_MODULE:
            if application_module(name) in SLOW_TO_BUILD_MODULES:
                slow = [pytest.mark.slow]
            yield pytest.param(name, True, 2 * size, marks=slow, id=f"{name}-classifier")


@pytest.mark.parametrize(("application_name", "include_top", "size"), application_cases())
def test_keras_application_weights_give_its_outputs(
    application_name, include_top, size, keras_application_parity
):
    keras_application_parity(application_name, include_top=include_top, size=size)


@pytest.mark.parametrize("application_name", APPLICATION_NAMES)
def test_registered_statistics_are_the_applications_preprocess_input(
    application_name, random_pixels
):
    """(x - mean) / std with the registered statistics is the application's
    ``preprocess_input`` (which for BGR weights also reverses the channels)."""
    spec = MODELS.get(application_name)
    pixels = random_pixels((1, 4, 4, 3), seed=4)
    ours = (pixels - np.asarray(spec.mean)) / np.asarray(spec.std)
    module = getattr(keras.applications, application_module(application_name))
    theirs = module.preprocess_input(pixels.copy())
    if spec.keras_application.bgr:
        theirs = theirs[..., ::-1]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


if __name__ == "__main__":
    # Regenerate layer_sets.json (the 1,000-layer variants are skipped by the harness).
    sets = {
        name: [list(layer) for layer in layer_set(kerascnn.create_model(
            name, input_shape=small_shape(name), num_classes=NUM_CLASSES))]
        for name in MODEL_NAMES
        if name not in THOUSAND_LAYER_MODELS
    }  # fmt: skip
    LAYER_SETS_FILE.write_text(json.dumps(sets, indent=1) + "\n")
    print(f"wrote {LAYER_SETS_FILE} ({len(sets)} models)")
