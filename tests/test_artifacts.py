"""Loading every kind of artifact and using it: prediction parity across kinds, class names
from ``metadata.json``, image decoding, top-k and evaluation. Expected figures are computed
here in numpy."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerascnn
from kerascnn.evaluation import evaluate_artifact
from kerascnn.export import export_model
from kerascnn.runtime import Artifact, load_artifact, read_images, top_k

TOLERANCE = 1e-4
CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# ITU-R BT.601 luma, the weights tf.image.rgb_to_grayscale documents.
LUMA = np.array([0.2989, 0.5870, 0.1140])


def raw_pixels(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 1)).astype("float32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A LeNet-5 and its export directory (metadata with class names)."""
    model = kerascnn.create_model("lenet5", num_classes=10, variant="modern")
    destination = tmp_path_factory.mktemp("artifacts") / "lenet5"
    export_model(model, destination, metadata={"model": "lenet5", "class_names": CLASS_NAMES})
    return model, destination


@pytest.fixture(scope="module")
def serving_dir(exported, tmp_path_factory):
    """A TF Serving model directory: numbered versions and metadata, no model.keras."""
    _, destination = exported
    directory = tmp_path_factory.mktemp("serving") / "lenet5"
    directory.mkdir()
    shutil.copytree(destination / "1", directory / "1")
    shutil.copy(destination / "metadata.json", directory / "metadata.json")
    return directory


@pytest.fixture(scope="module")
def artifact_paths(exported, serving_dir):
    _, destination = exported
    return {
        "keras file": (destination / "model.keras", "keras"),
        "saved model": (destination / "1", "saved_model"),
        "version parent": (serving_dir, "saved_model"),
        "tflite file": (destination / "model.tflite", "tflite"),
        "export directory": (destination, "keras"),
    }


@pytest.fixture(scope="module")
def reference(exported):
    model, _ = exported
    images = raw_pixels(7, seed=1)
    return images, np.asarray(model(images, training=False))


# -- load_artifact ------------------------------------------------------------------------

KINDS = ["keras file", "saved model", "version parent", "tflite file", "export directory"]


@pytest.mark.parametrize("which", KINDS)
def test_every_kind_loads_and_predicts_like_the_keras_model(artifact_paths, reference, which):
    path, kind = artifact_paths[which]
    images, expected = reference
    artifact = load_artifact(path)
    assert artifact.kind == kind
    assert artifact.input_shape == (32, 32, 1)
    assert artifact.num_classes == 10
    assert artifact.class_names == CLASS_NAMES
    np.testing.assert_allclose(artifact.predict(images), expected, atol=TOLERANCE)
    # Batching inside predict does not change the answer or its order.
    np.testing.assert_allclose(artifact.predict(images, batch_size=3), expected, atol=TOLERANCE)


def test_keras_artifact_keeps_its_model(artifact_paths):
    artifact = load_artifact(artifact_paths["keras file"][0])
    assert isinstance(artifact.keras_model, keras.Model)


def test_the_highest_numbered_version_is_served(serving_dir, tmp_path):
    directory = tmp_path / "served"
    for version in ("2", "10", "9"):
        shutil.copytree(serving_dir / "1", directory / version)
    (directory / "notes").mkdir()
    assert load_artifact(directory).path == directory / "10"


def test_metadata_is_read_from_the_run_directory_above(exported, tmp_path):
    _, destination = exported
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(destination / "model.keras", tmp_path / "checkpoints" / "best.keras")
    (tmp_path / "metadata.json").write_text(json.dumps({"class_names": list("abcdefghij")}))
    artifact = load_artifact(tmp_path / "checkpoints" / "best.keras")
    assert artifact.class_names == list("abcdefghij")


def test_without_metadata_classes_are_numbered(exported, tmp_path):
    _, destination = exported
    shutil.copy(destination / "model.tflite", tmp_path / "alone.tflite")
    artifact = load_artifact(tmp_path / "alone.tflite")
    assert artifact.metadata == {}
    assert artifact.num_classes == 10
    assert artifact.class_names == [str(i) for i in range(10)]


def test_invalid_metadata_is_a_value_error(exported, tmp_path):
    _, destination = exported
    shutil.copy(destination / "model.tflite", tmp_path / "model.tflite")
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(ValueError, match="metadata.json"):
        load_artifact(tmp_path / "model.tflite")


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_artifact(tmp_path / "absent.keras")


@pytest.mark.parametrize("name", ["notes.txt", "model.h5", "model"])
def test_a_file_of_another_kind_is_a_value_error(tmp_path, name):
    path = tmp_path / name
    path.write_text("hello")
    with pytest.raises(ValueError, match="not a kerascnn artifact"):
        load_artifact(path)


def test_a_directory_without_an_artifact_is_a_value_error(tmp_path):
    (tmp_path / "1").mkdir()  # numbered, but no saved_model.pb inside
    (tmp_path / "metadata.json").write_text("{}")
    with pytest.raises(ValueError, match="not a kerascnn artifact"):
        load_artifact(tmp_path)


def test_an_unfinished_run_points_at_its_checkpoints(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ValueError, match="checkpoints"):
        load_artifact(tmp_path)


@pytest.mark.parametrize("name", ["model.keras", "model.tflite", "1/saved_model.pb"])
@pytest.mark.parametrize("size", [0, 4096])
def test_a_corrupt_artifact_is_a_value_error(tmp_path, name, size):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(np.random.default_rng(size).integers(0, 256, size, np.uint8).tobytes())
    with pytest.raises(ValueError, match="cannot load"):
        load_artifact(path if path.name != "saved_model.pb" else path.parent)


def test_a_foreign_keras_file_names_the_class_kerascnn_lacks(tmp_path):
    @keras.saving.register_keras_serializable(package="elsewhere")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(Doubler()(inputs)))
    keras.Model(inputs, outputs).save(tmp_path / "foreign.keras")
    # As in a process that never imported the code defining the class.
    del keras.saving.get_custom_objects()["elsewhere>Doubler"]
    with pytest.raises(ValueError, match=r"layer class kerascnn does not have \(Doubler\)"):
        load_artifact(tmp_path / "foreign.keras")


def test_a_truncated_tflite_file_is_a_value_error(exported, tmp_path):
    _, destination = exported
    flatbuffer = (destination / "model.tflite").read_bytes()
    path = tmp_path / "model.tflite"
    path.write_bytes(flatbuffer[: len(flatbuffer) // 2])
    with pytest.raises(ValueError, match="cannot load"):
        load_artifact(path)


def test_a_model_without_a_fixed_input_size_is_refused(tmp_path):
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs))
    path = tmp_path / "any_size.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="fixed size"):
        load_artifact(path)


# -- read_images --------------------------------------------------------------------------

COLOR = (30, 160, 220)
ALPHA = 90


def constant(shape, values):
    return np.broadcast_to(np.asarray(values, np.uint8), shape).copy()


def write_png(path, pixels):
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    return path


def write_jpeg(path, pixels):
    path.write_bytes(tf.io.encode_jpeg(pixels, quality=100).numpy())
    return path


def write_bmp(path, pixels):
    image = pytest.importorskip("PIL.Image")
    image.fromarray(pixels).save(path, format="BMP")
    return path


def luma(color):
    return float(np.asarray(color[:3], "float64") @ LUMA)


# (file writer, pixels as written, what an RGB model sees, what a grayscale model sees,
# tolerance): a grayscale file is passed through as it is, a colour one goes through luma.
IMAGE_FILES = {
    "png-gray": (write_png, constant((10, 14, 1), [77]), (77, 77, 77), 77, 1e-3),
    "png-rgb": (write_png, constant((10, 14, 3), COLOR), COLOR, luma(COLOR), 1e-3),
    "png-rgba": (write_png, constant((10, 14, 4), [*COLOR, ALPHA]), COLOR, luma(COLOR), 1e-3),
    "jpeg-rgb": (write_jpeg, constant((16, 16, 3), COLOR), COLOR, luma(COLOR), 3.0),
    "jpeg-gray": (write_jpeg, constant((16, 16, 1), [77]), (77, 77, 77), 77, 3.0),
    "bmp-rgb": (write_bmp, constant((10, 14, 3), COLOR), COLOR, luma(COLOR), 1e-3),
}
EXTENSIONS = {write_png: ".png", write_jpeg: ".jpg", write_bmp: ".bmp"}


def write_image(tmp_path, name):
    writer, pixels, *_ = IMAGE_FILES[name]
    return writer(tmp_path / f"{name}{EXTENSIONS[writer]}", pixels)


@pytest.mark.parametrize("name", IMAGE_FILES)
def test_read_images_decodes_converts_and_resizes_to_rgb(tmp_path, name):
    _, _, rgb, _, tolerance = IMAGE_FILES[name]
    images = read_images([write_image(tmp_path, name)], (32, 24, 3))
    assert images.shape == (1, 32, 24, 3)
    assert images.dtype == np.float32
    np.testing.assert_allclose(images, np.broadcast_to(rgb, images.shape), atol=tolerance)


@pytest.mark.parametrize("name", IMAGE_FILES)
def test_read_images_converts_to_grayscale(tmp_path, name):
    _, _, _, gray, tolerance = IMAGE_FILES[name]
    images = read_images([write_image(tmp_path, name)], (8, 8, 1))
    assert images.shape == (1, 8, 8, 1)
    np.testing.assert_allclose(images, np.full(images.shape, gray), atol=tolerance)


def test_read_images_passes_pixels_through_at_the_input_size(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    images = read_images([write_png(tmp_path / "noise.png", pixels)], (32, 32, 3))
    np.testing.assert_array_equal(images[0], pixels.astype("float32"))


def test_read_images_keeps_the_order_of_the_paths(tmp_path):
    paths = [write_png(tmp_path / f"{v}.png", constant((4, 4, 1), [v])) for v in (200, 3, 90)]
    images = read_images(paths, (4, 4, 1))
    np.testing.assert_array_equal(images[:, 0, 0, 0], [200.0, 3.0, 90.0])


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30],
    ids=["empty", "text", "png-header-only"],
)
def test_an_undecodable_file_is_a_value_error(tmp_path, content):
    path = tmp_path / "picture.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="cannot decode"):
        read_images([path], (8, 8, 1))


def test_a_missing_image_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_images([tmp_path / "absent.png"], (8, 8, 1))


def test_read_images_feeds_an_artifact(artifact_paths, exported, tmp_path):
    model, _ = exported
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8)
    path = write_png(tmp_path / "rgb.png", pixels)
    artifact = load_artifact(artifact_paths["tflite file"][0])
    images = read_images([path], artifact.input_shape)
    expected = pixels.astype("float64") @ LUMA
    np.testing.assert_allclose(images[0, ..., 0], expected, atol=1e-3)
    np.testing.assert_allclose(
        artifact.predict(images), np.asarray(model(images, training=False)), atol=TOLERANCE
    )


# -- top_k --------------------------------------------------------------------------------

PROBABILITIES = np.array([[0.1, 0.6, 0.05, 0.25], [0.4, 0.05, 0.35, 0.2]], "float32")
NAMES = ["cat", "dog", "fox", "owl"]


def test_top_k_orders_by_probability():
    results = top_k(PROBABILITIES, NAMES, 2)
    assert [[entry["class"] for entry in row] for row in results] == [
        ["dog", "owl"],
        ["cat", "fox"],
    ]
    for row, probabilities in zip(results, PROBABILITIES, strict=True):
        for entry in row:
            assert isinstance(entry["index"], int)
            assert entry["class"] == NAMES[entry["index"]]
            assert entry["probability"] == pytest.approx(float(probabilities[entry["index"]]))
        values = [entry["probability"] for entry in row]
        assert values == sorted(values, reverse=True)


@pytest.mark.parametrize("k", [4, 5, 100])
def test_top_k_is_clipped_to_the_classes(k):
    results = top_k(PROBABILITIES, NAMES, k)
    for row, probabilities in zip(results, PROBABILITIES, strict=True):
        assert len(row) == len(NAMES)
        assert [entry["index"] for entry in row] == np.argsort(-probabilities).tolist()


def test_top_1():
    assert [row[0]["class"] for row in top_k(PROBABILITIES, NAMES, 1)] == ["dog", "cat"]
    assert all(len(row) == 1 for row in top_k(PROBABILITIES, NAMES, 1))


# -- evaluate_artifact --------------------------------------------------------------------


def table_artifact(table, class_names=None):
    """An artifact whose image ``i`` (every pixel equal to ``i``) gets row ``i`` of ``table``."""
    table = np.asarray(table, "float32")
    metadata = {"class_names": class_names} if class_names is not None else {}
    return Artifact(
        path=Path("table"),
        kind="keras",
        input_shape=(2, 2, 1),
        run=lambda images: table[images[:, 0, 0, 0].astype(int)],
        metadata=metadata,
    )


def image_ids(count):
    return np.broadcast_to(np.arange(count, dtype="float32")[:, None, None, None], (count, 2, 2, 1))


def numpy_metrics(probabilities, labels):
    picked = probabilities[np.arange(len(labels)), labels].astype("float64")
    top5 = np.argsort(-probabilities, axis=-1)[:, :5]
    return {
        "loss": -np.mean(np.log(picked)),
        "accuracy": np.mean(probabilities.argmax(-1) == labels),
        "top5_accuracy": np.mean([label in row for label, row in zip(labels, top5, strict=True)]),
    }


@pytest.fixture
def scored():
    """Probabilities over 12 classes for 90 images; a third labelled with their argmax, a
    third with their 3rd-5th most probable class, a third with one of the least probable."""
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(12), 90).astype("float32")
    order = np.argsort(-probabilities, axis=-1)
    rank = np.concatenate([np.zeros(30, int), rng.integers(2, 5, 30), rng.integers(6, 12, 30)])
    labels = order[np.arange(90), rank]
    return probabilities, labels


def test_evaluate_artifact_matches_numpy(scored):
    probabilities, labels = scored
    metrics = evaluate_artifact(table_artifact(probabilities), image_ids(90), labels)
    expected = numpy_metrics(probabilities, labels)
    assert metrics["images"] == 90
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert metrics["top5_accuracy"] == pytest.approx(expected["top5_accuracy"])
    assert metrics["cross_entropy"] == pytest.approx(expected["loss"], rel=1e-5)
    # The labelling above fixes the answers: a third top-1, two thirds top-5.
    assert expected["accuracy"] == pytest.approx(1 / 3)
    assert expected["top5_accuracy"] == pytest.approx(2 / 3)


def test_evaluate_artifact_on_a_loaded_model(artifact_paths, reference):
    images, probabilities = reference
    labels = np.array([0, 3, 9, 1, 1, 7, 4])
    metrics = evaluate_artifact(load_artifact(artifact_paths["tflite file"][0]), images, labels)
    expected = numpy_metrics(probabilities, labels)
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"])
    assert metrics["top5_accuracy"] == pytest.approx(expected["top5_accuracy"])
    assert metrics["cross_entropy"] == pytest.approx(expected["loss"], rel=1e-4)


def test_evaluate_artifact_with_few_classes_has_no_top5():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    metrics = evaluate_artifact(table_artifact(probabilities), image_ids(2), np.array([0, 1]))
    assert "top5_accuracy" not in metrics
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["cross_entropy"] == pytest.approx(-np.mean(np.log([0.7, 0.3])), rel=1e-5)


def test_labels_beyond_the_classes_are_a_value_error(scored):
    probabilities, labels = scored
    labels = labels.copy()
    labels[5] = 12
    with pytest.raises(ValueError, match="12"):
        evaluate_artifact(table_artifact(probabilities), image_ids(90), labels)


def test_negative_labels_are_a_value_error(scored):
    probabilities, labels = scored
    labels = labels.copy()
    labels[5] = -1
    with pytest.raises(ValueError):
        evaluate_artifact(table_artifact(probabilities), image_ids(90), labels)


def test_outputs_that_do_not_match_the_class_names_are_a_value_error(scored):
    probabilities, labels = scored
    artifact = table_artifact(probabilities, class_names=[str(i) for i in range(10)])
    with pytest.raises(ValueError, match="class names"):
        evaluate_artifact(artifact, image_ids(90), labels)


@pytest.mark.parametrize("value", [0.1, np.nan], ids=["uniform", "nan"])
def test_a_model_that_says_nothing_is_not_accurate(value):
    probabilities = np.full((10, 10), value)
    labels = np.arange(10)
    metrics = evaluate_artifact(table_artifact(probabilities), image_ids(10), labels)
    # Keras's accuracy takes the argmax (the first class on a tie): one label in ten is
    # right for the uniform model, none for NaN outputs.
    assert metrics["accuracy"] <= 0.1
