"""Distribution strategies: MirroredStrategy on two logical CPU devices, and two
multi-worker processes on 127.0.0.1 (Keras's DataParallel on the JAX backend)."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import train_main
from kerascnn.errors import InvalidArgumentError
from kerascnn.training.distribute import Cluster, resolve_cluster


def environment(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}
    env.pop("TF_CONFIG", None)
    return env


def test_cluster_from_flags_and_from_tf_config():
    assert resolve_cluster("10.0.0.1:1234", 2, 1, environ={}) == Cluster("10.0.0.1:1234", 2, 1)
    tf_config = json.dumps(
        {"cluster": {"worker": ["h0:2222", "h1:2222", "h2:2222"]}, "task": {"index": 2}}
    )
    assert resolve_cluster(environ={"TF_CONFIG": tf_config}) == Cluster("h0:2222", 3, 2)
    assert resolve_cluster(environ={}) is None


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("h:1", 2, None), "needs all of"),
        (("h", 2, 0), "HOST:PORT"),
        (("h:99999", 2, 0), "HOST:PORT"),
        (("h:1", 2, 2), "worker_index must be 0 to 1"),
    ],
)
def test_bad_cluster_settings_are_named(arguments, message):
    with pytest.raises(InvalidArgumentError, match=message):
        resolve_cluster(*arguments, environ={})


def test_bad_tf_config_is_named():
    with pytest.raises(InvalidArgumentError, match="TF_CONFIG must be JSON"):
        resolve_cluster(environ={"TF_CONFIG": "{not json"})


def invoke(args):
    return CliRunner().invoke(train_main, args, catch_exceptions=False)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "multi-worker"], "KERAS_BACKEND=jax"),
        (["--strategy", "everywhere"], "--strategy"),
        (["--num-workers", "0"], "--num-workers"),
        (["--strategy", "tpu"], "no TPU found"),
    ],
)
def test_strategy_mistakes_are_one_line_errors(tmp_path, args, message):
    result = invoke([*args, "--output-dir", str(tmp_path), "--no-export"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error:") and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


MIRRORED = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    # Two logical CPU devices, before anything else initialises TensorFlow.
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from kerascnn.cli import train_main

    train_main(sys.argv[1:])
    """
)


@pytest.mark.slow
def test_mirrored_strategy_trains_with_two_replicas(tmp_path):
    args = ["--strategy", "mirrored", "--epochs", "1", "--batch-size", "64", "--run-name", "m"]
    args += ["--no-export"]
    args += ["--output-dir", str(tmp_path), "--tb-images-every", "1"]
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED, *args],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["distribution"]["strategy"] == "mirrored"
    assert metadata["distribution"]["replicas"] == 2
    assert len(metadata["distribution"]["devices"]) == 2
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1
    # One epoch of LeNet-5 learns something: better than chance (10 classes).
    assert metrics["test"]["accuracy"] > 0.2


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_workers_train_in_step_and_end_with_identical_weights(tmp_path):
    """Two `kerascnn-train --strategy multi-worker` processes on 127.0.0.1 (CPU, gloo)."""
    pytest.importorskip("jax")
    coordinator = f"127.0.0.1:{free_port()}"
    workers = []
    for index in range(2):
        args = ["--strategy", "multi-worker", "--coordinator", coordinator]
        args += ["--num-workers", "2", "--worker-index", str(index)]
        args += ["--epochs", "2", "--batch-size", "64", "--run-name", "mw"]
        args += ["--output-dir", str(tmp_path / "runs")]
        args += ["--export-dir", str(tmp_path / "exports")]
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "kerascnn.cli", "train", *args],
                cwd=tmp_path,
                env=environment(KERAS_BACKEND="jax", TMPDIR=str(tmp_path)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=400)[0])
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            raise
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]

    # Worker 0 owns the run directory; worker 1 wrote its copy to a scratch directory.
    chief = tmp_path / "runs" / "mw"
    (scratch,) = tmp_path.glob("kerascnn-mw-worker1-*")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mw"]
    assert not (tmp_path / "exports").exists()  # export is left to `kerascnn export`
    assert "kerascnn export" in outputs[0]

    runs = [chief, scratch]
    metrics = [json.loads((run / "metrics.json").read_text()) for run in runs]
    metadata = [json.loads((run / "metadata.json").read_text()) for run in runs]
    for index, meta in enumerate(metadata):
        assert meta["distribution"]["strategy"] == "multi-worker"
        assert meta["distribution"]["replicas"] == 2
        assert meta["distribution"]["worker_index"] == index
    # The same steps: the same number of epochs and the same loss history on both.
    assert metrics[0]["epochs_completed"] == metrics[1]["epochs_completed"] == 2
    assert metrics[0]["history"] == metrics[1]["history"]
    # Training did something: the loss fell.
    assert metrics[0]["history"]["loss"][-1] < metrics[0]["history"]["loss"][0]
    # Identical weights: each worker's model.keras (the best epoch's), and its last checkpoint.
    for name in ("model.keras", "checkpoints/last.keras"):
        first, second = (keras.saving.load_model(run / name).get_weights() for run in runs)
        assert len(first) == len(second) > 0
        for a, b in zip(first, second, strict=True):
            np.testing.assert_array_equal(a, b)
