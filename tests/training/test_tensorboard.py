"""What a run writes for TensorBoard, read back with TensorBoard's own event reader, and
`kerascnn tensorboard`."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import backend_context, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from kerascnn.cli import main, train_main
from kerascnn.data import load_dataset
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
    return out / "tb", result.output


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
    run, summary = run
    # The summary's hint is the project's own command, on the runs directory.
    assert f"(kerascnn tensorboard {run.parent})" in summary and "--logdir" not in summary
    check_per_epoch_scalars(run)
    check_graph_histograms_and_profile(run)
    check_augmented_input_grid_is_one_training_batch(run)
    check_validation_pictures_every_n_epochs_and_the_last(run)
    check_hparams_hold_the_configuration_and_the_final_metrics(run)


def check_per_epoch_scalars(run):
    """Exactly README's scalars: no evaluation_*_vs_iterations, no epoch_top1_error."""
    common = {"epoch_loss", "epoch_accuracy", "epoch_top5_accuracy"}
    for subdir, tags in (("train", common | {"epoch_learning_rate"}), ("validation", common)):
        found = events(run / "logs" / subdir)
        assert plugin_tags(found, "scalars") == tags
        for tag in tags:
            assert [e.step for e in found.Tensors(tag)] == list(range(EPOCHS))


def check_graph_histograms_and_profile(run):
    train = events(run / "logs" / "train")
    assert "keras" in plugin_tags(train, "graph_keras_model")
    # The op graph the Graphs tab draws: a GraphDef that parses, with LeNet-5's layers in it.
    # (Keras numbers the name scopes of a model called again: lenet5_1/c1_1/convolution.)
    nodes = [node.name for node in train.Graph().node]
    for layer in ("c1", "s2", "c3", "c5", "f6"):
        scope = re.compile(rf"(^|/){layer}(_\d+)?/")
        assert any(scope.search(name) for name in nodes), (layer, nodes[:20])
    # A histogram of each weight of the network (LeNet-5's layers c1 ... f6), every epoch.
    assert {"c1/kernel/histogram", "f6/kernel/histogram"} <= plugin_tags(train, "histograms")
    assert [e.step for e in train.Tensors("c1/kernel/histogram")] == list(range(EPOCHS))
    assert list((run / "logs" / "train" / "plugins" / "profile").rglob("*.xplane.pb"))


def check_augmented_input_grid_is_one_training_batch(run):
    train = events(run / "logs" / "train")
    assert "inputs/augmented" in plugin_tags(train, "images")
    # The labelled grid of one batch of 32x32x1 inputs, as input_grid draws it.
    names = load_dataset("digits").class_names
    labels = np.arange(BATCH) % len(names)
    expected = input_grid(np.zeros((BATCH, 32, 32, 1), "float32"), labels, names).shape
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
        # At most 900 px wide: TensorBoard's card (about 500 px) shrinks the 12-point text to
        # no less than about 9 px (README).
        assert shape[1] <= 900, (tag, shape)


def check_hparams_hold_the_configuration_and_the_final_metrics(run):
    logs = events(run / "logs")
    assert plugin_tags(logs, "hparams") == {
        hparams_metadata.SESSION_START_INFO_TAG,
        hparams_metadata.EXPERIMENT_TAG,
    }
    content = logs.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG).plugin_data.content
    session = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    hparams = {key: value for key, value in session.hparams.items()}
    check_hparams_order(logs, set(hparams))
    assert hparams["model"].string_value == "lenet5"
    assert hparams["epochs"].number_value == EPOCHS
    assert hparams["batch_size"].number_value == BATCH
    for name in ("run_name", "output_dir", "histogram_freq", "tb_images_every", "jit_compile"):
        assert name not in hparams
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("train", "validation", "test"):
        for name in ("loss", "accuracy", "top5_accuracy"):
            (event,) = logs.Tensors(f"final/{split}_{name}")
            assert event.step == EPOCHS
            assert float(tf.make_ndarray(event.tensor_proto)) == pytest.approx(
                metrics[split][name], abs=1e-6
            )


def check_hparams_order(logs, session_names):
    """The experiment written beside the session orders the dashboard's columns: model,
    optimiser, learning rate, batch size and epochs first; validation and test top-1 first."""
    content = logs.SummaryMetadata(hparams_metadata.EXPERIMENT_TAG).plugin_data.content
    experiment = hparams_metadata.parse_experiment_plugin_data(content)
    written = [info.name for info in experiment.hparam_infos]
    assert written[:5] == ["model", "optimizer", "learning_rate", "batch_size", "epochs"]
    assert set(written) == session_names
    metrics = [info.name.tag for info in experiment.metric_infos]
    assert metrics[:2] == ["final/validation_accuracy", "final/test_accuracy"]
    # The run's final scalars are exactly those columns (no final/*_error duplicates).
    assert plugin_tags(logs, "scalars") == set(metrics)
    # TensorBoard's HParams backend sorts the columns by (not differs, name): the five stay
    # in front of the others.
    backend_context._sort_and_reduce_to_hparams_limit(experiment)
    shown = [info.name for info in experiment.hparam_infos]
    assert set(shown[:5]) == set(written[:5])


def test_validation_pictures_are_due_every_n_epochs_and_at_the_last():
    due = ValidationImages("unused", None, [], every=5, epochs=12)
    assert [e + 1 for e in range(12) if due.due(e)] == [5, 10, 12]
    last_only = ValidationImages("unused", None, [], every=0, epochs=3)
    assert [e + 1 for e in range(3) if last_only.due(e)] == [3]


def test_input_grid_titles_each_image_with_its_class_name():
    images = np.zeros((4, 8, 8, 1), "float32")
    labels = np.arange(4)
    named = input_grid(images, labels, ["zero", "one", "two", "three"])
    unnamed = input_grid(images, labels, [""] * 4)
    assert named.shape == unnamed.shape
    # Black images on white: only the titles differ, and they are drawn in dark ink.
    differ = (named != unnamed).any(axis=-1)
    assert differ.any() and named[differ].min() < 128
    # Mixed labels (mixup/cutmix) are titled with the class of the largest share.
    mixed = np.eye(4, dtype="float32")[labels] * 0.7 + 0.075
    assert np.array_equal(input_grid(images, mixed, ["zero", "one", "two", "three"]), named)


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


def test_kerascnn_tensorboard_becomes_that_command(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(os, "execv", lambda path, command: ran.append((path, command)))
    result = invoke(main, ["tensorboard", str(tmp_path), "--port", "6123"])
    assert result.exit_code == 0, result.output
    command = tensorboard_command(str(tmp_path), 6123)
    assert ran == [(command[0], command)]
    assert "http://127.0.0.1:6123/" in result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serves(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
            return True
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads child processes from /proc")
def test_sigterm_to_kerascnn_tensorboard_stops_tensorboard(tmp_path):
    """The process a user (or a process manager) started is TensorBoard itself: a SIGTERM to
    its PID leaves nothing serving and no child behind."""
    port = free_port()
    command = [sys.executable, "-m", "kerascnn.cli", "tensorboard", str(tmp_path), "--port"]
    process = subprocess.Popen(
        [*command, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 240  # two TensorFlow imports on a loaded machine
        while not serves(port):
            assert process.poll() is None, "kerascnn tensorboard exited before serving"
            assert time.monotonic() < deadline, "TensorBoard did not serve in time"
            time.sleep(1)
        left = children(process.pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        assert not serves(port)
        # TensorBoard's data server leaves once its stdin (from TensorBoard) closes.
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in left):
            assert time.monotonic() < deadline, f"left running: {left}"
            time.sleep(0.5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_tensorboard_on_a_missing_directory_is_a_one_line_error(tmp_path):
    result = invoke(main, ["tensorboard", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and result.output.startswith("Error: no run or runs directory")
