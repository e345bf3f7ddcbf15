"""Weight averaging: an exponential moving average of the weights (``--ema DECAY``, the Keras
optimisers' own ``use_ema``) and stochastic weight averaging over the last epochs
(``--swa-epochs N``; Izmailov et al. 2018).

EMA: ``keras.callbacks.SwapEMAWeights(swap_on_epoch=True)`` puts the averaged weights in the
model for validation and for the end of each epoch, so the checkpoints (and therefore the
best checkpoint that becomes ``model.keras`` and the export) hold the averaged weights.

SWA: the trainable weights at the end of each of the last N epochs are averaged; at the end of
training the model takes the average, its batch-normalisation statistics are recomputed over
one pass of the training split (``batchnorm``), and it is saved as ``checkpoints/swa.keras``,
which the run evaluates and exports instead of the best checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from kerascnn.errors import InvalidArgumentError
from kerascnn.training.batchnorm import recompute_statistics
from kerascnn.training.callbacks import save_atomically

SWA_CHECKPOINT = "swa.keras"


def check(ema: float | None, swa_epochs: int | None, epochs: int) -> None:
    if ema is not None and swa_epochs is not None:
        raise InvalidArgumentError("give --ema or --swa-epochs, not both")
    if swa_epochs is not None and swa_epochs > epochs:
        raise InvalidArgumentError(
            f"--swa-epochs {swa_epochs} is more than the run's {epochs} epochs"
        )


class StochasticWeightAveraging(keras.callbacks.Callback):
    """The running mean of the trainable weights at the end of each epoch from
    ``first_epoch`` (0-based) on; at the end of training, the model with that mean and
    recomputed batch statistics, saved to ``path``."""

    def __init__(self, first_epoch: int, path: str | Path, dataset, steps: int):
        super().__init__()
        self.first_epoch, self.path = first_epoch, Path(path)
        self.dataset, self.steps = dataset, steps
        self.average: list[np.ndarray] | None = None
        self.count = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.first_epoch:
            return
        weights = [np.asarray(v) for v in self.model.trainable_variables]
        self.count += 1
        if self.average is None:
            self.average = weights
        else:
            self.average = [
                a + (w - a) / self.count for a, w in zip(self.average, weights, strict=True)
            ]

    def on_train_end(self, logs=None):
        if not self.count:  # stopped before the averaging began
            return
        for variable, value in zip(self.model.trainable_variables, self.average, strict=True):
            variable.assign(value)
        recompute_statistics(self.model, self.dataset.take(self.steps))
        save_atomically(self.model, self.path)


def callbacks(
    ema: float | None, swa_epochs: int | None, epochs: int, checkpoints: Path, dataset, steps: int
) -> list:
    """What the options ask for, to go before the checkpoints in the callback list."""
    if ema is not None:
        return [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]
    if swa_epochs is not None:
        return [
            StochasticWeightAveraging(
                epochs - swa_epochs, checkpoints / SWA_CHECKPOINT, dataset, steps
            )
        ]
    return []


def final_checkpoint(checkpoints: Path) -> Path:
    """The checkpoint a run evaluates and exports: the SWA model when there is one, else the
    best epoch's."""
    swa = checkpoints / SWA_CHECKPOINT
    return swa if swa.is_file() else checkpoints / "best.keras"
