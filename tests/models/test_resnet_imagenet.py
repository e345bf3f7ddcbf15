"""The ImageNet residual networks against their references:

- He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image Recognition", Table 1 (layers
  and output sizes of ResNet-18 ... 152);
- keras.applications ResNet50/101/152 and ResNet50V2/101V2/152V2 (Keras 3): the same weighted
  layers in the same order, so their weights load (checked in the harness,
  test_all_models.py), and their parameter counts (``count_params()``, BN moving statistics
  included);
- torchvision's ResNet-18/34, ResNeXt-50 32x4d, ResNeXt-101 32x8d and Wide ResNet-50-2
  parameter counts (its model metadata, "num_params": trainable only, convolutions without
  bias);
- Xie et al. 2017, "Aggregated Residual Transformations", Table 1 (ResNeXt-50 32x4d);
- Huang et al. 2016, "Deep Networks with Stochastic Depth", equation (4).

No test downloads anything: keras.applications models are built with ``weights=None``."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import MODELS
from kerascnn.models.layers import StochasticDepth

# name: (keras.applications constructor, its parameter count: keras.applications' published
# "total", BN moving statistics included)
KERAS_MODELS = {
    "resnet50": ("ResNet50", 25_636_712),
    "resnet101": ("ResNet101", 44_707_176),
    "resnet152": ("ResNet152", 60_419_944),
    "resnet50_v2": ("ResNet50V2", 25_613_800),
    "resnet101_v2": ("ResNet101V2", 44_675_560),
    "resnet152_v2": ("ResNet152V2", 60_380_648),
}
# Trainable parameters, torchvision convention (torchvision's model metadata, "num_params").
TORCHVISION_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "wide_resnet50_2": 68_883_240,
}
SMALL = (32, 32, 3)  # keras.applications' minimum, and ours (total stride 32)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def built_without_weights(build, *args, **kwargs):
    """A model built without drawing its initial weights (it cannot be called): counts and
    layer names depend on shapes only. ``clear_session`` drops the pending variables, which
    Keras would otherwise initialise on leaving a later stateless scope."""
    with keras.StatelessScope(initialize_variables=False):
        model = build(*args, **kwargs)
    keras.backend.clear_session()
    return model


def weighted_layer_names(model):
    return [layer.name for layer in model.layers if layer.weights and layer.name != "preprocessing"]


def check_against_keras(name):
    """Count and layer order of ``name`` against its keras.applications model, both with their
    classifier (1000 classes) at the smallest input; the harness (test_all_models.py) checks
    that the application's weights in ours give its outputs."""
    constructor, count = KERAS_MODELS[name]
    assert MODELS.get(name).keras_application.name == constructor
    app = built_without_weights(
        getattr(keras.applications, constructor), weights=None, input_shape=SMALL
    )
    ours = built_without_weights(kerascnn.create_model, name, input_shape=SMALL)
    assert app.count_params() == ours.count_params() == count
    # Same weighted layers, same names, same order (keras.applications' naming), so that
    # transfer_weights pairs each with its own.
    assert weighted_layer_names(ours) == weighted_layer_names(app)


# --- keras.applications layout ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet50", "resnet50_v2"])
def test_fits_keras_applications_count_and_layers(name):
    check_against_keras(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet101", "resnet152", "resnet101_v2", "resnet152_v2"])
def test_deeper_networks_fit_keras_applications(name):
    check_against_keras(name)


# --- parameter counts (torchvision convention) --------------------------------------------------


@pytest.mark.parametrize("name", list(TORCHVISION_COUNTS))
def test_trainable_parameters_match_torchvision(name):
    model = kerascnn.create_model(name, input_shape=SMALL)
    assert trainable_count(model) == TORCHVISION_COUNTS[name]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert not any(layer.use_bias for layer in convs)


# --- Table 1 shapes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet50():
    return kerascnn.create_model("resnet50")


def output_shape(model, layer):
    return tuple(model.get_layer(layer).output.shape)


def test_resnet50_follows_table_1(resnet50):
    # Table 1: conv1 112x112 (7x7, 64, stride 2); conv2_x 56x56 after the 3x3/2 max pool;
    # conv3_x 28x28, conv4_x 14x14, conv5_x 7x7; bottlenecks output 256, 512, 1024, 2048.
    assert output_shape(resnet50, "conv1_relu") == (None, 112, 112, 64)
    assert output_shape(resnet50, "pool1_pool") == (None, 56, 56, 64)
    assert output_shape(resnet50, "conv2_block3_out") == (None, 56, 56, 256)
    assert output_shape(resnet50, "conv3_block4_out") == (None, 28, 28, 512)
    assert output_shape(resnet50, "conv4_block6_out") == (None, 14, 14, 1024)
    assert output_shape(resnet50, "conv5_block3_out") == (None, 7, 7, 2048)
    assert output_shape(resnet50, "avg_pool") == (None, 2048)
    assert tuple(resnet50.output.shape) == (None, 1000)
    # conv2_x of ResNet-50: [1x1, 64; 3x3, 64; 1x1, 256] x 3.
    kernels = [resnet50.get_layer(f"conv2_block1_{i}_conv").kernel.shape for i in (1, 2, 3)]
    assert kernels == [(1, 1, 64, 64), (3, 3, 64, 64), (1, 1, 64, 256)]


def test_resnet50_uses_keras_v1_conventions(resnet50):
    # keras.applications ResNet50: biases on every convolution, the stride of a bottleneck
    # on its first 1x1 (and on the projection), BN epsilon 1.001e-5.
    convs = [layer for layer in resnet50.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(layer.use_bias for layer in convs)
    for stage in (3, 4, 5):
        assert resnet50.get_layer(f"conv{stage}_block1_1_conv").strides == (2, 2)
        assert resnet50.get_layer(f"conv{stage}_block1_0_conv").strides == (2, 2)
        assert resnet50.get_layer(f"conv{stage}_block1_2_conv").strides == (1, 1)
    norms = [
        layer for layer in resnet50.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert {layer.epsilon for layer in norms} == {1.001e-5}
    # Table 1: 50 = 1 + 3 x (3 + 4 + 6 + 3) + 1 weighted layers, plus 4 projections.
    assert len(convs) == 1 + 3 * 16 + 4


def test_resnet18_follows_table_1():
    model = kerascnn.create_model("resnet18")
    # Table 1: conv2_x [3x3, 64; 3x3, 64] x 2 ... conv5_x [3x3, 512; 3x3, 512] x 2.
    for stage, (size, width) in enumerate([(56, 64), (28, 128), (14, 256), (7, 512)], start=2):
        assert output_shape(model, f"conv{stage}_block2_out") == (None, size, size, width)
        assert model.get_layer(f"conv{stage}_block1_2_conv").kernel.shape[:2] == (3, 3)
    # The first stage keeps 64 channels: identity shortcut; later ones project (option B).
    assert "conv2_block1_0_conv" not in {layer.name for layer in model.layers}
    assert model.get_layer("conv3_block1_0_conv").kernel.shape == (1, 1, 64, 128)
    # Strided 3x3 convolutions pad one pixel on every side, as torchvision does.
    assert model.get_layer("conv3_block1_1_pad").padding == ((1, 1), (1, 1))
    assert model.get_layer("conv3_block1_1_conv").padding == "valid"
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 1 + 2 * 8 + 3  # 18 = 1 + 16 + 1 (fc), plus 3 projections


def test_resnet50_v2_uses_keras_v2_layout():
    model = kerascnn.create_model("resnet50_v2", input_shape=(224, 224, 3))
    # keras.applications ResNet50V2: conv2..conv4 subsample in their last block, by the 3x3
    # (explicitly padded), with a 1x1 max pool as the shortcut; no BN in the stem.
    assert output_shape(model, "conv2_block2_out") == (None, 56, 56, 256)
    assert output_shape(model, "conv2_block3_out") == (None, 28, 28, 256)
    assert model.get_layer("conv2_block3_2_conv").strides == (2, 2)
    assert isinstance(model.get_layer("conv2_block3_0_pool"), keras.layers.MaxPooling2D)
    assert output_shape(model, "conv5_block3_out") == (None, 7, 7, 2048)
    assert output_shape(model, "post_relu") == (None, 7, 7, 2048)
    assert "conv1_bn" not in {layer.name for layer in model.layers}
    # Pre-activation: the projection reads the block's BN-ReLU; the addition ends the block.
    projection = model.get_layer("conv3_block1_0_conv")
    assert projection.input is model.get_layer("conv3_block1_preact_relu").output
    assert isinstance(model.get_layer("conv3_block1_out"), keras.layers.Add)
    # Biases only on the convolutions that BN does not follow.
    biased = {layer.name for layer in model.layers if getattr(layer, "use_bias", False)}
    assert "conv2_block1_3_conv" in biased and "conv2_block1_0_conv" in biased
    assert "conv2_block1_1_conv" not in biased and "conv2_block1_2_conv" not in biased


def test_resnext50_follows_xie_table_1():
    model = kerascnn.create_model("resnext50_32x4d", input_shape=SMALL)
    # Table 1 (ResNeXt-50 32x4d): conv2 [1x1, 128; 3x3, 128, C=32; 1x1, 256] ... conv5
    # [1x1, 1024; 3x3, 1024, C=32; 1x1, 2048].
    for stage, (width, out) in enumerate([(128, 256), (256, 512), (512, 1024), (1024, 2048)], 2):
        grouped = model.get_layer(f"conv{stage}_block1_2_conv")
        assert grouped.groups == 32
        assert grouped.kernel.shape == (3, 3, width // 32, width)
        assert model.get_layer(f"conv{stage}_block1_3_conv").filters == out
    # Subsampling by the grouped 3x3 (the paper's code, torchvision).
    assert model.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert model.get_layer("conv3_block1_1_conv").strides == (1, 1)


def test_wide_resnet50_2_doubles_the_bottleneck(resnet50):
    model = kerascnn.create_model("wide_resnet50_2", input_shape=SMALL)
    # Zagoruyko & Komodakis, ImageNet: ResNet-50 with the bottleneck's inner width doubled;
    # the block outputs are unchanged.
    for stage, blocks in zip((2, 3, 4, 5), (3, 4, 6, 3), strict=True):
        name = f"conv{stage}_block{blocks}"
        inner = model.get_layer(f"{name}_2_conv").filters
        assert inner == 2 * resnet50.get_layer(f"{name}_2_conv").filters
        out = model.get_layer(f"{name}_3_conv").filters
        assert out == resnet50.get_layer(f"{name}_3_conv").filters


# --- sizes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet50", "resnet50_v2", "resnet18"])
def test_smallest_input_leaves_a_1x1_map(name):
    # Total stride 2 (conv1) x 2 (pool1) x 2 x 2 x 2 = 32: a 32x32 input leaves 1x1 for conv5.
    assert MODELS.get(name).min_size == (32, 32)
    model = kerascnn.create_model(name, input_shape=SMALL, include_top=False)
    assert tuple(model.output.shape)[1:3] == (1, 1)


def test_keras_applications_minimum_is_32():
    with pytest.raises(ValueError, match="32"):
        keras.applications.ResNet50(weights=None, include_top=False, input_shape=(31, 31, 3))


# --- options --------------------------------------------------------------------------------------


def test_stochastic_depth_decays_linearly_over_all_blocks(resnet50):
    model = kerascnn.create_model("resnet50", input_shape=SMALL, stochastic_depth=0.5)
    drops = [layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    # Huang et al. eq. (4): p_l = 1 - l / L (1 - p_L); ResNet-50 has L = 16 blocks.
    expected = [1 - block / 16 * 0.5 for block in range(1, 17)]
    assert [d.survival_probability for d in drops] == pytest.approx(expected)
    assert model.get_layer("conv5_block3_add").input[1] is drops[-1].output
    assert not any(isinstance(layer, StochasticDepth) for layer in resnet50.layers)


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match=r"four stages conv2..conv5; received \(2, 2, 2\)$"):
        kerascnn.create_model("resnet50", stages=(2, 2, 2))
    with pytest.raises(ValueError, match="grouped convolutions need bottleneck blocks"):
        kerascnn.create_model("resnet18", groups=32)
    with pytest.raises(ValueError, match="must be positive; received groups=0"):
        kerascnn.create_model("resnext50_32x4d", groups=0)
    with pytest.raises(ValueError, match="block must be 'basic' or 'bottleneck'"):
        kerascnn.create_model("resnet50", block="wide")
