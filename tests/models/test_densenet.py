"""DenseNets against Huang, Liu, van der Maaten, Weinberger 2017, "Densely Connected
Convolutional Networks" (arXiv:1608.06993): section 3 (dense connectivity, bottleneck and
compression), Table 1 (the ImageNet networks) and Table 2 (the CIFAR networks' parameters);
parameter counts against keras.applications' DenseNet121/169/201.

Expected counts and shapes are derived here from the paper's description, then compared with
the model and with the published figures."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import MODELS

# Table 1: the ImageNet networks, k = 32, layers per dense block.
TABLE_1_BLOCKS = {
    121: (6, 12, 24, 16),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
    264: (6, 12, 64, 48),
}
IMAGENET_GROWTH_RATE = 32
# Table 1, "Output Size": the stem and each dense block's resolution at 224x224.
TABLE_1_SIZES = {"conv1": 112, "pool1": 56, "blocks": (56, 28, 14, 7)}
# keras.applications' DenseNet121/169/201 (Keras 3): total (with BN moving statistics) and
# trainable counts at 1000 classes.
KERAS_COUNTS = {
    121: (8_062_504, 7_978_856),
    169: (14_307_880, 14_149_480),
    201: (20_242_984, 20_013_928),
}
# Section 3, "Compression": theta = 0.5 for DenseNet-C/BC, as in every Table 1 network.
COMPRESSION = 0.5
# Table 2, "Params" column (CIFAR, 10 classes), with the precision the paper prints:
# (L, k, DenseNet-BC?) -> millions.
TABLE_2_PARAMS = {(40, 12, False): "1.0", (100, 12, False): "7.0", (100, 12, True): "0.8"}


@pytest.fixture(scope="module")
def imagenet_models():
    """DenseNet-121/169/201/264 at 224x224 and 1000 classes, built once, on demand."""
    built = {}

    def get(depth):
        if depth not in built:
            built[depth] = kerascnn.create_model(f"densenet{depth}")
        return built[depth]

    return get


@pytest.fixture(scope="module")
def bc100():
    return kerascnn.create_model("densenet_bc_100_12", num_classes=10)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def densenet_parameters(
    blocks,
    growth_rate,
    num_classes,
    *,
    stem="imagenet",
    bottleneck=True,
    compression=COMPRESSION,
    stem_filters=None,
):
    """(trainable, total) parameters of the DenseNet of section 3 and Tables 1-2.

    The first convolution has 2k filters (section 3, "Implementation Details"; 16 for the basic
    CIFAR DenseNet), 7x7/2 followed by BN-ReLU-max pool on ImageNet, a bare 3x3 on CIFAR. Each
    layer of a block is BN-ReLU-Conv(3x3, k) on all the m maps before it, with a
    BN-ReLU-Conv(1x1, 4k) bottleneck in front for DenseNet-B; a transition is BN-ReLU-Conv(1x1)
    to floor(theta * m) maps and average pooling; the network ends with BN-ReLU, global pooling
    and a fully connected layer. Convolutions feed batch norm, so they carry no bias; a batch
    norm of m maps trains 2m parameters (gamma, beta) and keeps 2m moving statistics, which
    Keras' totals count.
    """
    trainable = statistics = 0

    def conv(kernel, channels_in, channels_out):
        nonlocal trainable
        trainable += kernel * kernel * channels_in * channels_out

    def batch_norm(channels):
        nonlocal trainable, statistics
        trainable += 2 * channels
        statistics += 2 * channels

    channels = stem_filters or 2 * growth_rate
    if stem == "imagenet":
        conv(7, 3, channels)
        batch_norm(channels)
    else:
        conv(3, 3, channels)
    for index, layers in enumerate(blocks):
        for _ in range(layers):
            batch_norm(channels)
            if bottleneck:
                conv(1, channels, 4 * growth_rate)
                batch_norm(4 * growth_rate)
                conv(3, 4 * growth_rate, growth_rate)
            else:
                conv(3, channels, growth_rate)
            channels += growth_rate
        if index < len(blocks) - 1:
            batch_norm(channels)
            conv(1, channels, int(channels * compression))
            channels = int(channels * compression)
    batch_norm(channels)
    trainable += channels * num_classes + num_classes
    return trainable, trainable + statistics


def block_channels(blocks, growth_rate, compression=COMPRESSION, first=None):
    """Maps after each dense block and each transition: m + n * k, then floor(theta * m)."""
    channels = first or 2 * growth_rate
    after_blocks, after_transitions = [], []
    for index, layers in enumerate(blocks):
        channels += layers * growth_rate
        after_blocks.append(channels)
        if index < len(blocks) - 1:
            channels = int(channels * compression)
            after_transitions.append(channels)
    return after_blocks, after_transitions


def weighted_layers(model):
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    ]


def shape_of(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape)


# --- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", sorted(KERAS_COUNTS))
def test_counting_rule_reproduces_the_keras_counts(depth):
    """The derivation above, checked against keras.applications' published figures."""
    trainable, total = densenet_parameters(TABLE_1_BLOCKS[depth], IMAGENET_GROWTH_RATE, 1000)
    assert (total, trainable) == KERAS_COUNTS[depth]


@pytest.mark.parametrize("depth", sorted(TABLE_1_BLOCKS))
def test_imagenet_parameters_match_the_derivation(imagenet_models, depth):
    # DenseNet-264 has no published count; the derivation stands in for one.
    model = imagenet_models(depth)
    trainable, total = densenet_parameters(TABLE_1_BLOCKS[depth], IMAGENET_GROWTH_RATE, 1000)
    assert trainable_count(model) == trainable
    assert model.count_params() == total


def test_densenet_bc_100_12_has_table_2_parameters(bc100):
    trainable, _ = densenet_parameters((16, 16, 16), 12, 10, stem="cifar")
    assert trainable_count(bc100) == trainable
    # Table 2: DenseNet-BC (L=100, k=12) has 0.8M parameters.
    assert f"{trainable / 1e6:.1f}" == TABLE_2_PARAMS[(100, 12, True)]


@pytest.mark.parametrize("depth", [40, 100])
def test_basic_cifar_densenets_have_table_2_parameters(depth):
    """The options build the paper's DenseNet (no bottleneck, no compression, 16 initial maps:
    section 4.2, "Implementation Details")."""
    layers_per_block = (depth - 4) // 3
    blocks = (layers_per_block,) * 3
    model = kerascnn.create_model(
        "densenet_bc_100_12",
        num_classes=10,
        input_shape=(4, 4, 3),
        blocks=blocks,
        bottleneck=False,
        compression=1.0,
        stem_filters=16,
    )
    trainable, _ = densenet_parameters(
        blocks, 12, 10, stem="cifar", bottleneck=False, compression=1.0, stem_filters=16
    )
    assert trainable_count(model) == trainable
    assert f"{trainable / 1e6:.1f}" == TABLE_2_PARAMS[(depth, 12, False)]
    assert model.name == f"densenet_{depth}_12"
    assert not any(layer.name.endswith("_1_conv") for layer in model.layers)


# --- layers (section 3) --------------------------------------------------------------------


@pytest.mark.parametrize("depth", [121, 169, 201])
def test_weighted_layer_count_is_the_depth_in_the_name(imagenet_models, depth):
    model = imagenet_models(depth)
    assert len(weighted_layers(model)) == depth
    assert model.name == f"densenet{depth}"


def test_densenet_264_has_265_weighted_layers_by_table_1(imagenet_models):
    """Table 1's DenseNet-264 column adds up to 2 * (6 + 12 + 64 + 48) + 3 transitions + the
    first convolution + the classifier = 265 weighted layers; the network follows the table."""
    model = imagenet_models(264)
    assert len(weighted_layers(model)) == 2 * sum(TABLE_1_BLOCKS[264]) + 3 + 1 + 1 == 265
    # The registry keeps the paper's name; the built model is named by its layer count.
    assert MODELS.get("densenet264").title == "DenseNet-264"
    assert model.name == "densenet265"


def test_bottleneck_layer_is_bn_relu_1x1_4k_bn_relu_3x3_k(imagenet_models):
    # Section 3, "Bottleneck layers": BN-ReLU-Conv(1x1)-BN-ReLU-Conv(3x3), the 1x1 producing
    # 4k feature maps; every layer adds k maps to its input ("growth rate").
    model = imagenet_models(121)
    layer_names = [layer.name for layer in model.layers]
    prefix = "conv3_block2"
    block = [name for name in layer_names if name.startswith(f"{prefix}_")]
    assert block == [
        f"{prefix}_{suffix}"
        for suffix in ("0_bn", "0_relu", "1_conv", "1_bn", "1_relu", "2_conv", "concat")
    ]
    bottleneck = model.get_layer(f"{prefix}_1_conv")
    conv = model.get_layer(f"{prefix}_2_conv")
    assert bottleneck.kernel_size == (1, 1) and bottleneck.filters == 4 * IMAGENET_GROWTH_RATE
    assert conv.kernel_size == (3, 3) and conv.filters == IMAGENET_GROWTH_RATE
    assert not bottleneck.use_bias and not conv.use_bias
    channels_in = shape_of(model, "conv3_block1_concat")[-1]
    assert shape_of(model, f"{prefix}_concat")[-1] == channels_in + IMAGENET_GROWTH_RATE
    # Dense connectivity: the layer's input is the concatenation of all before it.
    assert model.get_layer(f"{prefix}_0_bn").input is model.get_layer("conv3_block1_concat").output


def test_transition_layer_is_bn_relu_1x1_conv_and_2x2_average_pooling(imagenet_models):
    model = imagenet_models(121)
    assert [layer.name for layer in model.layers if layer.name.startswith("pool2_")] == [
        "pool2_bn",
        "pool2_relu",
        "pool2_conv",
        "pool2_pool",
    ]
    pool = model.get_layer("pool2_pool")
    assert isinstance(pool, keras.layers.AveragePooling2D)
    assert pool.pool_size == (2, 2) and pool.strides == (2, 2)
    assert model.get_layer("pool2_conv").kernel_size == (1, 1)


# --- shapes (Table 1 and section 4.1) ------------------------------------------------------


@pytest.mark.parametrize("depth", sorted(TABLE_1_BLOCKS))
def test_feature_maps_follow_table_1(imagenet_models, depth):
    model = imagenet_models(depth)
    blocks = TABLE_1_BLOCKS[depth]
    after_blocks, after_transitions = block_channels(blocks, IMAGENET_GROWTH_RATE)
    stem = 2 * IMAGENET_GROWTH_RATE
    conv1, pool1 = TABLE_1_SIZES["conv1"], TABLE_1_SIZES["pool1"]
    assert shape_of(model, "conv1_relu") == (None, conv1, conv1, stem)
    assert shape_of(model, "pool1") == (None, pool1, pool1, stem)
    sizes = TABLE_1_SIZES["blocks"]
    for index, layers in enumerate(blocks):
        stage, size = index + 2, sizes[index]
        last = f"conv{stage}_block{layers}_concat"
        assert shape_of(model, last) == (None, size, size, after_blocks[index])
        if index < len(blocks) - 1:
            # The transition's 1x1 convolution runs at the block's size, its pooling halves it.
            assert shape_of(model, f"pool{stage}_conv") == (
                None,
                size,
                size,
                after_transitions[index],
            )
            assert shape_of(model, f"pool{stage}_pool")[1:3] == (sizes[index + 1],) * 2
    # "7x7 global average pool, 1000D fully-connected, softmax".
    assert shape_of(model, "avg_pool") == (None, after_blocks[-1])
    assert tuple(model.output.shape) == (None, 1000)


def test_densenet_121_channels_as_commonly_quoted(imagenet_models):
    # 64 + 6*32 = 256 -> 128; 128 + 12*32 = 512 -> 256; 256 + 24*32 = 1024 -> 512;
    # 512 + 16*32 = 1024 maps into the classifier.
    assert block_channels(TABLE_1_BLOCKS[121], 32) == ([256, 512, 1024, 1024], [128, 256, 512])
    assert shape_of(imagenet_models(121), "relu") == (None, 7, 7, 1024)


def test_densenet_bc_100_12_follows_section_4_1(bc100):
    # "the number of output channels of the first convolution layer is twice the growth rate"
    # (BC); three dense blocks "on feature maps of sizes 32x32, 16x16, and 8x8".
    after_blocks, after_transitions = block_channels((16, 16, 16), 12)
    assert after_blocks == [216, 300, 342] and after_transitions == [108, 150]
    conv1 = bc100.get_layer("conv1_conv")
    assert conv1.kernel_size == (3, 3) and conv1.filters == 24
    assert shape_of(bc100, "conv1_conv") == (None, 32, 32, 24)
    assert shape_of(bc100, "conv2_block16_concat") == (None, 32, 32, 216)
    assert shape_of(bc100, "pool2_pool") == (None, 16, 16, 108)
    assert shape_of(bc100, "conv3_block16_concat") == (None, 16, 16, 300)
    assert shape_of(bc100, "pool3_pool") == (None, 8, 8, 150)
    assert shape_of(bc100, "conv4_block16_concat") == (None, 8, 8, 342)
    assert shape_of(bc100, "avg_pool") == (None, 342)
    assert tuple(bc100.output.shape) == (None, 10)
    # Depth 100: 2 * 48 convolutions in the blocks, 2 transitions, the first conv, the FC.
    assert len(weighted_layers(bc100)) == 100
    assert bc100.name == "densenet_bc_100_12"
    # The CIFAR stem is a single convolution: no max pooling.
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in bc100.layers)


# --- options -------------------------------------------------------------------------------


def test_dropout_follows_every_convolution_but_the_first():
    # Section 4.2: without augmentation, "a dropout layer after each convolutional layer
    # (except the first one)" with rate 0.2.
    model = kerascnn.create_model(
        "densenet_bc_100_12", input_shape=(4, 4, 3), blocks=(2, 2), dropout_rate=0.2
    )
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(dropouts) == len(convs) - 1
    assert all(layer.rate == 0.2 for layer in dropouts)
    for dropout in dropouts:
        assert isinstance(dropout.input._keras_history.operation, keras.layers.Conv2D)
    plain = kerascnn.create_model("densenet_bc_100_12", input_shape=(4, 4, 3), blocks=(2, 2))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    assert plain.count_params() == model.count_params()


def test_weight_decay_is_on_every_kernel(bc100):
    # Section 4.2: "a weight decay of 10^-4".
    kernels = [layer.kernel for layer in weighted_layers(bc100)]
    assert len(bc100.losses) == len(kernels)
    squared = sum(float(np.sum(np.square(keras.ops.convert_to_numpy(k)))) for k in kernels)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in bc100.losses)
    assert total == pytest.approx(1e-4 / 2 * squared, rel=1e-4)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("stem", "tiny", "stem must be 'imagenet' or 'cifar'; received 'tiny'"),
        ("compression", 0.0, "compression must be in \\(0, 1\\]; received 0.0"),
        ("blocks", (), "blocks must be one or more positive layer counts; received \\(\\)"),
        ("growth_rate", 0, "growth_rate must be positive; received 0"),
        ("dropout_rate", 1.0, "dropout_rate must be in \\[0, 1\\); received 1.0"),
    ],
)
def test_bad_options_are_rejected(option, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        kerascnn.create_model("densenet_bc_100_12", **{option: value})
