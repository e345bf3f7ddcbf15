"""The dataset readers: the embedded UCI digits and the stratified split behind it.

Expected figures are re-derived here from scikit-learn's copy of the data, not read from
the package."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from kerascnn.data import load_dataset
from kerascnn.data.sources import DATASETS, check_dataset_name, stratified_split
from kerascnn.errors import UnknownNameError

SPLITS = ("train", "validation", "test")
DIGITS_IMAGES = 1797  # the UCI optical digits test set bundled with scikit-learn


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def sklearn_digits():
    """The raw data: sklearn's 0-16 intensities scaled to 0-255, and the labels."""
    bunch = load_digits()
    images = np.round(bunch.images * 255.0 / 16.0).astype("uint8")[..., None]
    return images, bunch.target.astype("int64")


def rows(split):
    """Each (image, label) pair as one hashable byte string."""
    pairs = zip(split.images, split.labels, strict=True)
    return [image.tobytes() + bytes([label]) for image, label in pairs]


def test_digits_has_every_image_once_across_splits(digits):
    total = sum(len(digits.split(name)) for name in SPLITS)
    assert total == DIGITS_IMAGES


@pytest.mark.parametrize("name", SPLITS)
def test_digits_split_is_raw_uint8_pixels(digits, name):
    split = digits.split(name)
    assert split.images.dtype == np.uint8
    assert split.images.shape == (len(split), 8, 8, 1)
    assert split.labels.shape == (len(split),)
    assert split.labels.dtype == np.int64


def test_digits_pixels_span_the_full_byte_range(digits):
    pixels = np.concatenate([digits.split(name).images.ravel() for name in SPLITS])
    # sklearn stores 0..16; scaled by 255/16, the extremes are exactly 0 and 255.
    assert pixels.min() == 0
    assert pixels.max() == 255
    assert digits.channels == 1


def test_digits_class_names_are_the_ten_digits(digits):
    assert digits.class_names == tuple(str(d) for d in range(10))
    assert digits.num_classes == 10
    labels = np.concatenate([digits.split(name).labels for name in SPLITS])
    assert set(labels.tolist()) == set(range(10))


def test_digits_splits_are_disjoint(digits):
    # Index-level disjointness comes from re-deriving the split below; here no two splits
    # share an (image, label) row that occurs only once in the whole data.
    everything = [row for name in SPLITS for row in rows(digits.split(name))]
    unique, counts = np.unique(everything, return_counts=True)
    singletons = set(unique[counts == 1].tolist())
    assert len(singletons) > 0.9 * DIGITS_IMAGES
    by_split = {name: set(rows(digits.split(name))) & singletons for name in SPLITS}
    assert not by_split["train"] & by_split["validation"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["validation"] & by_split["test"]


def test_digits_splits_are_the_stratified_split_of_the_raw_data(digits, sklearn_digits):
    images, labels = sklearn_digits
    indices = stratified_split(labels, (0.1, 0.2), seed=0)
    covered = np.sort(np.concatenate(indices))
    np.testing.assert_array_equal(covered, np.arange(DIGITS_IMAGES))
    for name, index in zip(SPLITS, indices, strict=True):
        split = digits.split(name)
        np.testing.assert_array_equal(split.images, images[index])
        np.testing.assert_array_equal(split.labels, labels[index])


def test_digits_rows_are_the_raw_data_as_a_multiset(digits, sklearn_digits):
    images, labels = sklearn_digits
    raw = sorted(img.tobytes() + bytes([lab]) for img, lab in zip(images, labels, strict=True))
    loaded = sorted(row for name in SPLITS for row in rows(digits.split(name)))
    assert loaded == raw


def test_digits_test_split_holds_a_fifth_of_every_class(digits, sklearn_digits):
    _, labels = sklearn_digits
    for digit in range(10):
        in_class = int(np.sum(labels == digit))
        in_test = int(np.sum(digits.test.labels == digit))
        in_validation = int(np.sum(digits.validation.labels == digit))
        assert abs(in_test - 0.2 * in_class) <= 1, digit
        assert abs(in_validation - 0.1 * in_class) <= 1, digit


def test_digits_loads_identically_twice(digits):
    again = load_dataset("digits")
    for name in SPLITS:
        np.testing.assert_array_equal(again.split(name).images, digits.split(name).images)
        np.testing.assert_array_equal(again.split(name).labels, digits.split(name).labels)


def test_unknown_dataset_names_the_closest_match():
    with pytest.raises(ValueError, match="digits"):
        load_dataset("digit")


# -- stratified_split on synthetic labels --------------------------------------------------

CLASS_SIZES = {0: 50, 1: 30, 2: 21, 3: 7}


@pytest.fixture
def labels():
    values = np.concatenate([np.full(n, c) for c, n in CLASS_SIZES.items()])
    return np.random.default_rng(123).permutation(values)


def test_stratified_split_gives_each_part_its_fraction_of_every_class(labels):
    fractions = (0.1, 0.25)
    first, *rest = stratified_split(labels, fractions, seed=0)
    for c, size in CLASS_SIZES.items():
        taken = 0
        for fraction, part in zip(fractions, rest, strict=True):
            count = int(np.sum(labels[part] == c))
            assert abs(count - fraction * size) <= 0.5, (c, fraction)
            taken += count
        # The first part gets what the others leave.
        assert np.sum(labels[first] == c) == size - taken


def test_stratified_split_parts_are_disjoint_and_cover_every_index(labels):
    parts = stratified_split(labels, (0.1, 0.2), seed=0)
    assert len(parts) == 3
    joined = np.concatenate(parts)
    assert len(joined) == len(labels)
    np.testing.assert_array_equal(np.sort(joined), np.arange(len(labels)))
    for part in parts:
        np.testing.assert_array_equal(part, np.sort(part))


def test_stratified_split_is_deterministic_under_a_seed(labels):
    first = stratified_split(labels, (0.2,), seed=7)
    second = stratified_split(labels, (0.2,), seed=7)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_stratified_split_depends_on_the_seed(labels):
    first = stratified_split(labels, (0.2,), seed=7)
    second = stratified_split(labels, (0.2,), seed=8)
    assert not np.array_equal(first[1], second[1])


# -- the one registry of names and schemes ---------------------------------------------------


def test_the_registry_lists_named_datasets_and_schemes_apart():
    assert DATASETS.names() == ["cifar10", "cifar100", "digits", "fashion_mnist", "mnist"]
    assert DATASETS.schemes() == ["tfds", "tfrecord"]


@pytest.mark.parametrize("name", ["tfds", "tfrecord", "tfds:", "digits:x"])
def test_a_scheme_without_its_argument_is_an_unknown_name_and_never_suggested(name):
    # A scheme alone is not a dataset, and a named dataset takes no argument.
    with pytest.raises(UnknownNameError, match=f"^unknown dataset '{name}'; ") as raised:
        load_dataset(name)
    assert "tfds" not in str(raised.value).partition(";")[2]
    assert "tfrecord" not in str(raised.value).partition(";")[2]


def test_a_scheme_with_an_argument_passes_the_early_check_without_reading_anything():
    check_dataset_name("tfrecord:/nowhere/*")  # the glob is only read by load_dataset
    with pytest.raises(UnknownNameError):
        check_dataset_name("tfrecords:shards")


def test_a_registered_name_cannot_be_registered_again():
    with pytest.raises(ValueError, match="already registered"):
        DATASETS.register("tfds", argument="NAME")(lambda name, **options: None)
    with pytest.raises(ValueError, match="already registered"):
        DATASETS.register("digits")(lambda: None)
