"""A training run in named steps over one small state object.

``plan_training`` resolves and checks everything a user can get wrong, once, before any file
is written: the names, the loss, the batch against the workers, the model's options and size
(built once), the dataset (loaded and checked). ``train`` then runs ``STEPS`` in order on a
``Run``, each step computing its values once and leaving them on the run for the next:

    prepare_data -> build -> attach_teacher -> write_config -> compile_model -> make_callbacks
    -> fit -> evaluate_best -> evaluate_robust -> write_records

and returns a ``TrainResult``; the caller prints. ``train_and_evaluate(config, run_dir)`` is
both together. ``kerascnn train`` (``kerascnn.application``) plans, prepares the run
directory, trains and exports.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascnn.data import SPLITS, Dataset, build_dataset, load_dataset
from kerascnn.data.plan import DataPlan, check_mixing_loss, plan_data
from kerascnn.data.sources import check_dataset_name
from kerascnn.errors import TrainingDivergedError
from kerascnn.evaluation import evaluate_model, result_warnings
from kerascnn.files import write_text_atomically
from kerascnn.models import MODELS, ModelSpec, check_published, create_model
from kerascnn.models.layers import activation_output
from kerascnn.training import adversarial, averaging, batchnorm, distribute
from kerascnn.training import tensorboard as board
from kerascnn.training.auxiliary import AuxiliaryLossModel, inference_model
from kerascnn.training.callbacks import (
    Checkpoints,
    RecordErrors,
    RecordLearningRate,
    StopOnNaN,
    save_atomically,
)
from kerascnn.training.config import TrainConfig, write_yaml
from kerascnn.training.distillation import distiller, load_teacher
from kerascnn.training.losses import create_loss
from kerascnn.training.memory import check_fits
from kerascnn.training.optimizers import OPTIMIZERS, apply_weight_decay
from kerascnn.training.resume import BACKUP, RunBackup, remove_backup
from kerascnn.training.schedules import SCHEDULES, learning_rate_for, schedule_callbacks


@dataclass
class TrainingPlan:
    """What a configuration resolves to, computed once (``plan_training``)."""

    config: TrainConfig
    spec: ModelSpec
    dataset: Dataset
    distribution: distribute.Distribution
    input_shape: tuple[int, int, int]
    loss_name: str  # the criterion, "auto" resolved to the paper's


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    model: keras.Model  # the best checkpoint, reloaded, with its softmax


def plan_training(
    config: TrainConfig,
    *,
    dataset: Dataset | None = None,
    distribution: distribute.Distribution | None = None,
    cluster: distribute.Cluster | None = None,
) -> TrainingPlan:
    """Check everything a user can get wrong before any work, and resolve it.

    ``dataset`` is ``config.dataset`` already loaded (loaded and checked here when not
    given); ``distribution`` the run's strategy (set up from ``config.distribution`` and
    ``cluster`` when not given: before any model is built, as ``jax.distributed`` must start
    before any JAX computation).

    Raises:
        KerasCNNError: an unknown name, a loss the options cannot train with, a batch the
            workers cannot split, a bad model option or size, a missing or bad dataset.
    """
    spec = MODELS.get(config.model)
    OPTIMIZERS.get(config.optimization.optimizer)
    SCHEDULES.get(config.lr_schedule.schedule)
    check_dataset_name(config.dataset)
    loss_name = config.loss
    if loss_name == "auto":
        loss_name = spec.training_loss({**spec.options, **config.model_options})
    create_loss(loss_name, config.label_smoothing)
    if config.data.mixup or config.data.cutmix:
        check_mixing_loss(loss_name)
    averaging.check(config.optimization.ema, config.optimization.swa_epochs, config.epochs)
    distribution = distribution or distribute.setup(config.distribution.strategy, cluster)
    distribute.check_batch_size(config.batch_size, distribution)
    height, width = config.image_size or spec.input_shape[:2]
    input_shape = (height, width, spec.input_shape[-1])
    # Built without weights to reject bad options, and sizes that cannot fit in memory.
    found = check_fits(config.model, input_shape, config.batch_size, **config.model_options)
    options = {**spec.options, **config.model_options}
    outputs = 2 if spec.auxiliary_loss_weights and options.get("aux_logits", True) else 1
    adversarial.check_network(config.adversarial_training, max(outputs, found.outputs))
    check_transfer(config, spec, input_shape)
    if dataset is None:
        dataset = load_dataset(config.dataset, **config.data.source_options())
    if config.distillation.teacher:  # loaded to check it (class count, channels), then let go
        load_teacher(config.distillation.teacher, input_shape, dataset.num_classes)
        keras.backend.clear_session()
    return TrainingPlan(config, spec, dataset, distribution, input_shape, loss_name)


def check_transfer(config: TrainConfig, spec: ModelSpec, input_shape) -> None:
    """Load and freeze as ``config.transfer`` says on a network built for the check (and
    dropped), so a missing ``--init-from`` or an unknown layer is refused before the run
    directory exists."""
    transfer = config.transfer
    if transfer.weights:  # published for this network? (no download before the run)
        check_published(config.model, transfer.weights)
    if not (transfer.init_from or transfer.freeze_until or transfer.trainable_from):
        return
    options = dict(config.model_options)
    if spec.auxiliary_loss_weights:
        options.setdefault("aux_logits", True)
    try:  # the published weights are loaded by the run, not downloaded for the check
        unloaded = replace(transfer, weights=None)
        unloaded.apply(create_model(config.model, input_shape=input_shape, **options))
    finally:
        keras.backend.clear_session()


@dataclass
class Run:
    """The state the steps of one run share: what ``plan`` fixed, and what each step adds."""

    plan: TrainingPlan
    run_dir: Path
    verbose: int | str = "auto"
    notify: Callable[[str], None] = lambda line: None  # lines for the user (the caller prints)
    data: DataPlan | None = None
    model: keras.Model | None = None  # the network trained on logits
    transfer_notes: list[str] = field(default_factory=list)
    loss: Any = None
    metrics: list = field(default_factory=list)
    checkpoints: Checkpoints | None = None
    backup: RunBackup | None = None
    stop_on_nan: StopOnNaN | None = None
    callbacks: list = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)  # this invocation's
    epochs_run: int = 0  # epochs this invocation trained (a resumed run trained fewer)
    train_seconds: float = 0.0
    inference: keras.Model | None = None  # the best checkpoint with its softmax
    evaluation: dict[str, dict[str, float]] = field(default_factory=dict)
    batchnorm: dict[str, Any] = field(default_factory=dict)  # what evaluate_best did to them
    regularized: bool = False  # the evaluated loss includes weight-decay penalties

    @property
    def config(self) -> TrainConfig:
        return self.plan.config

    @property
    def steps_per_epoch(self) -> int:
        return max(1, -(-len(self.plan.dataset.train) // self.config.batch_size))

    def pipeline(self, split: str, training: bool = False):
        """The tf.data pipeline of a split, as the run feeds it to the model."""
        return build_dataset(
            self.plan.dataset.split(split),
            image_size=self.plan.input_shape[:2],
            channels=self.plan.input_shape[-1],
            batch_size=self.config.batch_size,
            training=training,
            seed=self.config.seed,
            **self.data.pipeline_options(),
        )


# -- the steps, in order ------------------------------------------------------------------


def prepare_data(run: Run) -> None:
    """What the data options ask of the training split (pixel statistics, lighting)."""
    plan = run.plan
    run.data = plan_data(run.config.data, plan.dataset, plan.input_shape[:2], plan.input_shape[-1])


def build(run: Run) -> None:
    """The network, on logits (numerically stabler, and what the paper's RBF criterion needs;
    the softmax is put back on the inference model), in the strategy's scope, with its
    auxiliary classifiers when the paper trains with them (``aux_logits=false`` turns them
    off; they are dropped for evaluation and export), and the transfer's initial weights."""
    plan, config = run.plan, run.config
    options = {**run.data.model_options, **config.model_options}
    options = {**config.transfer.model_options(config.model), **options}
    if plan.spec.auxiliary_loss_weights:
        options.setdefault("aux_logits", True)
    with plan.distribution.scope():
        model = create_model(
            config.model,
            input_shape=plan.input_shape,
            num_classes=plan.dataset.num_classes,
            # Under mixed precision a float32 identity on the logits, so the metrics and the
            # loss see float32 (models/layers.activation_output); with_softmax replaces it.
            classifier_activation="linear" if config.mixed_precision else None,
            **options,
        )
        if len(model.outputs) > 1:
            model = AuxiliaryLossModel(model, plan.spec.auxiliary_loss_weights, name=model.name)
        run.transfer_notes = config.transfer.apply(
            model, name=config.model, input_shape=plan.input_shape, **options
        )
        model = adversarial.wrap(model, config.adversarial_training)
    for note in run.transfer_notes:
        run.notify(note)
    run.model = model


def attach_teacher(run: Run) -> None:
    """With a teacher (``--teacher``), the network trains as the student of Keras's
    ``Distiller`` (``training.distillation``); the checkpoints hold both, the inference model
    is the student."""
    config = run.config.distillation
    if not config.teacher:
        return
    with run.plan.distribution.scope():
        teacher = load_teacher(config.teacher, run.plan.input_shape, run.plan.dataset.num_classes)
        run.model = distiller(run.model, teacher, config)
    run.notify(
        f"distilling from {config.teacher} at temperature {config.distill_temperature:g}, "
        f"labels' loss weight {config.student_loss_weight:g}"
    )


def write_config(run: Run) -> None:
    """The resolved configuration, the run directory's first file."""
    write_yaml(run.run_dir / "config.yaml", run.config.to_dict())


def compile_model(run: Run) -> None:
    """Optimiser (its schedule, weight decay), loss and metrics, compiled in the strategy's
    scope; with mixed labels (mixup/cutmix), their categorical forms."""
    config, model = run.config, run.model
    metrics = ["accuracy"]
    if run.plan.dataset.num_classes > 5:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5_accuracy"))
    optimization = config.optimization
    with run.plan.distribution.scope():
        optimizer = optimization.create(
            learning_rate_for(config.lr_schedule, run.steps_per_epoch, config.epochs)
        )
        apply_weight_decay(
            model,
            optimizer,
            optimization.weight_decay,
            optimization.decay_mode,
            bias_and_norm=optimization.decay_bias_and_norm,
        )
        run.loss, run.metrics = run.data.loss_and_metrics(
            run.plan.loss_name,
            create_loss(run.plan.loss_name, config.label_smoothing),
            metrics,
            label_smoothing=config.label_smoothing,
        )
        model.compile(
            optimizer=optimizer,
            loss=run.loss,
            metrics=run.metrics,
            jit_compile=True if config.jit_compile else "auto",
            steps_per_execution=config.steps_per_execution,
        )


def make_callbacks(run: Run) -> None:
    """Checkpoints, the resumable backup, divergence, the schedule's, TensorBoard's."""
    config, run_dir = run.config, run.run_dir
    # Under adversarial training the best checkpoint is the most robust one (Rice et al. 2020:
    # robust accuracy peaks and falls while clean accuracy still climbs).
    monitor = "val_robust_accuracy" if config.adversarial_training.adversarial else "val_accuracy"
    run.checkpoints = Checkpoints(run_dir / "checkpoints", monitor=monitor)
    run.stop_on_nan = StopOnNaN()
    run.backup = RunBackup(run_dir / BACKUP, run.checkpoints, notify=run.notify)
    run.callbacks = [
        run.stop_on_nan,
        RecordLearningRate(),  # early, so the history and the later callbacks see it
        RecordErrors(),
        *schedule_callbacks(config.lr_schedule, run.steps_per_epoch),
        *board.callbacks(
            config.logging,
            run_dir / "logs",
            epochs=config.epochs,
            train_images=run.pipeline("train", training=True),
            validation_data=run.pipeline("validation"),
            class_names=list(run.plan.dataset.class_names),
            distribution=run.plan.distribution,
        ),
        # Before the checkpoints, so that they save the averaged weights (EMA).
        *averaging.callbacks(
            config.optimization.ema,
            config.optimization.swa_epochs,
            config.epochs,
            run_dir / "checkpoints",
            run.pipeline("train"),
            run.steps_per_epoch,
        ),
        run.checkpoints,
        run.backup,  # after the checkpoints, so the best value it saves is this epoch's
    ]
    if config.early_stopping:
        run.callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode="max", patience=config.early_stopping, verbose=1
            )
        )


def fit(run: Run) -> None:
    """``model.fit``; a NaN or infinite loss stops the run with the epoch and batch."""
    config, dataset, distribution = run.config, run.plan.dataset, run.plan.distribution
    started = time.perf_counter()
    history = run.model.fit(
        distribute.shard_evenly(
            run.pipeline("train", training=True),
            config.batch_size,
            len(dataset.train),
            distribution,
        ),
        validation_data=distribute.shard_evenly(
            run.pipeline("validation"), config.batch_size, len(dataset.validation), distribution
        ),
        epochs=config.epochs,
        callbacks=run.callbacks,
        shuffle=False,  # the pipeline shuffles
        verbose=run.verbose,
    )
    run.train_seconds = time.perf_counter() - started
    run.epochs_run, run.history = len(history.epoch), history.history
    if run.stop_on_nan.diverged:
        epoch, batch = run.stop_on_nan.diverged
        raise TrainingDivergedError(
            f"training diverged: the loss became NaN or infinite at epoch {epoch}, batch "
            f"{batch}; try a lower --learning-rate (rerun with --overwrite)"
        )
    # Every worker evaluates the best checkpoint on whole splits, on its own devices.
    distribute.end_of_training(distribution)


def evaluate_best(run: Run) -> None:
    """The best checkpoint's main head (the SWA model's, with ``--swa-epochs``), its
    batch-norm statistics recomputed when ``recompute_bn_stats`` says so, on every split (and
    the ``tta`` views of the test split), saved with its softmax as ``model.keras``: the
    inference model.

    Each split's accuracies and cross-entropy are those ``kerascnn evaluate`` computes on the
    inference model (``kerascnn.evaluation``); ``loss`` beside them is the training criterion
    on the logits."""
    final = averaging.final_checkpoint(run.run_dir / "checkpoints")
    # Not compiled on loading (compiled below): a Distiller's custom compile would warn.
    best = inference_model(keras.saving.load_model(final, compile=False))
    if run.config.mixed_precision:
        best = as_float32(best)
    run.batchnorm = recompute_batchnorm(run, best)
    best.compile(loss=run.loss)
    run.inference = with_softmax(best)
    save_atomically(run.inference, run.run_dir / "model.keras")
    data = run.config.data

    def probabilities(x):
        return run.inference.predict(x, batch_size=256, verbose=0)

    for split in SPLITS:
        criterion = best.evaluate(run.pipeline(split), verbose=0, return_dict=True)["loss"]
        figures = evaluate_model(
            probabilities,
            run.plan.input_shape,
            run.plan.dataset.split(split),
            "none",
            data.crop_fraction,
        )
        run.evaluation[split] = {**_plain(figures), "loss": round(float(criterion), 6)}
    run.regularized = bool(best.losses)
    if data.tta != "none":
        run.evaluation["test_tta"] = {
            "tta": data.tta,
            **evaluate_model(
                probabilities,
                run.plan.input_shape,
                run.plan.dataset.test,
                data.tta,
                data.crop_fraction,
            ),
        }


def recompute_batchnorm(run: Run, model: keras.Model) -> dict[str, Any]:
    """``batchnorm.recompute_statistics`` over the training split (as evaluated: no
    augmentation) when ``recompute_bn_stats`` asks for it after the steps the best checkpoint
    trained for; what was done, for metrics.json."""
    mode = run.config.recompute_bn_stats
    steps = (run.checkpoints.best_epoch or run.config.epochs) * run.steps_per_epoch
    window = batchnorm.averaging_window(model)
    if not batchnorm.should_recompute(mode, model, steps):
        return {"recomputed": False, "mode": mode, "steps": steps, "window": round(window, 1)}
    images = batchnorm.recompute_statistics(model, run.pipeline("train"))
    return {
        "recomputed": True,
        "mode": mode,
        "steps": steps,
        "window": round(window, 1),
        "images": images,
    }


def evaluate_robust(run: Run) -> None:
    """Under adversarial training, the best checkpoint's robust accuracy on every split."""
    found = adversarial.robust_metrics(
        run.inference, run.config.adversarial_training, run.plan.dataset, run.plan.input_shape
    )
    for split, value in found.items():
        run.evaluation[split]["robust_accuracy"] = value


def write_records(run: Run) -> TrainResult:
    """metrics.json, metadata.json and the HParams; the backup goes (the run is complete)."""
    metrics, metadata = run_metrics(run), run_metadata(run)
    logs = run.run_dir / "logs"
    board.write_hparams(logs, run.config.to_dict(), metrics, metrics["epochs_completed"])
    write_text_atomically(run.run_dir / "metadata.json", json.dumps(metadata, indent=2) + "\n")
    # Last: metrics.json marks the run complete (training.resume.run_status).
    write_text_atomically(run.run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    remove_backup(run.run_dir)
    return TrainResult(run_dir=run.run_dir, metrics=metrics, metadata=metadata, model=run.inference)


STEPS = (
    prepare_data,
    build,
    attach_teacher,
    write_config,
    compile_model,
    make_callbacks,
    fit,
    evaluate_best,
    evaluate_robust,
)


def train(
    plan: TrainingPlan,
    run_dir: str | Path,
    *,
    verbose: int | str = "auto",
    notify: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run ``STEPS`` on ``plan`` into ``run_dir``, then ``write_records``.

    Writes into ``run_dir``: ``logs/`` (TensorBoard), ``checkpoints/{last,best}.keras``
    (logits models with their optimiser state, and auxiliary heads if the model trains with
    them), ``model.keras`` (the best checkpoint's main head with its softmax: the inference
    model), ``config.yaml``, ``metrics.json`` and ``metadata.json``. ``notify`` receives the
    lines a user should see as they happen (what a transfer loaded, a resume).
    """
    run = Run(plan, Path(run_dir), verbose, notify or (lambda line: None))
    plan.distribution.activate()
    with precision_policy(plan.config.mixed_precision):
        keras.utils.set_random_seed(plan.config.seed)
        for step in STEPS:
            step(run)
        return write_records(run)


def train_and_evaluate(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    verbose: int | str = "auto",
    dataset: Dataset | None = None,
    distribution: distribute.Distribution | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` and evaluate the best checkpoint:
    ``plan_training`` then ``train`` (see both)."""
    plan = plan_training(config, dataset=dataset, distribution=distribution)
    return train(plan, run_dir, verbose=verbose)


def load_result(run_dir: str | Path) -> TrainResult:
    """The result of a completed run, read back from its directory."""
    run_dir = Path(run_dir)
    return TrainResult(
        run_dir=run_dir,
        metrics=json.loads((run_dir / "metrics.json").read_text()),
        metadata=json.loads((run_dir / "metadata.json").read_text()),
        model=keras.saving.load_model(run_dir / "model.keras"),
    )


# -- what the steps record ----------------------------------------------------------------


def run_metrics(run: Run) -> dict[str, Any]:
    """metrics.json: each split's figures, the run's length and speed, the whole history
    (epochs before a resume included)."""
    backup, epochs_run = run.backup, run.epochs_run
    history = backup.history or run.history
    classes = run.plan.dataset.num_classes
    metrics = {
        **{split: run.evaluation[split] for split in SPLITS},
        "loss_function": run.plan.loss_name,
        "loss_includes_regularization": run.regularized,
        "epochs_completed": backup.restored_epoch + epochs_run,
        "best_epoch": run.checkpoints.best_epoch,
        "train_seconds": round(run.train_seconds, 3),
        "train_images_per_second": round(
            epochs_run * len(run.plan.dataset.train) / max(run.train_seconds, 1e-9), 1
        ),
        "resumed_from_epoch": backup.restored_epoch,
        "history": {key: [float(v) for v in values] for key, values in history.items()},
    }
    if run.batchnorm.get("window"):
        metrics["batchnorm_statistics"] = run.batchnorm
    if run.transfer_notes:
        metrics["transfer"] = run.transfer_notes
    train_accuracy = metrics["history"].get("accuracy", [None])[-1]
    warnings = result_warnings(run.evaluation["test"]["accuracy"], classes, train_accuracy)
    if warnings:
        metrics["warnings"] = warnings
    if "test_tta" in run.evaluation:
        metrics["test_tta"] = run.evaluation["test_tta"]
    return metrics


def run_metadata(run: Run) -> dict[str, Any]:
    """metadata.json: what the inference model is and what it takes."""
    plan, config, inference = run.plan, run.config, run.inference
    return {
        "model": config.model,
        "model_title": plan.spec.title,
        "paper": plan.spec.paper,
        "dataset": plan.dataset.name,
        "class_names": list(plan.dataset.class_names),
        "input_shape": list(plan.input_shape),
        "preprocessing": {
            "input": "raw pixels 0-255, float32, (batch, height, width, channels)",
            "inside_model": "(x - mean) / std",
            **preprocessing_summary(inference.get_layer("preprocessing")),
            "augmentation": config.data.augmentation,
            "normalization": config.data.normalization,
        },
        "output": "class probabilities (softmax)",
        "model_options": dict(config.model_options),
        "auxiliary_loss_weights": list(getattr(run.model, "auxiliary_loss_weights", ())),
        "parameters": inference.count_params(),
        "trainable_parameters": sum(int(np.prod(w.shape)) for w in inference.trainable_weights),
        "distribution": plan.distribution.describe(),
        "backend": keras.backend.backend(),  # trained on; the files themselves are neutral
    }


def preprocessing_summary(layer) -> dict:
    """The preprocessing layer's mean and std for metadata.json: per channel, or for a mean
    image its shape and per-channel average (the full image is in the model)."""
    mean = np.asarray(layer.mean)
    std = np.sqrt(np.asarray(layer.variance))
    channels = mean.shape[-1]
    if mean.size == channels:
        return {
            "mean": [float(v) for v in mean.ravel()],
            "std": [float(v) for v in std.ravel()],
        }
    return {
        "mean_image_shape": list(mean.shape[-3:]),
        "mean": [float(v) for v in mean.reshape(-1, channels).mean(axis=0)],
        "std": [float(v) for v in std.reshape(-1, channels).mean(axis=0)],
    }


# -- models --------------------------------------------------------------------------------


@contextlib.contextmanager
def precision_policy(mixed_precision: str | None):
    """Keras's global dtype policy for the run: ``mixed_<name>`` (variables stay float32;
    the loss casts the logits to float32 and the inference model's softmax is float32), the
    previous policy restored afterwards."""
    previous = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy(f"mixed_{mixed_precision}")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def with_softmax(logits_model: keras.Model) -> keras.Model:
    """The inference model: the trained layers with the float32 softmax put back on top."""
    logits = logits_model.output
    last = logits_model.layers[-1]
    if last.name == "classifier_activation":  # the float32 logits of mixed precision
        logits = last.input
    outputs = activation_output(logits, "softmax")
    return keras.Model(logits_model.input, outputs, name=logits_model.name)


def as_float32(model: keras.Model) -> keras.Model:
    """A copy of a mixed-precision model computing in float32 with the same weights, so the
    saved and exported artifacts are plain float32."""
    clone = keras.models.clone_model(
        model,
        clone_function=lambda layer: layer.__class__.from_config(
            {**layer.get_config(), "dtype": "float32"}
        ),
    )
    clone.set_weights(model.get_weights())
    return clone


def _plain(values: dict[str, Any]) -> dict[str, float]:
    return {key: round(float(value), 6) for key, value in values.items()}
