"""The tf.data pipeline. Every conversion is checked eagerly (``image_converter`` called on
a tensor) and inside ``tf.data`` (``build_dataset``), since the two run different code paths
(STYLE 6); expected pixels are computed here in numpy."""

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import build_dataset, load_dataset, split_arrays
from kerascnn.data.pipeline import image_converter
from kerascnn.data.sources import Split

# ITU-R BT.601 luma, the weights tf.image.rgb_to_grayscale documents.
LUMA = np.array([0.2989, 0.5870, 0.1140])


def random_split(count, shape, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
    return Split(images, np.arange(count, dtype="int64"))


def eager(image, image_size, channels):
    return image_converter(image_size, channels)(tf.constant(image)).numpy()


def in_tf_data(images, image_size, channels):
    split = Split(np.asarray(images), np.arange(len(images), dtype="int64"))
    dataset = build_dataset(
        split, image_size=image_size, channels=channels, batch_size=len(images), training=False
    )
    (batch, _), *rest = list(dataset.as_numpy_iterator())
    assert not rest
    return batch


def epoch_labels(dataset):
    return np.concatenate([labels for _, labels in dataset.as_numpy_iterator()])


# -- batches ------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [False, True])
def test_build_dataset_yields_float_batches_of_the_requested_shape(training):
    split = random_split(10, (6, 6, 3))
    dataset = build_dataset(
        split, image_size=(9, 7), channels=3, batch_size=4, training=training, seed=0
    )
    batches = list(dataset.as_numpy_iterator())
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    for images, labels in batches:
        assert images.dtype == np.float32
        assert images.shape == (len(labels), 9, 7, 3)
        assert labels.dtype == np.int64
        assert images.min() >= 0.0
        assert images.max() <= 255.0


def test_build_dataset_keeps_extreme_pixels_in_range_when_resizing():
    # A 0/255 checkerboard is the worst case for overshoot when resampling.
    board = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
    for size in [(5, 5), (13, 11), (32, 32)]:
        batch = in_tf_data(board[None], size, 1)
        assert batch.min() >= 0.0
        assert batch.max() <= 255.0


def test_build_dataset_at_the_same_size_passes_pixels_through():
    split = random_split(5, (8, 8, 1))
    batch = in_tf_data(split.images, (8, 8), 1)
    np.testing.assert_array_equal(batch, split.images.astype("float32"))


# -- channel conversion -------------------------------------------------------------------


def gray_to_rgb(images):
    return np.repeat(images.astype("float32"), 3, axis=-1)


def rgb_to_gray(images):
    return (images[..., :3].astype("float64") @ LUMA)[..., None]


CONVERSIONS = [
    pytest.param(1, 3, gray_to_rgb, id="gray-to-rgb"),
    pytest.param(3, 1, rgb_to_gray, id="rgb-to-gray"),
    pytest.param(4, 3, lambda x: x[..., :3].astype("float32"), id="rgba-to-rgb"),
    pytest.param(4, 1, rgb_to_gray, id="rgba-to-gray"),
    pytest.param(3, 3, lambda x: x.astype("float32"), id="rgb-unchanged"),
]


@pytest.mark.parametrize("have, want, expected", CONVERSIONS)
def test_channel_conversion_eagerly(have, want, expected):
    images = random_split(3, (5, 4, have), seed=have).images
    for image in images:
        converted = eager(image, (5, 4), want)
        assert converted.shape == (5, 4, want)
        assert converted.dtype == np.float32
        np.testing.assert_allclose(converted, expected(image), atol=1e-3)


@pytest.mark.parametrize("have, want, expected", CONVERSIONS)
def test_channel_conversion_inside_tf_data(have, want, expected):
    images = random_split(3, (5, 4, have), seed=have).images
    batch = in_tf_data(images, (5, 4), want)
    assert batch.shape == (3, 5, 4, want)
    np.testing.assert_allclose(batch, expected(images), atol=1e-3)


def test_unsupported_channel_conversion_is_a_value_error():
    two_channel = np.zeros((4, 4, 2), np.uint8)
    with pytest.raises(ValueError, match="2-channel"):
        eager(two_channel, (4, 4), 3)


# -- resizing -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(32, 32), (5, 3), (8, 20)])
def test_resizing_a_constant_image_keeps_it_constant(size):
    image = np.full((8, 8, 1), 173, np.uint8)
    expected = np.full((*size, 1), 173.0)
    np.testing.assert_allclose(eager(image, size, 1), expected, atol=1e-3)
    np.testing.assert_allclose(in_tf_data(image[None], size, 1)[0], expected, atol=1e-3)


@pytest.mark.parametrize("size", [(5, 5), (7, 9)])
def test_downsampling_averages_instead_of_aliasing(size):
    # A one-pixel 0/255 checkerboard shrunk several times over should come out as its
    # average grey; point sampling (no antialiasing) would keep dark and bright patches.
    board = (np.indices((32, 32)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
    mean = board.mean()
    np.testing.assert_allclose(eager(board, size, 1), np.full((*size, 1), mean), atol=5.0)
    np.testing.assert_allclose(in_tf_data(board[None], size, 1)[0], mean, atol=5.0)


def test_resizing_a_constant_gray_image_to_rgb_keeps_every_channel_constant():
    image = np.full((6, 10, 1), 42, np.uint8)
    expected = np.full((16, 16, 3), 42.0)
    np.testing.assert_allclose(eager(image, (16, 16), 3), expected, atol=1e-3)
    np.testing.assert_allclose(in_tf_data(image[None], (16, 16), 3)[0], expected, atol=1e-3)


# -- order and shuffling ------------------------------------------------------------------


@pytest.fixture
def numbered():
    """64 constant images whose pixel value is their label, so pairs can be followed."""
    count = 64
    images = np.broadcast_to(
        np.arange(count, dtype=np.uint8)[:, None, None, None], (count, 4, 4, 1)
    )
    return Split(np.ascontiguousarray(images), np.arange(count, dtype="int64"))


def test_evaluation_preserves_the_split_order(numbered):
    dataset = build_dataset(numbered, image_size=(4, 4), channels=1, batch_size=10, training=False)
    for _ in range(2):
        np.testing.assert_array_equal(epoch_labels(dataset), numbered.labels)


def test_training_reshuffles_every_epoch(numbered):
    dataset = build_dataset(
        numbered, image_size=(4, 4), channels=1, batch_size=10, training=True, seed=3
    )
    first, second = epoch_labels(dataset), epoch_labels(dataset)
    np.testing.assert_array_equal(np.sort(first), numbered.labels)
    np.testing.assert_array_equal(np.sort(second), numbered.labels)
    assert not np.array_equal(first, numbered.labels)
    assert not np.array_equal(first, second)


def test_training_order_is_reproducible_under_a_seed(numbered):
    def first_epoch(seed):
        dataset = build_dataset(
            numbered, image_size=(4, 4), channels=1, batch_size=10, training=True, seed=seed
        )
        return epoch_labels(dataset)

    np.testing.assert_array_equal(first_epoch(3), first_epoch(3))
    assert not np.array_equal(first_epoch(3), first_epoch(4))


def test_shuffling_keeps_images_with_their_labels(numbered):
    dataset = build_dataset(
        numbered, image_size=(4, 4), channels=1, batch_size=10, training=True, seed=5
    )
    for images, labels in dataset.as_numpy_iterator():
        np.testing.assert_array_equal(images[:, 0, 0, 0], labels.astype("float32"))
        np.testing.assert_array_equal(images.min(axis=(1, 2, 3)), images.max(axis=(1, 2, 3)))


# -- split_arrays -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_train():
    return load_dataset("digits").train


def test_split_arrays_returns_the_split_in_order(digits_train):
    # The split is larger than one internal batch, so batches must be joined in order.
    assert len(digits_train) > 256
    images, labels = split_arrays(digits_train, image_size=(8, 8), channels=1)
    assert isinstance(images, np.ndarray)
    assert isinstance(labels, np.ndarray)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, digits_train.images.astype("float32"))
    np.testing.assert_array_equal(labels, digits_train.labels)


@pytest.mark.parametrize("limit", [1, 5, 300])
def test_split_arrays_honours_limit(digits_train, limit):
    images, labels = split_arrays(digits_train, image_size=(8, 8), channels=1, limit=limit)
    assert images.shape == (limit, 8, 8, 1)
    np.testing.assert_array_equal(images, digits_train.images[:limit].astype("float32"))
    np.testing.assert_array_equal(labels, digits_train.labels[:limit])


def test_split_arrays_resizes_and_converts(digits_train):
    images, labels = split_arrays(digits_train, image_size=(16, 12), channels=3, limit=7)
    assert images.shape == (7, 16, 12, 3)
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    np.testing.assert_array_equal(labels, digits_train.labels[:7])
