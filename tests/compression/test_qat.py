"""Quantisation-aware training: the fake quantisation computes the int8 rounding by hand,
the activation ranges move with training, and the int8 TFLite file is quantised with the
trained ranges (its scales are those ranges', not a calibration's)."""

import textwrap

import keras
import numpy as np
import pytest

from kerascnn.compression import pruning, qat
from kerascnn.compression.recipe import Compress, Recipe, plan_phases
from kerascnn.export.saved_model import export_saved_model
from kerascnn.export.tflite import convert_tflite
from kerascnn.models.quantized import ActivationRange, quantized_kernel
from kerascnn.runtime.tflite import TFLiteRunner


def test_weights_round_to_127_levels_of_each_channels_largest_magnitude():
    kernel = np.array([[0.5, -0.02], [-1.0, 0.013], [0.26, 0.04]], "float32")
    scale = np.abs(kernel).max(axis=0) / 127  # per output channel (the last axis)
    expected = np.round(kernel / scale) * scale
    got = keras.ops.convert_to_numpy(quantized_kernel(keras.ops.convert_to_tensor(kernel)))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    whole = np.abs(kernel).max() / 127  # per tensor (Dense)
    got = quantized_kernel(keras.ops.convert_to_tensor(kernel), per_channel=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), np.round(kernel / whole) * whole)


def test_activations_round_to_256_levels_of_the_tracked_range():
    layer = ActivationRange()
    batch = np.array([[-1.0, 0.3, 2.0, 2.9, 0.0123]], "float32")
    out = keras.ops.convert_to_numpy(layer(batch, training=True))
    low, high = -1.0, 2.9  # the first batch sets the range
    scale = (high - low) / 255
    zero = np.round(-low / scale)  # 0 is one of the levels
    nudged_low = -zero * scale
    expected = np.round((np.clip(batch, nudged_low, nudged_low + 255 * scale) - nudged_low) / scale)
    np.testing.assert_allclose(out, expected * scale + nudged_low, atol=1e-6)
    # Later batches move it by 1 - decay; inference leaves it alone.
    layer(np.array([[-3.0, 5.0]], "float32"), training=True)
    assert float(layer.range_min) == pytest.approx(0.99 * low + 0.01 * -3.0)
    assert float(layer.range_max) == pytest.approx(0.99 * high + 0.01 * 5.0)
    layer(np.array([[-30.0, 50.0]], "float32"), training=False)
    assert float(layer.range_max) == pytest.approx(0.99 * high + 0.01 * 5.0)


def tiny_model():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(10, name="dense")(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def trained():
    """The tiny model made quantisation-aware and fine-tuned 2 epochs on random pixels."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (256, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 10, 256)
    model = qat.quantization_aware(tiny_model())
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images[:32], labels[:32], batch_size=32, epochs=1, verbose=0)
    first = qat.activation_ranges(model)
    model.fit(images, labels, batch_size=32, epochs=2, verbose=0)
    return model, images, first


def test_the_copy_computes_what_the_source_did_up_to_the_rounding():
    source = tiny_model()
    model = qat.quantization_aware(source)
    assert isinstance(model.get_layer("conv"), keras.layers.Conv2D)
    assert type(model.get_layer("conv")).__name__ == "QuantizedConv2D"
    for name in ("input_range", "scale_range", "conv_range", "dense_range"):
        assert isinstance(model.get_layer(name), ActivationRange)
    np.testing.assert_array_equal(
        model.get_layer("conv").get_weights()[0], source.get_layer("conv").get_weights()[0]
    )


def test_ranges_move_during_training(trained):
    model, _, first = trained
    last = qat.activation_ranges(model)
    assert last["input_range"] == (0.0, 255.0)  # raw pixels, pinned
    moved = [name for name in first if name != "input_range" and first[name] != last[name]]
    assert {"conv_range", "depthwise_range", "dense_range"} <= set(moved)


def test_the_int8_tflite_is_quantised_with_the_trained_ranges(trained, tmp_path):
    model, images, _ = trained
    inference = keras.Model(model.input, keras.layers.Softmax()(model.output))
    export_saved_model(inference, tmp_path / "sm")
    # Calibration images at a tenth of the brightness: had the converter calibrated the
    # ranges, the scales would follow these; they follow training.
    (tmp_path / "model_int8.tflite").write_bytes(
        convert_tflite(tmp_path / "sm", "int8", images * 0.1)
    )
    interpreter = TFLiteRunner(tmp_path / "model_int8.tflite").interpreter
    tensors = {t["index"]: t["quantization_parameters"] for t in interpreter.get_tensor_details()}
    ops = {op["op_name"]: op for op in interpreter._get_ops_details()}
    conv, dense = ops["CONV_2D"], ops["FULLY_CONNECTED"]
    ranges = qat.activation_ranges(model)
    for op, name in ((conv, "conv_range"), (dense, "dense_range")):
        low, high = ranges[name]
        np.testing.assert_allclose(
            tensors[op["outputs"][0]]["scales"], [(high - low) / 255], rtol=1e-5
        )
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv").kernel)
    np.testing.assert_allclose(
        tensors[conv["inputs"][1]]["scales"], np.abs(kernel).max(axis=(0, 1, 2)) / 127, rtol=1e-5
    )
    # Depthwise: TFLite's channel is input channel x multiplier, in that order.
    kernel = keras.ops.convert_to_numpy(model.get_layer("depthwise").kernel)
    np.testing.assert_allclose(
        tensors[ops["DEPTHWISE_CONV_2D"]["inputs"][1]]["scales"],
        np.abs(kernel).max(axis=(0, 1)).reshape(-1) / 127,
        rtol=1e-5,
    )
    kernel = keras.ops.convert_to_numpy(model.get_layer("dense").kernel)
    np.testing.assert_allclose(
        tensors[dense["inputs"][1]]["scales"][0], np.abs(kernel).max() / 127, rtol=1e-5
    )


def test_quantisation_aware_training_runs_under_jax(run_under_jax):
    """The same layers train under JAX: the ranges move (stateful assignment inside the
    training step) and the Conv2D computes with 127-level kernels per filter."""
    script = textwrap.dedent(
        """
        import keras, numpy as np
        from kerascnn.compression import qat
        assert keras.backend.backend() == "jax"
        inputs = keras.Input((6, 6, 1))
        x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
        x = keras.layers.Flatten()(x)
        model = qat.quantization_aware(keras.Model(inputs, keras.layers.Dense(2, name="d")(x)))
        model.compile("adam", "mse")
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (32, 6, 6, 1)).astype("float32")
        y = rng.normal(size=(32, 2)).astype("float32")
        model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
        first = qat.activation_ranges(model)["conv_range"]
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        last = qat.activation_ranges(model)["conv_range"]
        assert first != last and last[0] < 0 < last[1], (first, last)
        kernel = np.asarray(model.get_layer("conv").kernel)
        scale = np.abs(kernel).max(axis=(0, 1, 2)) / 127
        quantized = np.asarray(qat.quantized_kernel(kernel))
        np.testing.assert_allclose(quantized, np.round(kernel / scale) * scale, atol=1e-6)
        print("ok")
        """
    )
    run_under_jax(script)


def test_pruning_applies_to_the_quantisation_aware_layers():
    """--qat with --prune: the Quantized layers are Conv2D and Dense to the pruning, whose
    masks hold on their kernels through quantisation-aware fine-tuning."""
    model = qat.quantization_aware(tiny_model())
    targets = pruning.prunable_targets(model)
    assert {"conv", "dense"} <= {t.name for t in targets}
    recipe = Recipe(prune=0.5, qat=True)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (64, 8, 8, 1)).astype("float32")
    callback = Compress(recipe, plan_phases(recipe, 2, 4), targets)
    model.fit(
        images, rng.integers(0, 10, 64), batch_size=16, epochs=2, callbacks=[callback], verbose=0
    )
    for target in targets:
        kernel = keras.ops.convert_to_numpy(target.kernel)
        assert (kernel == 0).sum() == kernel.size // 2
