"""``train_and_evaluate(config, run_dir)``: build, fit, evaluate, write the run's files."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascnn.data import build_dataset, load_dataset
from kerascnn.data.plan import check_mixing_loss, plan_data
from kerascnn.data.views import evaluate_with_views, preprocessing_summary
from kerascnn.errors import InvalidArgumentError, TrainingDivergedError
from kerascnn.files import write_text_atomically
from kerascnn.models import MODELS, create_model
from kerascnn.models.layers import activation_output
from kerascnn.training import distribute
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
from kerascnn.training.losses import LOSSES, create_loss
from kerascnn.training.optimizers import OPTIMIZERS, apply_weight_decay, create_optimizer
from kerascnn.training.resume import BACKUP, RunBackup, remove_backup
from kerascnn.training.resume import prepare_run_dir as prepare_resumable_run_dir
from kerascnn.training.schedules import SCHEDULES, learning_rate_for, schedule_callbacks

SPLITS = ("train", "validation", "test")
# The export parity check runs on at most this many test images (a large test split, such as
# an image folder's, is never decoded into memory whole).
PARITY_LIMIT = 1000


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    model: keras.Model  # the best checkpoint, reloaded


def check_config(config: TrainConfig) -> None:
    """Fail on unknown names before anything is written or trained."""
    MODELS.get(config.model)
    OPTIMIZERS.get(config.optimizer)
    if config.loss != "auto":
        LOSSES.get(config.loss)
    from kerascnn.data.sources import check_dataset_name

    check_dataset_name(config.dataset)
    SCHEDULES.get(config.schedule)
    spec = MODELS.get(config.model)
    loss_name = config.loss
    if loss_name == "auto":
        loss_name = spec.training_loss({**spec.options, **config.model_options})
    create_loss(loss_name, config.label_smoothing)
    if config.mixup or config.cutmix:
        check_mixing_loss(loss_name)


def prepare_run_dir(run_dir: str | Path, overwrite: bool, config: dict | None = None) -> Path:
    """An empty run directory, or an interrupted run's to continue (training/resume.py); a
    completed run needs ``overwrite``."""
    return prepare_resumable_run_dir(run_dir, overwrite, config)


def train_and_evaluate(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    verbose: int | str = "auto",
    dataset=None,
    distribution: distribute.Distribution | None = None,
):
    """Train ``config.model`` on ``config.dataset`` and evaluate the best checkpoint.

    Writes into ``run_dir``: ``logs/`` (TensorBoard), ``checkpoints/{last,best}.keras``
    (logits models with their optimiser state, and auxiliary heads if the model trains with
    them), ``model.keras`` (the best checkpoint's main head with its softmax: the inference
    model), ``config.yaml``, ``metrics.json`` and ``metadata.json``.

    Returns:
        A ``TrainResult`` with the metrics, the metadata and the best model.

    Raises:
        ValueError: unknown model, dataset or optimiser, or a bad model option or size.

    ``dataset`` is ``config.dataset`` already loaded (loaded here when not given);
    ``distribution`` is the run's strategy, set up from ``config.strategy`` when not given.
    """
    check_config(config)
    distribution = distribution or distribute.setup(config.strategy)
    distribution.activate()
    distribute.check_batch_size(config.batch_size, distribution)
    previous_policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        # Variables stay float32; the loss casts the logits to float32 and the inference
        # model's softmax is float32 (models/layers.activation_output).
        keras.mixed_precision.set_global_policy(f"mixed_{config.mixed_precision}")
    try:
        return _train_and_evaluate(
            config, run_dir, verbose=verbose, dataset=dataset, distribution=distribution
        )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train_and_evaluate(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    verbose: int | str,
    dataset,
    distribution: distribute.Distribution,
):
    keras.utils.set_random_seed(config.seed)
    spec = MODELS.get(config.model)
    if dataset is None:
        dataset = _load(config)
    height, width = config.image_size or spec.input_shape[:2]
    input_shape = (height, width, spec.input_shape[-1])
    data_plan = plan_data(config, dataset, (height, width), input_shape[-1])
    # Trained on logits (numerically stabler, and what the paper's RBF criterion needs); the
    # softmax is put back on the inference model that is evaluated, saved and exported.
    # The papers' auxiliary classifiers train with the network unless turned off
    # (``--model-option aux_logits=false``); they are dropped for evaluation and export.
    model_options = {**data_plan.model_options, **config.model_options}
    if spec.auxiliary_loss_weights:
        model_options.setdefault("aux_logits", True)
    with distribution.scope():  # built and compiled in the strategy's scope
        model = create_model(
            config.model,
            input_shape=input_shape,
            num_classes=dataset.num_classes,
            # Under mixed precision a float32 identity on the logits, so the metrics and the
            # loss see float32 (models/layers.activation_output); with_softmax replaces it.
            classifier_activation="linear" if config.mixed_precision else None,
            **model_options,
        )
        if len(model.outputs) > 1:
            model = AuxiliaryLossModel(model, spec.auxiliary_loss_weights, name=model.name)
        transfer_notes = prepare_transfer(model, config)
    loss_name = config.loss
    if loss_name == "auto":
        loss_name = spec.training_loss({**spec.options, **config.model_options})
    run_dir = Path(run_dir)
    write_yaml(run_dir / "config.yaml", config.to_dict())

    def pipeline(split: str, training: bool = False):
        return build_dataset(
            dataset.split(split),
            image_size=(height, width),
            channels=input_shape[-1],
            batch_size=config.batch_size,
            training=training,
            seed=config.seed,
            **data_plan.pipeline_kwargs(training),
        )

    steps_per_epoch = max(1, -(-len(dataset.train) // config.batch_size))
    metrics = ["accuracy"]
    if dataset.num_classes > 5:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5_accuracy"))
    with distribution.scope():
        optimizer = create_optimizer(
            config.optimizer,
            learning_rate_for(config, steps_per_epoch),
            momentum=config.momentum,
            nesterov=config.nesterov,
            options=config.optimizer_options,
        )
        apply_weight_decay(
            model,
            optimizer,
            config.weight_decay,
            config.decay_mode,
            bias_and_norm=config.decay_bias_and_norm,
        )
        loss, metrics = data_plan.loss_and_metrics(
            loss_name,
            create_loss(loss_name, config.label_smoothing),
            metrics,
            label_smoothing=config.label_smoothing,
        )
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            jit_compile=True if config.jit_compile else "auto",
            steps_per_execution=config.steps_per_execution,
        )
    checkpoints = Checkpoints(run_dir / "checkpoints", monitor="val_accuracy")
    stop_on_nan = StopOnNaN()
    backup = RunBackup(run_dir / BACKUP, checkpoints)
    callbacks = [
        stop_on_nan,
        RecordLearningRate(),  # early, so the history and the later callbacks see it
        RecordErrors(),
        *schedule_callbacks(config, steps_per_epoch),
        *board.callbacks(
            config,
            run_dir / "logs",
            train_images=pipeline("train", training=True),
            validation_data=pipeline("validation"),
            class_names=list(dataset.class_names),
            distribution=distribution,
        ),
        checkpoints,
        backup,  # after the checkpoints, so the best value it saves is this epoch's
    ]
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=config.early_stopping, verbose=1
            )
        )
    started = time.perf_counter()
    history = model.fit(
        distribute.shard_evenly(
            pipeline("train", training=True), config.batch_size, len(dataset.train), distribution
        ),
        validation_data=distribute.shard_evenly(
            pipeline("validation"), config.batch_size, len(dataset.validation), distribution
        ),
        epochs=config.epochs,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    if stop_on_nan.diverged:
        epoch, batch = stop_on_nan.diverged
        raise TrainingDivergedError(
            f"training diverged: the loss became NaN or infinite at epoch {epoch}, batch "
            f"{batch}; try a lower --learning-rate (rerun with --overwrite)"
        )
    # The whole run's history, epochs before a resume included.
    full_history = backup.history or history.history
    epochs_completed = backup.restored_epoch + len(history.epoch)
    # Every worker evaluates the best checkpoint on whole splits, on its own devices.
    distribute.end_of_training(distribution)

    best = inference_model(keras.saving.load_model(run_dir / "checkpoints" / "best.keras"))
    if config.mixed_precision:
        best = as_float32(best)
    best_loss, _ = data_plan.loss_and_metrics(
        loss_name,
        create_loss(loss_name, config.label_smoothing),
        metrics,
        label_smoothing=config.label_smoothing,
    )
    best.compile(loss=best_loss, metrics=[_fresh(m) for m in metrics])
    evaluation = {
        split: best.evaluate(pipeline(split), verbose=0, return_dict=True) for split in SPLITS
    }
    inference = with_softmax(best)
    save_atomically(inference, run_dir / "model.keras")
    result_metrics = {
        **{split: with_errors(_plain(values)) for split, values in evaluation.items()},
        "loss_function": loss_name,
        "epochs_completed": epochs_completed,
        "best_epoch": checkpoints.best_epoch,
        "train_seconds": round(train_seconds, 3),
        "train_images_per_second": round(
            len(history.epoch) * len(dataset.train) / max(train_seconds, 1e-9), 1
        ),
        "resumed_from_epoch": backup.restored_epoch,
        "history": {key: [float(v) for v in values] for key, values in full_history.items()},
    }
    if transfer_notes:
        result_metrics["transfer"] = transfer_notes
    if config.tta != "none":
        result_metrics["test_tta"] = {
            "tta": config.tta,
            **evaluate_with_views(inference, dataset.test, config.tta, config.crop_fraction),
        }
    metadata = {
        "model": config.model,
        "model_title": spec.title,
        "paper": spec.paper,
        "dataset": dataset.name,
        "class_names": list(dataset.class_names),
        "input_shape": list(input_shape),
        "preprocessing": {
            "input": "raw pixels 0-255, float32, (batch, height, width, channels)",
            "inside_model": "(x - mean) / std",
            **preprocessing_summary(best.get_layer("preprocessing")),
            "augmentation": config.augmentation,
            "normalization": config.normalization,
        },
        "output": "class probabilities (softmax)",
        "model_options": dict(config.model_options),
        "auxiliary_loss_weights": list(getattr(model, "auxiliary_loss_weights", ())),
        "parameters": inference.count_params(),
        "trainable_parameters": sum(int(np.prod(w.shape)) for w in inference.trainable_weights),
        "distribution": distribution.describe(),
    }
    board.write_hparams(run_dir / "logs", config.to_dict(), result_metrics, epochs_completed)
    write_text_atomically(run_dir / "metrics.json", json.dumps(result_metrics, indent=2) + "\n")
    write_text_atomically(run_dir / "metadata.json", json.dumps(metadata, indent=2) + "\n")
    remove_backup(run_dir)
    return TrainResult(run_dir=run_dir, metrics=result_metrics, metadata=metadata, model=inference)


def with_softmax(logits_model: keras.Model) -> keras.Model:
    """The inference model: the trained layers with the float32 softmax put back on top."""
    logits = logits_model.output
    last = logits_model.layers[-1]
    if last.name == "classifier_activation":  # the float32 logits of mixed precision
        logits = last.input
    outputs = activation_output(logits, "softmax")
    return keras.Model(logits_model.input, outputs, name=logits_model.name)


def with_errors(values: dict[str, float]) -> dict[str, float]:
    """The papers' top-1 and top-5 error beside the accuracies."""
    errors = {"top1_error": "accuracy", "top5_error": "top5_accuracy"}
    return {**values, **{e: round(1 - values[a], 6) for e, a in errors.items() if a in values}}


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


def prepare_transfer(model: keras.Model, config: TrainConfig) -> list[str]:
    """``--init-from`` and ``--freeze-until``/``--trainable-from``; lines saying what was
    done (printed, and kept in metrics.json)."""
    from kerascnn.training.transfer import freeze, init_from

    notes = []
    if config.init_from:
        notes += init_from(model, config.init_from).lines()
    frozen = freeze(model, until=config.freeze_until, trainable_from=config.trainable_from)
    if frozen:
        notes.append(f"frozen {len(frozen)} layers: {frozen[0]} ... {frozen[-1]}")
    for note in notes:
        print(note)
    return notes


def _fresh(metric):
    return metric if isinstance(metric, str) else metric.__class__.from_config(metric.get_config())


def _plain(values: dict[str, Any]) -> dict[str, float]:
    return {key: round(float(value), 6) for key, value in values.items()}


@dataclass
class RunOutcome:
    result: TrainResult
    export: Any  # kerascnn.export.ExportResult, or None with export disabled
    notes: list[str] = dataclasses.field(default_factory=list)  # lines for the summary


def run_training(
    config: TrainConfig,
    *,
    verbose: int | str = "auto",
    cluster: distribute.Cluster | None = None,
) -> RunOutcome:
    """What ``kerascnn train`` does: check everything a user can get wrong before any work,
    train and evaluate into ``output_dir/<run-name>``, then export to
    ``export_dir/<run-name>`` with a parity check on the test split.

    Under ``--strategy multi-worker`` (``cluster``, or ``TF_CONFIG``), worker 0 writes the
    run directory; the other workers write theirs to a new temporary directory, so no two
    workers write the same file. The export is left to ``kerascnn export RUN_DIR`` (it needs
    the TensorFlow backend)."""
    from kerascnn.data import split_arrays
    from kerascnn.export import export_model

    check_config(config)
    # Before any model is built: jax.distributed must start before any JAX computation.
    distribution = distribute.setup(config.strategy, cluster)
    distribute.check_batch_size(config.batch_size, distribution)
    run_name = config.resolved_run_name()
    destination = Path(config.export_dir) / run_name
    if config.export and destination.exists() and not config.overwrite:
        raise InvalidArgumentError(
            f"export directory {destination} already exists; choose another --run-name "
            f"or pass --overwrite"
        )
    # Build once to reject bad options or sizes before the run directory is created.
    spec = MODELS.get(config.model)
    height, width = config.image_size or spec.input_shape[:2]
    create_model(
        config.model, input_shape=(height, width, spec.input_shape[-1]), **config.model_options
    )
    keras.backend.clear_session()
    # Loaded (and checked: missing files, bad labels, unreadable images) before the run
    # directory exists.
    dataset = _load(config)
    if distribution.is_chief:
        run_dir = prepare_run_dir(
            Path(config.output_dir) / run_name, config.overwrite, config.to_dict()
        )
    else:
        run_dir = distribute.worker_scratch_dir(run_name, distribution)
    result = train_and_evaluate(
        config, run_dir, verbose=verbose, dataset=dataset, distribution=distribution
    )

    exported = None
    notes = []
    if config.export and distribution.multi_worker:
        notes.append(
            f"export skipped under multi-worker (JAX backend); run `kerascnn export {run_dir}`"
            if distribution.is_chief
            else "export skipped: worker 0 holds the run"
        )
    elif config.export:
        images, _ = split_arrays(
            dataset.test,
            image_size=result.model.input_shape[1:3],
            channels=result.model.input_shape[-1],
            limit=PARITY_LIMIT,
        )
        exported = export_model(
            result.model,
            destination,
            metadata={**result.metadata, "run": str(run_dir), "metrics": _summary(result)},
            parity_images=images,
            overwrite=config.overwrite,
        )
    return RunOutcome(result=result, export=exported, notes=notes)


def _load(config: TrainConfig):
    return load_dataset(config.dataset, strict=config.strict, label_offset=config.label_offset)


def _summary(result: TrainResult) -> dict[str, Any]:
    return {k: v for k, v in result.metrics.items() if k != "history"}
