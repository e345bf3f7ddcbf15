"""What a run writes for TensorBoard, beyond Keras's per-epoch scalars.

Under ``RUN_DIR/logs``:

- ``train/`` and ``validation/``: Keras's ``epoch_loss``, ``epoch_accuracy``,
  ``epoch_top5_accuracy``, ``epoch_learning_rate`` (train), the model graph, weight
  histograms with ``--histogram-freq N``, and a profile of ``--profile-batches A,B``
  (``train/plugins/profile``);
- ``train/``: ``inputs/augmented``, a grid of one training batch as the model is fed it
  (after the pipeline's resizing and augmentation), at step 0;
- ``validation/``: ``validation/confusion_matrix`` and ``validation/misclassified`` (the
  wrong validation images titled ``true -> predicted (p)``) every ``--tb-images-every``
  epochs and at the last one, at the epoch's step;
- the ``logs/`` directory itself: the run's configuration as HParams and the final metrics
  as ``final/<split>_<metric>`` scalars, so the HParams dashboard of ``tensorboard --logdir
  runs`` lists the runs side by side.

The pictures are drawn by ``kerascnn.plotting``, as the run report's are, so TensorBoard and
``report.html`` draw the same things.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from kerascnn import plotting
from kerascnn.data import SPLITS
from kerascnn.errors import InvalidArgumentError
from kerascnn.evaluation import confusion_matrix
from kerascnn.settings import check, setting
from kerascnn.training.auxiliary import inference_model


def parse_batches(text: str) -> tuple[int, int]:
    """``A,B`` (batches A to B, 1-based) or ``A`` (one batch)."""
    try:
        parts = [int(p) for p in str(text).split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or not 1 <= parts[0] <= parts[-1]:
        raise ValueError(f"expected A,B with 1 <= A <= B, got {text!r}")
    return (parts[0], parts[-1])


@dataclass
class LoggingConfig:
    """What a run writes for TensorBoard beyond the scalars (module docstring)."""

    histogram_freq: int = setting(0, "Weight histograms every N epochs.", low=0)
    tb_images_every: int = setting(
        5, "Confusion matrix and misclassified images every N epochs and at the last.", low=0
    )
    profile_batches: tuple[int, int] | None = setting(
        None, "Profile batches A to B.", shown="none", parse=parse_batches, metavar="A,B"
    )

    def __post_init__(self) -> None:
        check(self)
        if self.profile_batches is not None:
            first, last = self.profile_batches = tuple(self.profile_batches)
            if not 1 <= first <= last:
                raise InvalidArgumentError(
                    f"profile_batches must be two batch numbers A,B with 1 <= A <= B; "
                    f"received {self.profile_batches!r}"
                )


# At most this many images in the training grid and the misclassified grid.
GRID_IMAGES = 32
MISCLASSIFIED = 24
# Validation images kept in memory for the pictures (the first ones of the split).
PICTURE_IMAGES = 2000


class ImageWriter(keras.callbacks.Callback):
    """A callback that writes pictures to one event file under ``log_dir``, opened at the
    start of training and closed at its end."""

    def __init__(self, log_dir: str | Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.writer = None

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        """One uint8 (H, W, 3) picture as ``tf.summary.image`` ``tag`` at ``step``."""
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(str(self.log_dir))
        with self.writer.as_default():
            tf.summary.image(tag, np.asarray(picture, "uint8")[None], step=step)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def input_grid(images: np.ndarray, limit: int = GRID_IMAGES) -> np.ndarray:
    """Raw-pixel images (N, H, W, C) in 0-255 as one uint8 grid, each enlarged for sight."""
    return plotting.grid([plotting.enlarge(plotting.to_rgb(image)) for image in images[:limit]])


class TrainingImages(ImageWriter):
    """At the start of training, a grid of one batch of ``dataset`` (a training pipeline
    built like the one ``fit`` gets, so the pictures are what the model sees) under
    ``log_dir`` as ``inputs/augmented``."""

    def __init__(self, log_dir: str | Path, dataset):
        super().__init__(log_dir)
        self.dataset = dataset

    def on_train_begin(self, logs=None):
        for images, _ in self.dataset.take(1).as_numpy_iterator():
            self.image("inputs/augmented", input_grid(images), step=0)


class ValidationImages(ImageWriter):
    """Every ``every`` epochs and at the last one, the confusion matrix of the validation
    split and a grid of its misclassified images, under ``log_dir`` at the epoch's step."""

    def __init__(
        self,
        log_dir: str | Path,
        dataset,
        class_names: list[str],
        *,
        every: int,
        epochs: int,
    ):
        super().__init__(log_dir)
        self.dataset = dataset
        self.class_names = list(class_names)
        self.every = every
        self.epochs = epochs
        self.images: np.ndarray | None = None
        self.labels: np.ndarray | None = None

    def due(self, epoch: int) -> bool:
        """Zero-based ``epoch``: every ``every``-th epoch and the last one."""
        return (self.every > 0 and (epoch + 1) % self.every == 0) or epoch + 1 == self.epochs

    def on_train_begin(self, logs=None):
        images, labels, kept = [], [], 0
        for batch_images, batch_labels in self.dataset.as_numpy_iterator():
            images.append(batch_images)
            labels.append(batch_labels)
            kept += len(batch_labels)
            if kept >= PICTURE_IMAGES:
                break
        self.images, labels = np.concatenate(images), np.concatenate(labels)
        # Under mixup/cutmix the pipeline gives one-hot labels (unmixed for validation).
        self.labels = labels.argmax(-1) if labels.ndim == 2 else labels

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        network = inference_model(self.model)
        logits = np.concatenate(
            [
                keras.ops.convert_to_numpy(network(self.images[i : i + 256], training=False))
                for i in range(0, len(self.images), 256)
            ]
        )
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits.astype("float32")))
        predictions = probabilities.argmax(-1)
        names = self.class_names
        matrix = confusion_matrix(self.labels, predictions, len(names))
        picture = plotting.confusion_picture(
            matrix, names, f"confusion matrix (validation, epoch {epoch + 1})"
        )
        self.image("validation/confusion_matrix", picture, step=epoch)
        wrong = np.flatnonzero(predictions != self.labels)[:MISCLASSIFIED]
        if len(wrong):
            picture = plotting.panels(
                [plotting.to_rgb(self.images[i]) for i in wrong],
                [
                    f"{names[self.labels[i]]} -> {names[predictions[i]]} "
                    f"({probabilities[i, predictions[i]]:.2f})"
                    for i in wrong
                ],
                columns=min(8, len(wrong)),
            )
        else:
            picture = np.full((32, 32, 3), 255, "uint8")  # none wrong: an empty white tile
        self.image("validation/misclassified", picture, step=epoch)


def profile_batches(value: Any) -> tuple[int, int] | int:
    """``profile_batch`` for Keras's callback: ``(A, B)``, or 0 (no profile) for None."""
    return tuple(value) if value else 0


def callbacks(
    logging: LoggingConfig,
    log_dir: str | Path,
    *,
    epochs: int,
    train_images,
    validation_data,
    class_names: list[str],
    distribution=None,
) -> list[keras.callbacks.Callback]:
    """The TensorBoard callbacks of a run: Keras's (scalars, graph, histograms, profile),
    the training-input grid and the periodic validation pictures.

    Args:
        logging: the run's TensorBoard settings.
        log_dir: ``RUN_DIR/logs``.
        epochs: the run's length (the validation pictures are drawn at its last epoch).
        train_images: a training pipeline built like the one ``fit`` gets (not the same
            object, so drawing from it leaves the training order untouched).
        validation_data: the validation pipeline.
        class_names: the dataset's class names, for the pictures' labels.
        distribution: the run's ``Distribution``; under multi-worker the validation
            pictures are left out (the model's variables span every worker's devices, so it
            cannot run eagerly on one worker's images during ``fit``).
    """
    log_dir = Path(log_dir)
    found = [
        keras.callbacks.TensorBoard(
            log_dir=str(log_dir),
            write_graph=True,
            histogram_freq=logging.histogram_freq,
            profile_batch=profile_batches(logging.profile_batches),
        ),
        TrainingImages(log_dir / "train", train_images),
        ValidationImages(
            log_dir / "validation",
            validation_data,
            class_names,
            every=logging.tb_images_every,
            epochs=epochs,
        ),
    ]
    if distribution is not None and distribution.multi_worker:
        found.pop()
    return found


def hparam_value(value: Any) -> bool | int | float | str:
    """A configuration value as HParams accepts it (bool, number or string)."""
    if isinstance(value, bool | int | float | str):
        return value
    if value is None:
        return "none"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "none"
    if isinstance(value, list | tuple):
        return "x".join(str(v) for v in value)
    return str(value)


# Configuration fields that name places or behaviour of the command, not the experiment.
NOT_HPARAMS = ("run_name", "output_dir", "export_dir", "export", "overwrite")


def write_hparams(
    log_dir: str | Path, config: dict[str, Any], metrics: dict[str, Any], step: int
) -> None:
    """The run's configuration as an HParams session under ``log_dir``, and its final
    metrics (``metrics[split][name]``, numbers only) as ``final/<split>_<name>`` scalars."""
    hparams = {k: hparam_value(v) for k, v in config.items() if k not in NOT_HPARAMS}
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams(hparams, trial_id=Path(log_dir).parent.name)
        for split in SPLITS:
            for name, value in metrics.get(split, {}).items():
                tf.summary.scalar(f"final/{split}_{name}", float(value), step=step)
    writer.close()


def tensorboard_command(runs_dir: str | Path, port: int) -> list[str]:
    """The command ``kerascnn tensorboard`` runs: TensorBoard on ``runs_dir``, bound to the
    loopback interface only (the dashboard has no authentication)."""
    return [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(runs_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
