"""The CIFAR ResNets against He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image
Recognition" (arXiv:1512.03385), section 4.2 and Table 6.

Expected parameter counts are computed here from the section 4.2 description, then compared
with the model and with Table 6's rounded figures."""

import re

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models.layers import ZeroPadShortcut

# Section 4.2: "The numbers of filters are {16, 32, 64} respectively" on 32, 16, 8 maps.
WIDTHS = (16, 32, 64)
# Table 6, "# params" column, with the precision the paper prints.
TABLE_6_PARAMS = {20: "0.27", 32: "0.46", 44: "0.66", 56: "0.85", 110: "1.7"}


@pytest.fixture(scope="module", autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def resnet20():
    return kerascnn.create_model("resnet20", num_classes=10)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def random_pixels(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype("float32")


def cifar_resnet_parameters(depth, num_classes=10, shortcut="A"):
    """Trainable parameters of the section 4.2 network of ``depth`` = 6n + 2 layers.

    A 3x3 convolution with 16 filters on the 3-channel input, then 3 stages of n blocks of
    two 3x3 convolutions; batch normalisation after every convolution ("We adopt batch
    normalization right after each convolution", section 3.4), so convolutions need no bias
    and each BN trains a gamma and a beta per channel. Option A shortcuts are identity with
    zero padding ("parameter-free"); option B uses 1x1 projections where dimensions change
    (with BN, as every convolution). Global average pooling, then a fully connected layer.
    """

    def conv(kernel, channels_in, channels_out):
        return kernel * kernel * channels_in * channels_out

    def batch_norm(channels):
        return 2 * channels

    n = (depth - 2) // 6
    total = conv(3, 3, WIDTHS[0]) + batch_norm(WIDTHS[0])
    channels = WIDTHS[0]
    for width in WIDTHS:
        for _ in range(n):
            total += conv(3, channels, width) + batch_norm(width)
            total += conv(3, width, width) + batch_norm(width)
            if shortcut == "B" and channels != width:
                total += conv(1, channels, width) + batch_norm(width)
            channels = width
    return total + channels * num_classes + num_classes


# --- parameters (Table 6) ------------------------------------------------------------------


def test_resnet20_trainable_parameters_match_the_architecture(resnet20):
    expected = cifar_resnet_parameters(20)
    assert trainable_count(resnet20) == expected
    # Table 6: ResNet-20 has 0.27M parameters.
    assert f"{expected / 1e6:.2f}" == TABLE_6_PARAMS[20]


@pytest.mark.parametrize("depth", [32, 44, 56, 110])
def test_deeper_variants_match_table_6(depth):
    model = kerascnn.create_model("resnet20", depth=depth, num_classes=10, input_shape=(8, 8, 3))
    expected = cifar_resnet_parameters(depth)
    assert trainable_count(model) == expected
    decimals = len(TABLE_6_PARAMS[depth].split(".")[1])
    assert f"{expected / 1e6:.{decimals}f}" == TABLE_6_PARAMS[depth]
    assert model.name == f"resnet{depth}"


def test_resnet20_has_6n_plus_2_weighted_layers(resnet20):
    # Section 4.2: "there are totally 6n+2 stacked weighted layers"; option A adds none.
    convs = [layer for layer in resnet20.layers if isinstance(layer, keras.layers.Conv2D)]
    denses = [layer for layer in resnet20.layers if isinstance(layer, keras.layers.Dense)]
    assert len(convs) + len(denses) == 6 * 3 + 2
    assert len(denses) == 1
    assert all(layer.kernel_size == (3, 3) and not layer.use_bias for layer in convs)


# --- shapes (section 4.2) ------------------------------------------------------------------


def test_stage_outputs_follow_section_4_2(resnet20):
    # "... on the feature maps of sizes {32, 16, 8} respectively, with 2n layers for each".
    assert tuple(resnet20.get_layer("conv1_relu").output.shape) == (None, 32, 32, 16)
    assert tuple(resnet20.get_layer("conv2_block3_out").output.shape) == (None, 32, 32, 16)
    assert tuple(resnet20.get_layer("conv3_block3_out").output.shape) == (None, 16, 16, 32)
    assert tuple(resnet20.get_layer("conv4_block3_out").output.shape) == (None, 8, 8, 64)
    # "The network ends with a global average pooling, a 10-way fully-connected layer".
    assert tuple(resnet20.get_layer("avg_pool").output.shape) == (None, 64)
    assert tuple(resnet20.output.shape) == (None, 10)
    # Subsampling is by the first convolution of a stage, with a stride of 2.
    assert resnet20.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert resnet20.get_layer("conv4_block1_1_conv").strides == (2, 2)
    assert resnet20.get_layer("conv3_block2_1_conv").strides == (1, 1)


def test_works_at_a_non_default_size():
    model = kerascnn.create_model("resnet20", input_shape=(64, 64, 3), num_classes=10)
    assert tuple(model.get_layer("conv2_block3_out").output.shape) == (None, 64, 64, 16)
    assert tuple(model.get_layer("conv3_block3_out").output.shape) == (None, 32, 32, 32)
    assert tuple(model.get_layer("conv4_block3_out").output.shape) == (None, 16, 16, 64)
    # Global pooling makes the parameter count independent of the input size.
    assert trainable_count(model) == cifar_resnet_parameters(20)
    assert model.predict(random_pixels((2, 64, 64, 3)), verbose=0).shape == (2, 10)


def test_minimum_size_builds_and_one_below_fails():
    model = kerascnn.create_model("resnet20", input_shape=(8, 8, 3), num_classes=10)
    assert tuple(model.get_layer("conv4_block3_out").output.shape) == (None, 2, 2, 64)
    assert model.predict(random_pixels((2, 8, 8, 3)), verbose=0).shape == (2, 10)
    expected = "ResNet-20 needs inputs of at least 8x8; received input_shape=(7, 7, 3)"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        kerascnn.create_model("resnet20", input_shape=(7, 7, 3))


# --- shortcuts (section 3.3 options A and B) -----------------------------------------------


def test_option_a_shortcuts_have_no_weights(resnet20):
    pads = [layer for layer in resnet20.layers if isinstance(layer, ZeroPadShortcut)]
    # Dimensions change only at the first block of stages 2 and 3.
    assert sorted(layer.name for layer in pads) == ["conv3_block1_0_pad", "conv4_block1_0_pad"]
    assert all(layer.weights == [] for layer in pads)
    assert not any(layer.name.endswith("_0_conv") for layer in resnet20.layers)


def test_option_a_shortcut_is_subsampled_identity_with_zero_channels():
    # Section 3.3: "(A) The shortcut still performs identity mapping, with extra zero entries
    # padded for increasing dimensions ... performed with a stride of 2."
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 16)).astype("float32")
    y = keras.ops.convert_to_numpy(ZeroPadShortcut(32, strides=2)(x))
    assert y.shape == (2, 3, 3, 32)
    subsampled = x[:, ::2, ::2, :]
    nonzero = [c for c in range(32) if np.any(y[..., c] != 0)]
    assert len(nonzero) == 16 and nonzero == list(range(nonzero[0], nonzero[0] + 16))
    np.testing.assert_array_equal(y[..., nonzero], subsampled)


def test_option_b_adds_exactly_the_projection_parameters(resnet20):
    model = kerascnn.create_model("resnet20", num_classes=10, shortcut="B")
    # 1x1 projections 16->32 and 32->64 without bias, each followed by BN (gamma, beta).
    projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert cifar_resnet_parameters(20, shortcut="B") - cifar_resnet_parameters(20) == projections
    assert trainable_count(model) - trainable_count(resnet20) == projections
    projection = model.get_layer("conv3_block1_0_conv")
    assert [w.shape for w in projection.get_weights()] == [(1, 1, 16, 32)]
    assert projection.strides == (2, 2)
    assert not any(isinstance(layer, ZeroPadShortcut) for layer in model.layers)


def test_unknown_shortcut_is_rejected():
    with pytest.raises(ValueError, match="shortcut must be 'A' or 'B'; received 'C'"):
        kerascnn.create_model("resnet20", shortcut="C")


@pytest.mark.parametrize("depth", [21, 19, 2])
def test_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=f"depth must be 6n \\+ 2.*received {depth}$"):
        kerascnn.create_model("resnet20", depth=depth)


# --- weight decay (section 4.2: "a weight decay of 0.0001") --------------------------------


def test_weight_decay_adds_l2_losses_on_every_kernel(resnet20):
    kernels = [
        layer.kernel
        for layer in resnet20.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    ]
    assert len(resnet20.losses) == len(kernels) == 20
    # Decay lambda means the gradient lambda * w, i.e. lambda / 2 * ||w||^2 in the loss.
    squared = sum(float(np.sum(np.square(keras.ops.convert_to_numpy(k)))) for k in kernels)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in resnet20.losses)
    assert total == pytest.approx(1e-4 / 2 * squared, rel=1e-4)


def test_zero_weight_decay_adds_no_losses():
    model = kerascnn.create_model("resnet20", input_shape=(8, 8, 3), weight_decay=0)
    assert model.losses == []
