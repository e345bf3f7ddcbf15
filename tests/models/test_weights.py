"""``create_model(weights=...)``: which file goes which way (kerascnn/models/factory.py).

Keras 3 weight files key layers by class and order, not by name, so a file from
keras.applications' VGG16 would load straight into ours; the factory tells the two apart and
sends Keras's through ``transfer_weights`` (which applies the BGR flip)."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import pretrained

SHAPE = (32, 32, 3)


def pixels(seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (2, *SHAPE)).astype("float32")


def test_our_files_and_keras_files_are_told_apart(tmp_path):
    ours = kerascnn.create_model("vgg16", input_shape=SHAPE, include_top=False)
    ours.save_weights(tmp_path / "ours.weights.h5")
    ours.save(tmp_path / "ours.keras")
    theirs = keras.applications.VGG16(weights=None, include_top=False, input_shape=SHAPE)
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    assert pretrained.saved_by_kerascnn(tmp_path / "ours.weights.h5")
    assert pretrained.saved_by_kerascnn(tmp_path / "ours.keras")
    assert not pretrained.saved_by_kerascnn(tmp_path / "theirs.weights.h5")
    # Every conv kernel and bias, stored once.
    assert pretrained.stored_variable_count(tmp_path / "theirs.weights.h5") == 26


def test_our_own_vgg_file_round_trips_without_a_channel_flip(tmp_path):
    ours = kerascnn.create_model("vgg16", input_shape=SHAPE, include_top=False)
    ours.save_weights(tmp_path / "ours.weights.h5")
    again = kerascnn.create_model(
        "vgg16", input_shape=SHAPE, include_top=False, weights=tmp_path / "ours.weights.h5"
    )
    np.testing.assert_array_equal(again(pixels()), ours(pixels()))


def test_inference_weights_load_into_a_network_built_with_auxiliary_heads(tmp_path):
    plain = kerascnn.create_model("googlenet", input_shape=SHAPE, num_classes=10)
    plain.save_weights(tmp_path / "plain.weights.h5")
    with_heads = kerascnn.create_model(
        "googlenet",
        input_shape=SHAPE,
        num_classes=10,
        aux_logits=True,
        weights=tmp_path / "plain.weights.h5",
    )
    assert len(with_heads.outputs) == 3
    np.testing.assert_allclose(with_heads(pixels())[0], plain(pixels()), rtol=1e-5, atol=1e-6)


def test_a_legacy_h5_file_is_refused_for_a_network_keras_does_not_have(tmp_path):
    path = tmp_path / "old.h5"
    path.write_bytes(b"not really")
    with pytest.raises(ValueError, match=r"\.weights\.h5 or \.keras"):
        kerascnn.create_model("resnet20", weights=path)


def test_imagenet_is_refused_for_a_network_keras_does_not_have():
    with pytest.raises(ValueError, match="has no published ImageNet weights"):
        kerascnn.create_model("googlenet", weights="imagenet")


def test_imagenet_with_the_top_needs_1000_classes():
    with pytest.raises(ValueError, match="needs num_classes=1000"):
        kerascnn.create_model("vgg16", weights="imagenet", num_classes=10)
