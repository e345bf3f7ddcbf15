"""The convolutional highway network against Srivastava, Greff, Schmidhuber 2015, "Training Very
Deep Networks" (arXiv:1507.06228): section 2 (the highway layer) and the CIFAR-10 table
(Highway B, 19 layers, 2.3M parameters), and the authors' released Caffe network for it
(github.com/flukeskywalker/highway-networks, examples/highways/cifar10-19layers: the layer
table, the initial gate bias, and its sample.log, which prints the network's total of
trainable parameters).

Expected counts are computed here from that layer table."""

import re

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models.highway import highway_conv

# The released network: (filters, highway layers) per stage, each stage opening with a plain
# 3x3 convolution; then a 1x1 convolution with 100 filters before the 8x8 average pooling.
STAGES = ((32, 4), (80, 5), (128, 5))
HEAD_FILTERS = 100
# examples/highways/cifar10-19layers/sample.log: "The network has total 2265928 trainable
# parameters." (that run's classifier has 100 outputs, num_output: 100 in the released file).
RELEASED_LOG_PARAMETERS = 2_265_928
RELEASED_LOG_CLASSES = 100
# The paper's CIFAR-10 table: Highway B (Fitnet B layout), 19 layers, "2.3M" parameters.
PAPER_PARAMETERS = "2.3"


@pytest.fixture(scope="module")
def highway():
    return kerascnn.create_model("highway", num_classes=10)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def highway_parameters(num_classes, stages=STAGES, head_filters=HEAD_FILTERS, channels=3):
    """Trainable parameters of the released layer table: every convolution 3x3 with a bias
    (the 1x1 head excepted); a highway layer has two such convolutions (H and the gate T),
    each from and to the stage's width; the classifier is fully connected from the pooled
    1x1 convolution."""

    def conv(kernel, channels_in, channels_out):
        return kernel * kernel * channels_in * channels_out + channels_out

    total = 0
    for filters, blocks in stages:
        total += conv(3, channels, filters) + blocks * 2 * conv(3, filters, filters)
        channels = filters
    total += conv(1, channels, head_filters)
    return total + head_filters * num_classes + num_classes


# --- parameters ----------------------------------------------------------------------------


def test_parameters_equal_the_released_networks_log():
    model = kerascnn.create_model("highway", num_classes=RELEASED_LOG_CLASSES)
    assert highway_parameters(RELEASED_LOG_CLASSES) == RELEASED_LOG_PARAMETERS
    assert trainable_count(model) == RELEASED_LOG_PARAMETERS
    # No batch normalisation: nothing but trainable weights.
    assert model.count_params() == RELEASED_LOG_PARAMETERS


def test_cifar10_parameters_round_to_the_papers_figure(highway):
    expected = highway_parameters(10)
    assert trainable_count(highway) == expected
    assert f"{expected / 1e6:.1f}" == PAPER_PARAMETERS


def test_nineteen_weighted_layers(highway):
    # 3 plain convolutions, 4 + 5 + 5 highway layers, the 1x1 convolution, the classifier.
    highway_layers = [
        layer for layer in highway.layers if re.search(r"_highway\d+_out$", layer.name)
    ]
    plain = [layer.name for layer in highway.layers if re.fullmatch(r"stage\d_conv", layer.name)]
    dense = [layer for layer in highway.layers if isinstance(layer, keras.layers.Dense)]
    assert len(highway_layers) == sum(blocks for _, blocks in STAGES) == 14
    assert plain == ["stage1_conv", "stage2_conv", "stage3_conv"]
    assert len(highway_layers) + len(plain) + 1 + len(dense) == 19
    assert highway.name == "highway19"


# --- shapes --------------------------------------------------------------------------------


def test_stage_outputs_follow_the_layer_table(highway):
    def shape(name):
        return tuple(highway.get_layer(name).output.shape)

    assert shape("stage1_highway4_out") == (None, 32, 32, 32)
    assert shape("stage1_pool") == (None, 16, 16, 32)
    assert shape("stage2_highway5_out") == (None, 16, 16, 80)
    assert shape("stage2_pool") == (None, 8, 8, 80)
    assert shape("stage3_highway5_out") == (None, 8, 8, 128)
    assert shape("head_conv") == (None, 8, 8, HEAD_FILTERS)
    # 8x8 average pooling of the 8x8 map: global average pooling.
    assert shape("avg_pool") == (None, HEAD_FILTERS)
    assert highway.get_layer("head_conv").kernel_size == (1, 1)
    for name in ("stage1_pool", "stage2_pool"):
        layer = highway.get_layer(name)
        assert isinstance(layer, keras.layers.MaxPooling2D) and layer.pool_size == (2, 2)


def test_dropout_where_the_released_network_has_it(highway):
    # drop1 on the input, drop2/drop3 after each pooling, drop4 before the classifier; 0.2 each.
    dropouts = {
        layer.name: layer.rate
        for layer in highway.layers
        if isinstance(layer, keras.layers.Dropout)
    }
    assert dropouts == {
        "input_dropout": 0.2,
        "stage1_dropout": 0.2,
        "stage2_dropout": 0.2,
        "head_dropout": 0.2,
    }
    without = kerascnn.create_model("highway", input_shape=(4, 4, 3), dropout=0.0)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in without.layers)


def test_minimum_size_and_a_larger_input(random_pixels):
    small = kerascnn.create_model("highway", input_shape=(4, 4, 3), num_classes=10)
    assert tuple(small.get_layer("head_conv").output.shape) == (None, 1, 1, HEAD_FILTERS)
    large = kerascnn.create_model("highway", input_shape=(64, 48, 3), num_classes=10)
    assert tuple(large.get_layer("head_conv").output.shape) == (None, 16, 12, HEAD_FILTERS)
    # Global average pooling keeps the parameter count independent of the input size.
    assert trainable_count(small) == trainable_count(large) == highway_parameters(10)
    assert large.predict(random_pixels((2, 64, 48, 3)), verbose=0).shape == (2, 10)


# --- the highway layer (section 2) ---------------------------------------------------------


def test_transform_gate_bias_is_initialised_as_released(highway):
    # transform_bias_filler { type: "constant" value: -2.0 } on every highway layer.
    gates = [layer for layer in highway.layers if layer.name.endswith("_t")]
    transforms = [layer for layer in highway.layers if layer.name.endswith("_h")]
    assert len(gates) == len(transforms) == 14
    for gate in gates:
        assert gate.activation is keras.activations.sigmoid
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(gate.bias), -2.0)
    for transform in transforms:
        assert transform.activation is keras.activations.relu
        assert transform.kernel_size == (3, 3)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(transform.bias), 0.0)
    other = kerascnn.create_model("highway", input_shape=(4, 4, 3), gate_bias=-3.0)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(other.get_layer("stage2_highway1_t").bias), -3.0
    )


def highway_probe(gate_bias, channels=4, size=6):
    """One highway layer, with the outputs of H and T alongside y."""
    inputs = keras.Input((size, size, channels))
    outputs = highway_conv(inputs, name="probe", gate_bias=gate_bias)
    model = keras.Model(inputs, outputs)
    return keras.Model(
        inputs, [outputs, model.get_layer("probe_h").output, model.get_layer("probe_t").output]
    )


def probe_input(channels=4, size=6):
    return np.random.default_rng(7).normal(size=(2, size, size, channels)).astype("float32")


def test_closed_gate_is_the_identity():
    # T(x) ~ 0 (a very negative gate bias): y = x, "the carry behaviour" of section 2.
    probe = highway_probe(gate_bias=-60.0)
    x = probe_input()
    y, h, t = probe.predict(x, verbose=0)
    assert np.abs(t).max() < 1e-20
    assert not np.allclose(h, x)
    np.testing.assert_allclose(y, x, rtol=0, atol=1e-6)


def test_open_gate_is_the_plain_layer():
    # T(x) = 1: y = H(x), a plain convolutional layer with ReLU.
    probe = highway_probe(gate_bias=60.0)
    x = probe_input()
    y, h, t = probe.predict(x, verbose=0)
    np.testing.assert_array_equal(t, 1.0)
    np.testing.assert_allclose(y, h, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h, np.maximum(h, 0.0))


def test_layer_computes_h_t_plus_x_one_minus_t():
    probe = highway_probe(gate_bias=0.0)
    x = probe_input()
    y, h, t = probe.predict(x, verbose=0)
    assert 0.0 < t.min() and t.max() < 1.0
    np.testing.assert_allclose(y, h * t + x * (1.0 - t), rtol=1e-5, atol=1e-6)


# --- weight decay (the released solver) ----------------------------------------------------


def test_weight_decay_on_every_kernel_ten_times_on_the_classifier(highway):
    # weight_decay: 0.001; decay_mult 1 on kernels, 0 on biases, 10 on the classifier (ip2).
    kernels = [
        layer.kernel
        for layer in highway.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    ]
    assert len(highway.losses) == len(kernels) == 3 + 2 * 14 + 1 + 1

    def squared(kernel):
        return float(np.sum(np.square(keras.ops.convert_to_numpy(kernel))))

    classifier = highway.get_layer("predictions").kernel
    expected = 1e-3 / 2 * sum(squared(k) for k in kernels if k is not classifier)
    expected += 1e-2 / 2 * squared(classifier)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in highway.losses)
    assert total == pytest.approx(expected, rel=1e-4)


def test_other_stage_tables():
    model = kerascnn.create_model(
        "highway", input_shape=(8, 8, 3), num_classes=10, stages=((16, 2), (24, 0))
    )
    # Two plain convolutions, two highway layers, the 1x1 convolution and the classifier.
    assert model.name == "highway6"
    assert trainable_count(model) == highway_parameters(10, stages=((16, 2), (24, 0)))
    assert tuple(model.get_layer("stage2_conv").output.shape) == (None, 4, 4, 24)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stages": ()}, "stages must be"),
        ({"stages": ((32, -1),)}, "stages must be"),
        ({"stages": ((0, 2),)}, "stages must be"),
        ({"head_filters": 0}, "head_filters must be"),
        ({"gate_bias": float("nan")}, "gate_bias must be"),
        ({"dropout": 1.0}, "dropout must be"),
    ],
)
def test_invalid_options_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        kerascnn.create_model("highway", input_shape=(8, 8, 3), **options)


def test_more_stages_need_larger_inputs():
    with pytest.raises(ValueError, match=r"needs inputs of at least 8x8; received input_shape"):
        kerascnn.create_model("highway", input_shape=(4, 4, 3), stages=((8, 1),) * 4)
