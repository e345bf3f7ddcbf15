"""AlexNet and ZFNet against their papers and the single-tower layer table as taught.

Sources: Krizhevsky, Sutskever, Hinton 2012, "ImageNet Classification with Deep Convolutional
Neural Networks" (section 3.3 the normalisation, section 3.4 the pooling, section 3.5 and
Figure 2 the layers and the two GPUs, section 5 the initialisation and weight decay);
Zeiler & Fergus 2013, "Visualizing and Understanding Convolutional Networks" (Figure 3 and
section 3); the single-tower layer table of Stanford's CS231n AlexNet case study (pooling
before normalisation, as Caffe's CaffeNet). Expected parameter counts are computed here from
those layer tables."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerascnn
from kerascnn.errors import InvalidArgumentError
from kerascnn.models import MODELS
from kerascnn.models.alexnet import ceil_mode_pooling
from kerascnn.models.layers import LocalResponseNormalization

# Parameters of the single-tower layer table / the paper's two-tower layout (its abstract: "60
# million parameters").
ALEXNET_PARAMETERS = 62_378_344
ALEXNET_2TOWER_PARAMETERS = 60_965_224
# Section 3.3: "k = 2, n = 5, alpha = 10^-4, and beta = 0.75".
PAPER_LRN = dict(k=2.0, n=5, alpha=1e-4, beta=0.75)
# Section 5: "We initialized the neuron biases in the second, fourth, and fifth convolutional
# layers, as well as in the fully-connected hidden layers, with the constant 1 ... the
# remaining layers with the constant 0."
UNIT_BIAS_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")
ZERO_BIAS_LAYERS = ("conv1", "conv3", "predictions")
SMALL = (67, 67, 3)  # small but with every layer present: pool5 is 1x1


def built_without_weights(name, **kwargs):
    """The registered model, built without drawing its initial weights (it cannot be called).

    Parameter counts and layer shapes depend on shapes only, and drawing some 60 million
    Gaussian numbers takes most of a full-size build. ``clear_session`` drops the pending
    variables, which Keras would otherwise initialise on leaving a later stateless scope.
    """
    with keras.StatelessScope(initialize_variables=False):
        model = kerascnn.create_model(name, **kwargs)
    keras.backend.clear_session()
    return model


@pytest.fixture(scope="module")
def alexnet():
    return built_without_weights("alexnet")


@pytest.fixture(scope="module")
def alexnet_2tower():
    return built_without_weights("alexnet_2tower")


@pytest.fixture(scope="module")
def zfnet():
    return built_without_weights("zfnet")


@pytest.fixture(scope="module")
def small_alexnet():
    """Real weights, for the initialisation and weight decay."""
    return kerascnn.create_model("alexnet", input_shape=SMALL, num_classes=10)


def shape(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape)


# --- parameter counts -----------------------------------------------------------------------


def conv_parameters(kernel, channels_in, filters, groups=1):
    return kernel * kernel * (channels_in // groups) * filters + filters


def dense_parameters(units_in, units):
    return units_in * units + units


def layer_table_parameters(first_kernel, groups=1, classes=1000):
    """Parameters of the layer table: convolutions 96-256-384-384-256 (kernel
    ``first_kernel``, 5, 3, 3, 3), FC 6*6*256 -> 4096 -> 4096 -> classes; with two towers,
    conv2, conv4 and conv5 see half their input maps (Figure 2)."""
    convs = (
        conv_parameters(first_kernel, 3, 96)
        + conv_parameters(5, 96, 256, groups)
        + conv_parameters(3, 256, 384)
        + conv_parameters(3, 384, 384, groups)
        + conv_parameters(3, 384, 256, groups)
    )
    fcs = (
        dense_parameters(6 * 6 * 256, 4096)
        + dense_parameters(4096, 4096)
        + dense_parameters(4096, classes)
    )
    return convs + fcs


def test_alexnet_parameters_match_the_layer_table(alexnet):
    assert layer_table_parameters(11) == ALEXNET_PARAMETERS
    assert alexnet.count_params() == ALEXNET_PARAMETERS


def test_two_tower_parameters_match_the_papers_layout(alexnet_2tower):
    # The paper's "60 million parameters" is this count, truncated.
    assert layer_table_parameters(11, groups=2) == ALEXNET_2TOWER_PARAMETERS
    assert alexnet_2tower.count_params() == ALEXNET_2TOWER_PARAMETERS
    assert ALEXNET_2TOWER_PARAMETERS // 10**6 == 60


def test_zfnet_parameters_match_figure_3(zfnet):
    # Figure 3: AlexNet's widths with a 7x7 first layer.
    assert zfnet.count_params() == layer_table_parameters(7)


def test_parameters_are_all_trainable(alexnet):
    assert sum(math.prod(w.shape) for w in alexnet.trainable_weights) == ALEXNET_PARAMETERS


# --- shapes ---------------------------------------------------------------------------------


def test_alexnet_shapes_follow_the_layer_table(alexnet):
    # The layer table: CONV1 -> 55x55x96; POOL1 -> 27x27x96; CONV2 -> 27x27x256;
    # POOL2 -> 13x13x256; CONV3, CONV4 13x13x384; CONV5 13x13x256; POOL3 -> 6x6x256.
    assert shape(alexnet, "images") == (None, 227, 227, 3)
    assert shape(alexnet, "conv1") == (None, 55, 55, 96)
    assert shape(alexnet, "pool1") == (None, 27, 27, 96)
    assert shape(alexnet, "norm1") == (None, 27, 27, 96)
    assert shape(alexnet, "conv2") == (None, 27, 27, 256)
    assert shape(alexnet, "pool2") == (None, 13, 13, 256)
    assert shape(alexnet, "conv3") == (None, 13, 13, 384)
    assert shape(alexnet, "conv4") == (None, 13, 13, 384)
    assert shape(alexnet, "conv5") == (None, 13, 13, 256)
    assert shape(alexnet, "pool5") == (None, 6, 6, 256)
    assert shape(alexnet, "flatten") == (None, 6 * 6 * 256)
    assert shape(alexnet, "fc6") == (None, 4096)
    assert shape(alexnet, "fc7") == (None, 4096)
    assert shape(alexnet, "predictions") == (None, 1000)


def test_conv1_is_11x11_stride_4_unpadded(alexnet):
    conv1 = alexnet.get_layer("conv1")
    assert conv1.kernel_size == (11, 11) and conv1.strides == (4, 4)
    assert conv1.padding == "valid"  # (227 - 11) / 4 + 1 = 55


def test_two_tower_shapes_equal_the_single_tower(alexnet, alexnet_2tower):
    for layer in alexnet.layers:
        assert shape(alexnet_2tower, layer.name) == shape(alexnet, layer.name)


def test_zfnet_shapes_follow_figure_3(zfnet):
    # Figure 3: 224x224x3 input; 7x7 stride 2 -> 110x110x96; 3x3 max pool stride 2 ->
    # 55x55x96; 5x5 stride 2 -> 26x26x256; pool -> 13x13x256; 13x13x384, 13x13x384,
    # 13x13x256; pool -> 6x6x256; 4096, 4096, C classes.
    assert shape(zfnet, "images") == (None, 224, 224, 3)
    assert shape(zfnet, "conv1") == (None, 110, 110, 96)
    assert shape(zfnet, "pool1") == (None, 55, 55, 96)
    assert shape(zfnet, "conv2") == (None, 26, 26, 256)
    assert shape(zfnet, "pool2") == (None, 13, 13, 256)
    assert shape(zfnet, "conv3") == (None, 13, 13, 384)
    assert shape(zfnet, "conv4") == (None, 13, 13, 384)
    assert shape(zfnet, "conv5") == (None, 13, 13, 256)
    assert shape(zfnet, "pool5") == (None, 6, 6, 256)
    assert shape(zfnet, "fc6") == (None, 4096)
    assert shape(zfnet, "fc7") == (None, 4096)
    conv1, conv2 = zfnet.get_layer("conv1"), zfnet.get_layer("conv2")
    assert conv1.kernel_size == (7, 7) and conv1.strides == (2, 2)
    assert conv2.kernel_size == (5, 5) and conv2.strides == (2, 2)


def test_without_top_ends_at_pool5():
    model = built_without_weights("alexnet", include_top=False)
    assert tuple(model.output.shape) == (None, 6, 6, 256)
    assert model.layers[-1].name == "pool5"


# --- the two towers (Figure 2) --------------------------------------------------------------


def test_two_towers_group_conv2_conv4_conv5_only(alexnet_2tower):
    groups = {
        layer.name: layer.groups
        for layer in alexnet_2tower.layers
        if isinstance(layer, keras.layers.Conv2D)
    }
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    kernel_shapes = {name: alexnet_2tower.get_layer(name).kernel.shape for name in groups}
    # Figure 2: 5x5x48 kernels in conv2, 3x3x256 in conv3 (across the GPUs), 3x3x192 in
    # conv4 and conv5.
    assert kernel_shapes["conv2"] == (5, 5, 48, 256)
    assert kernel_shapes["conv3"] == (3, 3, 256, 384)
    assert kernel_shapes["conv4"] == (3, 3, 192, 384)
    assert kernel_shapes["conv5"] == (3, 3, 192, 256)
    assert alexnet_2tower.name == "alexnet_2tower"


def test_a_tower_sees_only_its_own_maps():
    # "connected only to those kernel maps in the previous layer which reside on the same
    # GPU": input maps of the first tower do not reach the second tower's outputs.
    model = kerascnn.create_model("alexnet_2tower", input_shape=SMALL, include_top=False)
    conv2 = model.get_layer("conv2")
    x = np.zeros((1, 9, 9, 96), "float32")
    x[..., :48] = np.random.default_rng(0).normal(size=(1, 9, 9, 48))
    y = keras.ops.convert_to_numpy(conv2(x))
    bias = keras.ops.convert_to_numpy(conv2.bias)
    # Second tower: only its ReLU'd bias, whatever the first tower's maps hold.
    second = np.broadcast_to(np.maximum(bias[128:], 0), y[..., 128:].shape)
    np.testing.assert_array_equal(y[..., 128:], second)
    assert np.abs(y[..., :128] - np.maximum(bias[:128], 0)).max() > 0.1


# --- local response normalisation (section 3.3) ---------------------------------------------


def test_lrn_follows_pool1_and_pool2_with_the_papers_constants(alexnet):
    # The layer table: MAX POOL1 then NORM1, MAX POOL2 then NORM2.
    for index in (1, 2):
        norm = alexnet.get_layer(f"norm{index}")
        assert isinstance(norm, LocalResponseNormalization)
        assert norm.input is alexnet.get_layer(f"pool{index}").output
        assert (norm.k, norm.n, norm.alpha, norm.beta) == tuple(PAPER_LRN.values())
    norms = [layer for layer in alexnet.layers if isinstance(layer, LocalResponseNormalization)]
    assert len(norms) == 2


def paper_lrn(a, k=2.0, n=5, alpha=1e-4, beta=0.75):
    """Section 3.3: b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a_j^2)^beta
    over the N channels (the last axis), written as the paper's sum."""
    channels = a.shape[-1]
    b = np.empty_like(a, dtype="float64")
    for i in range(channels):
        window = a[..., max(0, i - n // 2) : min(channels - 1, i + n // 2) + 1].astype("float64")
        b[..., i] = a[..., i] / (k + alpha * np.sum(window**2, axis=-1)) ** beta
    return b


def lrn_input(seed=0):
    # Activations of tens to hundreds, so that the normalisation is far from the identity.
    return (np.random.default_rng(seed).normal(size=(2, 5, 5, 16)) * 100).astype("float32")


def test_lrn_equals_tensorflow():
    a = lrn_input()
    expected = tf.nn.local_response_normalization(
        a, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75
    ).numpy()
    actual = keras.ops.convert_to_numpy(LocalResponseNormalization(**PAPER_LRN)(a))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(actual, a / 2**0.75, rtol=1e-2)  # the neighbours matter


def test_lrn_equals_the_papers_formula():
    a = lrn_input(seed=1)
    actual = keras.ops.convert_to_numpy(LocalResponseNormalization(**PAPER_LRN)(a))
    np.testing.assert_allclose(actual, paper_lrn(a), rtol=1e-5, atol=1e-6)


def test_lrn_defaults_are_the_papers():
    layer = LocalResponseNormalization()
    assert (layer.k, layer.n, layer.alpha, layer.beta) == tuple(PAPER_LRN.values())


def test_lrn_serialises():
    layer = LocalResponseNormalization(k=1.0, n=3, alpha=2e-4, beta=0.5, name="norm")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, LocalResponseNormalization)
    assert restored.get_config() == layer.get_config()
    assert (restored.k, restored.n, restored.alpha, restored.beta) == (1.0, 3, 2e-4, 0.5)
    a = lrn_input(seed=2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(a)),
        paper_lrn(a, k=1.0, n=3, alpha=2e-4, beta=0.5),
        rtol=1e-5,
        atol=1e-6,
    )


# --- pooling (section 3.4), rounded up as Caffe does -----------------------------------------


def caffe_pooling(x, size, stride, kind):
    """Caffe's pooling without padding: ceil((n - size) / stride) + 1 windows per axis, the
    last ones clipped to the map; an average divides by the pixels inside."""
    height, width = x.shape[1:3]
    rows = math.ceil((height - size) / stride) + 1
    columns = math.ceil((width - size) / stride) + 1
    reduce = np.max if kind == "max" else np.mean
    out = np.empty((x.shape[0], rows, columns, x.shape[3]), x.dtype)
    for i in range(rows):
        for j in range(columns):
            window = x[:, i * stride : i * stride + size, j * stride : j * stride + size, :]
            out[:, i, j, :] = reduce(window, axis=(1, 2))
    return out


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size", [(7, 7), (8, 8), (7, 8), (8, 7), (2, 9), (55, 54)])
def test_pooling_rounds_up_as_caffe(kind, size):
    # Signed values: padding must never enter a max or an average.
    x = np.random.default_rng(0).normal(size=(2, *size, 3)).astype("float32") - 5.0
    inputs = keras.Input((*size, 3))
    model = keras.Model(inputs, ceil_mode_pooling(inputs, 3, 2, name="pool", kind=kind))
    expected = caffe_pooling(x, 3, 2, kind)
    assert tuple(model.output.shape[1:3]) == expected.shape[1:3]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_pooling_of_a_map_smaller_than_one_window_fails():
    with pytest.raises(InvalidArgumentError, match="pool5: a 1-pixel feature map is too small"):
        ceil_mode_pooling(keras.Input((1, 4, 8)), 3, 2, name="pool5")


def test_overlapping_pooling_is_3x3_stride_2(alexnet):
    # Section 3.4: "s = 2 and z = 3".
    for name in ("pool1", "pool2", "pool5"):
        pool = alexnet.get_layer(name)
        assert isinstance(pool, keras.layers.MaxPooling2D)
        assert pool.pool_size == (3, 3) and pool.strides == (2, 2)


# --- minimum size ---------------------------------------------------------------------------


def build_directly(name, height, width):
    """The family builder, bypassing create_model's minimum-size check."""
    spec = MODELS.get(name)
    return spec.builder(
        input_shape=(height, width, 3),
        num_classes=10,
        include_top=False,
        pooling=None,
        classifier_activation=None,
        mean=spec.mean,
        std=spec.std,
        **spec.options,
    )


@pytest.mark.parametrize("name", ["alexnet", "alexnet_2tower", "zfnet"])
def test_min_size_is_the_smallest_that_builds(name):
    min_h, min_w = MODELS.get(name).min_size
    assert tuple(build_directly(name, min_h, min_w).output.shape) == (None, 1, 1, 256)
    for height, width in ((min_h - 1, min_w), (min_h, min_w - 1)):
        with pytest.raises(InvalidArgumentError, match="too small"):
            build_directly(name, height, width)


# --- initialisation and regularisation (section 5) ------------------------------------------


def test_kernels_are_gaussian_with_std_0_01(small_alexnet):
    # Section 5: "from a zero-mean Gaussian distribution with standard deviation 0.01".
    for name in ("conv2", "conv3", "fc6", "fc7"):
        kernel = keras.ops.convert_to_numpy(small_alexnet.get_layer(name).kernel)
        assert kernel.size > 500_000
        assert kernel.std() == pytest.approx(0.01, rel=0.01)
        assert abs(kernel.mean()) < 1e-4


def test_biases_are_1_in_conv2_conv4_conv5_and_the_hidden_fc_layers(small_alexnet):
    for name in UNIT_BIAS_LAYERS:
        np.testing.assert_array_equal(small_alexnet.get_layer(name).bias.numpy(), 1.0)
    for name in ZERO_BIAS_LAYERS:
        np.testing.assert_array_equal(small_alexnet.get_layer(name).bias.numpy(), 0.0)


def test_zfnet_biases_are_0():
    # Zeiler & Fergus, section 3: "All weights are initialized to 10^-2 and biases are set
    # to 0."
    model = kerascnn.create_model("zfnet", input_shape=(47, 47, 3), include_top=False)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 5
    for layer in convs:
        np.testing.assert_array_equal(layer.bias.numpy(), 0.0)
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv3").kernel)
    assert kernel.std() == pytest.approx(0.01, rel=0.01)


def test_weight_decay_is_5e_4_on_every_kernel(small_alexnet):
    # Section 5: "weight decay of 0.0005"; the update -0.0005 * eps * w is the gradient of
    # 0.0005 / 2 * ||w||^2.
    kernels = [
        layer.kernel
        for layer in small_alexnet.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    ]
    assert len(small_alexnet.losses) == len(kernels) == 8
    squared = sum(float(np.sum(np.square(keras.ops.convert_to_numpy(k)))) for k in kernels)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in small_alexnet.losses)
    assert total == pytest.approx(5e-4 / 2 * squared, rel=1e-4)


def test_dropout_0_5_follows_fc6_and_fc7(small_alexnet):
    # Section 4.2: dropout "in the first two fully-connected layers", probability 0.5.
    dropouts = [layer for layer in small_alexnet.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.name for layer in dropouts] == ["fc6_dropout", "fc7_dropout"]
    for name in ("fc6", "fc7"):
        dropout = small_alexnet.get_layer(f"{name}_dropout")
        assert dropout.rate == 0.5
        assert dropout.input is small_alexnet.get_layer(name).output


def test_relu_follows_every_conv_and_hidden_fc(small_alexnet):
    for layer in small_alexnet.layers:
        if isinstance(layer, keras.layers.Conv2D) or layer.name in ("fc6", "fc7"):
            assert layer.activation is keras.activations.relu, layer.name


def test_runs_at_a_non_default_size(small_alexnet, random_pixels):
    probabilities = small_alexnet.predict(random_pixels((2, *SMALL)), verbose=0)
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


# --- options --------------------------------------------------------------------------------


def test_default_names(alexnet, zfnet):
    assert (alexnet.name, zfnet.name) == ("alexnet", "zfnet")


def test_unknown_config_is_rejected():
    with pytest.raises(ValueError, match="config must be one of alexnet, zfnet, owt; received 'x'"):
        kerascnn.create_model("alexnet", config="x")


def test_tower_count_must_be_1_or_2():
    with pytest.raises(ValueError, match="towers must be 1 or 2; received 3"):
        kerascnn.create_model("alexnet", towers=3)


def test_alexnet_owt_follows_torchvisions_layers():
    """torchvision/models/alexnet.py at 224x224: 64-192-384-256-256 convolutions, no LRN, 3x3/2
    pooling rounding down (55 -> 27 -> 13 -> 6), dropout before fc6 and fc7; 61,100,840
    parameters (torchvision's AlexNet_Weights num_params)."""
    model = built_without_weights("alexnet_owt")
    assert model.count_params() == 61_100_840
    expected = {
        "conv1": (55, 55, 64),
        "pool1": (27, 27, 64),
        "conv2": (27, 27, 192),
        "pool2": (13, 13, 192),
        "conv3": (13, 13, 384),
        "conv4": (13, 13, 256),
        "conv5": (13, 13, 256),
        "pool5": (6, 6, 256),
    }
    assert {name: shape(model, name)[1:] for name in expected} == expected
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in model.layers)
    names = [layer.name for layer in model.layers]
    assert names.index("fc6_dropout") < names.index("fc6") < names.index("fc7_dropout")
