"""MobileNet against Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications" (arXiv:1704.04861): Table 1 (the body), section 3.3 (width
multiplier), Tables 6-8 (parameters and Mult-Adds); keras.applications.MobileNet (layer order,
weights, and its parameter count).

Expected counts and shapes are derived here from Table 1, then compared with the model and
with the published figures."""

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models.counting import multiply_accumulates

# Table 1, row by row: (type, stride, filter shape, input size). "dw" filter shapes are
# (3, 3, channels); the others (kh, kw, channels in, filters). The 5x repeated pair is expanded.
TABLE_1 = (
    ("conv", 2, (3, 3, 3, 32), (224, 224, 3)),
    ("dw", 1, (3, 3, 32), (112, 112, 32)),
    ("pw", 1, (1, 1, 32, 64), (112, 112, 32)),
    ("dw", 2, (3, 3, 64), (112, 112, 64)),
    ("pw", 1, (1, 1, 64, 128), (56, 56, 64)),
    ("dw", 1, (3, 3, 128), (56, 56, 128)),
    ("pw", 1, (1, 1, 128, 128), (56, 56, 128)),
    ("dw", 2, (3, 3, 128), (56, 56, 128)),
    ("pw", 1, (1, 1, 128, 256), (28, 28, 128)),
    ("dw", 1, (3, 3, 256), (28, 28, 256)),
    ("pw", 1, (1, 1, 256, 256), (28, 28, 256)),
    ("dw", 2, (3, 3, 256), (28, 28, 256)),
    ("pw", 1, (1, 1, 256, 512), (14, 14, 256)),
    *((("dw", 1, (3, 3, 512), (14, 14, 512)), ("pw", 1, (1, 1, 512, 512), (14, 14, 512))) * 5),
    ("dw", 2, (3, 3, 512), (14, 14, 512)),
    ("pw", 1, (1, 1, 512, 1024), (7, 7, 512)),
    # Printed "Conv dw / s2" on a 7x7 input whose next layer is still 7x7: stride 1 in effect
    # (and in Keras and TF-slim); the sizes below are the table's.
    ("dw", 1, (3, 3, 1024), (7, 7, 1024)),
    ("pw", 1, (1, 1, 1024, 1024), (7, 7, 1024)),
    ("avgpool", 1, (7, 7), (7, 7, 1024)),
    ("fc", 1, (1024, 1000), (1, 1, 1024)),
)
# Tables 6 and 7 (1000 classes) and Table 8: (alpha, resolution) -> (million Mult-Adds,
# million parameters), with the precision the paper prints.
PAPER_FIGURES = {
    (1.0, 224): ("569", "4.2"),
    (0.75, 224): ("325", "2.6"),
    (0.5, 224): ("149", "1.3"),
    (0.25, 224): ("41", "0.5"),
    (1.0, 192): ("418", "4.2"),
    (1.0, 160): ("290", "4.2"),
    (1.0, 128): ("186", "4.2"),
    (0.5, 160): ("76", "1.32"),
}
KERAS_TOTAL = 4_253_864  # keras.applications.MobileNet(alpha=1.0).count_params()


@pytest.fixture(scope="module")
def mobilenet():
    return kerascnn.create_model("mobilenet")


def scaled_table(alpha=1.0, resolution=224, num_classes=1000):
    """Table 1 with the width multiplier (section 3.3: "the number of input channels M becomes
    alpha M and the number of output channels N becomes alpha N", int() as in Keras) and the
    resolution multiplier (section 3.4: every map scaled by resolution / 224)."""

    def width(channels):
        return channels if channels == 3 else int(alpha * channels)

    rows = []
    for kind, stride, shape, (h, w, c) in TABLE_1:
        size = (h * resolution // 224, w * resolution // 224, width(c))
        if kind in ("conv", "pw"):
            shape = (*shape[:2], width(shape[2]), width(shape[3]))
        elif kind == "dw":
            shape = (*shape[:2], width(shape[2]))
        elif kind == "fc":
            shape = (width(shape[0]), num_classes)
        rows.append((kind, stride, shape, size))
    return rows


def paper_counts(alpha=1.0, resolution=224):
    """(Mult-Adds, parameters) of the scaled Table 1 in the paper's convention (section 3.1,
    equation 5): a convolution costs Dk*Dk*M*N*DF*DF, a depthwise one Dk*Dk*M*DF*DF, the fully
    connected layer M*N; parameters are the convolution and fully connected weights plus the
    classifier's biases. Batch norm is not counted: with its 2 parameters per channel, 0.50
    MobileNet-160 would have 1.33M, where Table 8 prints 1.32."""
    rows = scaled_table(alpha, resolution)
    mult_adds = parameters = 0
    for index, (kind, _, shape, _) in enumerate(rows):
        if kind == "avgpool":
            continue
        weights = int(np.prod(shape))
        if kind == "fc":
            mult_adds += weights
            parameters += weights + shape[1]
        else:
            height, width, _ = rows[index + 1][3]  # the next row's input is this one's output
            mult_adds += weights * height * width
            parameters += weights
    return mult_adds, parameters


def weighted_layers(model):
    """The convolutions in order: conv1, conv_dw_1, conv_pw_1, ..., conv_preds."""
    convolutions = keras.layers.Conv2D | keras.layers.DepthwiseConv2D
    return [layer for layer in model.layers if isinstance(layer, convolutions)]


def batch_norm_parameters(model):
    return sum(
        int(np.prod(w.shape))
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.trainable_weights
    )


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# --- Table 1 -------------------------------------------------------------------------------


def test_layers_follow_table_1(mobilenet):
    convs = weighted_layers(mobilenet)
    followed = zip(TABLE_1, [*TABLE_1[1:], None], strict=True)
    rows = [(row, next_row) for row, next_row in followed if row[0] != "avgpool"]
    assert len(convs) == len(rows) == 1 + 2 * 13 + 1
    kinds = {
        "conv": keras.layers.Conv2D,
        "dw": keras.layers.DepthwiseConv2D,
        "pw": keras.layers.Conv2D,
        "fc": keras.layers.Conv2D,  # Keras' classifier: a 1x1 convolution, conv_preds
    }
    for layer, ((kind, stride, shape, _), next_row) in zip(convs, rows, strict=True):
        assert isinstance(layer, kinds[kind]), layer.name
        assert layer.strides == (stride, stride), layer.name
        kernel = tuple(layer.kernel.shape)
        if kind == "dw":
            assert kernel == (*shape, 1), layer.name
        elif kind == "fc":
            assert kernel == (1, 1, *shape), layer.name
        else:
            assert kernel == shape, layer.name
        if next_row is not None:
            # Table 1's "Input Size" column: the next layer's input is this one's output.
            assert tuple(layer.output.shape)[1:] == next_row[3], layer.name
    assert tuple(mobilenet.get_layer("conv_pw_13_relu").output.shape) == (None, 7, 7, 1024)
    assert tuple(mobilenet.output.shape) == (None, 1000)


def test_every_layer_is_followed_by_batch_norm_and_relu6(mobilenet):
    # Figure 3: 3x3 depthwise conv, BN, ReLU, 1x1 conv, BN, ReLU; ReLU6 as in keras.applications.
    for layer in weighted_layers(mobilenet)[:-1]:
        assert not layer.use_bias
        assert isinstance(mobilenet.get_layer(f"{layer.name}_bn"), keras.layers.BatchNormalization)
        relu = mobilenet.get_layer(f"{layer.name}_relu")
        assert isinstance(relu, keras.layers.ReLU) and relu.max_value == 6.0


def test_classifier_is_keras_conv_preds(mobilenet):
    names = [layer.name for layer in mobilenet.layers]
    assert names[names.index("conv_pw_13_relu") + 1 :] == [
        "avg_pool",
        "dropout",
        "conv_preds",
        "reshape",
        "classifier_activation",
    ]
    assert mobilenet.get_layer("dropout").rate == 1e-3
    assert mobilenet.get_layer("conv_preds").use_bias
    assert mobilenet.name == "mobilenet_1.00_224"


def test_output_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = kerascnn.create_model("mobilenet", input_shape=(31, 31, 3), num_classes=5)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("conv_preds").compute_dtype == "float16"
    assert model.output.dtype == "float32"


# --- parameters and Mult-Adds (Tables 6, 7, 8; keras) --------------------------------------


def test_parameters_match_keras(mobilenet):
    assert mobilenet.count_params() == KERAS_TOTAL


@pytest.mark.parametrize(("alpha", "resolution"), sorted(PAPER_FIGURES))
def test_counts_match_the_papers_tables(alpha, resolution):
    model = kerascnn.create_model("mobilenet", alpha=alpha, input_shape=(resolution, resolution, 3))
    mult_adds, parameters = paper_counts(alpha, resolution)
    assert multiply_accumulates(model) == mult_adds
    assert trainable_count(model) - batch_norm_parameters(model) == parameters
    paper_mult_adds, paper_parameters = PAPER_FIGURES[(alpha, resolution)]
    decimals = len(paper_parameters.split(".")[1])
    assert f"{parameters / 1e6:.{decimals}f}" == paper_parameters
    # The paper's Mult-Adds are rounded to the million, some down (290.7 -> 290, 76.5 -> 76).
    assert mult_adds / 1e6 == pytest.approx(int(paper_mult_adds), rel=0.01)
    assert model.name == f"mobilenet_{alpha:0.2f}_{resolution}"


def test_width_multiplier_thins_every_layer():
    model = kerascnn.create_model("mobilenet", alpha=0.25, input_shape=(31, 31, 3))
    for layer, (kind, _, shape, _) in zip(
        weighted_layers(model), [r for r in scaled_table(0.25) if r[0] != "avgpool"], strict=True
    ):
        if kind != "fc":
            assert tuple(layer.kernel.shape)[: len(shape)] == shape, layer.name
    assert model.get_layer("conv1").filters == 8
    assert model.get_layer("conv_pw_13").filters == 256


def test_weight_decay_spares_the_depthwise_filters(mobilenet):
    # Section 4: "very little or no weight decay (l2 regularization) on the depthwise filters";
    # the others decay by TF-slim mobilenet_v1's 4e-5.
    convs = weighted_layers(mobilenet)
    decayed = [layer for layer in convs if not isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert len(decayed) == 1 + 13 + 1
    assert len(mobilenet.losses) == len(decayed)
    squared = sum(float(np.sum(np.square(layer.get_weights()[0]))) for layer in decayed)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in mobilenet.losses)
    assert total == pytest.approx(4e-5 / 2 * squared, rel=1e-4)


def test_too_narrow_alpha_is_rejected():
    with pytest.raises(ValueError, match="^alpha must leave every layer at least one filter"):
        kerascnn.create_model("mobilenet", alpha=0.01)


# --- keras.applications weights ------------------------------------------------------------
# The harness checks the registered width (alpha 1.0); a narrower one reaches keras.applications'
# constructor too (KerasApplication.options).


def test_keras_weights_load_into_a_narrower_network(keras_application_parity):
    keras_application_parity("mobilenet", include_top=False, size=32, alpha=0.5)
