"""``kerascnn compress``: fine-tune a trained model into a compressed one, as a new run.

``plan_compression`` checks everything a user can get wrong before any file is written (the
recipe, the source, its training configuration, the destinations, the dataset). ``compress``
then runs the training steps of ``kerascnn.training.run`` on the source's weights instead of
a fresh network (prepare_data -> the source's logits model -> write_config -> compile_model
-> make_callbacks, with the compression's callback -> fit -> evaluate_best -> write_records),
exports the result like any run, and measures what it saved (``CompressionReport``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascnn.compression import lowrank, pruning, qat, sharing, shrink, storage
from kerascnn.compression.recipe import Compress, Recipe, SettledCheckpoints, plan_phases
from kerascnn.data import split_arrays
from kerascnn.errors import InvalidArgumentError
from kerascnn.evaluation import top1_accuracy
from kerascnn.export import ExportResult, convert_tflite, export_model
from kerascnn.export.directory import REPRESENTATIVE_IMAGES
from kerascnn.export.saved_model import export_saved_model
from kerascnn.export.tflite import tflite_filename
from kerascnn.files import write_text_atomically
from kerascnn.runtime import load_artifact
from kerascnn.training import run as steps
from kerascnn.training.callbacks import save_atomically
from kerascnn.training.config import TrainConfig, read_yaml, write_yaml
from kerascnn.training.distillation import without_softmax
from kerascnn.training.resume import prepare_run_dir
from kerascnn.training.run import TrainingPlan, TrainResult, plan_training

REPORT_FILENAME = "compression.json"


@dataclass
class CompressionPlan:
    source: Path
    source_model: keras.Model  # the inference model (softmax on top)
    recipe: Recipe
    training: TrainingPlan
    run_dir: Path
    export_dir: Path


@dataclass
class CompressionResult:
    result: TrainResult
    export: ExportResult
    report: dict[str, Any]


def source_config(source: Path, artifact) -> TrainConfig:
    """The source run's configuration (its ``config.yaml``), else one from the metadata of
    an export or ``.keras`` file (model, dataset, input size; the default recipe)."""
    directory = source if source.is_dir() else source.parent
    if (directory / "config.yaml").is_file():
        return TrainConfig.from_dict(read_yaml(directory / "config.yaml"), str(source))
    meta = artifact.metadata
    if not meta.get("model") or not meta.get("dataset"):
        raise InvalidArgumentError(
            f"{source} has no config.yaml, nor metadata naming its model and dataset; "
            f"compress a run directory"
        )
    return TrainConfig(
        model=meta["model"], dataset=meta["dataset"], image_size=tuple(artifact.input_shape[:2])
    )


def plan_compression(
    source: str | Path,
    recipe: Recipe,
    *,
    epochs: int,
    run_name: str | None = None,
    output_dir: str | None = None,
    export_dir: str | None = None,
    learning_rate: float | None = None,
    overwrite: bool = False,
) -> CompressionPlan:
    """Check everything before any work; nothing is written.

    Raises:
        KerasCNNError: a bad recipe, a source that is not a Keras model (a TFLite or ONNX
            file cannot be fine-tuned) or has nothing to prune, a class count the dataset
            does not have, an existing run or export without ``overwrite``.
    """
    source = Path(source)
    artifact = load_artifact(source)
    if artifact.kind != "keras":
        raise InvalidArgumentError(
            f"{source} is a {artifact.kind} file, which cannot be fine-tuned; compress a run "
            f"directory or a .keras file"
        )
    recipe.check(epochs)
    check_prune_layers(artifact.keras_model, recipe)
    if recipe.low_rank is not None:
        lowrank.check_factorable(artifact.keras_model)
    values = source_config(source, artifact).to_dict()
    name = run_name or f"{(source if source.is_dir() else source.parent).name}-compressed"
    given = {"epochs": epochs, "run_name": name, "output_dir": output_dir}
    given.update(export_dir=export_dir, learning_rate=learning_rate)
    values.update({k: v for k, v in given.items() if v is not None})
    # The source's weights are the start: no transfer, no mixed precision, no early stop.
    values.update(overwrite=overwrite, mixed_precision=None, early_stopping=None)
    config = TrainConfig.from_dict(values, source="compress")
    run_dir = Path(config.output.output_dir) / name
    destination = Path(config.output.export_dir) / name
    for path in (run_dir, destination):
        if path.exists() and not overwrite:
            raise InvalidArgumentError(
                f"{path} already exists; choose another --run-name or pass --overwrite"
            )
    if run_dir.resolve() == source.resolve():
        raise InvalidArgumentError("the compressed run cannot replace its source")
    training = plan_training(config)
    classes = int(artifact.keras_model.output_shape[-1])
    if classes != training.dataset.num_classes:
        raise InvalidArgumentError(
            f"{source} has {classes} classes; {training.dataset.name} has "
            f"{training.dataset.num_classes}"
        )
    return CompressionPlan(source, artifact.keras_model, recipe, training, run_dir, destination)


def prunable_names(model: keras.Model, recipe: Recipe) -> list[str]:
    """The names of the layers ``recipe`` can prune in ``model``, as the compression will
    see them: the classifier left out under ``structured`` (it stays whole), each Dense
    layer as its two factors under ``low_rank``.

    Raises:
        InvalidArgumentError: the model has nothing to prune.
    """
    targets = pruning.prunable_targets(model, recipe.structured)
    if recipe.structured:
        targets = targets[:-1]
    factored = set()
    if recipe.low_rank is not None:
        factored = {layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)}
    names = []
    for target in targets:
        names += lowrank.factored_names(target.name) if target.name in factored else [target.name]
    return names


def check_prune_layers(model: keras.Model, recipe: Recipe) -> None:
    """Every layer ``--prune-layer`` names is one the compression prunes."""
    names = prunable_names(model, recipe)
    unknown = [name for name, _ in recipe.prune_layers if name not in names]
    if unknown:
        kept = " (the last layer stays whole under --structured)" if recipe.structured else ""
        raise InvalidArgumentError(
            f"--prune-layer names no prunable layer {', '.join(unknown)}; {model.name}'s "
            f"prunable layers are {', '.join(names)}{kept}"
        )


def compress(
    plan: CompressionPlan, *, verbose: int | str = "auto", notify=None
) -> CompressionResult:
    """Fine-tune ``plan.source_model`` under ``plan.recipe`` into ``plan.run_dir``, export it
    to ``plan.export_dir`` (float32 TFLite and the recipe's modes, parity measured) and
    measure it against the source (``compression.json`` in the run directory)."""
    training, recipe = plan.training, plan.recipe
    run_dir = prepare_run_dir(plan.run_dir, training.config.output.overwrite)
    run = steps.Run(training, run_dir, verbose, notify or (lambda line: None))
    training.distribution.activate()
    keras.utils.set_random_seed(training.config.seed)
    steps.prepare_data(run)
    # A fresh copy of the source, so the source model (measured below) keeps its weights.
    source_logits = without_softmax(plan.source_model)
    run.model = keras.models.clone_model(source_logits)
    run.model.set_weights(source_logits.get_weights())
    if recipe.low_rank is not None:
        run.model = lowrank.low_rank_model(run.model, recipe.low_rank)
    if recipe.qat:
        run.model = qat.quantization_aware(run.model)
    targets = pruning.prunable_targets(run.model, recipe.structured)
    steps.write_config(run)
    write_yaml(run_dir / "compression.yaml", {"source": str(plan.source), **recipe.to_dict()})
    steps.compile_model(run)
    steps.make_callbacks(run)
    phases = plan_phases(recipe, training.config.epochs, run.steps_per_epoch)
    compressor = Compress(recipe, phases, targets)
    run.callbacks = [
        SettledCheckpoints(c, phases.settled_epoch) if c is run.checkpoints else c
        for c in run.callbacks
    ]
    run.callbacks.insert(0, compressor)  # first: every other callback sees the masked weights
    steps.fit(run)
    steps.evaluate_best(run)
    cuts = _shrink(run) if recipe.structured else []
    result = steps.write_records(run)
    images, labels, representative = _arrays(plan)
    exported = _export(plan, result, images, labels, representative)
    report = measure(plan, result.model, exported.directory, images, labels, representative)
    report["epochs"] = training.config.epochs
    if recipe.qat:
        report["qat"] = qat_comparison(report["files"], result.model)
    report["schedule"] = {str(k): round(v, 6) for k, v in compressor.sparsity_at.items()}
    report["shrunk"] = [
        {"layer": c.producer, "filters": c.channels, "kept": len(c.keep), "read_by": c.consumer}
        for c in cuts
    ]
    write_text_atomically(run_dir / REPORT_FILENAME, json.dumps(report, indent=2) + "\n")
    return CompressionResult(result, exported, report)


def _shrink(run: steps.Run) -> list:
    """Structured pruning: the inference model without its zeroed filters (the same outputs,
    fewer parameters and operations), saved as the run's model.keras."""
    run.inference, cuts = shrink.shrink(run.inference)
    save_atomically(run.inference, run.run_dir / "model.keras")
    deleted = sum(cut.channels - len(cut.keep) for cut in cuts)
    if cuts:
        run.notify(f"deleted {deleted} pruned filters from {len(cuts)} layers of the network")
    else:
        run.notify(
            "Warning: no pruned filter could be deleted (each pruned layer's channels reach a "
            "layer that needs all of them, or a zero does not survive the layers between); "
            "the network keeps its size and speed, with zeroed filters"
        )
    return cuts


def _arrays(plan: CompressionPlan):
    """The test images and labels, and the training images calibrating int8 (None without)."""
    training = plan.training
    size = {"image_size": training.input_shape[:2], "channels": training.input_shape[-1]}
    images, labels = split_arrays(training.dataset.test, **size)
    representative = None
    if "int8" in plan.recipe.modes:
        representative, _ = split_arrays(
            training.dataset.train, limit=REPRESENTATIVE_IMAGES, **size
        )
    return images, labels, representative


def _export(plan: CompressionPlan, result: TrainResult, images, labels, representative):
    """The run's export, as ``kerascnn train`` writes it, with the recipe's TFLite modes (a
    QAT model's int8 file quantised with its trained ranges: ``compression.qat``)."""
    training = plan.training
    summary = {k: v for k, v in result.metrics.items() if k != "history"}
    metadata = {**result.metadata, "run": str(result.run_dir), "metrics": summary}
    metadata["compression"] = {"source": str(plan.source), **plan.recipe.to_dict()}
    return export_model(
        result.model,
        plan.export_dir,
        metadata=metadata,
        parity_images=images,
        parity_labels=labels,
        quantize=plan.recipe.modes,
        representative_images=representative,
        overwrite=training.config.output.overwrite,
    )


# -- what it saved ------------------------------------------------------------------------


def measure(
    plan: CompressionPlan,
    model: keras.Model,
    directory: Path,
    images: np.ndarray,
    labels: np.ndarray,
    representative: np.ndarray | None = None,
) -> dict[str, Any]:
    """The compressed model against its source, every figure measured: test accuracy of
    both on the same images, the bytes of each TFLite file raw and gzip-compressed against
    the source's float32 TFLite, sparsity and unique values per layer, and the Deep
    Compression storage estimate. With QAT, the source's own post-training int8 TFLite
    (calibrated on ``representative``) is measured too, for the comparison."""
    before = top1_accuracy(plan.source_model, images, labels)
    after = top1_accuracy(model, images, labels)
    modes = ("none", "int8") if plan.recipe.qat else ("none",)
    source = source_tflite(plan.source_model, images, labels, modes, representative)
    baseline = source["none"]
    files = [{"artifact": "float32 TFLite, source", **baseline}]
    if plan.recipe.qat:
        files.append({"artifact": "int8 TFLite, source, post-training", **source["int8"]})
    for mode in plan.recipe.modes:
        name = "float32" if mode == "none" else mode
        how = "QAT" if plan.recipe.qat and mode == "int8" else "compressed"
        path = directory / tflite_filename(mode)
        row = {"artifact": f"{name} TFLite, {how}", "file": path.name}
        row.update(storage.file_sizes(path))
        row["accuracy"] = accuracy_of_file(path, images, labels)
        files.append(row)
    for row in files:
        row["ratio"] = baseline["bytes"] / row["bytes"]
        row["gzip_ratio"] = baseline["bytes"] / row["gzip_bytes"]
    layers, kernels = layer_rows(model)
    for row in layers:
        row["chosen_sparsity"] = chosen_sparsity(plan.recipe, row["layer"])
    prunable = sum(row["parameters"] for row in layers)
    nonzero = sum(row["nonzero"] for row in layers)
    return {
        "source": str(plan.source),
        "recipe": plan.recipe.to_dict(),
        "test_images": len(images),
        "accuracy": {
            "source": before,
            "compressed": after,
            "change_points": 100 * (after - before),
        },
        "parameters": {
            "source_total": plan.source_model.count_params(),
            "total": model.count_params(),
            "prunable": prunable,
            "nonzero_prunable": nonzero,
            "sparsity": 1 - nonzero / prunable,
        },
        "files": files,
        "deep_compression": deep_compression(plan, model, kernels),
        "layers": layers,
    }


def deep_compression(plan: CompressionPlan, model: keras.Model, kernels) -> dict | None:
    """The Deep Compression storage estimate against the source's 32-bit parameters; None
    where nothing was pruned or shared (the paper's sparse format then takes more than the
    dense weights: an index beside every one)."""
    recipe = plan.recipe
    if not recipe.prunes and recipe.cluster_bits is None:
        return None
    source = plan.source_model.count_params()
    return storage.deep_compression_bytes(model, kernels, recipe.cluster_bits, source)


def qat_comparison(files: list[dict], model: keras.Model) -> dict[str, Any]:
    """The QAT int8 TFLite against the source's post-training int8 TFLite (test accuracy in
    points, gzip bytes), and the activation ranges training settled on."""
    rows = {row["artifact"]: row for row in files}
    after, before = rows["int8 TFLite, QAT"], rows["int8 TFLite, source, post-training"]
    return {
        "post_training_accuracy": before["accuracy"],
        "qat_accuracy": after["accuracy"],
        "change_points": 100 * (after["accuracy"] - before["accuracy"]),
        "post_training_gzip_bytes": before["gzip_bytes"],
        "qat_gzip_bytes": after["gzip_bytes"],
        "activation_ranges": {
            name: list(bounds) for name, bounds in qat.activation_ranges(model).items()
        },
    }


def layer_rows(model: keras.Model):
    """Per prunable layer: parameters, nonzero weights, sparsity, unique kernel values; and
    the kernels for the storage estimate."""
    rows, kernels = [], {}
    for target in pruning.prunable_targets(model):
        values = keras.ops.convert_to_numpy(target.kernel)
        kernels[target.name] = (values, target.kind)
        rows.append(
            {
                "layer": target.name,
                "kind": target.kind,
                "parameters": int(values.size),
                "nonzero": int(np.count_nonzero(values)),
                "sparsity": pruning.sparsity_of(values),
                "unique_values": sharing.unique_values(values),
            }
        )
    return rows, kernels


def chosen_sparsity(recipe: Recipe, layer: str) -> float | None:
    """The final sparsity the recipe asked of ``layer``: its ``--prune-layer``, else
    ``--prune`` per layer (0 without it); None where none was (no pruning, ``--global``'s
    one threshold, or ``--structured``, whose fraction is of filters, deleted)."""
    own = recipe.layer_sparsities.get(layer)
    if own is not None:
        return own
    if not recipe.prunes or recipe.scope == "global" or recipe.structured:
        return None
    return recipe.prune or 0.0


def accuracy_of_file(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    predictions = load_artifact(path).predict(images)
    return float(np.mean(predictions.argmax(-1) == labels))


def source_tflite(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    modes: tuple[str, ...] = ("none",),
    representative: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """The source model's TFLite file in each of ``modes``, converted as its export would be
    (from one SavedModel): its bytes raw and gzip-compressed and its test accuracy, by mode."""
    scratch = Path(tempfile.mkdtemp(prefix="kerascnn-source-"))
    try:
        export_saved_model(model, scratch / "saved_model")
        found = {}
        for mode in modes:
            path = scratch / tflite_filename(mode)
            path.write_bytes(convert_tflite(scratch / "saved_model", mode, representative))
            found[mode] = {
                **storage.file_sizes(path),
                "accuracy": accuracy_of_file(path, images, labels),
            }
        return found
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
