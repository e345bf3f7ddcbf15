"""Runs that survive: a real `kerascnn-train` killed with SIGKILL resumes where its backup
says; a completed run needs --overwrite; a diverging run stops with one line naming where."""

import json
import os
import subprocess

import keras
import pytest

from kerascnn.training.resume import BACKUP, STATE

EPOCHS = 6
COMMAND = [
    "kerascnn-train",
    "--epochs",
    str(EPOCHS),
    "--run-name",
    "r",
    "--no-export",
    "--model-option",
    "variant=modern",
    "--batch-size",
    "64",
]


def env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def run(args, cwd):
    return subprocess.run(
        args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
def test_sigkilled_run_resumes_at_its_last_completed_epoch(tmp_path, killed_after_epoch):
    state_path = tmp_path / "runs" / "r" / BACKUP / STATE
    saved_epoch = killed_after_epoch(COMMAND, tmp_path, env(), state_path, 2)
    run_dir = tmp_path / "runs" / "r"
    assert not (run_dir / "metrics.json").exists()
    assert 2 <= saved_epoch < EPOCHS
    # Whatever the kill interrupted, the files on disk are whole.
    for name in ("last.keras", "best.keras"):
        keras.saving.load_model(run_dir / "checkpoints" / name)

    done = run(COMMAND, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"after epoch {saved_epoch}" in done.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == saved_epoch
    assert metrics["epochs_completed"] == EPOCHS
    assert all(len(values) == EPOCHS for values in metrics["history"].values())
    # best.keras is the best validation epoch of the whole run, before and after the kill.
    history = metrics["history"]["val_accuracy"]
    assert metrics["best_epoch"] == history.index(max(history)) + 1
    assert metrics["validation"]["accuracy"] == pytest.approx(max(history), abs=1e-4)
    assert not (run_dir / BACKUP).exists()

    # The same command on the completed run trains nothing; other settings need --overwrite.
    finished = (run_dir / "metrics.json").read_bytes()
    again = run(COMMAND, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "the run was complete: nothing trained" in again.stdout
    assert (run_dir / "metrics.json").read_bytes() == finished
    changed = run([*COMMAND, "--seed", "1"], tmp_path)
    assert changed.returncode == 2
    assert changed.stderr.startswith("Error: ") and "completed run" in changed.stderr
    assert "--overwrite" in changed.stderr and len(changed.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_diverging_run_names_epoch_and_batch_in_one_line(tmp_path):
    args = ["kerascnn-train", "--epochs", "2", "--no-export", "--run-name", "nan"]
    args += ["--optimizer", "sgd", "--learning-rate", "1e30", "--model-option", "variant=modern"]
    done = run(args, tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("Error: training diverged") and "epoch 1, batch" in lines[0]
    assert not (tmp_path / "runs" / "nan" / "checkpoints" / "last.keras").exists()


def test_an_interrupted_run_with_other_settings_is_refused(tmp_path):
    from kerascnn.training.config import TrainConfig, write_yaml
    from kerascnn.training.resume import prepare_run_dir

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    write_yaml(run_dir / "config.yaml", TrainConfig(learning_rate=0.1).to_dict())
    with pytest.raises(ValueError, match="learning_rate"):
        prepare_run_dir(run_dir, False, TrainConfig(learning_rate=0.2).to_dict())
    # more epochs is a continuation; --overwrite starts afresh
    assert prepare_run_dir(run_dir, False, TrainConfig(learning_rate=0.1, epochs=50).to_dict())
    prepare_run_dir(run_dir, True, TrainConfig(learning_rate=0.2).to_dict())
    assert list(run_dir.iterdir()) == []
