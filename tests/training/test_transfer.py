"""Transfer learning (VGG's trick: a deeper configuration initialised from a trained A) and
mixed precision, at small inputs."""

import json

import keras
import numpy as np
import pytest

from kerascnn import create_model
from kerascnn.training.config import TrainConfig
from kerascnn.training.transfer import freeze, init_from


def stamped(name, num_classes, seed):
    keras.utils.set_random_seed(seed)
    return create_model(name, input_shape=(32, 32, 3), num_classes=num_classes)


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_vgg13_from_a_trained_vgg11_loads_the_shared_layers(tmp_path, suffix):
    vgg11 = stamped("vgg11", 10, seed=1)
    path = tmp_path / f"vgg11{suffix}"
    vgg11.save(path) if suffix == ".keras" else vgg11.save_weights(path)
    vgg13 = stamped("vgg13", 5, seed=2)
    before = {layer.name: layer.get_weights() for layer in vgg13.layers}
    report = init_from(vgg13, path)
    source = {layer.name: layer for layer in vgg11.layers}
    for layer in vgg13.layers:
        if not layer.weights:
            continue
        theirs = source.get(layer.name)
        if layer.name in report.loaded:
            for ours, expected in zip(layer.get_weights(), theirs.get_weights(), strict=True):
                np.testing.assert_array_equal(ours, expected)
        else:
            for ours, fresh in zip(layer.get_weights(), before[layer.name], strict=True):
                np.testing.assert_array_equal(ours, fresh)
    if suffix == ".keras":
        # Every layer whose name and shapes vgg11 shares (the paper's first four convolutions
        # and the fully connected layers, and more here) is loaded; the 5-class head is not.
        shared = [
            layer.name
            for layer in vgg13.layers
            if layer.weights
            and layer.name in source
            and [w.shape for w in layer.weights] == [w.shape for w in source[layer.name].weights]
        ]
        assert report.loaded == shared
        assert {"block1_conv1", "block5_conv2", "fc1", "fc2"} <= set(report.loaded)
        assert any(s.startswith("predictions (shapes") for s in report.skipped)
        assert any(s.startswith("block1_conv2 (not in") for s in report.skipped)


def test_freezing_until_or_from_a_layer(tmp_path):
    model = stamped("vgg11", 10, seed=0)
    frozen = freeze(model, until="block2_conv1")
    names = [layer.name for layer in model.layers]
    assert frozen == names[: names.index("block2_conv1") + 1]
    assert all(not model.get_layer(n).trainable for n in frozen)
    assert model.get_layer("block3_conv1").trainable
    model = stamped("vgg11", 10, seed=0)
    assert freeze(model, trainable_from="fc1") == names[: names.index("fc1")]
    with pytest.raises(ValueError, match="block1_conv1"):
        freeze(model, until="block1_conv")


@pytest.mark.slow
def test_fine_tune_a_run_with_a_new_head_via_the_command_line(tmp_path):
    from click.testing import CliRunner

    from kerascnn.cli import train_main

    common = ["--no-export", "--epochs", "1", "--output-dir", str(tmp_path)]
    common += ["--model-option", "variant=modern"]
    first = CliRunner().invoke(train_main, [*common, "--run-name", "a"])
    assert first.exit_code == 0, first.output
    args = [*common, "--run-name", "b", "--init-from", str(tmp_path / "a"), "--freeze-until", "c3"]
    second = CliRunner().invoke(train_main, args)
    assert second.exit_code == 0, second.output
    assert "init from" in second.stdout and "loaded" in second.stdout
    notes = json.loads((tmp_path / "b" / "metrics.json").read_text())["transfer"]
    assert notes[0].startswith("init from") and any(n.startswith("frozen") for n in notes)


@pytest.mark.slow
def test_mixed_bfloat16_run_trains_and_exports_float32(tmp_path):
    from kerascnn.application import run_training
    from kerascnn.runtime import load_artifact

    config = TrainConfig(
        epochs=1,
        run_name="mp",
        output_dir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "sm"),
        mixed_precision="bfloat16",
        model_options={"variant": "modern"},
    )
    outcome = run_training(config, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
    history = outcome.result.metrics["history"]["loss"]
    assert np.isfinite(history).all()
    trained = keras.saving.load_model(tmp_path / "runs" / "mp" / "checkpoints" / "last.keras")
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in trained.layers)
    model = keras.saving.load_model(tmp_path / "runs" / "mp" / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert all(w.dtype == "float32" for w in model.weights)
    images = np.zeros((2, 32, 32, 1), "float32")
    for artifact in ("model.keras", "1", "model.tflite"):
        loaded = load_artifact(tmp_path / "sm" / "mp" / artifact)
        probabilities = np.asarray(loaded.predict(images))
        assert probabilities.dtype == np.float32, artifact
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)


@pytest.mark.slow
def test_jit_compile_and_steps_per_execution_reach_the_training_step(tmp_path, monkeypatch):
    from kerascnn.application import run_training

    compiled = []
    original = keras.Model.compile

    def spy(self, *args, **kwargs):
        compiled.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", spy)
    config = TrainConfig(
        epochs=1,
        run_name="xla",
        output_dir=str(tmp_path / "runs"),
        export=False,
        jit_compile=True,
        steps_per_execution=4,
    )
    outcome = run_training(config, verbose=0)
    # The first compile is the training model's (the best checkpoint is compiled later to
    # evaluate, without them).
    assert compiled[0]["jit_compile"] is True and compiled[0]["steps_per_execution"] == 4
    assert outcome.result.metrics["epochs_completed"] == 1
    assert np.isfinite(outcome.result.metrics["history"]["loss"]).all()
