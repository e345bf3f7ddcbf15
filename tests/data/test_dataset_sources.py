"""Real dataset sources, on files the tests write in the real on-disk formats: image folders
(JPEG, PNG, BMP, GIF; grayscale, RGBA, palette, CMYK; a truncated file and a stray text file),
TFRecord shards in build_imagenet_data's layout, .npz arrays and Keras's dataset cache
(KERAS_HOME pointed at a temporary directory, so nothing is downloaded)."""

import gzip
import io
import os
import pickle
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from kerascnn.cli import main
from kerascnn.data import build_dataset, load_dataset, split_arrays
from kerascnn.data.sources import RestrictedUnpickler, image_file_problem
from kerascnn.errors import InvalidArgumentError, MissingFileError, UnknownNameError

SPLITS = ("train", "validation", "test")


def pixels(split, size=(8, 8), channels=3):
    return split_arrays(split, image_size=size, channels=channels)


# -- image folders ------------------------------------------------------------------------

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 40), "blue": (30, 30, 210)}


def solid(colour, size=(10, 12)):
    return Image.new("RGB", size, colour)


def write_flat_folder(root, per_class=10):
    """One folder per class, solid-colour images in every format and mode."""
    formats = [("png", "RGB"), ("jpg", "RGB"), ("bmp", "RGB"), ("gif", "P"), ("png", "RGBA")]
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            ext, mode = formats[i % len(formats)]
            image = solid(colour).convert(mode)
            image.save(folder / f"{i:02d}.{ext}")
    return root


@pytest.fixture
def folder(tmp_path):
    return write_flat_folder(tmp_path / "colours")


def test_flat_folder_is_split_stratified_and_deterministic_with_no_file_twice(folder):
    dataset = load_dataset(str(folder))
    assert dataset.class_names == ("blue", "green", "red")
    sizes = {name: len(dataset.split(name)) for name in SPLITS}
    assert sum(sizes.values()) == 30
    # Stratified: every class is in every split with the same count.
    for name in SPLITS:
        counts = np.bincount(dataset.split(name).labels, minlength=3)
        assert len(set(counts)) == 1, (name, counts)
    again = load_dataset(str(folder))
    for name in SPLITS:
        np.testing.assert_array_equal(dataset.split(name).labels, again.split(name).labels)
    # Same pixels in the same order, and the splits are disjoint (every image is unique by
    # its class colour plus format, so compare pixel rows with labels).
    a, _ = pixels(dataset.test)
    b, _ = pixels(again.test)
    np.testing.assert_array_equal(a, b)


def test_folder_images_decode_to_their_class_colour_in_every_format_and_mode(folder):
    dataset = load_dataset(str(folder))
    for name in SPLITS:
        images, labels = pixels(dataset.split(name))
        assert images.dtype == np.float32 and images.shape[1:] == (8, 8, 3)
        for image, label in zip(images, labels, strict=True):
            expected = COLOURS[dataset.class_names[label]]
            # JPEG and GIF's palette quantise colours a little.
            np.testing.assert_allclose(image.mean(axis=(0, 1)), expected, atol=12)


def test_folder_images_convert_to_grayscale_for_one_channel_models(folder):
    dataset = load_dataset(str(folder))
    images, labels = pixels(dataset.train, channels=1)
    assert images.shape[-1] == 1
    luma = np.array([0.2989, 0.5870, 0.1140])
    for image, label in zip(images, labels, strict=True):
        expected = np.array(COLOURS[dataset.class_names[label]]) @ luma
        assert abs(image.mean() - expected) < 12


def test_grayscale_and_cmyk_jpegs_become_rgb(tmp_path):
    root = tmp_path / "modes"
    for name, image in {
        "gray": Image.new("L", (9, 9), 128),
        "cmyk": solid((200, 40, 40), (9, 9)).convert("CMYK"),
    }.items():
        (root / name).mkdir(parents=True)
        for i in range(5):
            image.save(root / name / f"{i}.jpg")
    dataset = load_dataset(str(root))
    images, labels = pixels(dataset.train)
    for image, label in zip(images, labels, strict=True):
        if dataset.class_names[label] == "gray":
            np.testing.assert_allclose(image, 128, atol=3)
        else:
            # PIL writes Adobe-inverted CMYK; any sane decoder gives a reddish image back.
            red, green, blue = image.mean(axis=(0, 1))
            assert red > green + 60 and red > blue + 60


def test_train_val_test_layout_keeps_the_given_splits(tmp_path):
    for split, count in (("train", 6), ("val", 3), ("test", 2)):
        write_flat_folder(tmp_path / "ds" / split, per_class=count)
    dataset = load_dataset(str(tmp_path / "ds"))
    assert [len(dataset.split(n)) for n in SPLITS] == [18, 9, 6]
    without_test = tmp_path / "ds2"
    for split, count in (("train", 4), ("val", 2)):
        write_flat_folder(without_test / split, per_class=count)
    dataset = load_dataset(str(without_test))
    assert len(dataset.test) == len(dataset.validation) == 6


def corrupt(folder):
    """A truncated JPEG, a text file with an image name and a stray README."""
    good = (folder / "red" / "01.jpg").read_bytes()
    (folder / "red" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "green" / "fake.png").write_text("not a picture")
    (folder / "blue" / "notes.txt").write_text("stray file")


def test_bad_files_are_skipped_with_one_warning_line(folder, capsys):
    corrupt(folder)
    dataset = load_dataset(str(folder))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("Warning: skipped 3 unreadable or non-image file(s) in ")
    assert sum(len(dataset.split(n)) for n in SPLITS) == 30
    for name in SPLITS:  # a whole epoch runs through
        images, labels = pixels(dataset.split(name))
        assert len(images) == len(labels) == len(dataset.split(name))


def test_strict_makes_bad_files_an_error(folder):
    corrupt(folder)
    with pytest.raises(InvalidArgumentError, match="3 unreadable.*--strict"):
        load_dataset(str(folder), strict=True)


def test_undecodable_file_passing_the_header_check_is_dropped_mid_epoch(folder):
    # A JPEG with valid start and end markers but garbage in between: only decoding finds it.
    (folder / "red" / "garbage.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 200 + b"\xff\xd9")
    assert image_file_problem(folder / "red" / "garbage.jpg") is None
    dataset = load_dataset(str(folder))
    assert sum(len(dataset.split(n)) for n in SPLITS) == 31  # listed: it looked whole
    for name in SPLITS:
        split = dataset.split(name)
        # The epoch runs through without an exception and keeps its length (the dropped
        # image's place taken by wrapping round), so Keras knows the number of steps.
        batches = build_dataset(split, image_size=(8, 8), channels=3, batch_size=4, training=True)
        assert batches.cardinality().numpy() == -(-len(split) // 4)
        images, labels = pixels(split)
        assert len(images) == len(split)
        for image, label in zip(images, labels, strict=True):  # every label is its image's
            expected = COLOURS[dataset.class_names[label]]
            np.testing.assert_allclose(image.mean(axis=(0, 1)), expected, atol=12)


def test_image_file_problem_names_each_kind_of_damage(tmp_path):
    png = tmp_path / "a.png"
    solid((1, 2, 3)).save(png)
    assert image_file_problem(png) is None
    cut = tmp_path / "cut.png"
    cut.write_bytes(png.read_bytes()[:-20])
    assert image_file_problem(cut) == "truncated"
    text = tmp_path / "t.txt"
    text.write_text("x")
    assert image_file_problem(text) == "not an image file"
    bmp = tmp_path / "b.bmp"
    solid((1, 2, 3)).save(bmp)
    (tmp_path / "cut.bmp").write_bytes(bmp.read_bytes()[:-10])
    assert image_file_problem(tmp_path / "cut.bmp") == "truncated"


def test_empty_class_folder_and_missing_path_are_refused(tmp_path, folder):
    (folder / "violet").mkdir()
    with pytest.raises(MissingFileError, match="violet has no readable images"):
        load_dataset(str(folder))
    with pytest.raises(MissingFileError, match="not found"):
        load_dataset(str(tmp_path / "nowhere"))
    with pytest.raises(UnknownNameError, match="unknown dataset"):
        load_dataset("cifar11")


def test_folder_split_streams_files_instead_of_holding_pixels(folder):
    dataset = load_dataset(str(folder))
    assert not dataset.train.in_memory
    batches = build_dataset(
        dataset.train, image_size=(6, 6), channels=3, batch_size=4, training=True, cache=False
    )
    seen = np.concatenate([labels for _, labels in batches.as_numpy_iterator()])
    assert sorted(seen) == sorted(dataset.train.labels)


# -- .npz ---------------------------------------------------------------------------------


def test_npz_arrays(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    x_train = rng.integers(0, 256, (40, 5, 5), dtype=np.uint8)
    y_train = np.repeat(np.arange(4), 10)
    x_test = rng.integers(0, 256, (8, 5, 5), dtype=np.uint8)
    y_test = np.arange(8) % 4
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    dataset = load_dataset(str(path))
    assert dataset.num_classes == 4 and dataset.channels == 1
    assert len(dataset.train) + len(dataset.validation) == 40
    np.testing.assert_array_equal(dataset.test.images[..., 0], x_test)
    # Every training image is in exactly one of train and validation.
    rows = {img.tobytes() for img in dataset.train.images} | {
        img.tobytes() for img in dataset.validation.images
    }
    assert rows == {img.tobytes() for img in x_train[..., None]}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"y_train": np.zeros(39, int)}, "x_train has 40 images but y_train"),
        ({"y_test": np.array([0, 1, 2, 3, 0, 1, 2, -1])}, "labels from -1"),
        ({"x_test": None}, "lacks x_test"),
    ],
)
def test_bad_npz_is_refused(tmp_path, change, message):
    arrays = {
        "x_train": np.zeros((40, 4, 4), np.uint8),
        "y_train": np.arange(40) % 4,
        "x_test": np.zeros((8, 4, 4), np.uint8),
        "y_test": np.arange(8) % 4,
    }
    arrays.update(change)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InvalidArgumentError, match=message):
        load_dataset(str(tmp_path / "bad.npz"))


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x_train=np.array([{"a": 1}], dtype=object), y_train=[0], x_test=[], y_test=[])
    with pytest.raises(InvalidArgumentError, match="not a readable .npz"):
        load_dataset(str(path))


# -- Keras's dataset cache ----------------------------------------------------------------


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "datasets"


def test_mnist_from_the_keras_cache(keras_home):
    keras_home.mkdir(parents=True)
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    y_train = np.arange(50) % 10
    x_test = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    y_test = np.arange(10)
    np.savez(
        keras_home / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
    )
    dataset = load_dataset("mnist")
    assert dataset.class_names == tuple("0123456789")
    assert len(dataset.train) + len(dataset.validation) == 50
    np.testing.assert_array_equal(dataset.test.images[..., 0], x_test)


def idx_bytes(array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.tobytes())


def test_fashion_mnist_from_the_keras_cache(keras_home):
    folder = keras_home / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    data = {
        "train-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (30, 28, 28), np.uint8), 2051),
        "train-labels-idx1-ubyte.gz": idx_bytes((np.arange(30) % 10).astype(np.uint8), 2049),
        "t10k-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (5, 28, 28), np.uint8), 2051),
        "t10k-labels-idx1-ubyte.gz": idx_bytes(np.arange(5, dtype=np.uint8), 2049),
    }
    for name, content in data.items():
        (folder / name).write_bytes(content)
    dataset = load_dataset("fashion_mnist")
    assert dataset.class_names[9] == "ankle boot"
    np.testing.assert_array_equal(dataset.test.labels, np.arange(5))
    assert dataset.test.images.shape == (5, 28, 28, 1)


def cifar_batch(path, images, labels, key):
    # What the CIFAR python batches hold: a dict of bytes keys, a (N, 3072) uint8 array in
    # channel-major order and a list of labels, pickled with protocol 2.
    data = {b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1), key: list(labels)}
    path.write_bytes(pickle.dumps(data, protocol=2))


def test_cifar10_from_the_keras_cache_without_plain_unpickling(keras_home):
    folder = keras_home / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    expected = []
    for i in range(1, 6):
        images = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
        expected.append(images)
        cifar_batch(folder / f"data_batch_{i}", images, np.arange(10), b"labels")
    test_images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    cifar_batch(folder / "test_batch", test_images, [3, 1, 4, 1], b"labels")
    dataset = load_dataset("cifar10")
    assert dataset.class_names[0] == "airplane"
    np.testing.assert_array_equal(dataset.test.images, test_images)  # HWC order recovered
    np.testing.assert_array_equal(dataset.test.labels, [3, 1, 4, 1])
    assert len(dataset.train) + len(dataset.validation) == 50


def test_cifar100_fine_labels_from_the_keras_cache(keras_home):
    folder = keras_home / "cifar-100-python-target" / "cifar-100-python"
    folder.mkdir(parents=True)
    images = np.zeros((100, 32, 32, 3), np.uint8)
    cifar_batch(folder / "train", images, np.arange(100), b"fine_labels")
    cifar_batch(folder / "test", images[:3], [99, 0, 5], b"fine_labels")
    dataset = load_dataset("cifar100")
    assert dataset.num_classes == 100
    np.testing.assert_array_equal(dataset.test.labels, [99, 0, 5])


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_tampered_cifar_batch_is_refused_not_executed(keras_home):
    folder = keras_home / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(InvalidArgumentError, match="not allowed"):
        load_dataset("cifar10")
    with pytest.raises(pickle.UnpicklingError):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(Evil())), encoding="bytes").load()


def test_an_empty_keras_cache_without_network_is_one_error(keras_home, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(MissingFileError, match="mnist.npz is not in the Keras cache"):
        load_dataset("mnist")


# -- TFRecord shards ----------------------------------------------------------------------


def example(image, label, text):
    feature = {
        "image/encoded": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[tf.io.encode_jpeg(image, quality=95).numpy()])
        ),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "image/class/text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
        "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[image.shape[0]])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shards(folder, split, per_class, shards=2):
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for label, (text, colour) in enumerate(COLOURS.items(), start=1):
        image = np.broadcast_to(np.array(colour, np.uint8), (12, 14, 3))
        records += [example(image, label, text)] * per_class
    for shard in range(shards):
        with tf.io.TFRecordWriter(str(folder / f"{split}-{shard:05d}-of-{shards:05d}")) as out:
            for record in records[shard::shards]:
                out.write(record)


def test_tfrecord_shards_in_the_imagenet_layout(tmp_path):
    write_shards(tmp_path / "tf", "train", 4)
    write_shards(tmp_path / "tf", "validation", 2)
    dataset = load_dataset(f"tfrecord:{tmp_path}/tf/*")
    assert dataset.class_names == tuple(COLOURS)  # from image/class/text, label 1 first
    assert len(dataset.train) == 12 and len(dataset.validation) == 6
    images, labels = pixels(dataset.validation)
    assert sorted(labels) == sorted(dataset.validation.labels)
    for image, label in zip(images, labels, strict=True):
        np.testing.assert_allclose(
            image.mean(axis=(0, 1)), COLOURS[dataset.class_names[label]], atol=6
        )


def test_tfrecord_label_offset(tmp_path):
    write_shards(tmp_path / "tf", "data", 10, shards=1)
    with pytest.raises(InvalidArgumentError, match="label-offset"):
        load_dataset(f"tfrecord:{tmp_path}/tf/*", label_offset=2)
    dataset = load_dataset(f"tfrecord:{tmp_path}/tf/*", label_offset=0)
    # Labels kept as written (1-3), so class 0 has no name of its own.
    assert dataset.num_classes == 4 and dataset.class_names[1] == "red"
    # Without train/validation shard names the records are split stratified.
    assert sum(len(dataset.split(n)) for n in SPLITS) == 30


def test_tfrecord_without_the_expected_features_is_refused(tmp_path):
    path = tmp_path / "other.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as out:
        feature = {"x": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}
        out.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    with pytest.raises(InvalidArgumentError, match="lack image/encoded, image/class/label"):
        load_dataset(f"tfrecord:{path}")
    with pytest.raises(MissingFileError, match="no TFRecord files"):
        load_dataset(f"tfrecord:{tmp_path}/nothing-*")


def test_tfds_without_the_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(InvalidArgumentError, match="pip install tensorflow-datasets"):
        load_dataset("tfds:mnist")


# -- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset, message",
    [
        ("does/not/exist", "Error: dataset path not found: does/not/exist"),
        ("tfrecord:/nowhere/*", "Error: no TFRecord files match /nowhere/*"),
        ("cifar11", "Error: unknown dataset 'cifar11'"),
    ],
)
def test_bad_datasets_are_refused_before_training(tmp_path, dataset, message):
    result = CliRunner().invoke(
        main, ["train", "--dataset", dataset, "--output-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(message), result.output
    assert not (tmp_path / "runs").exists()


def test_strict_flag_from_the_command_line(folder, tmp_path):
    corrupt(folder)
    result = CliRunner().invoke(
        main,
        ["train", "--dataset", str(folder), "--strict", "--output-dir", str(tmp_path / "runs")],
    )
    assert result.exit_code == 2
    assert "--strict" in result.output and "Traceback" not in result.output


def test_an_even_spread_of_a_streamed_split_matches_its_labels(folder):
    train = load_dataset(str(folder)).train
    sample = train.spread(5)
    images, labels = pixels(sample)
    np.testing.assert_array_equal(labels, sample.labels)
    assert len(set(labels)) == 3  # every class, though the split is sorted by class
