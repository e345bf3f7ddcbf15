"""What a run writes for TensorBoard, read back with TensorBoard's own event reader, and
`kerascnn tensorboard`."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from kerascnn.cli import main, train_main
from kerascnn.training.tensorboard import (
    ValidationImages,
    hparam_value,
    input_grid,
    tensorboard_command,
)

EPOCHS = 3
IMAGES_EVERY = 2
BATCH = 16


def invoke(command, args):
    return CliRunner().invoke(command, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """LeNet-5 on digits, 3 epochs, with every TensorBoard option on."""
    out = tmp_path_factory.mktemp("tb")
    args = ["--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--run-name", "tb"]
    args += ["--output-dir", str(out), "--no-export", "--histogram-freq", "1"]
    args += ["--tb-images-every", str(IMAGES_EVERY), "--profile-batches", "3,4"]
    result = invoke(train_main, args)
    assert result.exit_code == 0, result.output[-3000:]
    return out / "tb"


def events(directory):
    accumulator = EventAccumulator(str(directory), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


def plugin_tags(accumulator, plugin):
    return {
        tag
        for tag in accumulator.Tags()["tensors"]
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name == plugin
    }


def png_shape(accumulator, tag, step):
    (event,) = [e for e in accumulator.Tensors(tag) if e.step == step]
    width, height, png = tf.make_ndarray(event.tensor_proto)[:3]
    return tf.io.decode_png(png).shape, (int(height), int(width))


@pytest.mark.slow
def test_a_run_logs_every_tag_tensorboard_shows(run):
    """One training run (a module fixture would train once per xdist worker) checked for
    everything the README's TensorBoard section lists."""
    check_per_epoch_scalars(run)
    check_graph_histograms_and_profile(run)
    check_augmented_input_grid_is_one_training_batch(run)
    check_validation_pictures_every_n_epochs_and_the_last(run)
    check_hparams_hold_the_configuration_and_the_final_metrics(run)


def check_per_epoch_scalars(run):
    common = {"epoch_loss", "epoch_accuracy", "epoch_top5_accuracy"}
    for subdir, tags in (("train", common | {"epoch_learning_rate"}), ("validation", common)):
        found = events(run / "logs" / subdir)
        assert tags <= plugin_tags(found, "scalars")
        for tag in tags:
            assert [e.step for e in found.Tensors(tag)] == list(range(EPOCHS))


def check_graph_histograms_and_profile(run):
    train = events(run / "logs" / "train")
    assert "keras" in plugin_tags(train, "graph_keras_model")
    # A histogram of each weight of the network (LeNet-5's layers c1 ... f6), every epoch.
    assert {"c1/kernel/histogram", "f6/kernel/histogram"} <= plugin_tags(train, "histograms")
    assert [e.step for e in train.Tensors("c1/kernel/histogram")] == list(range(EPOCHS))
    assert list((run / "logs" / "train" / "plugins" / "profile").rglob("*.xplane.pb"))


def check_augmented_input_grid_is_one_training_batch(run):
    train = events(run / "logs" / "train")
    assert "inputs/augmented" in plugin_tags(train, "images")
    # The grid of one batch of 32x32x1 inputs, as input_grid draws it.
    expected = input_grid(np.zeros((BATCH, 32, 32, 1), "float32")).shape
    shape, stated = png_shape(train, "inputs/augmented", 0)
    assert shape == expected and stated == expected[:2]


def check_validation_pictures_every_n_epochs_and_the_last(run):
    validation = events(run / "logs" / "validation")
    steps = [e for e in range(EPOCHS) if (e + 1) % IMAGES_EVERY == 0 or e + 1 == EPOCHS]
    for tag in ("validation/confusion_matrix", "validation/misclassified"):
        assert tag in plugin_tags(validation, "images")
        assert [e.step for e in validation.Tensors(tag)] == steps
        shape, stated = png_shape(validation, tag, steps[-1])
        assert shape[-1] == 3 and shape[:2] == stated


def check_hparams_hold_the_configuration_and_the_final_metrics(run):
    logs = events(run / "logs")
    (tag,) = plugin_tags(logs, "hparams")
    content = logs.SummaryMetadata(tag).plugin_data.content
    session = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    hparams = {key: value for key, value in session.hparams.items()}
    assert hparams["model"].string_value == "lenet5"
    assert hparams["epochs"].number_value == EPOCHS
    assert hparams["batch_size"].number_value == BATCH
    assert "run_name" not in hparams and "output_dir" not in hparams
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("train", "validation", "test"):
        for name in ("loss", "accuracy", "top5_accuracy"):
            (event,) = logs.Tensors(f"final/{split}_{name}")
            assert event.step == EPOCHS
            assert float(tf.make_ndarray(event.tensor_proto)) == pytest.approx(
                metrics[split][name], abs=1e-6
            )


def test_validation_pictures_are_due_every_n_epochs_and_at_the_last():
    due = ValidationImages("unused", None, [], every=5, epochs=12)
    assert [e + 1 for e in range(12) if due.due(e)] == [5, 10, 12]
    last_only = ValidationImages("unused", None, [], every=0, epochs=3)
    assert [e + 1 for e in range(3) if last_only.due(e)] == [3]


def test_hparam_values_are_numbers_strings_or_booleans():
    assert hparam_value(3) == 3 and hparam_value(True) is True and hparam_value("sgd") == "sgd"
    assert hparam_value(None) == "none"
    assert hparam_value((32, 40)) == "32x40"
    assert hparam_value({"variant": "modern", "aux_logits": False}) == (
        "aux_logits=False,variant=modern"
    )


@pytest.mark.parametrize("value", ["4,2", "0,3", "a,b", "1,2,3"])
def test_bad_profile_batches_are_a_one_line_error(value):
    result = invoke(train_main, ["--profile-batches", value])
    assert result.exit_code == 2
    assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1


def test_tensorboard_command_binds_to_loopback():
    command = tensorboard_command("some/runs", 6123)
    assert command[:3] == [sys.executable, "-m", "tensorboard.main"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--logdir") + 1] == "some/runs"
    assert command[command.index("--port") + 1] == "6123"


def test_kerascnn_tensorboard_runs_that_command(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(subprocess, "call", lambda command: ran.append(command) or 0)
    result = invoke(main, ["tensorboard", str(tmp_path), "--port", "6123"])
    assert result.exit_code == 0, result.output
    assert ran == [tensorboard_command(str(tmp_path), 6123)]
    assert "http://127.0.0.1:6123/" in result.output


def test_tensorboard_on_a_missing_directory_is_a_one_line_error(tmp_path):
    result = invoke(main, ["tensorboard", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and result.output.startswith("Error: no runs directory")
