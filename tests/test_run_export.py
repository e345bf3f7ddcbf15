"""`kerascnn-train` off TensorFlow: a JAX run killed with SIGKILL resumes, finishes with its
summary, and is exported by a TensorFlow child process; without TensorFlow the export is
skipped with one line; a failed child export is one line too. `kerascnn export` on JAX
exports in a TensorFlow child process the same way."""

import json
import os
import subprocess
from pathlib import Path

import pytest

import kerascnn
from kerascnn import run_export
from kerascnn.errors import ExportError
from kerascnn.training.resume import BACKUP, STATE

EPOCHS = 3
COMMAND = [
    "kerascnn-train",
    "--epochs",
    str(EPOCHS),
    "--run-name",
    "j",
    "--output-dir",
    "runs",
    "--export-dir",
    "exported",
    "--model-option",
    "variant=modern",
    "--batch-size",
    "64",
]


def jax_env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "jax"}


@pytest.mark.slow
def test_a_jax_run_killed_resumes_and_is_exported_by_tensorflow(tmp_path, killed_after_epoch):
    state_path = tmp_path / "runs" / "j" / BACKUP / STATE
    saved_epoch = killed_after_epoch(COMMAND, tmp_path, jax_env(), state_path, 1)
    run_dir = tmp_path / "runs" / "j"
    assert 1 <= saved_epoch < EPOCHS and not (run_dir / "metrics.json").exists()

    done = subprocess.run(
        COMMAND, cwd=tmp_path, env=jax_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"after epoch {saved_epoch}" in done.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == EPOCHS and metrics["resumed_from_epoch"] == saved_epoch
    assert all(len(values) == EPOCHS for values in metrics["history"].values())
    assert json.loads((run_dir / "metadata.json").read_text())["backend"] == "jax"
    # TensorBoard's scalars were written by the JAX run.
    assert list((run_dir / "logs" / "train").glob("events.out.tfevents.*"))

    # The summary names the export, made by the TensorFlow child from model.keras.
    exported = tmp_path / "exported" / "j"
    assert f"export               {Path('exported') / 'j'}" in done.stdout
    assert "parity tflite" in done.stdout
    assert (exported / "1" / "saved_model.pb").is_file() and (exported / "model.tflite").is_file()
    metadata = json.loads((exported / "metadata.json").read_text())
    assert metadata["backend"] == "jax"
    assert metadata["metrics"]["epochs_completed"] == EPOCHS
    for figures in metadata["parity"].values():
        assert figures["images"] > 0 and figures["top1_agreement"] == 1.0


class FakeResult:
    run_dir = Path("runs/r")


def test_without_tensorflow_the_export_is_skipped_with_one_line(monkeypatch):
    monkeypatch.setattr(run_export.keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(run_export.importlib.util, "find_spec", lambda name: None)
    found = run_export.export_run(FakeResult(), Path("exported/r"))
    assert isinstance(found, run_export.Skipped)
    assert "needs TensorFlow" in found.note and "kerascnn export runs/r" in found.note
    assert "\n" not in found.note


@pytest.mark.parametrize(
    "stderr, expected",
    [
        ("W0000 noise\nError: export directory x holds another model's export\n", "another model"),
        ("Traceback (most recent call last):\n  ...\nOSError: disk full\n", "OSError: disk full"),
    ],
)
def test_a_failed_child_export_is_one_line(monkeypatch, stderr, expected):
    def failed(command, **kwargs):
        assert kwargs["env"]["KERAS_BACKEND"] == "tensorflow"
        assert command[1:3] == ["-m", "kerascnn.run_export"]
        return subprocess.CompletedProcess(command, 2, stdout="", stderr=stderr)

    monkeypatch.setattr(run_export.subprocess, "run", failed)
    with pytest.raises(ExportError) as error:
        run_export.export_in_child(Path("runs/r"), Path("exported/r"))
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
def test_kerascnn_export_on_jax_runs_in_a_tensorflow_process(tmp_path):
    kerascnn.create_model("lenet5").save(tmp_path / "lenet.keras")
    command = [
        "kerascnn",
        "export",
        "lenet.keras",
        "--dataset",
        "digits",
        "--export-dir",
        "exported",
    ]
    done = subprocess.run(command, cwd=tmp_path, env=jax_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    exported = tmp_path / "exported" / "lenet"
    assert f"exported to {Path('exported') / 'lenet'}" in done.stdout
    assert "parity tflite" in done.stdout
    assert (exported / "1" / "saved_model.pb").is_file() and (exported / "model.tflite").is_file()
    parity = json.loads((exported / "metadata.json").read_text())["parity"]
    assert parity["tflite"]["images"] > 0


def test_kerascnn_export_without_tensorflow_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(run_export.keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(run_export.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ExportError, match="needs TensorFlow.*backend jax"):
        run_export.export_anywhere(tmp_path / "model.keras", tmp_path / "exported")
