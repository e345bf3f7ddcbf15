"""``train_and_evaluate(config, run_dir)``: build, fit, evaluate, write the run's files."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascnn.data import build_dataset, load_dataset
from kerascnn.data.plan import check_mixing_loss, plan_data
from kerascnn.data.views import evaluate_with_views, preprocessing_summary
from kerascnn.errors import InvalidArgumentError
from kerascnn.files import write_text_atomically
from kerascnn.models import MODELS, create_model
from kerascnn.models.layers import activation_output
from kerascnn.training.auxiliary import AuxiliaryLossModel, inference_model
from kerascnn.training.callbacks import Checkpoints, RecordLearningRate, save_atomically
from kerascnn.training.config import TrainConfig, write_yaml
from kerascnn.training.losses import LOSSES, create_loss
from kerascnn.training.optimizers import OPTIMIZERS, create_optimizer

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
    if config.mixup or config.cutmix:
        spec = MODELS.get(config.model)
        loss = config.loss
        if loss == "auto":
            loss = spec.training_loss({**spec.options, **config.model_options})
        check_mixing_loss(loss)


def prepare_run_dir(run_dir: str | Path, overwrite: bool) -> Path:
    """Create an empty run directory; an existing non-empty one needs ``overwrite``."""
    run_dir = Path(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise InvalidArgumentError(
                f"run directory {run_dir} already exists; choose another --run-name "
                f"or pass --overwrite"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def train_and_evaluate(
    config: TrainConfig, run_dir: str | Path, *, verbose: int | str = "auto", dataset=None
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
    """
    check_config(config)
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
    model = create_model(
        config.model,
        input_shape=input_shape,
        num_classes=dataset.num_classes,
        classifier_activation=None,
        **model_options,
    )
    if len(model.outputs) > 1:
        model = AuxiliaryLossModel(model, spec.auxiliary_loss_weights, name=model.name)
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

    metrics = ["accuracy"]
    if dataset.num_classes > 5:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5_accuracy"))
    loss, metrics = data_plan.loss_and_metrics(loss_name, create_loss(loss_name), metrics)
    model.compile(
        optimizer=create_optimizer(config.optimizer, config.learning_rate),
        loss=loss,
        metrics=metrics,
    )
    checkpoints = Checkpoints(run_dir / "checkpoints", monitor="val_accuracy")
    callbacks = [
        RecordLearningRate(),  # first, so the history and the later callbacks see it
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=True),
        checkpoints,
    ]
    started = time.perf_counter()
    history = model.fit(
        pipeline("train", training=True),
        validation_data=pipeline("validation"),
        epochs=config.epochs,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    epochs_completed = len(history.epoch)

    best = inference_model(keras.saving.load_model(run_dir / "checkpoints" / "best.keras"))
    best_loss, _ = data_plan.loss_and_metrics(loss_name, create_loss(loss_name), metrics)
    best.compile(loss=best_loss, metrics=[_fresh(m) for m in metrics])
    evaluation = {
        split: best.evaluate(pipeline(split), verbose=0, return_dict=True) for split in SPLITS
    }
    inference = with_softmax(best)
    save_atomically(inference, run_dir / "model.keras")
    result_metrics = {
        **{split: _plain(values) for split, values in evaluation.items()},
        "loss_function": loss_name,
        "epochs_completed": epochs_completed,
        "best_epoch": checkpoints.best_epoch,
        "train_seconds": round(train_seconds, 3),
        "train_images_per_second": round(epochs_completed * len(dataset.train) / train_seconds, 1),
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
    }
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
    }
    write_text_atomically(run_dir / "metrics.json", json.dumps(result_metrics, indent=2) + "\n")
    write_text_atomically(run_dir / "metadata.json", json.dumps(metadata, indent=2) + "\n")
    return TrainResult(run_dir=run_dir, metrics=result_metrics, metadata=metadata, model=inference)


def with_softmax(logits_model: keras.Model) -> keras.Model:
    """The inference model: the trained layers with the float32 softmax put back on top."""
    outputs = activation_output(logits_model.output, "softmax")
    return keras.Model(logits_model.input, outputs, name=logits_model.name)


def _fresh(metric):
    return metric if isinstance(metric, str) else metric.__class__.from_config(metric.get_config())


def _plain(values: dict[str, Any]) -> dict[str, float]:
    return {key: round(float(value), 6) for key, value in values.items()}


@dataclass
class RunOutcome:
    result: TrainResult
    export: Any  # kerascnn.export.ExportResult, or None with export disabled


def run_training(config: TrainConfig, *, verbose: int | str = "auto") -> RunOutcome:
    """What ``kerascnn train`` does: check everything a user can get wrong before any work,
    train and evaluate into ``output_dir/<run-name>``, then export to
    ``export_dir/<run-name>`` with a parity check on the test split."""
    from kerascnn.data import split_arrays
    from kerascnn.export import export_model

    check_config(config)
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
    run_dir = prepare_run_dir(Path(config.output_dir) / run_name, config.overwrite)
    result = train_and_evaluate(config, run_dir, verbose=verbose, dataset=dataset)

    exported = None
    if config.export:
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
    return RunOutcome(result=result, export=exported)


def _load(config: TrainConfig):
    return load_dataset(config.dataset, strict=config.strict, label_offset=config.label_offset)


def _summary(result: TrainResult) -> dict[str, Any]:
    return {k: v for k, v in result.metrics.items() if k != "history"}
