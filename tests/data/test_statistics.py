"""Training-set pixel statistics and the normalisations baked into the model from them."""

import numpy as np
import pytest

from kerascnn import create_model
from kerascnn.data.sources import Split
from kerascnn.data.statistics import normalization_options, pixel_statistics


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    return Split(rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), np.arange(20) % 2)


def test_statistics_are_the_training_images_mean_and_colour_covariance(split):
    stats = pixel_statistics(split, image_size=(32, 32), channels=3)
    images = split.images.astype("float64")
    np.testing.assert_allclose(stats.mean_image, images.mean(0), atol=1e-3)
    np.testing.assert_allclose(stats.channel_mean, images.mean((0, 1, 2)), atol=1e-3)
    covariance = np.cov(images.reshape(-1, 3).T / 255.0)
    np.testing.assert_allclose(sorted(stats.eigenvalues), np.linalg.eigvalsh(covariance), rtol=1e-6)
    assert stats.images == 20


@pytest.mark.parametrize("name", ["channel-mean", "mean-image"])
def test_normalisation_is_baked_into_the_models_first_layer(split, name):
    stats = pixel_statistics(split, image_size=(32, 32), channels=3)
    options = normalization_options(name, stats)
    model = create_model("resnet20", input_shape=(32, 32, 3), num_classes=2, **options)
    layer = model.get_layer("preprocessing")
    x = split.images[:3].astype("float32")
    mean = stats.mean_image if name == "mean-image" else np.array(stats.channel_mean)
    np.testing.assert_allclose(np.asarray(layer(x)), x - mean, atol=1e-3)
    # The model round-trips through its config (how .keras files store it).
    clone = type(model).from_config(model.get_config())
    np.testing.assert_allclose(np.asarray(clone.get_layer("preprocessing")(x)), x - mean, atol=1e-3)


def test_auto_keeps_the_models_own_statistics(split):
    stats = pixel_statistics(split, image_size=(32, 32), channels=3)
    assert normalization_options("auto", stats) == {}


def test_statistics_sample_every_class_of_a_class_sorted_split():
    # 3 classes of 10 images each, sorted by class, pixel value = class: a sample of the first
    # images would see class 0 only; an even spread sees all three.
    images = np.repeat(np.array([0, 100, 200], np.uint8), 10)[:, None, None, None]
    split = Split(np.broadcast_to(images, (30, 4, 4, 1)).copy(), np.repeat(np.arange(3), 10))
    stats = pixel_statistics(split, image_size=(4, 4), channels=1, limit=6)
    assert stats.images == 6
    assert stats.channel_mean[0] == pytest.approx(100, abs=1e-3)
