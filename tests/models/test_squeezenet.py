"""SqueezeNet against Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer 2016, "SqueezeNet:
AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size" (arXiv:1602.07360):
section 3.2 (the Fire module), Table 1 (v1.0: output sizes and parameters per layer), Figure 2
and Table 3 (bypass connections); the v1.1 layout and the training files from the authors'
repository (github.com/forresti/SqueezeNet); torchvision's parameter counts (its model
metadata, "num_params").

Expected counts and shapes are derived here from those descriptions, then compared with the
model and with the published figures."""

import math

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models.counting import multiply_accumulates

# Table 1: (squeeze 1x1, expand 1x1, expand 3x3) of fire2 .. fire9.
TABLE_1_FIRES = {
    2: (16, 64, 64),
    3: (16, 64, 64),
    4: (32, 128, 128),
    5: (32, 128, 128),
    6: (48, 192, 192),
    7: (48, 192, 192),
    8: (64, 256, 256),
    9: (64, 256, 256),
}
# conv1 (filters, kernel, stride) and the layers a 3x3/2 max pooling follows: Table 1 for v1.0,
# SqueezeNet_v1.1/README.md ("conv1: 64 filters of resolution 3x3; pooling layers: pool_{1,3,5}").
LAYOUTS = {
    "squeezenet1_0": {"conv1": (96, 7, 2), "pools": (1, 4, 8)},
    "squeezenet1_1": {"conv1": (64, 3, 2), "pools": (1, 3, 5)},
}
# Table 1, "#parameter before pruning" (biases included): conv1, fire2 .. fire9, conv10.
TABLE_1_PARAMETERS = {
    "conv1": 14_208,
    "fire2": 11_920,
    "fire3": 12_432,
    "fire4": 45_344,
    "fire5": 49_440,
    "fire6": 104_880,
    "fire7": 111_024,
    "fire8": 188_992,
    "fire9": 197_184,
    "conv10": 513_000,
}
# Table 1, "output size" at the 227x227 crops the Caffe files use (see test below).
TABLE_1_SHAPES = {
    "conv1": (111, 111, 96),
    "pool1": (55, 55, 96),
    "fire2_concat": (55, 55, 128),
    "fire3_concat": (55, 55, 128),
    "fire4_concat": (55, 55, 256),
    "pool4": (27, 27, 256),
    "fire5_concat": (27, 27, 256),
    "fire6_concat": (27, 27, 384),
    "fire7_concat": (27, 27, 384),
    "fire8_concat": (27, 27, 512),
    "pool8": (13, 13, 512),
    "fire9_concat": (13, 13, 512),
    "conv10": (13, 13, 1000),
}
# torchvision's counts (convolutions with bias, no batch norm).
TORCHVISION_COUNTS = {"squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496}
CROP = 227  # train_val.prototxt: crop_size: 227


@pytest.fixture(scope="module")
def v10():
    return kerascnn.create_model("squeezenet1_0")


@pytest.fixture(scope="module")
def v11():
    return kerascnn.create_model("squeezenet1_1")


def trainable_count(weights_holder):
    return sum(int(np.prod(w.shape)) for w in weights_holder.trainable_weights)


def shape_of(model, layer_name):
    return tuple(model.get_layer(layer_name).output.shape)


def conv_parameters(kernel, channels_in, channels_out):
    """A Caffe convolution: weights and a bias per filter."""
    return kernel * kernel * channels_in * channels_out + channels_out


def fire_parameters(channels_in, squeeze, expand1x1, expand3x3):
    """Section 3.2: a 1x1 squeeze layer, then 1x1 and 3x3 expand layers fed by it."""
    return (
        conv_parameters(1, channels_in, squeeze)
        + conv_parameters(1, squeeze, expand1x1)
        + conv_parameters(3, squeeze, expand3x3)
    )


def squeezenet_parameters(name, num_classes=1000):
    """Parameters per layer: conv1, the Fire modules, conv10 (1x1, 512 -> classes)."""
    filters, kernel, _ = LAYOUTS[name]["conv1"]
    counts = {"conv1": conv_parameters(kernel, 3, filters)}
    channels = filters
    for number, fire in TABLE_1_FIRES.items():
        counts[f"fire{number}"] = fire_parameters(channels, *fire)
        channels = fire[1] + fire[2]
    counts["conv10"] = conv_parameters(1, channels, num_classes)
    return counts


def module_count(model, prefix):
    return sum(
        trainable_count(layer)
        for layer in model.layers
        if layer.name == prefix or layer.name.startswith(f"{prefix}_")
    )


# --- parameters (Table 1, torchvision) -----------------------------------------------------


def test_derivation_reproduces_table_1_parameter_column():
    assert squeezenet_parameters("squeezenet1_0") == TABLE_1_PARAMETERS


@pytest.mark.parametrize("name", sorted(TORCHVISION_COUNTS))
def test_parameters_match_the_derivation_and_torchvision(name, v10, v11):
    model = {"squeezenet1_0": v10, "squeezenet1_1": v11}[name]
    expected = squeezenet_parameters(name)
    assert {prefix: module_count(model, prefix) for prefix in expected} == expected
    assert sum(expected.values()) == TORCHVISION_COUNTS[name]
    assert trainable_count(model) == model.count_params() == TORCHVISION_COUNTS[name]


def test_classifier_scales_with_the_classes():
    model = kerascnn.create_model("squeezenet1_1", input_shape=(31, 31, 3), num_classes=10)
    assert trainable_count(model) == sum(squeezenet_parameters("squeezenet1_1", 10).values())


# --- shapes (Table 1) ----------------------------------------------------------------------


def test_v1_0_output_sizes_follow_table_1(v10):
    assert tuple(v10.input.shape) == (None, CROP, CROP, 3)
    for layer_name, shape in TABLE_1_SHAPES.items():
        assert shape_of(v10, layer_name) == (None, *shape), layer_name
    # "avgpool10 1x1x1000": global average pooling of conv10.
    assert shape_of(v10, "pool10") == (None, 1000)
    assert tuple(v10.output.shape) == (None, 1000)


def test_table_1_sizes_are_those_of_227_pixel_crops():
    """Table 1 heads its input 224x224x3, but a 7x7/2 unpadded conv1 makes 111x111 of 227
    pixels (the Caffe crop size) and 109x109 of 224: hence the default input of 227x227."""

    def unpadded(size, kernel, stride):
        return (size - kernel) // stride + 1

    assert unpadded(CROP, 7, 2) == 111 and unpadded(224, 7, 2) == 109
    model = kerascnn.create_model("squeezenet1_0", input_shape=(224, 224, 3))
    assert shape_of(model, "conv1")[1:3] == (109, 109)


def test_v1_1_output_sizes_follow_its_layout(v11):
    """v1.1: 3x3/2 conv1 of 64 filters, pools after conv1, fire3 and fire5; sizes derived by
    Caffe's pooling arithmetic, which rounds up: at 227 the maps after pool3 and pool5 are
    28x28 and 14x14 (SqueezeNet_v1.1's deploy file; flooring would give 27 and 13)."""
    filters, kernel, stride = LAYOUTS["squeezenet1_1"]["conv1"]
    size = (CROP - kernel) // stride + 1
    assert shape_of(v11, "conv1") == (None, size, size, filters)
    channels = filters
    size = math.ceil((size - 3) / 2) + 1
    assert shape_of(v11, "pool1") == (None, size, size, channels)
    for number, (_, expand1x1, expand3x3) in TABLE_1_FIRES.items():
        channels = expand1x1 + expand3x3
        assert shape_of(v11, f"fire{number}_concat") == (None, size, size, channels)
        if number in LAYOUTS["squeezenet1_1"]["pools"]:
            size = math.ceil((size - 3) / 2) + 1
            assert shape_of(v11, f"pool{number}") == (None, size, size, channels)
    assert size == 14
    assert shape_of(v11, "conv10") == (None, 14, 14, 1000)


def test_computation_matches_torchvisions_published_gflops():
    """SqueezeNet_v1.1/README.md: "2.4x less computation than v1.0". torchvision's model table
    gives 0.82 and 0.35 GFLOPS (multiply-adds) at its 224x224 evaluation size: ours count the
    same there (a ratio of 2.35); at the Caffe files' 227 crops, v1.1's rounded-up maps make
    it 2.15."""
    macs = {
        name: multiply_accumulates(kerascnn.create_model(name, input_shape=(224, 224, 3)))
        for name in ("squeezenet1_0", "squeezenet1_1")
    }
    assert round(macs["squeezenet1_0"] / 1e9, 2) == 0.82
    assert round(macs["squeezenet1_1"] / 1e9, 2) == 0.35


# --- Fire module and classifier (section 3.2, 3.3) -----------------------------------------


def test_fire_module_squeezes_then_expands_1x1_and_3x3_concatenated(v10):
    squeeze = v10.get_layer("fire4_squeeze1x1")
    expand1x1 = v10.get_layer("fire4_expand1x1")
    expand3x3 = v10.get_layer("fire4_expand3x3")
    assert (squeeze.kernel_size, expand1x1.kernel_size, expand3x3.kernel_size) == (
        (1, 1),
        (1, 1),
        (3, 3),
    )
    assert (squeeze.filters, expand1x1.filters, expand3x3.filters) == TABLE_1_FIRES[4]
    # "the 3x3 filters in expand modules" get a 1-pixel border so both outputs match in size.
    assert expand3x3.padding == "same"
    # Both expand layers read the squeeze layer's ReLU output.
    relu = v10.get_layer("fire4_relu_squeeze1x1")
    assert expand1x1.input is relu.output and expand3x3.input is relu.output
    # Concatenated in the Caffe files' order: expand1x1 first, then expand3x3.
    concat = v10.get_layer("fire4_concat")
    assert [t._keras_history.operation.name for t in concat.input] == [
        "fire4_relu_expand1x1",
        "fire4_relu_expand3x3",
    ]
    assert all(layer.use_bias for layer in v10.layers if isinstance(layer, keras.layers.Conv2D))


def test_classifier_is_dropout_conv10_relu_global_average_pooling(v10):
    # Section 3.3: "dropout with a ratio of 50% after the fire9 module"; Table 1: conv10
    # 1x1/1 with 1000 filters, then avgpool10 (Caffe: relu_conv10, global pooling).
    names = [layer.name for layer in v10.layers]
    assert names[names.index("fire9_concat") + 1 :] == [
        "drop9",
        "conv10",
        "conv10_relu",
        "pool10",
        "classifier_activation",
    ]
    assert v10.get_layer("drop9").rate == 0.5
    conv10 = v10.get_layer("conv10")
    assert conv10.kernel_size == (1, 1) and conv10.filters == 1000
    assert isinstance(v10.get_layer("pool10"), keras.layers.GlobalAveragePooling2D)
    assert not any(isinstance(layer, keras.layers.Dense) for layer in v10.layers)


def test_without_top_ends_at_fire9():
    model = kerascnn.create_model("squeezenet1_0", input_shape=(35, 35, 3), include_top=False)
    assert model.layers[-1].name == "fire9_concat"
    assert tuple(model.output.shape)[-1] == 512
    assert not any(layer.name in ("drop9", "conv10") for layer in model.layers)


def test_output_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = kerascnn.create_model("squeezenet1_1", input_shape=(31, 31, 3), num_classes=5)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("conv10").compute_dtype == "float16"
    assert model.output.dtype == "float32"


def test_initialisation_follows_the_caffe_files(v10):
    """train_val.prototxt: "xavier" fillers (Caffe's default normalises by fan-in: uniform in
    +-sqrt(3 / fan_in)) and a Gaussian of std 0.01 for conv10; biases start at zero."""
    kernel = v10.get_layer("fire9_expand3x3").get_weights()[0]
    limit = np.sqrt(3.0 / (3 * 3 * 64))
    assert np.abs(kernel).max() <= limit
    assert kernel.std() == pytest.approx(limit / np.sqrt(3.0), rel=0.05)
    conv10_kernel, conv10_bias = v10.get_layer("conv10").get_weights()
    assert conv10_kernel.std() == pytest.approx(0.01, rel=0.05)
    assert abs(conv10_kernel.mean()) < 1e-3
    assert not conv10_bias.any()


def test_weight_decay_is_on_every_kernel():
    # solver.prototxt: weight_decay: 0.0002.
    model = kerascnn.create_model("squeezenet1_1", input_shape=(31, 31, 3))
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(kernels) == 1 + 3 * 8 + 1
    assert len(model.losses) == len(kernels)
    squared = sum(float(np.sum(np.square(keras.ops.convert_to_numpy(k)))) for k in kernels)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert total == pytest.approx(2e-4 / 2 * squared, rel=1e-4)


# --- bypass (section 6, Figure 2, Table 3) -------------------------------------------------


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_simple_bypass_adds_identity_around_odd_fires_and_no_parameters(name):
    shape = (35, 35, 3)
    plain = kerascnn.create_model(name, input_shape=shape)
    model = kerascnn.create_model(name, input_shape=shape, bypass="simple")
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    # Figure 2 (middle): bypass around fire3, 5, 7, 9, where input and output channels match.
    assert [layer.name for layer in adds] == [
        "fire3_bypass",
        "fire5_bypass",
        "fire7_bypass",
        "fire9_bypass",
    ]
    for layer in adds:
        fire = layer.name.split("_")[0]
        source, concat = (t._keras_history.operation for t in layer.input)
        assert concat.name == f"{fire}_concat"
        assert model.get_layer(f"{fire}_squeeze1x1").input is layer.input[0]
        assert source.output.shape == concat.output.shape
    # Table 3: the simple-bypass model is as large as the plain one (4.8MB).
    assert model.count_params() == plain.count_params()


def test_complex_bypass_adds_1x1_convolutions_around_even_fires(random_pixels):
    model = kerascnn.create_model("squeezenet1_0", input_shape=(35, 35, 3), bypass="complex")
    plain = kerascnn.create_model("squeezenet1_0", input_shape=(35, 35, 3))
    # Figure 2 (right): "a 1x1 convolution layer with the number of filters set equal to the
    # number of output channels" around fire2, 4, 6, 8 (input -> output channels).
    channels = {2: (96, 128), 4: (128, 256), 6: (256, 384), 8: (384, 512)}
    extra = 0
    for number, (channels_in, channels_out) in channels.items():
        conv = model.get_layer(f"fire{number}_bypass_conv")
        assert conv.kernel_size == (1, 1)
        assert tuple(conv.kernel.shape) == (1, 1, channels_in, channels_out)
        extra += conv_parameters(1, channels_in, channels_out)
    adds = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert adds == [f"fire{n}_bypass" for n in range(2, 10)]
    assert model.count_params() - plain.count_params() == extra
    assert np.isfinite(model.predict(random_pixels((1, 35, 35, 3)), verbose=0)).all()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("version", "2.0", "version must be '1.0' or '1.1'; received '2.0'"),
        ("bypass", "full", "bypass must be None, 'simple' or 'complex'; received 'full'"),
        ("dropout_rate", 1.5, "dropout_rate must be in \\[0, 1\\); received 1.5"),
    ],
)
def test_bad_options_are_rejected(option, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        kerascnn.create_model("squeezenet1_0", **{option: value})
