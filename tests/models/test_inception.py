"""Inception v3, Inception-v4 and Inception-ResNet-v1/v2 against their sources.

- Szegedy, Vanhoucke, Ioffe, Shlens, Wojna 2015, "Rethinking the Inception Architecture for
  Computer Vision" (arXiv:1512.00567): Table 1 (grid sizes), Figures 5-7 (modules), Figure 8
  (the batch-normalised auxiliary classifier on the last 17x17 grid).
- Szegedy, Ioffe, Vanhoucke, Alemi 2016, "Inception-v4, Inception-ResNet and the Impact of
  Residual Connections on Learning" (arXiv:1602.07261): Figures 3-19 (stems, blocks, grid
  sizes), Table 1 (Reduction-A's k, l, m, n), section 3.2 (no batch normalisation on the
  summations) and 3.3 (scaled residuals), Figures 9 and 15 (dropout, keep 0.8).
- keras.applications.InceptionV3 / InceptionResNetV2 (built with weights=None here): their
  parameter counts (``count_params()``, BN moving statistics included), the layer layout our
  weights must follow, and their source's grid-size comments.
- timm's model card for inception_v4.tf_in1k (huggingface.co/timm/inception_v4.tf_in1k):
  "Params (M): 42.7", counted the PyTorch way (BatchNorm weight and bias, no running
  statistics), and "GMACs: 12.3".

The full-size networks are only built (cheap); forward passes run at 75x75 except in the tests
marked slow.
"""

import re

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models import MODELS, counting, layers
from kerascnn.models.inception import ScaledResidual

NAMES = ("inception_v3", "inception_v4", "inception_resnet_v1", "inception_resnet_v2")
SMALL = (75, 75, 3)


@pytest.fixture(scope="module")
def full():
    """Every network at the paper's 299x299x3 and 1000 classes, built once."""
    return {name: kerascnn.create_model(name) for name in NAMES}


@pytest.fixture(scope="module")
def v3_aux():
    return kerascnn.create_model("inception_v3", aux_logits=True)


def shape(model, layer):
    return tuple(model.get_layer(layer).output.shape)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def run(model, images):
    """An eager forward pass: much cheaper than tracing ``predict`` for one small batch."""
    outputs = model(images, training=False)
    if isinstance(outputs, list | tuple):
        return [keras.ops.convert_to_numpy(out) for out in outputs]
    return keras.ops.convert_to_numpy(outputs)


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


# --- parameter counts ------------------------------------------------------------------------


def test_inception_v3_parameters_match_keras(full):
    # keras.applications.InceptionV3 (no aux head): total 23,851,784, trainable 23,817,352.
    assert full["inception_v3"].count_params() == 23_851_784
    assert trainable_count(full["inception_v3"]) == 23_817_352


def test_inception_resnet_v2_parameters_match_keras(full):
    # keras.applications.InceptionResNetV2: total 55,873,736.
    assert full["inception_resnet_v2"].count_params() == 55_873_736


def test_inception_v4_parameters_match_timm(full):
    # timm's inception_v4.tf_in1k card: "Params (M): 42.7" at 1000 classes, counted as PyTorch
    # parameters: BatchNorm has a weight (gamma) and a bias, its running statistics are buffers.
    # Ours (TF-slim's units) have no gamma: add one per batch-normalised channel.
    model = full["inception_v4"]
    norms = layers_of(model, keras.layers.BatchNormalization)
    assert all(not bn.scale for bn in norms)
    gammas = sum(bn.beta.shape[0] for bn in norms)
    assert round((trainable_count(model) + gammas) / 1e6, 1) == 42.7


def test_inception_v4_multiply_accumulates_match_timm(full):
    # timm's inception_v4.tf_in1k card: "GMACs: 12.3" at 299x299 (convolutions and the
    # classifier, one per weight use: the convention of kerascnn.models.counting).
    macs = counting.multiply_accumulates(full["inception_v4"])
    assert round(macs / 1e9, 1) == 12.3


def test_auxiliary_head_adds_figure_8s_parameters(full, v3_aux):
    # Figure 8 on the 17x17x768 grid: 1x1 conv (128), 5x5 conv (768), classifier; batch norm
    # after both convolutions ("BN-auxiliary"), here without a scale: beta and two statistics.
    def conv(kernel, channels_in, channels_out):
        return kernel * kernel * channels_in * channels_out + 3 * channels_out

    expected = conv(1, 768, 128) + conv(5, 128, 768) + 768 * 1000 + 1000
    assert v3_aux.count_params() - full["inception_v3"].count_params() == expected


# --- grid sizes --------------------------------------------------------------------------------


def test_inception_v3_grid_sizes_follow_table_1(full):
    model = full["inception_v3"]
    # Table 1's input sizes: 149x149x32, 147x147x32, 147x147x64, 73x73x64 ...
    assert shape(model, "conv_1a_relu") == (None, 149, 149, 32)
    assert shape(model, "conv_2a_relu") == (None, 147, 147, 32)
    assert shape(model, "conv_2b_relu") == (None, 147, 147, 64)
    assert shape(model, "pool_3a") == (None, 73, 73, 64)
    # ... 35x35x288 after the 35x35 modules, 17x17x768 through the five 17x17 modules,
    # 8x8x1280 after the reduction, 8x8x2048 into the final pooling, 1000 classes.
    assert shape(model, "mixed2") == (None, 35, 35, 288)
    for module in ("mixed3", "mixed4", "mixed5", "mixed6", "mixed7"):
        assert shape(model, module) == (None, 17, 17, 768)
    assert shape(model, "mixed8") == (None, 8, 8, 1280)
    assert shape(model, "mixed10") == (None, 8, 8, 2048)
    assert shape(model, "avg_pool") == (None, 2048)
    assert tuple(model.output.shape) == (None, 1000)


def test_inception_v4_grid_sizes_follow_figures_3_and_9(full):
    model = full["inception_v4"]
    # Figure 3 (stem): 149x149x32, 147x147x32, 147x147x64, 73x73x160, 71x71x192, 35x35x384.
    assert shape(model, "conv_1a_relu") == (None, 149, 149, 32)
    assert shape(model, "conv_2a_relu") == (None, 147, 147, 32)
    assert shape(model, "conv_2b_relu") == (None, 147, 147, 64)
    assert shape(model, "mixed_3a") == (None, 73, 73, 160)
    assert shape(model, "mixed_4a") == (None, 71, 71, 192)
    assert shape(model, "mixed_5a") == (None, 35, 35, 384)
    # Figure 9: Inception-A 35x35x384, Reduction-A 17x17x1024, Inception-B 17x17x1024,
    # Reduction-B 8x8x1536, Inception-C 8x8x1536, average pooling 1536.
    assert shape(model, "mixed_5e") == (None, 35, 35, 384)
    assert shape(model, "mixed_6a") == (None, 17, 17, 1024)
    assert shape(model, "mixed_6h") == (None, 17, 17, 1024)
    assert shape(model, "mixed_7a") == (None, 8, 8, 1536)
    assert shape(model, "mixed_7d") == (None, 8, 8, 1536)
    assert shape(model, "avg_pool") == (None, 1536)


def test_inception_resnet_v1_grid_sizes_follow_figures_14_and_15(full):
    model = full["inception_resnet_v1"]
    # Figure 14 (stem): ... 73x73x64 max pool, 73x73x80, 71x71x192, 35x35x256.
    assert shape(model, "pool_3a") == (None, 73, 73, 64)
    assert shape(model, "conv_3b_relu") == (None, 73, 73, 80)
    assert shape(model, "conv_4a_relu") == (None, 71, 71, 192)
    assert shape(model, "conv_4b_relu") == (None, 35, 35, 256)
    # Figure 15: 35x35x256 through the A blocks, 17x17x896 after Reduction-A and through the
    # B blocks, 8x8x1792 after Reduction-B and through the C blocks.
    assert shape(model, "block35_5_ac") == (None, 35, 35, 256)
    assert shape(model, "mixed_6a") == (None, 17, 17, 896)
    assert shape(model, "block17_10_ac") == (None, 17, 17, 896)
    assert shape(model, "mixed_7a") == (None, 8, 8, 1792)
    assert shape(model, "block8_5_ac") == (None, 8, 8, 1792)
    assert shape(model, "avg_pool") == (None, 1792)


def test_inception_resnet_v2_grid_sizes_follow_keras(full):
    # keras.applications' inception_resnet_v2.py comments: "Mixed 5b (Inception-A block):
    # 35 x 35 x 320", "Mixed 6a (Reduction-A block): 17 x 17 x 1088", "Mixed 7a (Reduction-B
    # block): 8 x 8 x 2080", "Final convolution block: 8 x 8 x 1536". (The paper's Figure 3
    # stem gives 35x35x384; Keras's weights need Keras's stem.)
    model = full["inception_resnet_v2"]
    assert shape(model, "mixed_5b") == (None, 35, 35, 320)
    assert shape(model, "block35_10_ac") == (None, 35, 35, 320)
    assert shape(model, "mixed_6a") == (None, 17, 17, 1088)
    assert shape(model, "block17_20_ac") == (None, 17, 17, 1088)
    assert shape(model, "mixed_7a") == (None, 8, 8, 2080)
    assert shape(model, "block8_10") == (None, 8, 8, 2080)
    assert shape(model, "conv_7b_relu") == (None, 8, 8, 1536)


# --- structure --------------------------------------------------------------------------------


def test_inception_v4_has_4_7_3_blocks(full):
    # Figure 9: 4 x Inception-A, 7 x Inception-B, 3 x Inception-C.
    names = {layer.name for layer in full["inception_v4"].layers}
    for grid, count in ((5, 4), (6, 7), (7, 3)):
        modules = {n for n in names if re.fullmatch(rf"mixed_{grid}[b-z]", n)}
        assert len(modules) == count


@pytest.mark.parametrize(
    ("name", "counts"),
    # Figure 15 for v1 (5, 10, 5); keras.applications' 10 x block35, 20 x block17, 10 x block8.
    [("inception_resnet_v1", (5, 10, 5)), ("inception_resnet_v2", (10, 20, 10))],
)
def test_inception_resnet_block_counts(full, name, counts):
    residuals = layers_of(full[name], ScaledResidual)
    found = tuple(
        sum(layer.name.startswith(f"{block}_") for layer in residuals)
        for block in ("block35", "block17", "block8")
    )
    assert found == counts


@pytest.mark.parametrize(
    ("name", "klmn"),
    # Table 1: the number of filters of the Reduction-A module.
    [
        ("inception_v4", (192, 224, 256, 384)),
        ("inception_resnet_v1", (192, 192, 256, 384)),
        ("inception_resnet_v2", (256, 256, 384, 384)),
    ],
)
def test_reduction_a_uses_table_1(full, name, klmn):
    # Figure 7: a 3x3/2 valid conv (n); 1x1 (k), 3x3 (l), 3x3/2 valid (m); a 3x3/2 max pool.
    model = full[name]
    convs = [
        model.get_layer(f"mixed_6a_{unit}_conv")
        for unit in ("branch1_1", "branch1_2", "branch1_3", "branch0")
    ]
    assert tuple(conv.filters for conv in convs) == klmn
    assert [conv.kernel_size for conv in convs] == [(1, 1), (3, 3), (3, 3), (3, 3)]
    assert [conv.strides for conv in convs] == [(1, 1), (1, 1), (2, 2), (2, 2)]
    assert convs[2].padding == convs[3].padding == "valid"
    assert isinstance(model.get_layer("mixed_6a_pool"), keras.layers.MaxPooling2D)


@pytest.mark.parametrize("name", ["inception_v3", "inception_v4"])
def test_large_convolutions_are_factorised(full, name):
    # v3 section 3.2: n x n convolutions factorised into 1 x n and n x 1; no convolution in
    # these networks is larger than 5x5, and the 7-wide ones are always 1x7 or 7x1.
    kernels = {conv.kernel_size for conv in layers_of(full[name], keras.layers.Conv2D)}
    assert (7, 7) not in kernels
    assert {(1, 7), (7, 1)} <= kernels
    assert all(min(kernel) == 1 for kernel in kernels if max(kernel) == 7)
    # Figure 7 / Figure 6 (v4): the 8x8 modules expand into 1x3 and 3x1 side by side.
    assert {(1, 3), (3, 1)} <= kernels


def test_inception_v3_8x8_modules_expand_the_filter_bank(full):
    # Figure 7: a 1x3 and a 3x1 convolution on the same input, concatenated.
    model = full["inception_v3"]
    split = model.get_layer("mixed9_branch3x3_2")
    assert isinstance(split, keras.layers.Concatenate)
    first, second = (
        model.get_layer("mixed9_branch3x3_2a_conv"),
        model.get_layer("mixed9_branch3x3_2b_conv"),
    )
    assert (first.kernel_size, second.kernel_size) == ((1, 3), (3, 1))
    assert first.input is second.input
    assert shape(model, "mixed9_branch3x3_2") == (None, 8, 8, 768)


@pytest.mark.parametrize("name", NAMES)
def test_batch_norm_as_keras_and_tf_slim(full, name):
    # keras.applications' conv2d_bn: Conv2D(use_bias=False), BatchNormalization(scale=False),
    # default epsilon 1e-3. Inception-ResNet's linear 1x1 convolutions have a bias and no batch
    # norm: "batch-normalization only on top of the traditional layers, but not on top of the
    # summations" (section 3.2).
    model = full[name]
    norms = layers_of(model, keras.layers.BatchNormalization)
    assert all(not bn.scale and bn.epsilon == 1e-3 for bn in norms)
    residuals = layers_of(model, ScaledResidual)
    up_projections = {f"{residual.name}_conv" for residual in residuals}
    for conv in layers_of(model, keras.layers.Conv2D):
        assert conv.use_bias == (conv.name in up_projections)
    for residual in residuals:
        shortcut, branch = residual.input
        up = model.get_layer(f"{residual.name}_conv")
        assert branch is up.output
        assert up.kernel_size == (1, 1) and up.filters == shortcut.shape[-1]


@pytest.mark.parametrize("name", NAMES)
def test_dropout_keep_0_8_before_the_classifier(full, name):
    # Figures 9 and 15: "Dropout (keep 0.8)" after the average pooling (TF-slim's v3 too).
    model = full[name]
    dropout = model.get_layer("dropout")
    assert dropout.rate == pytest.approx(0.2)
    assert dropout.input is model.get_layer("avg_pool").output
    assert model.get_layer("predictions").input is dropout.output


# --- residual scaling (section 3.3) -------------------------------------------------------------


def test_scaled_residual_adds_the_scaled_branch():
    rng = np.random.default_rng(0)
    shortcut, residual = rng.normal(size=(2, 2, 3, 3, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(ScaledResidual(0.17)([shortcut, residual]))
    np.testing.assert_allclose(out, shortcut + 0.17 * residual, rtol=1e-6)
    restored = ScaledResidual.from_config(ScaledResidual(0.17, name="r").get_config())
    assert restored.scale == 0.17 and restored.name == "r"


def test_inception_resnet_v2_scales_as_keras(full):
    # keras.applications: scale=0.17 (block35), 0.1 (block17), 0.2 (block8), and a last block8
    # with scale 1.0 and no activation.
    model = full["inception_resnet_v2"]
    scales = {layer.name: layer.scale for layer in layers_of(model, ScaledResidual)}
    assert {scales[f"block35_{i}"] for i in range(1, 11)} == {0.17}
    assert {scales[f"block17_{i}"] for i in range(1, 21)} == {0.1}
    assert {scales[f"block8_{i}"] for i in range(1, 10)} == {0.2}
    assert scales["block8_10"] == 1.0
    names = {layer.name for layer in model.layers}
    assert "block8_9_ac" in names and "block8_10_ac" not in names


def test_inception_resnet_v1_scales_every_block_and_the_scale_is_an_option(full):
    scales = {layer.scale for layer in layers_of(full["inception_resnet_v1"], ScaledResidual)}
    # Section 3.3: factors "between 0.1 and 0.3"; every Figure 10-13 block ends in a ReLU.
    assert scales == {0.17, 0.1, 0.2}
    assert all(0.1 <= s <= 0.3 for s in scales)
    model = kerascnn.create_model(
        "inception_resnet_v1", input_shape=SMALL, num_classes=10, residual_scale=0.3
    )
    assert {layer.scale for layer in layers_of(model, ScaledResidual)} == {0.3}
    assert len(layers_of(model, ScaledResidual)) == 20


@pytest.mark.parametrize("scale", [0, -0.1, (0.1, 0.2), "big"])
def test_bad_residual_scale_is_rejected(scale):
    with pytest.raises(ValueError, match="residual_scale must be one positive number or three"):
        kerascnn.create_model("inception_resnet_v2", residual_scale=scale)


def test_unknown_version_and_bad_dropout_are_rejected():
    with pytest.raises(ValueError, match="version must be one of 'v1', 'v2'; received 'v3'"):
        kerascnn.create_model("inception_resnet_v2", version="v3")
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\); received 1.0"):
        kerascnn.create_model("inception_v4", dropout=1.0)


# --- auxiliary classifier (v3 Figure 8) ---------------------------------------------------------


def test_aux_logits_adds_figure_8s_head_on_the_17x17_grid(v3_aux):
    assert MODELS.get("inception_v3").auxiliary_loss_weights == (0.4,)
    assert [tuple(out.shape) for out in v3_aux.outputs] == [(None, 1000), (None, 1000)]
    assert v3_aux.get_layer("aux1_avg_pool").input is v3_aux.get_layer("mixed7").output
    pool = v3_aux.get_layer("aux1_avg_pool")
    assert (pool.pool_size, pool.strides) == ((5, 5), (3, 3))
    assert shape(v3_aux, "aux1_avg_pool") == (None, 5, 5, 768)
    assert v3_aux.get_layer("aux1_reduce_conv").filters == 128
    fc = v3_aux.get_layer("aux1_fc_conv")
    assert (fc.filters, fc.kernel_size, fc.padding) == (768, (5, 5), "valid")
    assert shape(v3_aux, "aux1_fc_relu") == (None, 1, 1, 768)
    assert isinstance(v3_aux.get_layer("aux1_fc_bn"), keras.layers.BatchNormalization)
    assert v3_aux.outputs[1] is v3_aux.get_layer("aux1_predictions_activation").output
    extra = {layer.name for layer in v3_aux.layers} - {
        layer.name for layer in layers.main_head(v3_aux).layers
    }
    assert extra and all(name.startswith("aux1_") for name in extra)


def test_no_aux_layers_by_default_or_without_top(full):
    assert not any(layer.name.startswith("aux") for layer in full["inception_v3"].layers)
    headless = kerascnn.create_model(
        "inception_v3", input_shape=SMALL, include_top=False, aux_logits=True
    )
    assert len(headless.outputs) == 1
    assert not any(layer.name.startswith("aux") for layer in headless.layers)


def test_main_head_drops_the_aux_and_takes_the_plain_weights(full, v3_aux, random_pixels):
    plain = full["inception_v3"]
    main = layers.main_head(v3_aux)
    assert len(main.outputs) == 1
    assert main.count_params() == plain.count_params()
    main.set_weights(plain.get_weights())
    images = random_pixels((1, 299, 299, 3))
    np.testing.assert_allclose(run(main, images), run(plain, images), rtol=1e-5, atol=1e-6)


# --- minimum input size ------------------------------------------------------------------------

# The valid 3x3 convolutions and poolings on the way to the last grid, as (kernel, stride)
# (same-padded units keep the size). Inception v3 (Table 1 as Keras builds it) and Keras's
# Inception-ResNet-v2: conv 3x3/2, conv 3x3, max pool 3x3/2, conv 3x3, max pool 3x3/2, then the
# two reductions. Inception-v4 (Figure 3): conv 3x3/2, conv 3x3, the 3x3/2 pair of mixed_3a, the
# valid 3x3s of mixed_4a, the 3x3/2 pair of mixed_5a, then Reductions A and B (Figures 7, 8).
# Inception-ResNet-v1 (Figure 14): conv 3x3/2, conv 3x3, max pool 3x3/2, conv 3x3, conv 3x3/2,
# then Reductions A and B (Figures 7, 12). The same arithmetic for all four.
SHRINKING_UNITS = [(3, 2), (3, 1), (3, 2), (3, 1), (3, 2), (3, 2), (3, 2)]


def final_grid(size, units):
    for kernel, stride in units:
        size = (size - kernel) // stride + 1
    return size


@pytest.mark.parametrize("name", NAMES)
def test_min_size_is_the_smallest_input_with_a_final_grid(name):
    smallest = next(s for s in range(1, 300) if final_grid(s, SHRINKING_UNITS) >= 1)
    assert MODELS.get(name).min_size == (smallest, smallest)
    # keras.applications: InceptionV3 and InceptionResNetV2 take inputs "no smaller than 75".
    assert smallest == 75


def test_builder_fails_one_pixel_below_the_minimum():
    spec = MODELS.get("inception_v3")
    with pytest.raises(ValueError, match="output size would be zero or negative"):
        spec.builder(
            input_shape=(74, 75, 3),
            num_classes=3,
            include_top=True,
            pooling=None,
            classifier_activation="softmax",
            mean=spec.mean,
            std=spec.std,
        )


def test_aux_head_shrinks_to_the_smallest_grid(random_pixels):
    # TF-slim's _reduced_kernel_size_for_small_input: at 75x75 the 17x17 grid is 3x3.
    model = kerascnn.create_model("inception_v3", input_shape=SMALL, num_classes=5, aux_logits=True)
    assert shape(model, "mixed7") == (None, 3, 3, 768)
    assert model.get_layer("aux1_avg_pool").pool_size == (3, 3)
    outputs = run(model, random_pixels((2, *SMALL)))
    assert [out.shape for out in outputs] == [(2, 5), (2, 5)]


# --- keras.applications weights -----------------------------------------------------------------
# The harness checks InceptionV3's and InceptionResNetV2's weights in ours; here, into
# inception_v3 built with its auxiliary head.


# The aux model cannot read Keras's file itself (Keras matches layers by class and order, and
# the aux layers come in between), so create_model builds the application from the file and
# copies its layers in order; Keras warns about the first attempt.
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_keras_weights_file_loads_into_inception_v3_with_aux_logits(
    tmp_path, keras_application, random_pixels
):
    app = keras_application("inception_v3", include_top=True, input_shape=SMALL, classes=10)
    path = tmp_path / "x.weights.h5"
    app.save_weights(path)
    ours = kerascnn.create_model(
        "inception_v3", weights=path, input_shape=SMALL, num_classes=10, aux_logits=True
    )
    images = random_pixels((2, *SMALL), seed=6)
    main, aux = run(ours, images)
    assert aux.shape == (2, 10)
    expected = run(app, keras.applications.inception_v3.preprocess_input(images.copy()))
    np.testing.assert_allclose(main, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
