"""What a run writes for TensorBoard, and ``kerascnn tensorboard``.

Under ``RUN_DIR/logs``:

- ``train/`` and ``validation/``: ``epoch_loss``, ``epoch_accuracy``,
  ``epoch_top5_accuracy``, ``epoch_learning_rate`` (train) and nothing else per epoch; the
  op graph of the model's forward pass and Keras's conceptual graph (train), weight
  histograms with ``--histogram-freq N``, and a profile of ``--profile-batches A,B``
  (``train/plugins/profile``);
- ``train/``: ``inputs/augmented``, one training batch as the model is fed it (after the
  pipeline's resizing and augmentation), each image titled with its class, at step 0;
- ``validation/``: ``validation/confusion_matrix`` and ``validation/misclassified`` (the
  wrong validation images titled ``true`` over ``-> predicted (p)``) every
  ``--tb-images-every`` epochs and at the last one, at the epoch's step;
- the ``logs/`` directory itself: the run's configuration as HParams (with the experiment
  that puts model, optimiser, learning rate, batch size and epochs, and the final validation
  and test top-1, first) and the final metrics as ``final/<split>_<metric>`` scalars, so
  ``kerascnn tensorboard runs`` lists the runs side by side.

The pictures are drawn by ``kerascnn.plotting``, as the run report's are, so TensorBoard and
``report.html`` draw the same things.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api as hp
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from kerascnn import plotting
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


# At most this many images in the training grid and the misclassified grid (four columns).
GRID_IMAGES = 16
MISCLASSIFIED = 16
# Validation images kept in memory for the pictures (the first ones of the split).
PICTURE_IMAGES = 2000


# The per-epoch scalars a run logs (README's TensorBoard table), as ``epoch_<name>`` under
# train/ and validation/. The epoch logs hold more (the top-1/top-5 errors that the history
# keeps are 1 - accuracy): TensorBoard gets no duplicates.
EPOCH_SCALARS = ("loss", "accuracy", "top5_accuracy", "learning_rate")


class RunTensorBoard(keras.callbacks.TensorBoard):
    """Keras's callback, writing what README documents and nothing twice: the per-epoch
    ``EPOCH_SCALARS``, and (with ``write_graph``) the op graph of the model's forward pass,
    which TensorBoard's Graphs tab draws, beside Keras's conceptual graph (tag ``keras``).

    Keras 3 writes no op graph (its train function is not a ``tf.function`` TensorBoard can
    read), so the Graphs tab said "Malformed GraphDef"; and after each validation pass it
    writes ``evaluation_<metric>_vs_iterations``, the epoch's validation scalars again. A
    training wrapper (adversarial training, auxiliary heads, distillation) is drawn as the
    network it trains."""

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.write_graph and keras.backend.backend() == "tensorflow":
            try:
                graph = op_graph(inference_model(self.model))
            except Exception as error:  # noqa: BLE001  a picture is no reason to stop training
                warnings.warn(f"TensorBoard's op graph is not written: {error}", stacklevel=2)
                return
            with self._train_writer.as_default():
                tf.summary.graph(graph)

    def on_test_end(self, logs=None):
        super().on_test_end({})  # no evaluation_*_vs_iterations

    def on_epoch_end(self, epoch, logs=None):
        kept = {k: v for k, v in (logs or {}).items() if k.removeprefix("val_") in EPOCH_SCALARS}
        super().on_epoch_end(epoch, kept)


def op_graph(model: keras.Model) -> tf.Graph:
    """The TensorFlow graph of ``model``'s inference forward pass, traced once on a batch of
    any size; its ops sit under the layers' names (``c1/convolution``, ...)."""
    (inputs,) = model.inputs
    spec = tf.TensorSpec((None, *inputs.shape[1:]), inputs.dtype)
    forward = tf.function(lambda images: model(images, training=False))
    return forward.get_concrete_function(spec).graph


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


def class_indices(labels: np.ndarray) -> np.ndarray:
    """Class indices from integer labels, or from one-hot or mixed labels (mixup/cutmix: the
    class with the largest share)."""
    return labels.argmax(-1) if labels.ndim == 2 else labels


def input_grid(
    images: np.ndarray, labels: np.ndarray, class_names: list[str], limit: int = GRID_IMAGES
) -> np.ndarray:
    """Raw-pixel images (N, H, W, C) in 0-255 as one labelled grid, each titled with its
    class name."""
    classes = class_indices(labels)[:limit]
    return plotting.labelled_grid(
        [plotting.to_rgb(image) for image in images[:limit]], [class_names[c] for c in classes]
    )


class TrainingImages(ImageWriter):
    """At the start of training, a grid of one batch of ``dataset`` (a training pipeline
    built like the one ``fit`` gets, so the pictures are what the model sees), titled with
    the class names, under ``log_dir`` as ``inputs/augmented``."""

    def __init__(self, log_dir: str | Path, dataset, class_names: list[str]):
        super().__init__(log_dir)
        self.dataset = dataset
        self.class_names = list(class_names)

    def on_train_begin(self, logs=None):
        for images, labels in self.dataset.take(1).as_numpy_iterator():
            self.image("inputs/augmented", input_grid(images, labels, self.class_names), step=0)


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
        self.network: keras.Model | None = None  # the inference model, made once

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
        self.images = np.concatenate(images)
        # Under mixup/cutmix the pipeline gives one-hot labels (unmixed for validation).
        self.labels = class_indices(np.concatenate(labels))

    def on_epoch_end(self, epoch, logs=None):
        if not self.due(epoch):
            return
        if self.network is None:
            self.network = inference_model(self.model)
        # predict, compiled once, not an eager call: on JAX an eager forward compiles every
        # op for the batch's shape, seconds per picture.
        logits = self.network.predict(self.images, batch_size=256, verbose=0)
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
            picture = plotting.misclassified_picture(
                self.images[wrong], self.labels[wrong], probabilities[wrong], names
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
        RunTensorBoard(
            log_dir=str(log_dir),
            write_graph=True,
            histogram_freq=logging.histogram_freq,
            profile_batch=profile_batches(logging.profile_batches),
        ),
        TrainingImages(log_dir / "train", train_images, class_names),
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


# Configuration fields that are not the experiment: places and what the command does
# (paths, export, TensorBoard options) and pure speed settings (same results, faster).
NOT_HPARAMS = (
    "run_name",
    "output_dir",
    "export_dir",
    "export",
    "overwrite",
    "histogram_freq",
    "tb_images_every",
    "profile_batches",
    "jit_compile",
    "steps_per_execution",
)
# The hyperparameters a comparison of runs starts from, first in the HParams dashboard.
LEADING_HPARAMS = ("model", "optimizer", "learning_rate", "batch_size", "epochs")
# The final metrics as HParams columns, in this order: held-out top-1 first. Every run lists
# all of them (a run without top-5 leaves those cells empty), because TensorBoard takes the
# columns from whichever run it reads first.
FINAL_METRICS = tuple(
    (split, name)
    for name in ("accuracy", "top5_accuracy", "loss")
    for split in ("validation", "test", "train")
)


def hparams_of(config: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The configuration as HParams, ``LEADING_HPARAMS`` first, then in the configuration's
    order, without ``NOT_HPARAMS``."""
    names = [*LEADING_HPARAMS, *(k for k in config if k not in LEADING_HPARAMS)]
    return {k: hparam_value(config[k]) for k in names if k in config and k not in NOT_HPARAMS}


def experiment(hparams: dict[str, Any]) -> summary_pb2.Summary:
    """The HParams experiment: the columns of the dashboard, in order. TensorBoard (2.21)
    sorts the hyperparameters by (not ``differs``, name), so the leading ones are marked as
    differing to stay in front (alphabetical among themselves); the metrics keep this order."""
    config = api_pb2.Experiment(
        hparam_infos=[
            api_pb2.HParamInfo(name=name, differs=name in LEADING_HPARAMS) for name in hparams
        ],
        metric_infos=[
            api_pb2.MetricInfo(
                name=api_pb2.MetricName(tag=f"final/{split}_{name}"),
                display_name=f"{split} {name.replace('_', ' ')} (final)",
            )
            for split, name in FINAL_METRICS
        ],
    )
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=hparams_metadata.EXPERIMENT_TAG,
        metadata=hparams_metadata.create_summary_metadata(
            plugin_data_pb2.HParamsPluginData(experiment=config)
        ),
        tensor=hparams_metadata.NULL_TENSOR,
    )
    return summary


def write_hparams(
    log_dir: str | Path, config: dict[str, Any], metrics: dict[str, Any], step: int
) -> None:
    """The run's configuration as an HParams session under ``log_dir`` (with the experiment
    that orders the dashboard's columns), and its final loss, top-1 and top-5 of each split
    (``metrics[split][name]``) as ``final/<split>_<name>`` scalars."""
    hparams = hparams_of(config)
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        tf.summary.experimental.write_raw_pb(experiment(hparams).SerializeToString(), step=0)
        hp.hparams(hparams, trial_id=Path(log_dir).parent.name)
        for split, name in FINAL_METRICS:
            if name in metrics.get(split, {}):
                value = float(metrics[split][name])
                tf.summary.scalar(f"final/{split}_{name}", value, step=step)
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


def tensorboard_hint(run_or_runs_dir: str | Path) -> str:
    """The one command every hint (the training summary, ``inspect``, README) gives."""
    return f"kerascnn tensorboard {run_or_runs_dir}"


def serve(runs_dir: str | Path, port: int) -> None:
    """TensorBoard on ``runs_dir`` (``tensorboard_command``) in this process's place: on
    POSIX the process becomes TensorBoard (``os.execv``), so a signal sent to its PID (Ctrl-C,
    SIGTERM from a process manager) reaches TensorBoard itself and nothing is left serving.
    Elsewhere TensorBoard runs as a child and this process waits for it."""
    command = tensorboard_command(runs_dir, port)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(command[0], command)  # does not return
    else:
        try:
            sys.exit(subprocess.call(command))
        except KeyboardInterrupt:
            sys.exit(0)
