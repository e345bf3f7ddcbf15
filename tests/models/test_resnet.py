"""The CIFAR residual networks against their papers:

- He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image Recognition" (arXiv:1512.03385),
  section 4.2 and Table 6: ResNet-20 ... 1202 and the plain networks;
- He, Zhang, Ren, Sun 2016, "Identity Mappings in Deep Residual Networks" (arXiv:1603.05027):
  pre-activation ResNet-110, -164, -1001, and the authors' code (KaimingHe/resnet-1k-layers);
- Zagoruyko, Komodakis 2016, "Wide Residual Networks" (arXiv:1605.07146): WRN-16-8, WRN-28-10;
- Xie, Girshick, Dollar, Tu, He 2017, "Aggregated Residual Transformations" (arXiv:1611.05431),
  section 5.3 and Table 7: ResNeXt-29 (8x64d);
- Huang, Sun, Liu, Sedra, Weinberger 2016, "Deep Networks with Stochastic Depth"
  (arXiv:1603.09382): linear decay of the survival probability, ResNet-110 with p_L = 0.5.

Expected parameter counts are computed here from the papers' descriptions, then compared
with the model and with the papers' rounded figures."""

import re

import keras
import numpy as np
import pytest

import kerascnn
import kerascnn.models.resnet_cifar  # noqa: F401  (registers the CIFAR ResNets)
from kerascnn.models import MODELS
from kerascnn.models.layers import StochasticDepth, ZeroPadShortcut

# Section 4.2: "The numbers of filters are {16, 32, 64} respectively" on 32, 16, 8 maps.
WIDTHS = (16, 32, 64)
# Table 6, "# params" column, with the precision the paper prints.
TABLE_6_PARAMS = {20: "0.27", 32: "0.46", 44: "0.66", 56: "0.85", 110: "1.7"}


@pytest.fixture(scope="module")
def resnet20():
    return kerascnn.create_model("resnet20", num_classes=10)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


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


def test_works_at_a_non_default_size(random_pixels):
    model = kerascnn.create_model("resnet20", input_shape=(64, 64, 3), num_classes=10)
    assert tuple(model.get_layer("conv2_block3_out").output.shape) == (None, 64, 64, 16)
    assert tuple(model.get_layer("conv3_block3_out").output.shape) == (None, 32, 32, 32)
    assert tuple(model.get_layer("conv4_block3_out").output.shape) == (None, 16, 16, 64)
    # Global pooling makes the parameter count independent of the input size.
    assert trainable_count(model) == cifar_resnet_parameters(20)
    assert model.predict(random_pixels((2, 64, 64, 3)), verbose=0).shape == (2, 10)


def test_minimum_size_builds_and_one_below_fails(random_pixels):
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


# --- every Table 6 network is registered -----------------------------------------------------

TABLE_6_DEPTHS = (20, 32, 44, 56, 110, 1202)
# Table 6 prints ResNet-1202 as 19.4M.
TABLE_6_PARAMS[1202] = "19.4"


def rounded_like(count, paper_figure):
    """``count`` in millions, with the decimals the paper prints."""
    decimals = len(paper_figure.split(".")[1])
    return f"{count / 1e6:.{decimals}f}"


@pytest.mark.parametrize("depth", TABLE_6_DEPTHS)
def test_table_6_networks_are_registered_with_their_depth(depth):
    spec = MODELS.get(f"resnet{depth}")
    assert spec.options["depth"] == depth
    assert spec.min_size == (8, 8) and spec.input_shape == (32, 32, 3)
    assert (
        rounded_like(cifar_resnet_parameters(depth), TABLE_6_PARAMS[depth])
        == (TABLE_6_PARAMS[depth])
    )


@pytest.mark.slow
def test_resnet1202_has_the_derived_parameter_count():
    # Section 4.2: n = 200, "a 1202-layer network ... 19.4M" parameters (Table 6).
    model = kerascnn.create_model("resnet1202", input_shape=(8, 8, 3), num_classes=10)
    assert trainable_count(model) == cifar_resnet_parameters(1202)
    assert len([layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]) == (
        6 * 200 + 1
    )


# --- plain networks (section 4.2, Figure 6 left) ---------------------------------------------


@pytest.fixture(scope="module")
def plain20():
    return kerascnn.create_model("plain20", num_classes=10)


def test_plain20_has_exactly_resnet20s_weights(resnet20, plain20):
    # Option A shortcuts are parameter-free, so the plain net has the same weights (Table 6
    # compares plain and residual nets "with the same number of parameters").
    assert [tuple(w.shape) for w in plain20.weights] == [tuple(w.shape) for w in resnet20.weights]
    assert trainable_count(plain20) == trainable_count(resnet20) == cifar_resnet_parameters(20)
    plain20.set_weights(resnet20.get_weights())


def test_plain20_has_no_shortcuts(plain20):
    assert not any(
        isinstance(layer, keras.layers.Add | ZeroPadShortcut) for layer in plain20.layers
    )
    # The same stacked layers: ReLU after the second BN of each pair, where ResNet adds first.
    second_bn = plain20.get_layer("conv3_block1_2_bn")
    assert plain20.get_layer("conv3_block1_out").input is second_bn.output
    assert plain20.name == "plain20"


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_networks_of_table_6_are_registered(depth):
    spec = MODELS.get(f"plain{depth}")
    assert spec.options == {"depth": depth, "shortcut": None}


def test_stochastic_depth_needs_shortcuts():
    with pytest.raises(ValueError, match="needs shortcuts; received shortcut=None"):
        kerascnn.create_model("plain20", stochastic_depth=0.5)


# --- pre-activation ResNets (He et al. 2016) -------------------------------------------------


def preact_parameters(n, block, widths, *, stem=16, num_classes=10, batch_norm=True):
    """Trainable parameters of a pre-activation network in the authors' layout
    (resnet-1k-layers/resnet-pre-act.lua, and Wide ResNets' code): a 3x3 convolution with
    ``stem`` filters; three stages of n units, each BN-ReLU then the convolutions (BN-ReLU
    between them, no biases), a 1x1 projection from the shared BN-ReLU where the channels
    change; a final BN-ReLU, global average pooling and the classifier.

    ``widths[s]`` is the 3x3 width of stage s; a bottleneck unit (1x1, 3x3, 1x1) outputs 4x.
    ``batch_norm=False`` counts only convolution and classifier weights."""
    bn = 2 if batch_norm else 0
    total = 3 * 3 * 3 * stem
    channels = stem
    for width in widths:
        out = 4 * width if block == "bottleneck" else width
        for _ in range(n):
            total += bn * channels
            if block == "bottleneck":
                total += channels * width + bn * width + 9 * width * width + bn * width
                total += width * out
            else:
                total += 9 * channels * width + bn * width + 9 * width * width
            if channels != out:
                total += channels * out
            channels = out
    return total + bn * channels + channels * num_classes + num_classes


# Table 3, CIFAR-10 with pre-activation units: ResNet-110 (basic, 6n + 2) 1.7M; ResNet-164 and
# ResNet-1001 (bottleneck, 9n + 2) 1.7M and 10.2M.
PREACT = {
    110: ("basic", 18, "1.7"),
    164: ("bottleneck", 18, "1.7"),
    1001: ("bottleneck", 111, "10.2"),
}
# resnet-pre-act.lua: the 3x3 widths of the three stages (nStages = {16, 64, 128, 256} are the
# stem and the bottleneck outputs, 4x these).
CIFAR_STAGE_WIDTHS = (16, 32, 64)


@pytest.mark.parametrize("depth", [110, 164])
def test_preact_resnets_match_the_derived_count_and_the_paper(depth):
    block, n, paper = PREACT[depth]
    model = kerascnn.create_model(f"preact_resnet{depth}", input_shape=(8, 8, 3), num_classes=10)
    expected = preact_parameters(n, block, CIFAR_STAGE_WIDTHS)
    assert trainable_count(model) == expected
    assert rounded_like(expected, paper) == paper
    assert model.name == f"preact_resnet{depth}"


def test_preact_resnet1001_count_and_the_papers_convention():
    # 9n + 2 = 1001: n = 111. Table 3's 10.2M counts convolution and classifier weights:
    # with the 149,216 BN parameters the network has 10.33M (1.3% more).
    block, n, paper = PREACT[1001]
    assert 9 * n + 2 == 1001
    weights_only = preact_parameters(n, block, CIFAR_STAGE_WIDTHS, batch_norm=False)
    assert rounded_like(weights_only, paper) == paper
    with_bn = preact_parameters(n, block, CIFAR_STAGE_WIDTHS)
    assert abs(with_bn / 10.2e6 - 1) > 0.01  # why the weights-only count is the one compared
    assert MODELS.get("preact_resnet1001").options["depth"] == 1001


@pytest.mark.slow
def test_preact_resnet1001_has_the_derived_parameter_count():
    model = kerascnn.create_model("preact_resnet1001", input_shape=(8, 8, 3), num_classes=10)
    assert trainable_count(model) == preact_parameters(111, "bottleneck", CIFAR_STAGE_WIDTHS)


@pytest.fixture(scope="module")
def preact164():
    return kerascnn.create_model("preact_resnet164", num_classes=10)


def test_preact_units_keep_the_shortcut_path_clean(preact164):
    # Figure 1(b) / equation (4): x_{l+1} = x_l + F(x_l); nothing follows the addition, and
    # the next unit starts with BN-ReLU on it.
    out = preact164.get_layer("conv2_block2_out")
    assert isinstance(out, keras.layers.Add)
    assert preact164.get_layer("conv2_block3_preact_bn").input is out.output
    identity, residual = out.input
    assert identity is preact164.get_layer("conv2_block1_out").output
    assert residual is preact164.get_layer("conv2_block2_3_conv").output
    # The network ends with BN-ReLU before the pooling (resnet-pre-act.lua).
    assert preact164.get_layer("avg_pool").input is preact164.get_layer("post_relu").output


def test_preact_bottleneck_shapes_and_projections(preact164):
    # resnet-pre-act.lua: nStages = {16, 64, 128, 256}; stride 2 on the first 1x1 of stages 2
    # and 3, a 1x1 projection from the shared BN-ReLU where the channels change.
    for stage, (size, channels) in enumerate([(32, 64), (16, 128), (8, 256)], start=2):
        shape = preact164.get_layer(f"conv{stage}_block18_out").output.shape
        assert tuple(shape) == (None, size, size, channels)
        projection = preact164.get_layer(f"conv{stage}_block1_0_conv")
        assert projection.input is preact164.get_layer(f"conv{stage}_block1_preact_relu").output
        assert projection.kernel.shape == (1, 1, channels // 2 if stage > 2 else 16, channels)
    assert preact164.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert preact164.get_layer("conv3_block1_2_conv").strides == (1, 1)
    convs = [layer for layer in preact164.layers if isinstance(layer, keras.layers.Conv2D)]
    assert not any(layer.use_bias for layer in convs)
    # 164 = 9n + 2 weighted layers on the main path, plus three projections.
    assert len(convs) == 164 - 1 + 3


# --- Wide ResNets (Zagoruyko & Komodakis 2016) ------------------------------------------------

# Section 2: WRN-n-k has N = (n - 4) / 6 blocks per group, widths 16k, 32k, 64k; the paper
# gives 36.5M for WRN-28-10 (Table 5) and 11.0M for WRN-16-8 (Table 4).
WRN = {(16, 8): "11.0", (28, 10): "36.5"}


@pytest.mark.parametrize(("depth", "k"), list(WRN))
def test_wide_resnets_match_the_derived_count_and_the_paper(depth, k):
    model = kerascnn.create_model(f"wrn{depth}_{k}", input_shape=(8, 8, 3), num_classes=10)
    expected = preact_parameters((depth - 4) // 6, "basic", [16 * k, 32 * k, 64 * k])
    assert trainable_count(model) == expected
    assert rounded_like(expected, WRN[depth, k]) == WRN[depth, k]
    assert model.name == f"wrn{depth}_{k}"


def test_wide_resnet_stage_widths_and_dropout_between_the_convolutions():
    plain = kerascnn.create_model("wrn16_8", num_classes=10)
    # Table 1: conv2..conv4 are 32x32x16k, 16x16x32k, 8x8x64k.
    for stage, (size, width) in enumerate([(32, 128), (16, 256), (8, 512)], start=2):
        shape = plain.get_layer(f"conv{stage}_block2_out").output.shape
        assert tuple(shape) == (None, size, size, width)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    # Section 2.3: "dropout ... between convolutions and after ReLU".
    model = kerascnn.create_model("wrn16_8", input_shape=(8, 8, 3), dropout=0.3)
    dropout = model.get_layer("conv2_block1_dropout")
    assert dropout.rate == 0.3
    assert dropout.input is model.get_layer("conv2_block1_1_relu").output
    assert model.get_layer("conv2_block1_2_conv").input is dropout.output
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 3 * 2


@pytest.mark.parametrize("depth", [26, 27, 4])
def test_wide_resnet_depth_must_be_6n_plus_4(depth):
    with pytest.raises(ValueError, match=f"depth must be 6n \\+ 4.*received {depth}$"):
        kerascnn.create_model("wrn28_10", depth=depth)


# --- ResNeXt-29 (Xie et al. 2017, section 5.3) -------------------------------------------------


def resnext29_parameters(cardinality, d, num_classes=10, n=3):
    """Section 5.3 and the authors' code (models/resnext.lua, CIFAR): a 3x3 convolution of
    64 filters with BN; three stages of n bottlenecks with 256, 512, 1024 outputs and
    C groups of d, 2d, 4d channels in the grouped 3x3; BN after every convolution, no
    biases; 1x1 projections with BN where the channels change; pooling, classifier."""
    total = 3 * 3 * 3 * 64 + 2 * 64
    channels = 64
    for stage, out in enumerate((256, 512, 1024)):
        width = cardinality * d * 2**stage
        for _ in range(n):
            total += channels * width + 2 * width
            total += 9 * (width // cardinality) * width + 2 * width
            total += width * out + 2 * out
            if channels != out:
                total += channels * out + 2 * out
            channels = out
    return total + channels * num_classes + num_classes


def test_resnext29_matches_the_derived_count_and_table_7():
    model = kerascnn.create_model("resnext29_8x64d", input_shape=(8, 8, 3), num_classes=10)
    expected = resnext29_parameters(8, 64)
    assert trainable_count(model) == expected
    assert rounded_like(expected, "34.4") == "34.4"  # Table 7: ResNeXt-29, 8x64d, 34.4M
    grouped = model.get_layer("conv4_block1_2_conv")
    # Stage 3: 8 groups of 4 x 64 channels, subsampled by the grouped 3x3 (resnext.lua).
    assert grouped.groups == 8 and grouped.strides == (2, 2)
    assert grouped.kernel.shape == (3, 3, 2048 // 8, 2048)
    assert tuple(model.get_layer("conv4_block3_out").output.shape) == (None, 2, 2, 1024)


# --- stochastic depth (Huang et al. 2016) -----------------------------------------------------


@pytest.fixture(scope="module")
def resnet110_sd():
    return kerascnn.create_model("resnet110_sd", input_shape=(8, 8, 3), num_classes=10)


def test_resnet110_sd_decays_survival_linearly_to_one_half(resnet110_sd):
    model = resnet110_sd
    drops = [layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    # Section 4: ResNet-110 has L = 54 residual blocks; equation (4): p_l = 1 - l / L (1 - p_L)
    # with p_L = 0.5, l = 1 ... L in the order of the blocks.
    assert len(drops) == 54
    expected = [1 - block / 54 * (1 - 0.5) for block in range(1, 55)]
    assert [d.survival_probability for d in drops] == pytest.approx(expected)
    # Around the residual branch (whose layers it holds, named as in ResNet-110), before the
    # addition.
    add = model.get_layer("conv2_block1_add")
    assert add.input[1] is model.get_layer("conv2_block1_stochastic_depth").output
    branch = drops[0].branch
    assert [layer.name for layer in branch.layers[1:]] == [
        "conv2_block1_1_conv",
        "conv2_block1_1_bn",
        "conv2_block1_1_relu",
        "conv2_block1_2_conv",
        "conv2_block1_2_bn",
    ]
    assert trainable_count(model) == cifar_resnet_parameters(110)


def test_stochastic_depth_is_off_by_default(resnet20):
    assert not any(isinstance(layer, StochasticDepth) for layer in resnet20.layers)


@pytest.fixture(scope="module")
def sd_pair():
    """ResNet-20 with stochastic depth (p_L = 0.5) and without, with the same weights; the
    random seed set first, so the draws are the same in every run."""
    keras.utils.set_random_seed(21)
    dropping = kerascnn.create_model(
        "resnet20", input_shape=(8, 8, 3), num_classes=10, stochastic_depth=0.5
    )
    plain = kerascnn.create_model("resnet20", input_shape=(8, 8, 3), num_classes=10)
    plain.set_weights(dropping.get_weights())
    return dropping, plain


def test_stochastic_depth_in_training_drops_a_branch_for_the_whole_batch(sd_pair, random_pixels):
    # The last block has an identity shortcut and survival probability p_L = 0.5: in each
    # training call its branch is dropped for the whole mini-batch (output = input) or kept
    # for all of it and scaled by 1 / p_L (Huang et al., one draw per mini-batch).
    model, _ = sd_pair
    drop = model.get_layer("conv4_block3_stochastic_depth")
    probe = keras.Model(
        model.input,
        [
            model.get_layer("conv4_block2_out").output,
            drop.output,
            model.get_layer("conv4_block3_add").output,
        ],
    )
    images = random_pixels((8, 8, 8, 3), seed=5)
    outcomes = []
    for _ in range(8):
        block_input, branch, added = map(np.asarray, probe(images, training=True))
        if not branch.any():
            np.testing.assert_array_equal(added, block_input)
            outcomes.append("dropped")
        else:
            full = np.asarray(drop.branch(block_input, training=True))
            np.testing.assert_allclose(branch, full / 0.5, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(added, block_input + branch, rtol=1e-6, atol=1e-6)
            outcomes.append("kept")
    assert set(outcomes) == {"dropped", "kept"}, outcomes


def test_stochastic_depth_differs_between_training_calls_only(sd_pair, random_pixels):
    model, plain = sd_pair
    images = random_pixels((16, 8, 8, 3), seed=6)
    outputs = [keras.ops.convert_to_numpy(model(images, training=True)) for _ in range(4)]
    assert any(not np.allclose(outputs[0], other) for other in outputs[1:])
    # Without stochastic depth, training mode (batch statistics) is deterministic.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(plain(images, training=True)),
        keras.ops.convert_to_numpy(plain(images, training=True)),
        rtol=1e-6,
    )


def test_stochastic_depth_at_inference_is_the_full_network(sd_pair, random_pixels):
    # Section 3: at test time every block is active (the expected branch, here folded into
    # training by the 1 / p scaling), so inference equals the network without dropping.
    model, plain = sd_pair
    plain.set_weights(model.get_weights())  # training calls above moved the BN statistics
    images = random_pixels((4, 8, 8, 3), seed=7)
    once = model.predict(images, verbose=0)
    np.testing.assert_array_equal(once, model.predict(images, verbose=0))
    np.testing.assert_allclose(once, plain.predict(images, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("value", [0.0, 1.5, -0.1])
def test_stochastic_depth_must_be_a_probability(value):
    with pytest.raises(ValueError, match=f"must be in \\(0, 1\\]; received {value}$"):
        kerascnn.create_model("resnet20", stochastic_depth=value)


@pytest.mark.parametrize("name", ["wrn16_8", "resnext29_8x64d", "preact_resnet110"])
def test_every_cifar_family_takes_stochastic_depth(name):
    model = kerascnn.create_model(name, input_shape=(8, 8, 3), stochastic_depth=0.8)
    drops = [layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    assert drops and drops[-1].survival_probability == pytest.approx(0.8)
