"""Network in Network against Lin, Chen, Yan 2013, "Network In Network" (arXiv:1312.4400:
section 3.1 mlpconv layers and equation 2, section 3.2 global average pooling, section 4.1
the networks' common setup) and the authors' ImageNet model in the Caffe model zoo
("Network in Network ImageNet Model", gist mavenlin/d802a5849de39225bcc6: train_val.prototxt
and solver).

Expected parameter counts are computed here from those layer tables."""

import math

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.errors import InvalidArgumentError
from kerascnn.models import MODELS

# (name, kernel, filters) of every convolution, in order; the last one gives the class maps.
# The prototxt: conv1 11x11/4 96, cccp1 96, cccp2 96, pool; conv2 5x5 pad 2 256, cccp3 256,
# cccp4 256, pool; conv3 3x3 pad 1 384, cccp5 384, cccp6 384, pool, dropout; conv4-1024
# 3x3 pad 1, cccp7-1024, cccp8-1024 with 1000 outputs; 6x6 average pooling.
IMAGENET_TABLE = [
    ("conv1", 11, 96), ("cccp1", 1, 96), ("cccp2", 1, 96),
    ("conv2", 5, 256), ("cccp3", 1, 256), ("cccp4", 1, 256),
    ("conv3", 3, 384), ("cccp5", 1, 384), ("cccp6", 1, 384),
    ("conv4", 3, 1024), ("cccp7", 1, 1024), ("predictions", 1, None),
]  # fmt: skip
# The paper's CIFAR-10 network (three mlpconv layers, section 4.1), with the widths of the
# authors' released model (Caffe model zoo, "Network in Network CIFAR10 Model"):
# 192 5x5, 160 1x1, 96 1x1, max pool; 192 5x5, 192 1x1, 192 1x1, average pool;
# 192 3x3, 192 1x1, 10 1x1, global average pool.
CIFAR_TABLE = [
    ("conv1", 5, 192), ("cccp1", 1, 160), ("cccp2", 1, 96),
    ("conv2", 5, 192), ("cccp3", 1, 192), ("cccp4", 1, 192),
    ("conv3", 3, 192), ("cccp5", 1, 192), ("predictions", 1, None),
]  # fmt: skip
# The prototxt's weight fillers: Gaussian, these standard deviations; biases constant 0.
IMAGENET_STDS = {
    "conv1": 0.01, "cccp1": 0.05, "cccp2": 0.05,
    "conv2": 0.05, "cccp3": 0.05, "cccp4": 0.05,
    "conv3": 0.01, "cccp5": 0.05, "cccp6": 0.05,
    "conv4": 0.05, "cccp7": 0.05, "predictions": 0.01,
}  # fmt: skip


@pytest.fixture(scope="module")
def nin():
    return kerascnn.create_model("nin")


@pytest.fixture(scope="module")
def nin_cifar():
    return kerascnn.create_model("nin_cifar", num_classes=10)


def shape(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape)


def table_parameters(table, classes):
    """Weights and biases of the convolutions of a table, on a 3-channel input."""
    total, channels = 0, 3
    for _, kernel, filters in table:
        filters = filters or classes
        total += kernel * kernel * channels * filters + filters
        channels = filters
    return total


# --- parameters -----------------------------------------------------------------------------


def test_imagenet_parameters_match_the_prototxt(nin):
    expected = table_parameters(IMAGENET_TABLE, 1000)
    assert nin.count_params() == expected
    # The model zoo: "a snapshot of size 29MB" (float32 weights, in MiB).
    assert round(expected * 4 / 2**20) == 29


def test_cifar_parameters_match_the_table(nin_cifar):
    assert nin_cifar.count_params() == table_parameters(CIFAR_TABLE, 10)


def test_no_fully_connected_layers(nin, nin_cifar):
    # Section 3.2: global average pooling "instead of the fully connected layers".
    for model in (nin, nin_cifar):
        assert not any(isinstance(layer, keras.layers.Dense) for layer in model.layers)


@pytest.mark.parametrize(("name", "table"), [("nin", IMAGENET_TABLE), ("nin_cifar", CIFAR_TABLE)])
def test_convolutions_follow_the_table(name, table, nin, nin_cifar):
    model = {"nin": nin, "nin_cifar": nin_cifar}[name]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    classes = model.output.shape[-1]
    expected = [(n, (k, k), f or classes) for n, k, f in table]
    assert [(c.name, c.kernel_size, c.filters) for c in convs] == expected


# --- shapes ---------------------------------------------------------------------------------


def test_imagenet_shapes_follow_the_prototxt(nin):
    # 224 crop; (224 - 11) // 4 + 1 = 54; Caffe's 3x3/2 pooling: 54 -> 27, 27 -> 13,
    # 13 -> 6; pool4 averages the 6x6 class maps ("kernel_size: 6, stride: 1").
    assert shape(nin, "images") == (None, 224, 224, 3)
    assert shape(nin, "cccp2") == (None, 54, 54, 96)
    assert shape(nin, "pool1") == (None, 27, 27, 96)
    assert shape(nin, "cccp4") == (None, 27, 27, 256)
    assert shape(nin, "pool2") == (None, 13, 13, 256)
    assert shape(nin, "cccp6") == (None, 13, 13, 384)
    assert shape(nin, "pool3") == (None, 6, 6, 384)
    assert shape(nin, "cccp7") == (None, 6, 6, 1024)
    assert shape(nin, "predictions") == (None, 6, 6, 1000)
    assert shape(nin, "avg_pool") == (None, 1000)


def test_cifar_shapes_follow_the_paper(nin_cifar):
    # Section 4.1: each mlpconv layer is "followed by a spatial max pooling layer which
    # downsamples the input image by a factor of two": 32 -> 16 -> 8; the last mlpconv layer
    # gives one 8x8 map per class, averaged globally.
    assert shape(nin_cifar, "images") == (None, 32, 32, 3)
    assert shape(nin_cifar, "cccp2") == (None, 32, 32, 96)
    assert shape(nin_cifar, "pool1") == (None, 16, 16, 96)
    assert shape(nin_cifar, "cccp4") == (None, 16, 16, 192)
    assert shape(nin_cifar, "pool2") == (None, 8, 8, 192)
    assert shape(nin_cifar, "cccp5") == (None, 8, 8, 192)
    assert shape(nin_cifar, "predictions") == (None, 8, 8, 10)
    assert shape(nin_cifar, "avg_pool") == (None, 10)


def test_poolings_are_3x3_stride_2(nin, nin_cifar):
    kinds = {
        model.name: [
            (type(layer), layer.pool_size, layer.strides)
            for layer in model.layers
            if isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D)
        ]
        for model in (nin, nin_cifar)
    }
    window = ((3, 3), (2, 2))
    assert kinds["nin"] == [(keras.layers.MaxPooling2D, *window)] * 3
    # The published CIFAR-10 model averages in its second pooling.
    assert kinds["nin_cifar"] == [
        (keras.layers.MaxPooling2D, *window),
        (keras.layers.AveragePooling2D, *window),
    ]


# --- mlpconv and global average pooling (sections 3.1, 3.2) ---------------------------------


def test_relu_follows_every_convolution(nin_cifar):
    # Equation 2: every layer of the mlpconv, the class maps' included, is max(w x + b, 0).
    for layer in nin_cifar.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.name != "predictions":
            assert layer.activation is keras.activations.relu, layer.name
    relu = nin_cifar.get_layer("predictions_relu")
    assert relu.input is nin_cifar.get_layer("predictions").output


def test_output_is_the_softmax_of_the_averaged_class_maps(nin_cifar, random_pixels):
    # Section 3.2: "take the average of each feature map, and the resulting vector is fed
    # directly into the softmax layer."
    class_maps = keras.Model(nin_cifar.input, nin_cifar.get_layer("predictions_relu").output)
    images = random_pixels((4, 32, 32, 3))
    averages = class_maps.predict(images, verbose=0).mean(axis=(1, 2))
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(averages))
    np.testing.assert_allclose(nin_cifar.predict(images, verbose=0), expected, rtol=1e-5)


def test_without_top_ends_before_the_class_maps():
    for name, last, width in (("nin", "cccp7", 1024), ("nin_cifar", "cccp5", 192)):
        model = kerascnn.create_model(name, input_shape=(64, 64, 3), include_top=False)
        assert model.layers[-1].name == last
        assert model.output.shape[-1] == width
        assert "predictions" not in [layer.name for layer in model.layers]


def test_any_input_size_uses_the_same_weights(nin_cifar, random_pixels):
    # Global average pooling: no layer depends on the input size.
    larger = kerascnn.create_model("nin_cifar", input_shape=(48, 40, 3), num_classes=10)
    larger.set_weights(nin_cifar.get_weights())
    assert shape(larger, "predictions") == (None, 12, 10, 10)
    probabilities = larger.predict(random_pixels((2, 48, 40, 3)), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


# --- regularisation and initialisation ------------------------------------------------------


def test_dropout_follows_all_but_the_last_mlpconv_in_cifar(nin_cifar):
    # Section 4.1: "dropout is applied on the outputs of all but the last mlpconv layers".
    dropouts = [layer for layer in nin_cifar.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.name for layer in dropouts] == ["pool1_dropout", "pool2_dropout"]
    for index, dropout in enumerate(dropouts, start=1):
        assert dropout.rate == 0.5
        assert dropout.input is nin_cifar.get_layer(f"pool{index}").output


def test_dropout_follows_pool3_in_imagenet(nin):
    # The prototxt: layer "drop", dropout_ratio 0.5, on pool3.
    dropouts = [layer for layer in nin.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.name for layer in dropouts] == ["pool3_dropout"]
    assert dropouts[0].rate == 0.5


@pytest.mark.parametrize("name", ["nin", "nin_cifar"])
def test_weight_decay_is_5e_4_on_every_kernel(name, nin, nin_cifar):
    # ImageNet solver: "weight_decay: 0.0005", on the weights only ("weight_decay: 1" then
    # "0" per layer); the paper (section 4.1): weight decay "as used by Krizhevsky et al.".
    model = {"nin": nin, "nin_cifar": nin_cifar}[name]
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(model.losses) == len(kernels)
    squared = sum(float(np.sum(np.square(keras.ops.convert_to_numpy(k)))) for k in kernels)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert total == pytest.approx(5e-4 / 2 * squared, rel=1e-4)


def test_imagenet_initialisation_follows_the_prototxt(nin):
    for name, std in IMAGENET_STDS.items():
        layer = nin.get_layer(name)
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        # The relative error of a sample's std is about 1 / sqrt(2 n): 4% for cccp1's 9,216.
        assert kernel.std() == pytest.approx(std, rel=max(0.01, 4 / math.sqrt(2 * kernel.size)))
        np.testing.assert_array_equal(layer.bias.numpy(), 0.0)


# --- sizes and options ----------------------------------------------------------------------


def build_directly(name, height, width):
    """The family builder, bypassing create_model's minimum-size check."""
    spec = MODELS.get(name)
    return spec.builder(
        input_shape=(height, width, 3),
        num_classes=10,
        include_top=True,
        pooling=None,
        classifier_activation="softmax",
        mean=spec.mean,
        std=spec.std,
        **spec.options,
    )


@pytest.mark.parametrize("name", ["nin", "nin_cifar"])
def test_min_size_is_the_smallest_that_builds(name):
    min_h, min_w = MODELS.get(name).min_size
    model = build_directly(name, min_h, min_w)
    assert tuple(model.get_layer("predictions").output.shape) == (None, 1, 1, 10)
    for height, width in ((min_h - 1, min_w), (min_h, min_w - 1)):
        with pytest.raises(InvalidArgumentError, match="too small"):
            build_directly(name, height, width)


def test_default_names_and_registry(nin, nin_cifar):
    assert (nin.name, nin_cifar.name) == ("nin", "nin_cifar")
    assert MODELS.get("nin_cifar").input_shape == (32, 32, 3)
    assert MODELS.get("nin_cifar").num_classes == 10


def test_unknown_config_is_rejected():
    with pytest.raises(ValueError, match="NIN config must be one of imagenet, cifar"):
        kerascnn.create_model("nin", config="mnist")
