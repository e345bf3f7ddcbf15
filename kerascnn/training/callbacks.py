"""Callbacks that keep a run's files whole."""

from __future__ import annotations

import os
from pathlib import Path

import keras


def save_atomically(model: keras.Model, path: str | Path) -> None:
    """Save a ``.keras`` file under a temporary name, then rename it into place, so a run
    killed mid-save never leaves a truncated checkpoint where a good one was."""
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.partial-{os.getpid()}.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class Checkpoints(keras.callbacks.Callback):
    """Writes ``last.keras`` after every epoch and ``best.keras`` whenever ``monitor``
    improves (higher is better for accuracies, lower otherwise)."""

    def __init__(self, directory: str | Path, monitor: str = "val_accuracy"):
        super().__init__()
        self.directory = Path(directory)
        self.monitor = monitor
        self.higher_is_better = "acc" in monitor
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_train_begin(self, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        save_atomically(self.model, self.directory / "last.keras")
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        improved = self.best is None or (
            value > self.best if self.higher_is_better else value < self.best
        )
        if improved:
            self.best, self.best_epoch = value, epoch + 1
            save_atomically(self.model, self.directory / "best.keras")


class RecordLearningRate(keras.callbacks.Callback):
    """Puts the optimiser's learning rate at the end of each epoch into the epoch's logs, so
    the history in ``metrics.json`` (and the run report drawn from it) has it beside the loss.
    A schedule is read at the optimiser's current step."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        rate = self.model.optimizer.learning_rate
        logs.setdefault("learning_rate", float(keras.ops.convert_to_numpy(rate)))
