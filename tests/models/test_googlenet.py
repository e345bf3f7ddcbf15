"""GoogLeNet against Szegedy et al. 2014, "Going Deeper with Convolutions" (arXiv:1409.4842),
Table 1 and section 5, and BN-Inception against Ioffe & Szegedy 2015, "Batch Normalization"
(arXiv:1502.03167), section 4.2.1 and Figure 5.

Expected parameter counts and shapes are computed here from the papers' layer tables (copied
below), then compared with the models and with the papers' own figures."""

import math

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import layers
from kerascnn.models.counting import layer_multiply_accumulates, multiply_accumulates
from kerascnn.models.googlenet import BNInception, GoogLeNet
from kerascnn.models.spec import MODELS

# --- the papers' tables -------------------------------------------------------------------

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
TABLE_1 = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# Table 1's "params" column, in K.
TABLE_1_PARAMS_K = {
    "conv1": 2.7,
    "conv2": 112,
    "3a": 159,
    "3b": 380,
    "4a": 364,
    "4b": 437,
    "4c": 463,
    "4d": 580,
    "4e": 840,
    "5a": 1072,
    "5b": 1388,
    "linear": 1000,
}
# Table 1's "ops" column, in millions of multiply-adds.
TABLE_1_OPS_M = {
    "conv1": 34,
    "conv2": 360,
    "3a": 128,
    "3b": 304,
    "4a": 73,
    "4b": 88,
    "4c": 100,
    "4d": 119,
    "4e": 170,
    "5a": 54,
    "5b": 71,
    "linear": 1,
}
# Table 1's "output size" column at 224x224x3.
TABLE_1_SHAPES = {
    "conv1_7x7_s2_relu": (112, 112, 64),
    "pool1_3x3_s2": (56, 56, 64),
    "conv2_3x3_relu": (56, 56, 192),
    "pool2_3x3_s2": (28, 28, 192),
    "inception_3a_output": (28, 28, 256),
    "inception_3b_output": (28, 28, 480),
    "pool3_3x3_s2": (14, 14, 480),
    "inception_4a_output": (14, 14, 512),
    "inception_4b_output": (14, 14, 512),
    "inception_4c_output": (14, 14, 512),
    "inception_4d_output": (14, 14, 528),
    "inception_4e_output": (14, 14, 832),
    "pool4_3x3_s2": (7, 7, 832),
    "inception_5a_output": (7, 7, 832),
    "inception_5b_output": (7, 7, 1024),
    "avg_pool": (1024,),
}
# Section 5: auxiliary classifiers on 4a and 4d: "An average pooling layer with 5x5 filter size
# and stride 3 ... A 1x1 convolution with 128 filters ... A fully connected layer with 1024
# units ... A dropout layer with 70% ratio of dropped outputs".
AUX_ON = {"aux1": "4a", "aux2": "4d"}
AUX_POOL, AUX_STRIDE, AUX_FILTERS, AUX_UNITS, AUX_DROPOUT = 5, 3, 128, 1024, 0.7
# Caffe's bvlc_googlenet/train_val.prototxt: lrn_param { local_size: 5 alpha: 0.0001 beta:
# 0.75 }, Caffe's k defaults to 1 and its alpha is divided by local_size.
CAFFE_LRN = {"n": 5, "alpha": 1e-4 / 5, "beta": 0.75, "k": 1.0}

# BN-Inception, Figure 5: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3,
# pool, proj (0: "pass through"); 3c and 4e have stride 2.
FIGURE_5 = {
    "3a": (64, 64, 64, 64, 96, "avg", 32),
    "3b": (64, 64, 96, 64, 96, "avg", 64),
    "3c": (0, 128, 160, 64, 96, "max", 0),
    "4a": (224, 64, 96, 96, 128, "avg", 128),
    "4b": (192, 96, 128, 96, 128, "avg", 128),
    "4c": (160, 128, 160, 128, 160, "avg", 128),
    "4d": (96, 128, 192, 160, 192, "avg", 128),
    "4e": (0, 128, 192, 192, 256, "max", 0),
    "5a": (352, 192, 320, 160, 224, "avg", 128),
    "5b": (352, 192, 320, 192, 224, "max", 128),
}
FIGURE_5_STRIDE_2 = ("3c", "4e")
# Figure 5's "output size" column (3c and 4e at their subsampled size).
FIGURE_5_SIZES = {
    "3a": (28, 256),
    "3b": (28, 320),
    "3c": (14, 576),
    "4a": (14, 576),
    "4b": (14, 576),
    "4c": (14, 576),
    "4d": (14, 576),
    "4e": (7, 1024),
    "5a": (7, 1024),
    "5b": (7, 1024),
}


def numpy_outputs(outputs):
    """A model call's output(s) as NumPy (eager calls: no predict() tracing, faster here)."""
    if isinstance(outputs, list | tuple):
        return [keras.ops.convert_to_numpy(o) for o in outputs]
    return keras.ops.convert_to_numpy(outputs)


def conv_weights(kernel, channels_in, channels_out, bias=True):
    return kernel * kernel * channels_in * channels_out + (channels_out if bias else 0)


def model_blocks(model):
    """The model's weighted layers grouped as the tables' rows (conv1, conv2, 3a ..., linear)."""
    blocks = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name.startswith("inception_"):
            block = layer.name.split("_")[1]
        elif layer.name == "predictions":
            block = "linear"
        else:
            block = layer.name.split("_")[0]
        blocks.setdefault(block, []).append(layer)
    return blocks


def block_parameters(model):
    """The model's parameters per table row."""
    return {
        block: sum(layer.count_params() for layer in group)
        for block, group in model_blocks(model).items()
    }


# --- GoogLeNet: parameters derived from Table 1 --------------------------------------------


def googlenet_parameters(num_classes=1000, bias=True):
    """Parameters of Table 1's rows: every convolution "same" with a bias (``bias=False``
    counts weights only, the convention of Table 1's column). The stem is a 7x7 convolution
    with 64 filters on RGB, then a 1x1 "#3x3 reduce" of 64 and a 3x3 of 192; each module has
    the six convolutions of its row; pooling and LRN have no parameters; the linear layer
    follows the 1024-channel average pool."""
    counts = {
        "conv1": conv_weights(7, 3, 64, bias),
        "conv2": conv_weights(1, 64, 64, bias) + conv_weights(3, 64, 192, bias),
    }
    channels = 192
    for block, (c1, r3, c3, r5, c5, proj) in TABLE_1.items():
        counts[block] = (
            conv_weights(1, channels, c1, bias)
            + conv_weights(1, channels, r3, bias)
            + conv_weights(3, r3, c3, bias)
            + conv_weights(1, channels, r5, bias)
            + conv_weights(5, r5, c5, bias)
            + conv_weights(1, channels, proj, bias)
        )
        channels = c1 + c3 + c5 + proj
    counts["linear"] = channels * num_classes + (num_classes if bias else 0)
    return counts


def auxiliary_head_parameters(channels, map_size, num_classes):
    """Section 5's head on a ``map_size`` x ``map_size`` x ``channels`` module output."""
    pooled = (map_size - AUX_POOL) // AUX_STRIDE + 1
    return (
        conv_weights(1, channels, AUX_FILTERS)
        + (pooled * pooled * AUX_FILTERS) * AUX_UNITS
        + AUX_UNITS
        + AUX_UNITS * num_classes
        + num_classes
    )


@pytest.fixture(scope="module")
def googlenet():
    return kerascnn.create_model("googlenet")


@pytest.fixture(scope="module")
def googlenet_aux():
    return kerascnn.create_model("googlenet", aux_logits=True)


def test_table_1_output_shapes(googlenet):
    for name, shape in TABLE_1_SHAPES.items():
        assert tuple(googlenet.get_layer(name).output.shape) == (None, *shape), name
    assert tuple(googlenet.output.shape) == (None, 1000)


def test_module_widths_follow_table_1(googlenet):
    for block, widths in TABLE_1.items():
        names = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")
        kernels = (1, 1, 3, 1, 5, 1)
        for suffix, width, kernel in zip(names, widths, kernels, strict=True):
            conv = googlenet.get_layer(f"inception_{block}_{suffix}")
            assert conv.filters == width and conv.kernel_size == (kernel, kernel)
        pool = googlenet.get_layer(f"inception_{block}_pool")
        assert isinstance(pool, keras.layers.MaxPooling2D)
        assert pool.pool_size == (3, 3) and pool.strides == (1, 1)
        # Branches concatenated in the table's order: 1x1, 3x3, 5x5, pool proj.
        inputs = googlenet.get_layer(f"inception_{block}_output").input
        assert [t.shape[-1] for t in inputs] == [widths[0], widths[2], widths[4], widths[5]]


def test_per_block_parameters_match_table_1(googlenet):
    assert block_parameters(googlenet) == googlenet_parameters()
    assert googlenet.count_params() == sum(googlenet_parameters().values()) == 6_998_552


def test_total_parameters_within_1_percent_of_table_1_column(googlenet):
    # Table 1's column counts weights without biases, in units of 1024: its conv2 row is exact,
    # 64*64 + 9*64*192 = 114,688 = 112 * 1024 (read as thousands it would be 114.7K).
    assert googlenet_parameters(bias=False)["conv2"] == 112 * 1024
    column = sum(TABLE_1_PARAMS_K.values())
    # The "about 6.8M" often quoted for GoogLeNet is this sum read in thousands.
    assert round(column / 1000, 1) == 6.8
    assert googlenet.count_params() == pytest.approx(column * 1024, rel=0.01)
    assert sum(googlenet_parameters(bias=False).values()) == pytest.approx(column * 1024, rel=0.01)


def test_multiply_adds_match_table_1_ops_column(googlenet):
    ours = {
        block: sum(layer_multiply_accumulates(layer) for layer in group) / 1e6
        for block, group in model_blocks(googlenet).items()
    }
    # Table 1's conv1 (34M, with 2.7K params) and 5a (54M, with 1072K params) rows do not follow
    # from their layers: a 7x7x3x64 convolution on 112x112 is 118M, and 5a's widths (the same
    # as 4e's) on a 7x7 map make 51M. Every other row agrees to the printed precision.
    assert round(ours["conv1"]) == 118 and round(ours["5a"]) == 51
    for block, column in TABLE_1_OPS_M.items():
        if block not in ("conv1", "5a"):
            assert abs(ours[block] - column) < 1, block
    # Section 1: "a computational budget of 1.5 billion multiply-adds at inference time".
    assert multiply_accumulates(googlenet) / 1e9 == pytest.approx(1.5, abs=0.1)


def test_stem_has_figure_3_lrns_with_caffe_parameters(googlenet):
    lrns = [
        layer for layer in googlenet.layers if isinstance(layer, layers.LocalResponseNormalization)
    ]
    # Figure 3: conv 7x7/2, max pool 3x3/2, LocalRespNorm, conv 1x1, conv 3x3, LocalRespNorm.
    assert [layer.name for layer in lrns] == ["pool1_norm1", "conv2_norm2"]
    assert lrns[0].input is googlenet.get_layer("pool1_3x3_s2").output
    assert lrns[1].input is googlenet.get_layer("conv2_3x3_relu").output
    for lrn in lrns:
        config = lrn.get_config()
        assert {key: config[key] for key in CAFFE_LRN} == pytest.approx(CAFFE_LRN)


def test_xavier_initialisation_bias_and_relu_everywhere(googlenet):
    convs = [layer for layer in googlenet.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 3 + 6 * len(TABLE_1)  # the stem's 7x7, 1x1 and 3x3, six a module
    for conv in convs:
        assert isinstance(conv.kernel_initializer, keras.initializers.GlorotUniform)
        assert conv.use_bias
        assert isinstance(googlenet.get_layer(f"{conv.name}_relu"), keras.layers.ReLU)
    dense = googlenet.get_layer("predictions")
    assert isinstance(dense.kernel_initializer, keras.initializers.GlorotUniform)


def test_main_head_is_global_average_pool_dropout_04_linear(googlenet):
    dropout = googlenet.get_layer("dropout")
    assert dropout.rate == 0.4
    assert dropout.input is googlenet.get_layer("avg_pool").output
    assert googlenet.get_layer("predictions").input is dropout.output


def test_pools_between_stages_are_3x3_stride_2(googlenet):
    for name in ("pool1_3x3_s2", "pool2_3x3_s2", "pool3_3x3_s2", "pool4_3x3_s2"):
        pool = googlenet.get_layer(name)
        assert isinstance(pool, keras.layers.MaxPooling2D)
        assert pool.pool_size == (3, 3) and pool.strides == (2, 2)


def caffe_max_pool(x, size=3, stride=2):
    """Caffe's ceil-mode max pooling without padding, on an (H, W) array."""
    rows, cols = (math.ceil((n - size) / stride) + 1 for n in x.shape)
    windows = [
        [x[i * stride : i * stride + size, j * stride : j * stride + size] for j in range(cols)]
        for i in range(rows)
    ]
    return np.array([[window.max() for window in row] for row in windows])


@pytest.mark.parametrize("size", [2, 6, 14])
def test_same_pooling_is_caffe_ceil_mode_on_even_maps(size):
    x = np.random.default_rng(size).normal(size=(size, size)).astype("float32")
    pool = keras.layers.MaxPooling2D(3, strides=2, padding="same")
    ours = keras.ops.convert_to_numpy(pool(x[None, :, :, None]))[0, :, :, 0]
    np.testing.assert_array_equal(ours, caffe_max_pool(x))


def test_weight_decay_on_every_kernel(googlenet):
    kernels = [
        layer
        for layer in googlenet.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
    ]
    assert len(googlenet.losses) == len(kernels)
    assert kerascnn.create_model("googlenet", input_shape=(32, 32, 3), weight_decay=0).losses == []


# --- GoogLeNet: auxiliary classifiers (section 5) ------------------------------------------


def test_default_build_has_no_auxiliary_layers(googlenet):
    assert not any(layer.name.startswith("aux") for layer in googlenet.layers)
    assert len(googlenet.outputs) == 1
    assert MODELS.get("googlenet").auxiliary_loss_weights == (0.3, 0.3)


def test_aux_logits_adds_the_two_heads_on_4a_and_4d(googlenet_aux):
    assert [o.shape for o in googlenet_aux.outputs] == [(None, 1000)] * 3
    assert googlenet_aux.output_names == [
        "classifier_activation",
        "aux1_predictions_activation",
        "aux2_predictions_activation",
    ]
    for head, block in AUX_ON.items():
        pool = googlenet_aux.get_layer(f"{head}_avg_pool")
        assert pool.input is googlenet_aux.get_layer(f"inception_{block}_output").output
        assert pool.strides == (AUX_STRIDE, AUX_STRIDE)
        # 14x14 -> 4x4: (14 - 5) // 3 + 1 (Caffe's loss1/ave_pool gives the same).
        assert tuple(pool.output.shape) == (None, 4, 4, 512 if block == "4a" else 528)
        assert googlenet_aux.get_layer(f"{head}_conv").filters == AUX_FILTERS
        assert googlenet_aux.get_layer(f"{head}_fc").units == AUX_UNITS
        assert googlenet_aux.get_layer(f"{head}_dropout").rate == AUX_DROPOUT


def test_aux_heads_add_exactly_two_heads_parameters(googlenet, googlenet_aux):
    extra = auxiliary_head_parameters(512, 14, 1000) + auxiliary_head_parameters(528, 14, 1000)
    assert googlenet_aux.count_params() - googlenet.count_params() == extra
    aux_layers = [layer for layer in googlenet_aux.layers if layer.name.startswith("aux")]
    assert sum(layer.count_params() for layer in aux_layers) == extra


def test_main_head_drops_the_auxiliary_classifiers(googlenet, googlenet_aux):
    inference = layers.main_head(googlenet_aux)
    assert len(inference.outputs) == 1
    assert not any(layer.name.startswith("aux") for layer in inference.layers)
    assert inference.count_params() == googlenet.count_params()


@pytest.fixture(scope="module")
def small_pair():
    """CIFAR-sized networks without and with the auxiliary heads."""
    plain = kerascnn.create_model("googlenet", input_shape=(32, 32, 3), num_classes=10)
    aux = kerascnn.create_model(
        "googlenet", input_shape=(32, 32, 3), num_classes=10, aux_logits=True
    )
    return plain, aux


def test_no_aux_weights_load_into_the_aux_model_by_name(small_pair, tmp_path, random_pixels):
    plain, aux = small_pair
    for layer in plain.layers:
        if layer.weights:
            aux.get_layer(layer.name).set_weights(layer.get_weights())
    images = random_pixels((2, 32, 32, 3))
    expected = numpy_outputs(plain(images))
    np.testing.assert_allclose(numpy_outputs(aux(images))[0], expected, rtol=1e-5)
    # And a weights file of the plain model loads into the aux model's main head.
    plain.save_weights(tmp_path / "plain.weights.h5")
    fresh = kerascnn.create_model(
        "googlenet", input_shape=(32, 32, 3), num_classes=10, aux_logits=True
    )
    inference = layers.main_head(fresh)
    inference.load_weights(tmp_path / "plain.weights.h5")
    np.testing.assert_allclose(numpy_outputs(inference(images)), expected, rtol=1e-5)


def test_aux_outputs_change_under_training_dropout(small_pair, random_pixels):
    _, aux = small_pair
    images = random_pixels((4, 32, 32, 3), seed=1)
    first = numpy_outputs(aux(images, training=True))
    second = numpy_outputs(aux(images, training=True))
    assert [o.shape for o in first] == [(4, 10)] * 3
    for a, b in zip(first[1:], second[1:], strict=True):
        assert not np.allclose(a, b)
    inference = numpy_outputs(aux(images, training=False))
    again = numpy_outputs(aux(images, training=False))
    for a, b in zip(inference, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_aux_logits_needs_the_top():
    model = kerascnn.create_model(
        "googlenet", input_shape=(32, 32, 3), include_top=False, aux_logits=True
    )
    assert len(model.outputs) == 1
    assert not any(layer.name.startswith("aux") for layer in model.layers)


@pytest.mark.parametrize(
    ("size", "module_map", "pooled"),
    # The 4a map is ceil(size / 16) ("same" everywhere); the paper's 5x5/3 window, shrunk to
    # the map when the map is smaller: (map - min(5, map)) // 3 + 1.
    [(2, 1, 1), (32, 2, 1), (64, 4, 1), (80, 5, 1), (128, 8, 2)],
)
def test_aux_heads_build_at_small_sizes(size, module_map, pooled):
    model = kerascnn.create_model(
        "googlenet", input_shape=(size, size, 3), num_classes=10, aux_logits=True
    )
    assert tuple(model.get_layer("inception_4a_output").output.shape)[1:3] == (module_map,) * 2
    pool = model.get_layer("aux1_avg_pool")
    assert pool.pool_size == (min(AUX_POOL, module_map),) * 2
    assert tuple(pool.output.shape)[1:3] == (pooled, pooled)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 10)] * 3


def test_cifar_input_works(random_pixels):
    model = kerascnn.create_model("googlenet", input_shape=(32, 32, 3), num_classes=10)
    # Five stride-2 layers: 32 -> 16 -> 8 -> 4 -> 2 -> 1.
    assert tuple(model.get_layer("inception_3b_output").output.shape) == (None, 4, 4, 480)
    assert tuple(model.get_layer("inception_5b_output").output.shape) == (None, 1, 1, 1024)
    assert numpy_outputs(model(random_pixels((2, 32, 32, 3)))).shape == (2, 10)


@pytest.mark.parametrize(
    ("builder", "options"), [(GoogLeNet, {"aux_logits": True}), (BNInception, {})]
)
def test_every_layer_pads_so_even_one_pixel_builds(builder, options):
    # Why the registered minimum (2x2) is not a property of the network: one pixel builds too,
    # but the registry's check must refuse something below its minimum.
    model = builder(
        input_shape=(1, 1, 3),
        num_classes=3,
        include_top=True,
        pooling=None,
        classifier_activation="softmax",
        mean=(0.0,),
        std=(1.0,),
        **options,
    )
    outputs = numpy_outputs(model(np.zeros((2, 1, 1, 3), "float32")))
    for output in outputs if isinstance(outputs, list) else [outputs]:
        assert output.shape == (2, 3)


@pytest.mark.parametrize("option", ["dropout", "aux_dropout"])
def test_bad_dropout_rate_is_rejected(option):
    with pytest.raises(ValueError, match=f"{option} must be in \\[0, 1\\); received 1.5"):
        kerascnn.create_model("googlenet", input_shape=(32, 32, 3), **{option: 1.5})


# --- BN-Inception (Figure 5) ---------------------------------------------------------------


def bn_inception_module_channels():
    """Output channels of each Figure 5 module, from its widths: 1x1 + 3x3 + double 3x3 +
    the pool branch (its projection, or the input channels passed through)."""
    channels, out = 192, {}
    for block, (c1, _, c3, _, d3, _, proj) in FIGURE_5.items():
        channels = c1 + c3 + d3 + (proj or channels)
        out[block] = channels
    return out


def bn_inception_parameters(num_classes=1000):
    """Trainable and total parameters of Figure 5's network with a batch norm after every
    convolution (conv_bn: no bias; gamma and beta trainable, moving mean and variance not).
    Returns ``{row: (trainable, total)}``."""

    def conv_bn(kernel, channels_in, channels_out):
        return conv_weights(kernel, channels_in, channels_out, bias=False) + 2 * channels_out

    def moving(*widths):
        return 2 * sum(widths)

    counts = {
        "conv1": (conv_bn(7, 3, 64), moving(64)),
        "conv2": (conv_bn(1, 64, 64) + conv_bn(3, 64, 192), moving(64, 192)),
    }
    channels = 192
    for block, (c1, r3, c3, rd, d3, _, proj) in FIGURE_5.items():
        trainable = (
            (conv_bn(1, channels, c1) if c1 else 0)
            + conv_bn(1, channels, r3)
            + conv_bn(3, r3, c3)
            + conv_bn(1, channels, rd)
            + conv_bn(3, rd, d3)
            + conv_bn(3, d3, d3)
            + (conv_bn(1, channels, proj) if proj else 0)
        )
        counts[block] = (trainable, moving(c1, r3, c3, rd, d3, d3, proj))
        channels = c1 + c3 + d3 + (proj or channels)
    counts["linear"] = (channels * num_classes + num_classes, 0)
    return {row: (trainable, trainable + extra) for row, (trainable, extra) in counts.items()}


@pytest.fixture(scope="module")
def bn_inception():
    return kerascnn.create_model("bn_inception")


def test_bn_inception_output_sizes(bn_inception):
    derived = bn_inception_module_channels()
    for block, (size, _) in FIGURE_5_SIZES.items():
        output = bn_inception.get_layer(f"inception_{block}_output").output
        assert tuple(output.shape) == (None, size, size, derived[block]), block
    assert tuple(bn_inception.get_layer("pool2_3x3_s2").output.shape) == (None, 28, 28, 192)
    assert tuple(bn_inception.get_layer("avg_pool").output.shape) == (None, 1024)


def test_bn_inception_widths_agree_with_the_size_column_except_4c_4d_4e():
    # Figure 5's widths give 608 channels after 4c (160 + 160 + 160 + 128) and 4d
    # (96 + 192 + 192 + 128), so 192 + 256 + 608 = 1056 after 4e, where its size column says
    # 576, 576 and 1024; the Caffe BN-Inception model (e.g. Cadene's pretrained-models port,
    # inception_4d_1x1 = Conv2d(608, 96)) follows the widths, as we do.
    derived = bn_inception_module_channels()
    stated = {block: depth for block, (_, depth) in FIGURE_5_SIZES.items()}
    assert {b for b in stated if stated[b] != derived[b]} == {"4c", "4d", "4e"}
    assert (derived["4c"], derived["4d"], derived["4e"]) == (608, 608, 1056)


def test_bn_inception_parameters_match_figure_5(bn_inception):
    expected = bn_inception_parameters()
    blocks = block_parameters(bn_inception)
    assert blocks == {row: total for row, (_, total) in expected.items()}
    trainable = sum(int(np.prod(w.shape)) for w in bn_inception.trainable_weights)
    assert trainable == sum(t for t, _ in expected.values()) == 11_285_224
    assert bn_inception.count_params() == sum(total for _, total in expected.values())


def test_bn_inception_batch_norm_after_every_convolution(bn_inception):
    convs = [layer for layer in bn_inception.layers if isinstance(layer, keras.layers.Conv2D)]
    for conv in convs:
        assert not conv.use_bias
        assert isinstance(conv.kernel_initializer, keras.initializers.HeNormal)
        # "the 5x5 convolutional layers are replaced by two consecutive layers of 3x3".
        assert conv.kernel_size in ((1, 1), (3, 3)) or conv.name == "conv1_7x7_s2_conv"
        bn = bn_inception.get_layer(conv.name.removesuffix("_conv") + "_bn")
        assert bn.input is conv.output
    # Section 4.2.1: "Remove Local Response Normalization", "Remove Dropout".
    assert not any(
        isinstance(layer, layers.LocalResponseNormalization | keras.layers.Dropout)
        for layer in bn_inception.layers
    )


def test_bn_inception_pool_branches_and_stride_2_modules(bn_inception):
    for block, (c1, _, _, _, _, pool_type, proj) in FIGURE_5.items():
        pool = bn_inception.get_layer(f"inception_{block}_pool")
        kind = keras.layers.MaxPooling2D if pool_type == "max" else keras.layers.AveragePooling2D
        assert isinstance(pool, kind)
        names = {layer.name for layer in bn_inception.layers}
        stride = 2 if block in FIGURE_5_STRIDE_2 else 1
        assert pool.strides == (stride, stride)
        assert (f"inception_{block}_1x1_conv" in names) == bool(c1)
        assert (f"inception_{block}_pool_proj_conv" in names) == bool(proj)
        for last in ("3x3", "double_3x3_2"):
            conv = bn_inception.get_layer(f"inception_{block}_{last}_conv")
            assert conv.strides == (stride, stride)
        assert bn_inception.get_layer(f"inception_{block}_double_3x3_1_conv").strides == (1, 1)


def test_registered_defaults():
    googlenet, bn = MODELS.get("googlenet"), MODELS.get("bn_inception")
    assert (googlenet.title, bn.title) == ("GoogLeNet", "BN-Inception")
    assert googlenet.input_shape == bn.input_shape == (224, 224, 3)
    assert googlenet.num_classes == bn.num_classes == 1000
    # GoogLeNet subtracts the mean only; BN-Inception takes ImageNet-standardised pixels.
    assert googlenet.std == (1.0, 1.0, 1.0)
    assert bn.std == (58.395, 57.12, 57.375)
    assert bn.auxiliary_loss_weights == ()


def test_googlenet_bn_follows_torchvisions_layers():
    """torchvision/models/googlenet.py's shapes at 224x224 (its comments in ``_forward``), the
    3x3 kernel of its "5x5" branch, batch norm without convolution biases; 6,624,904
    trainable parameters without the auxiliary heads (GoogLeNet_Weights num_params)."""
    with keras.StatelessScope(initialize_variables=False):
        model = kerascnn.create_model("googlenet_bn")
    assert sum(math.prod(w.shape) for w in model.trainable_weights) == 6_624_904
    expected = {
        "conv1_7x7_s2_relu": (112, 112, 64),
        "pool1_3x3_s2": (56, 56, 64),
        "conv2_3x3_relu": (56, 56, 192),
        "pool2_3x3_s2": (28, 28, 192),
        "inception_3b_output": (28, 28, 480),
        "pool3_3x3_s2": (14, 14, 480),
        "inception_4e_output": (14, 14, 832),
        "pool4_2x2_s2": (7, 7, 832),
        "inception_5b_output": (7, 7, 1024),
    }
    shapes = {name: tuple(model.get_layer(name).output.shape[1:]) for name in expected}
    assert shapes == expected
    assert model.get_layer("inception_4a_5x5_conv").kernel_size == (3, 3)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions and not any(layer.use_bias for layer in convolutions)
