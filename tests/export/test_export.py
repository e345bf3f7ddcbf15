"""Export round trips (STYLE 12): ``model.keras``, the SavedModel and the TFLite file all
give the Keras model's probabilities, and a failed export leaves nothing behind."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerascnn
import kerascnn.export
from kerascnn.errors import ExportError, KerasCNNError
from kerascnn.export import convert_tflite, export_model, measure_parity
from kerascnn.export.directory import default_export_name
from kerascnn.export.saved_model import export_saved_model
from kerascnn.runtime import TFLiteRunner

VARIANTS = ("paper", "modern")
TOLERANCE = 1e-4
EXPORTED_FILES = {"model.keras", "1", "model.tflite", "labels.txt", "metadata.json"}
METADATA = {"model": "lenet5", "class_names": [f"digit {d}" for d in range(10)]}


def raw_pixels(count, seed=0):
    """Random raw 0-255 pixels at LeNet-5's input size."""
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 1)).astype("float32")


def build(variant):
    return kerascnn.create_model("lenet5", num_classes=10, variant=variant)


def probabilities(model, images):
    return np.asarray(model(images, training=False))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Per variant: the model, and its export into a parent directory that did not exist."""
    root = tmp_path_factory.mktemp("exports")
    exported = {}
    for variant in VARIANTS:
        model = build(variant)
        destination = root / variant / "lenet5"
        result = export_model(
            model,
            destination,
            metadata={**METADATA, "variant": variant},
            parity_images=raw_pixels(16),
        )
        exported[variant] = (model, destination, result)
    return exported


@pytest.fixture
def lenet():
    return build("paper")


def siblings(directory):
    """Everything in ``directory``'s parent other than ``directory`` itself."""
    return sorted(p.name for p in directory.parent.iterdir() if p != directory)


def snapshot(directory):
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


# -- a successful export ------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_export_writes_every_artifact_and_nothing_else(exports, variant):
    _, destination, result = exports[variant]
    assert result.directory == destination
    assert {p.name for p in destination.iterdir()} == EXPORTED_FILES
    assert (destination / "1" / "saved_model.pb").is_file()
    assert siblings(destination) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_metadata_records_what_was_given_and_the_parity(exports, variant):
    _, destination, result = exports[variant]
    metadata = json.loads((destination / "metadata.json").read_text())
    assert metadata["class_names"] == METADATA["class_names"]
    assert metadata["variant"] == variant
    assert metadata["parity"] == result.parity
    assert set(metadata["parity"]) == {"saved_model", "tflite"}
    for figures in metadata["parity"].values():
        assert figures["images"] == 16
        assert figures["precision"] == "float32"
        assert 0.0 <= figures["max_abs_diff"] < TOLERANCE
        assert figures["top1_agreement"] == 1.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_exported_keras_file_gives_the_same_probabilities(exports, variant):
    model, destination, _ = exports[variant]
    images = raw_pixels(4, seed=1)
    loaded = keras.saving.load_model(destination / "model.keras", compile=False)
    np.testing.assert_allclose(
        probabilities(loaded, images), probabilities(model, images), atol=TOLERANCE
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_saved_model_signature_takes_raw_pixels(exports, variant):
    model, destination, _ = exports[variant]
    images = raw_pixels(3, seed=2)
    serving = tf.saved_model.load(str(destination / "1")).signatures["serving_default"]
    outputs = serving(images=tf.constant(images))
    assert set(outputs) == {"probabilities", "top_k_indices", "top_k_classes"}
    actual = outputs["probabilities"].numpy()
    assert actual.shape == (3, 10)
    np.testing.assert_allclose(actual.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(actual, probabilities(model, images), atol=TOLERANCE)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch", [1, 5])
def test_tflite_runner_matches_keras(exports, variant, batch):
    model, destination, _ = exports[variant]
    runner = TFLiteRunner(destination / "model.tflite")
    assert runner.input_shape == (32, 32, 1)
    images = raw_pixels(batch, seed=batch)
    actual = runner(images)
    assert actual.shape == (batch, 10)
    np.testing.assert_allclose(actual, probabilities(model, images), atol=TOLERANCE)


def test_tflite_runner_handles_changing_batch_sizes(exports):
    model, destination, _ = exports["modern"]
    runner = TFLiteRunner((destination / "model.tflite").read_bytes())
    for batch in (5, 1, 3):
        images = raw_pixels(batch, seed=10 + batch)
        np.testing.assert_allclose(runner(images), probabilities(model, images), atol=TOLERANCE)


def test_convert_tflite_returns_a_flatbuffer(exports, tmp_path):
    model, _, _ = exports["paper"]
    export_saved_model(model, tmp_path / "plain")
    flatbuffer = convert_tflite(tmp_path / "plain")
    assert isinstance(flatbuffer, bytes)
    assert flatbuffer[4:8] == b"TFL3"
    images = raw_pixels(2, seed=3)
    np.testing.assert_allclose(
        TFLiteRunner(flatbuffer)(images), probabilities(model, images), atol=TOLERANCE
    )


def test_convert_tflite_of_a_directory_without_a_saved_model_fails(tmp_path):
    with pytest.raises(Exception):  # noqa: B017  (TensorFlow's own error type)
        convert_tflite(tmp_path)


def test_export_without_parity_images_records_no_parity(tmp_path, lenet):
    destination = tmp_path / "lenet5"
    result = export_model(lenet, destination, metadata={"model": "lenet5"})
    assert result.parity == {}
    assert json.loads((destination / "metadata.json").read_text()) == {
        "model": "lenet5",
        "parity": {},
    }
    # Without class names, labels.txt numbers the classes.
    assert (destination / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    assert {p.name for p in destination.iterdir()} == EXPORTED_FILES


def test_measure_parity_catches_an_artifact_that_disagrees(exports, lenet):
    # A freshly initialised model is not the one that was exported.
    _, destination, _ = exports["paper"]
    images = raw_pixels(8, seed=4)
    assert np.abs(
        probabilities(lenet, images) - probabilities(exports["paper"][0], images)
    ).max() > (TOLERANCE)
    with pytest.raises(ExportError, match="disagrees"):
        measure_parity(lenet, destination, images)


# -- existing destinations ----------------------------------------------------------------


@pytest.fixture
def existing(tmp_path):
    """An export directory that is already there, with a file of its own."""
    destination = tmp_path / "lenet5"
    destination.mkdir()
    (destination / "metadata.json").write_text('{"model": "the old one"}\n')
    (destination / "model.tflite").write_bytes(b"old bytes")
    return destination


def test_another_models_export_is_refused_and_untouched(existing, lenet):
    before = snapshot(existing)
    with pytest.raises(ExportError, match="another model's export") as raised:
        export_model(lenet, existing, metadata={}, parity_images=raw_pixels(2))
    assert isinstance(raised.value, RuntimeError)
    assert isinstance(raised.value, KerasCNNError)
    assert snapshot(existing) == before
    assert siblings(existing) == []


def test_overwrite_replaces_an_existing_export(existing, lenet):
    export_model(lenet, existing, metadata=METADATA, parity_images=raw_pixels(2), overwrite=True)
    assert {p.name for p in existing.iterdir()} == EXPORTED_FILES
    assert json.loads((existing / "metadata.json").read_text())["model"] == "lenet5"
    assert (existing / "model.tflite").read_bytes()[4:8] == b"TFL3"
    assert siblings(existing) == []


# -- failures -----------------------------------------------------------------------------


def explode(*args, **kwargs):
    raise RuntimeError("converter exploded: op not supported\n  at line 2 of the converter log")


def test_a_failed_conversion_leaves_nothing(tmp_path, lenet, monkeypatch):
    monkeypatch.setattr(kerascnn.export.directory, "convert_tflite", explode)
    destination = tmp_path / "lenet5"
    with pytest.raises(ExportError) as raised:
        export_model(lenet, destination, metadata={}, parity_images=raw_pixels(2))
    message = str(raised.value)
    assert "\n" not in message
    assert "converter exploded: op not supported" in message
    assert str(destination) in message
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_previous_export(existing, lenet, monkeypatch):
    monkeypatch.setattr(kerascnn.export.directory, "convert_tflite", explode)
    before = snapshot(existing)
    with pytest.raises(ExportError, match="converter exploded"):
        export_model(lenet, existing, metadata={}, overwrite=True)
    assert snapshot(existing) == before
    assert siblings(existing) == []


def test_an_artifact_out_of_tolerance_fails_the_export(tmp_path, lenet, monkeypatch):
    class SkewedRunner(TFLiteRunner):
        def __call__(self, images):
            return super().__call__(images) + 1e-3

    monkeypatch.setattr(kerascnn.export.directory, "TFLiteRunner", SkewedRunner)
    destination = tmp_path / "lenet5"
    with pytest.raises(ExportError, match="tflite disagrees"):
        export_model(lenet, destination, metadata={}, parity_images=raw_pixels(2))
    assert list(tmp_path.iterdir()) == []


# -- naming -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, name",
    [
        ("runs/lenet5-digits", "lenet5-digits"),
        ("runs/x/model.keras", "model"),
        ("best.keras", "best"),
    ],
)
def test_default_export_name(source, name):
    assert default_export_name(source) == name


def test_default_export_name_needs_a_name():
    with pytest.raises(ValueError):
        default_export_name("/")
