"""The VGG networks against Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for
Large-Scale Image Recognition" (Table 1 the configurations, section 2.1 the layers, section
3.1 training), the published parameter counts (torchvision's model metadata and
keras.applications), and keras.applications' VGG16/VGG19 (names; weights in the harness).

Expected parameter counts are computed here from Table 1, then compared with the model and
with the published counts."""

import math

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import MODELS
from kerascnn.models.counting import multiply_accumulates
from kerascnn.models.layers import LocalResponseNormalization
from kerascnn.models.vgg import VGG

# Table 1, written as (kernel, filters) per convolution, one list per block; each block ends
# with a 2x2/2 max pooling. A-LRN is A with LRN after the first convolution (no parameters).
A = [[(3, 64)], [(3, 128)], [(3, 256)] * 2, [(3, 512)] * 2, [(3, 512)] * 2]
B = [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 2, [(3, 512)] * 2, [(3, 512)] * 2]
TABLE_1 = {
    "A": A,
    "A-LRN": A,
    "B": B,
    # "C: B plus conv1-256, conv1-512, conv1-512 ending blocks 3, 4 and 5".
    "C": [
        *B[:2],
        [(3, 256)] * 2 + [(1, 256)],
        [(3, 512)] * 2 + [(1, 512)],
        [(3, 512)] * 2 + [(1, 512)],
    ],
    "D": [*B[:2], [(3, 256)] * 3, [(3, 512)] * 3, [(3, 512)] * 3],
    "E": [*B[:2], [(3, 256)] * 4, [(3, 512)] * 4, [(3, 512)] * 4],
}
# Registry name -> (Table 1 column, batch normalisation).
VARIANTS = {
    "vgg11": ("A", False),
    "vgg11_lrn": ("A-LRN", False),
    "vgg13": ("B", False),
    "vgg16_c": ("C", False),
    "vgg16": ("D", False),
    "vgg19": ("E", False),
    "vgg11_bn": ("A", True),
    "vgg13_bn": ("B", True),
    "vgg16_bn": ("D", True),
    "vgg19_bn": ("E", True),
}
# Published parameter counts (1000 classes, 224x224x3): torchvision's VGG*_Weights metadata
# ("num_params") and keras.applications' VGG16/VGG19 for the plain networks; torchvision's
# (trainable only, convolutions keep their bias) for BN.
REFERENCE = {
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
}
# torchvision's VGG*_Weights.IMAGENET1K_V1 metadata, "GFLOPS" (multiply-accumulates at
# 224x224, in billions, two decimals); the _bn weights give the same figures.
TORCHVISION_GFLOPS = {"A": 7.61, "B": 11.31, "D": 15.47, "E": 19.63}
APPLICATIONS = {"vgg16": "VGG16", "vgg19": "VGG19"}


def built_without_weights(build, *args, **kwargs):
    """A model built without drawing its initial weights (it cannot be called).

    Parameter counts and layer shapes depend on shapes only, and drawing the 130-140 million
    Gaussian numbers of a full-size VGG takes nearly all of its build time. ``clear_session``
    drops the pending variables, which Keras would otherwise initialise on leaving a later
    stateless scope.
    """
    with keras.StatelessScope(initialize_variables=False):
        model = build(*args, **kwargs)
    keras.backend.clear_session()
    return model


@pytest.fixture(scope="module", params=list(VARIANTS))
def full_size(request):
    """(name, model) at the paper's 224x224x3 and 1000 classes, each built once."""
    return request.param, built_without_weights(kerascnn.create_model, request.param)


@pytest.fixture(scope="module")
def vgg16():
    return built_without_weights(kerascnn.create_model, "vgg16")


@pytest.fixture(scope="module")
def small_vgg11():
    """Real weights at the minimum size, for the initialisation and weight decay."""
    return kerascnn.create_model("vgg11", input_shape=(32, 32, 3), num_classes=10)


@pytest.fixture(scope="module")
def small_vgg11_bn():
    return kerascnn.create_model("vgg11_bn", input_shape=(32, 32, 3), num_classes=10)


def trainable_count(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def shape(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape)


def table_1_parameters(config, batch_norm=False, size=224, classes=1000):
    """Trainable parameters of a Table 1 column: convolutions with bias (and, with batch
    normalisation, a trainable scale and offset per channel), five 2x2/2 poolings, FC 4096,
    4096, classes on the flattened map."""
    total, channels = 0, 3
    for block in TABLE_1[config]:
        for kernel, filters in block:
            total += kernel * kernel * channels * filters + filters
            total += 2 * filters if batch_norm else 0
            channels = filters
    flat = (size // 2**5) ** 2 * channels
    return total + (flat * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * classes + classes)


def batch_norm_statistics(config):
    """Moving mean and variance per channel: Keras counts them, torchvision does not."""
    return 2 * sum(filters for block in TABLE_1[config] for _, filters in block)


# --- parameter counts -----------------------------------------------------------------------


def test_parameters_match_table_1_and_the_published_counts(full_size):
    name, model = full_size
    config, batch_norm = VARIANTS[name]
    expected = table_1_parameters(config, batch_norm)
    assert trainable_count(model) == expected
    if name in REFERENCE:
        assert expected == REFERENCE[name]
    statistics = batch_norm_statistics(config) if batch_norm else 0
    assert model.count_params() == expected + statistics
    assert model.name == name


def table_1_multiply_accumulates(config, size=224, classes=1000):
    """One multiply-accumulate per weight use: a KxK convolution with N filters on a
    size x size map of C channels makes size^2 * K^2 * C * N; the FC layers one per weight."""
    total, channels = 0, 3
    for block in TABLE_1[config]:
        for kernel, filters in block:
            total += size * size * kernel * kernel * channels * filters
            channels = filters
        size //= 2
    return total + size * size * channels * 4096 + 4096 * 4096 + 4096 * classes


def test_multiply_accumulates_match_table_1_and_torchvision(full_size):
    name, model = full_size
    config, _ = VARIANTS[name]
    expected = table_1_multiply_accumulates(config)
    assert multiply_accumulates(model) == expected
    if config in TORCHVISION_GFLOPS:
        assert round(expected / 1e9, 2) == TORCHVISION_GFLOPS[config]


def test_lrn_and_1x1_variants_against_their_neighbours():
    # A-LRN adds no parameters to A; C adds three 1x1 convolutions to B.
    assert table_1_parameters("A-LRN") == table_1_parameters("A")
    one_by_ones = (256 * 256 + 256) + 2 * (512 * 512 + 512)
    assert table_1_parameters("C") - table_1_parameters("B") == one_by_ones


def test_flatten_follows_the_input_size():
    # With include_top the input may be any size from 32: FC1 sees the flattened map.
    model = built_without_weights(kerascnn.create_model, "vgg16", input_shape=(64, 96, 3))
    assert shape(model, "block5_pool") == (None, 2, 3, 512)
    assert model.get_layer("fc1").kernel.shape == (2 * 3 * 512, 4096)


# --- layers (Table 1, section 2.1) ----------------------------------------------------------


def test_vgg16_shapes(vgg16):
    # Section 2.1: 3x3 convolutions with stride 1 and padding 1 keep the resolution; five
    # 2x2/2 max poolings halve it: 224, 112, 56, 28, 14, then 7.
    widths = (64, 128, 256, 512, 512)
    for block, (width, convs) in enumerate(zip(widths, (2, 2, 3, 3, 3), strict=True), start=1):
        size = 224 // 2 ** (block - 1)
        assert shape(vgg16, f"block{block}_conv{convs}") == (None, size, size, width)
        assert shape(vgg16, f"block{block}_pool") == (None, size // 2, size // 2, width)
    assert shape(vgg16, "flatten") == (None, 7 * 7 * 512)
    assert shape(vgg16, "fc1") == (None, 4096)
    assert shape(vgg16, "fc2") == (None, 4096)
    assert shape(vgg16, "predictions") == (None, 1000)


def test_convolutions_follow_table_1(full_size):
    name, model = full_size
    config, _ = VARIANTS[name]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    expected = [
        (f"block{b}_conv{i}", (kernel, kernel), filters)
        for b, block in enumerate(TABLE_1[config], start=1)
        for i, (kernel, filters) in enumerate(block, start=1)
    ]
    assert [(c.name, c.kernel_size, c.filters) for c in convs] == expected
    assert all(c.strides == (1, 1) and c.padding == "same" for c in convs)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [p.name for p in pools] == [f"block{b}_pool" for b in range(1, 6)]
    assert all(p.pool_size == (2, 2) and p.strides == (2, 2) for p in pools)


def test_a_lrn_normalises_after_the_first_convolution():
    # Table 1: A-LRN is "conv3-64, LRN" then maxpool; section 2.1 takes the LRN parameters of
    # Krizhevsky et al. 2012 (k=2, n=5, alpha=1e-4, beta=0.75).
    model = built_without_weights(kerascnn.create_model, "vgg11_lrn")
    names = [layer.name for layer in model.layers]
    assert names[names.index("block1_conv1") + 1 : names.index("block1_pool")] == ["block1_lrn"]
    lrn = model.get_layer("block1_lrn")
    assert isinstance(lrn, LocalResponseNormalization)
    assert (lrn.k, lrn.n, lrn.alpha, lrn.beta) == (2.0, 5, 1e-4, 0.75)
    others = [layer for layer in model.layers if isinstance(layer, LocalResponseNormalization)]
    assert others == [lrn]


def test_min_size_is_the_smallest_that_builds():
    # Five 2x2/2 poolings: 32 -> 16 -> 8 -> 4 -> 2 -> 1; at 31 the last has nothing to pool.
    assert MODELS.get("vgg16").min_size == (32, 32)
    arguments = dict(
        num_classes=10, include_top=False, pooling=None, classifier_activation=None,
        mean=(0.0,), std=(1.0,), config="A",
    )  # fmt: skip
    assert tuple(VGG(input_shape=(32, 32, 3), **arguments).output.shape) == (None, 1, 1, 512)
    for size in ((31, 32, 3), (32, 31, 3)):
        with pytest.raises(ValueError, match="zero or negative"):
            VGG(input_shape=size, **arguments)


def test_relu_follows_every_conv_and_hidden_fc(small_vgg11):
    for layer in small_vgg11.layers:
        if isinstance(layer, keras.layers.Conv2D) or layer.name in ("fc1", "fc2"):
            assert layer.activation is keras.activations.relu, layer.name


def test_dropout_0_5_follows_fc1_and_fc2(small_vgg11):
    # Section 3.1: "dropout regularisation for the first two fully-connected layers (dropout
    # ratio set to 0.5)".
    dropouts = [layer for layer in small_vgg11.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.name for layer in dropouts] == ["fc1_dropout", "fc2_dropout"]
    for name in ("fc1", "fc2"):
        dropout = small_vgg11.get_layer(f"{name}_dropout")
        assert dropout.rate == 0.5
        assert dropout.input is small_vgg11.get_layer(name).output


# --- initialisation and regularisation (section 3.1) ----------------------------------------


def test_weights_are_gaussian_std_0_01_and_biases_zero(small_vgg11):
    # Section 3.1: weights "from a normal distribution with the zero mean", "biases were
    # initialised with zero" (std 0.01: see the module docstring of kerascnn.models.vgg).
    for name in ("block4_conv1", "block5_conv2", "fc2"):
        kernel = keras.ops.convert_to_numpy(small_vgg11.get_layer(name).kernel)
        assert kernel.size > 1_000_000
        assert kernel.std() == pytest.approx(0.01, rel=0.01)
        assert abs(kernel.mean()) < 1e-4
    for layer in small_vgg11.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
            np.testing.assert_array_equal(layer.bias.numpy(), 0.0)


def test_weight_decay_is_5e_4_on_every_kernel(small_vgg11):
    # Section 3.1: "weight decay (the L2 penalty multiplier set to 5 * 10^-4)", i.e. the
    # gradient 5e-4 * w of 5e-4 / 2 * ||w||^2.
    kernels = [
        layer.kernel
        for layer in small_vgg11.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    ]
    assert len(small_vgg11.losses) == len(kernels) == 11
    squared = sum(float(np.sum(np.square(keras.ops.convert_to_numpy(k)))) for k in kernels)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in small_vgg11.losses)
    assert total == pytest.approx(5e-4 / 2 * squared, rel=1e-4)


# --- batch normalisation (torchvision's vgg*_bn) --------------------------------------------


def test_batch_norm_sits_between_each_convolution_and_its_relu(small_vgg11_bn):
    convs = [layer for layer in small_vgg11_bn.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 8
    for conv in convs:
        # torchvision's convolutions keep their bias (its published counts include them).
        assert conv.use_bias and conv.activation is keras.activations.linear
        bn = small_vgg11_bn.get_layer(f"{conv.name}_bn")
        relu = small_vgg11_bn.get_layer(f"{conv.name}_relu")
        assert bn.input is conv.output and relu.input is bn.output
        assert bn.epsilon == 1e-5  # torchvision's BatchNorm2d default
    bns = [
        layer
        for layer in small_vgg11_bn.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(bns) == 8  # none in the FC layers


def test_batch_norm_convolutions_are_he_normal(small_vgg11_bn):
    kernel = keras.ops.convert_to_numpy(small_vgg11_bn.get_layer("block5_conv1").kernel)
    assert kernel.std() == pytest.approx(math.sqrt(2 / (3 * 3 * 512)), rel=0.02)


# --- keras.applications layout and weights --------------------------------------------------
# The harness (test_all_models.py) checks that keras.applications' VGG16 and VGG19 weights in
# ours give their outputs; transfer_weights pairs layers in order, and the names agree too.


@pytest.mark.parametrize("name", ["vgg16", "vgg19"])
def test_layer_names_are_keras_applications(name):
    application = built_without_weights(
        getattr(keras.applications, APPLICATIONS[name]), weights=None, input_shape=(32, 32, 3)
    )
    ours = built_without_weights(kerascnn.create_model, name, input_shape=(32, 32, 3))
    theirs = [layer.name for layer in application.layers if layer.weights]
    assert [
        layer.name for layer in ours.layers if layer.weights and layer.name != "preprocessing"
    ] == theirs


@pytest.mark.slow
def test_keras_applications_weights_fit_at_224_with_the_classifier(keras_application_parity):
    # The published ImageNet weights' own shape: FC1 on the 7x7x512 map (the harness checks
    # the classifier at 64x64, FC1 on a 2x2 map).
    keras_application_parity("vgg16", include_top=True, size=224)


# --- options --------------------------------------------------------------------------------


def test_unknown_config_is_rejected():
    with pytest.raises(ValueError, match="VGG config must be one of A, A-LRN, B, C, D, E"):
        kerascnn.create_model("vgg16", config="F")


def test_registry_names_and_keras_applications():
    for name, (config, batch_norm) in VARIANTS.items():
        spec = MODELS.get(name)
        assert (spec.options["config"], spec.options["batch_norm"]) == (config, batch_norm)
        assert spec.input_shape == (224, 224, 3) and spec.num_classes == 1000
        application = spec.keras_application
        if name in APPLICATIONS:
            assert (application.name, application.bgr) == (APPLICATIONS[name], True)
            # keras.applications.vgg16.preprocess_input: mode "caffe".
            assert spec.mean == (123.68, 116.779, 103.939) and spec.std == (1.0, 1.0, 1.0)
        else:
            assert application is None
