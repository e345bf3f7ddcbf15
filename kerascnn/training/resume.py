"""Runs that survive being killed: the run directory's state and the per-epoch backup.

``RunBackup`` is Keras' ``BackupAndRestore`` with its writes made whole: each epoch's weights
and optimiser state go to ``backup/epoch-NNNN.keras`` (a hard link to the epoch's
``checkpoints/last.keras``, which holds both, so the model is serialised once per epoch; a
``.weights.h5`` of its own when no checkpoint was written), then ``backup/state.json``
(written atomically) names that file with the epoch counter, the history so far and the
best-checkpoint value. ``state.json`` is the commit point: a run killed at any moment resumes
from the last epoch it names, with a file that was complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import keras
import yaml

from kerascnn.errors import InvalidArgumentError
from kerascnn.files import link_atomically, write_text_atomically

BACKUP = "backup"
STATE = "state.json"
# Fields that may differ when an interrupted run is continued.
RESUMABLE_CHANGES = ("overwrite", "epochs", "export", "export_dir", "early_stopping")
# Fields that may differ when a completed run's export is finished.
EXPORT_SETTINGS = ("overwrite", "export", "export_dir")


def run_status(run_dir: Path) -> str:
    """``new`` (absent or empty), ``completed`` (has metrics.json) or ``interrupted``."""
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "new"
    return "completed" if (run_dir / "metrics.json").exists() else "interrupted"


def completed_with(run_dir: Path, config: dict) -> bool:
    """Whether ``run_dir`` holds a completed run of ``config`` (what its ``config.yaml``
    says, the export settings aside): the same command run again."""
    if run_status(Path(run_dir)) != "completed":
        return False
    saved = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
    return not _changed(saved, config, ignore=EXPORT_SETTINGS)


def prepare_run_dir(run_dir: str | Path, overwrite: bool, config: dict | None = None) -> Path:
    """An empty run directory, or an interrupted one to continue.

    A completed run needs ``overwrite`` (which starts afresh, as it does for an interrupted
    one). An interrupted run continues only with the configuration it started with (``config``,
    when given, is compared with its ``config.yaml``; a few fields such as ``epochs`` may
    change).
    """
    run_dir = Path(run_dir)
    status = run_status(run_dir)
    if status != "new" and overwrite:
        shutil.rmtree(run_dir)
    elif status == "completed":
        raise InvalidArgumentError(
            f"run directory {run_dir} holds a completed run; pass --overwrite to start it "
            f"afresh or choose another --run-name"
        )
    elif status == "interrupted" and config is not None:
        _check_same_config(run_dir, config)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _check_same_config(run_dir: Path, config: dict) -> None:
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    changed = _changed(saved, config, ignore=RESUMABLE_CHANGES)
    if changed:
        raise InvalidArgumentError(
            f"run directory {run_dir} holds an interrupted run with other settings "
            f"({', '.join(changed)}); run the same command to continue it, or pass --overwrite"
        )


def _changed(saved: dict, config: dict, ignore: tuple[str, ...]) -> list[str]:
    return [
        key
        for key, value in config.items()
        if key not in ignore and _plain(saved.get(key)) != _plain(value)
    ]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def read_state(backup_dir: Path) -> dict | None:
    path = Path(backup_dir) / STATE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


class RunBackup(keras.callbacks.BackupAndRestore):
    """Backs up the training state after every epoch and restores it when training starts
    (see the module docstring). Also carries what other callbacks need to continue: the
    history of every completed epoch, and ``checkpoints.best``/``best_epoch`` so that
    ``best.keras`` is only replaced by a better epoch after a resume."""

    def __init__(self, backup_dir: str | Path, checkpoints=None, notify=None):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.directory = Path(backup_dir)
        self.checkpoints = checkpoints
        self.notify = notify or (lambda line: None)  # tells the user a run resumes
        self.history: dict[str, list[float]] = {}
        self.restored_epoch = 0

    def on_train_begin(self, logs=None):
        state = read_state(self.directory)
        if state is None:
            return
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])
        epoch = int(state["epoch"])
        # How Keras' BackupAndRestore tells fit() which epoch to start from.
        model._initial_epoch = epoch
        self.restored_epoch = epoch
        self.notify(f"resuming {self.directory.parent} after epoch {epoch}")
        self.history = {k: list(v[:epoch]) for k, v in state["history"].items()}
        if self.checkpoints is not None:
            self.checkpoints.best = state.get("best")
            self.checkpoints.best_epoch = state.get("best_epoch")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not math.isfinite(float(logs.get("loss", 0.0))):
            return  # a diverged epoch is not worth continuing from
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.directory.mkdir(parents=True, exist_ok=True)
        name = self.write_epoch(epoch + 1)
        state = {
            "epoch": epoch + 1,
            "weights": name,
            "history": self.history,
            "best": getattr(self.checkpoints, "best", None),
            "best_epoch": getattr(self.checkpoints, "best_epoch", None),
        }
        write_text_atomically(self.directory / STATE, json.dumps(state) + "\n")
        for old in self.directory.glob("epoch-*"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def write_epoch(self, epoch: int) -> str:
        """This epoch's file in the backup: the checkpoint's, linked, when the checkpoints
        saved this epoch (they run first), else the weights and optimiser state saved."""
        checkpoints = self.checkpoints
        if checkpoints is not None and getattr(checkpoints, "saved_epoch", None) == epoch:
            name = f"epoch-{epoch:04d}.keras"
            link_atomically(checkpoints.last, self.directory / name)
            return name
        name = f"epoch-{epoch:04d}.weights.h5"
        temporary = self.directory / f".partial-{os.getpid()}.weights.h5"
        try:
            self.model.save_weights(temporary, overwrite=True)
            os.replace(temporary, self.directory / name)
        finally:
            temporary.unlink(missing_ok=True)
        return name

    def on_train_end(self, logs=None):
        pass  # kept until the run's results are written (remove_backup)


def remove_backup(run_dir: Path) -> None:
    """Called once metrics.json is written: the run is complete, the backup is not needed."""
    shutil.rmtree(Path(run_dir) / BACKUP, ignore_errors=True)
