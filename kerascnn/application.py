"""What the commands do, between parsing and printing: each function takes what the user gave,
calls the libraries in order and returns what the command line prints.

- ``run_training``: ``kerascnn train``: plan, prepare the run directory, train, export;
- ``evaluate``, ``predict``: an artifact on a dataset split, or on image files;
- ``attack``: ``kerascnn evaluate --attack``: robust accuracy with the gradient-masking checks;
- ``inspect``: one ``kerascnn inspect`` command, written to files and TensorBoard;
- ``compress``: ``kerascnn compress``: a trained model pruned and shared into a new run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerascnn import compression, ensemble, plotting
from kerascnn.adversarial import Attack, Robustness, evaluate_robustness
from kerascnn.compression import sensitivity as sensitivity_scan
from kerascnn.data import load_dataset, split_arrays
from kerascnn.data.config import DataConfig
from kerascnn.errors import InvalidArgumentError
from kerascnn.evaluation import evaluate_artifact_views
from kerascnn.export import ExportResult, export_model
from kerascnn.files import write_text_atomically
from kerascnn.inspection import commands, load_inspectable
from kerascnn.run_export import PARITY_LIMIT, Skipped, export_run
from kerascnn.runtime import Artifact, load_artifact, read_images, top_k
from kerascnn.training import distribute
from kerascnn.training.config import TrainConfig
from kerascnn.training.resume import completed_with, prepare_run_dir
from kerascnn.training.run import TrainResult, load_result, plan_training, train


@dataclass
class RunOutcome:
    result: TrainResult
    export: ExportResult | None  # None with the export turned off or skipped
    notes: list[str] = field(default_factory=list)  # lines for the summary


def run_training(
    config: TrainConfig,
    *,
    verbose: int | str = "auto",
    cluster: distribute.Cluster | None = None,
    notify: Callable[[str], None] | None = None,
) -> RunOutcome:
    """What ``kerascnn train`` does: check everything a user can get wrong before any work,
    train and evaluate into ``output_dir/<run-name>``, then export to
    ``export_dir/<run-name>`` with a parity check on the test split. The same command
    again on a completed run (killed during its export) trains nothing and finishes the
    export.

    Under ``--strategy multi-worker`` (``cluster``, or ``TF_CONFIG``), worker 0 writes the
    run directory; the other workers write theirs to a new temporary directory, so no two
    workers write the same file. The export is left to ``kerascnn export RUN_DIR`` (it needs
    the TensorFlow backend). ``notify`` receives lines to show while training."""
    output = config.output
    run_name = config.resolved_run_name()
    destination = Path(output.export_dir) / run_name
    run_dir = Path(output.output_dir) / run_name
    finishing = not output.overwrite and completed_with(run_dir, config.to_dict())
    if output.export and destination.exists() and not (output.overwrite or finishing):
        raise InvalidArgumentError(
            f"export directory {destination} already exists; choose another --run-name "
            f"or pass --overwrite"
        )
    plan = plan_training(config, cluster=cluster)
    notes = []
    if finishing:  # the same command again, after a kill during the export
        result = load_result(run_dir)
        done = ", its export finished" if output.export else ""
        notes.append(f"the run was complete: nothing trained{done}")
    else:
        if plan.distribution.is_chief:
            run_dir = prepare_run_dir(run_dir, output.overwrite, config.to_dict())
        else:
            run_dir = distribute.worker_scratch_dir(run_name, plan.distribution)
        result = train(plan, run_dir, verbose=verbose, notify=notify)
    if not output.export:
        return RunOutcome(result=result, export=None, notes=notes)
    if plan.distribution.multi_worker:
        note = (
            f"export skipped under multi-worker (JAX backend); run `kerascnn export {run_dir}`"
            if plan.distribution.is_chief
            else "export skipped: worker 0 holds the run"
        )
        return RunOutcome(result=result, export=None, notes=[note])
    exported = export_run(result, destination, overwrite=output.overwrite, dataset=plan.dataset)
    if isinstance(exported, Skipped):
        return RunOutcome(result=result, export=None, notes=[*notes, exported.note])
    return RunOutcome(result=result, export=exported, notes=notes)


# CPU instructions that compute in bfloat16 natively (Linux's names in /proc/cpuinfo).
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def speed_warnings(config: TrainConfig) -> list[str]:
    """Settings measured to slow training down on a machine with no accelerator (README
    "Speed on a CPU"; ``benchmarks/cpu_switches.py``): ``--jit-compile``, and
    ``--mixed-precision bfloat16`` on a CPU without bfloat16 instructions. (Under
    multi-worker the devices are not asked for: on JAX that would start JAX before
    ``jax.distributed``.)"""
    asked = config.jit_compile or config.mixed_precision == "bfloat16"
    if not asked or config.distribution.strategy == "multi-worker":
        return []
    if not all(d.lower().startswith("cpu") for d in keras.distribution.list_devices()):
        return []
    warnings = []
    if config.jit_compile:
        warnings.append(
            "--jit-compile on a CPU: XLA was measured slower than Keras's default on CPUs "
            "(ResNet-50 training at half the speed); leave it off on CPUs"
        )
    flags = cpu_flags() if config.mixed_precision == "bfloat16" else None
    if flags is not None and not flags & BFLOAT16_FLAGS:
        warnings.append(
            "--mixed-precision bfloat16 on a CPU without bfloat16 instructions (avx512_bf16, "
            "amx_bf16): ResNet-50 trained 8x slower than in float32 on such a CPU; leave it off"
        )
    return warnings


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags from ``/proc/cpuinfo`` (None where there is none to read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return None


def evaluate(
    source: str | Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    tta: str = "none",
    crop_fraction: float | None = None,
    data: DataConfig | None = None,
) -> dict[str, Any]:
    """``kerascnn evaluate``: an artifact on a split of ``dataset`` (by default the one it was
    trained on), with per-class accuracy and the confusion matrix."""
    artifact = load_artifact(source)
    data = data or DataConfig()
    found = load_dataset(
        dataset or artifact.metadata.get("dataset") or "digits", **data.source_options()
    )
    metrics = evaluate_artifact_views(artifact, found.split(split), tta, crop_fraction)
    if artifact.kind == "keras" and artifact.metadata.get("members"):  # an ensemble
        members = ensemble.split_metrics(
            artifact.keras_model, found.split(split), artifact.input_shape
        )
        metrics["members"] = members["members"]
    return {
        "tta": tta,
        "artifact": str(artifact.path),
        "kind": artifact.kind,
        "dataset": found.name,
        "split": split,
        **metrics,
    }


def predict(source: str | Path, images: Sequence[str | Path], k: int) -> list[dict[str, Any]]:
    """``kerascnn predict``: the ``k`` most probable classes of each image file."""
    artifact = load_artifact(source)
    pixels = read_images(images, artifact.input_shape)
    ranked = top_k(artifact.predict(pixels), artifact.class_names, k)
    return [{"image": str(p), "top_k": r} for p, r in zip(images, ranked, strict=True)]


@dataclass
class Attacked:
    robustness: Robustness
    artifact: Path
    dataset: str
    split: str
    out_dir: Path
    written: list[Path]
    log_dir: Path | None  # the run's TensorBoard directory, if the source is a run


def attackable(source: str | Path, role: str = "model") -> Artifact:
    """A Keras artifact (run directory, export directory or ``.keras`` file): the only kind
    with gradients to attack."""
    artifact = load_artifact(source)
    if artifact.keras_model is None:
        raise InvalidArgumentError(
            f"{source} is a {artifact.kind} artifact, which has no gradients to attack; give the "
            f"{role} as its run directory, export directory or .keras file"
        )
    return artifact


def attack(
    source: str | Path,
    attack: Attack,
    epsilons: Sequence[float],
    *,
    dataset: str | None = None,
    split: str = "test",
    limit: int | None = 1000,
    surrogate: str | Path | None = None,
    out: str | Path | None = None,
    data: DataConfig | None = None,
    notify: Callable[[str], None] = lambda line: None,
) -> Attacked:
    """``kerascnn evaluate --attack``: accuracy under ``attack`` and its cross-checks at each
    epsilon on the first ``limit`` images of a split, with the gradient-masking checks; the
    example grid, the curve and ``robustness.json`` written under ``out`` (by default
    RUN_DIR/attack, or attack/ beside the model), and into the run's TensorBoard logs."""
    artifact = attackable(source)
    other = attackable(surrogate, "surrogate") if surrogate is not None else None
    data = data or DataConfig()
    found = load_dataset(
        dataset or artifact.metadata.get("dataset") or "digits", **data.source_options()
    )
    height, width, channels = artifact.input_shape
    images, labels = split_arrays(
        found.split(split), image_size=(height, width), channels=channels, limit=limit
    )
    result = evaluate_robustness(
        artifact.keras_model,
        images,
        labels,
        attack,
        list(epsilons),
        surrogate=None if other is None else other.keras_model,
        class_names=artifact.class_names,
        notify=notify,
    )
    source = Path(source)
    run_dir = source if source.is_dir() and (source / "metrics.json").is_file() else None
    out_dir = Path(out) if out else (run_dir or artifact.path.parent) / "attack"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, picture in result.pictures.items():
        (out_dir / name).write_bytes(plotting.png_bytes(picture))
        written.append(out_dir / name)
    report = {
        "artifact": str(artifact.path),
        "dataset": found.name,
        "split": split,
        **result.as_json(),
    }
    written.append(
        write_text_atomically(out_dir / "robustness.json", json.dumps(report, indent=2) + "\n")
    )
    log_dir = None if run_dir is None else run_dir / "logs" / "attack"
    if log_dir is not None:
        log_robustness(result, log_dir)
    return Attacked(result, artifact.path, found.name, split, out_dir, written, log_dir)


def log_robustness(result: Robustness, log_dir: Path) -> None:
    """The pictures, and the accuracy under each attack with epsilon as the step (a curve
    against epsilon in TensorBoard's scalars)."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for name, picture in result.pictures.items():
            tf.summary.image(f"attack/{Path(name).stem}", picture[None], step=0)
        for name, values in result.accuracy.items():
            for epsilon, value in zip(result.epsilons, values, strict=True):
                tf.summary.scalar(f"attack/{name.replace(' ', '_')}", value, step=int(epsilon))
        if not result.masked:
            for epsilon, value in zip(result.epsilons, result.worst_case, strict=True):
                tf.summary.scalar("attack/robust_accuracy", value, step=int(epsilon))
    writer.close()


@dataclass
class EnsembleOutcome:
    run_dir: Path
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    export: ExportResult | None


def make_ensemble(
    sources: Sequence[str | Path],
    *,
    name: str,
    output_dir: str | Path = "runs",
    export_dir: str | Path = "saved_models",
    export: bool = True,
    overwrite: bool = False,
) -> EnsembleOutcome:
    """``kerascnn ensemble``: the members checked, averaged into one model saved as the run
    ``output_dir/name`` with its test figures (the ensemble's and each member's), then
    exported to ``export_dir/name`` with a parity check, as a trained run is."""
    run_dir, destination = Path(output_dir) / name, Path(export_dir) / name
    ensemble.check_ensemble_dir(run_dir, overwrite)
    if export and destination.exists() and not overwrite:
        raise InvalidArgumentError(
            f"export directory {destination} already exists; choose another --name or pass "
            f"--overwrite"
        )
    built = ensemble.build_ensemble(ensemble.load_members(sources), name)
    metrics = ensemble.save_ensemble(built, run_dir, overwrite)
    exported = None
    if export:
        images = None
        if built.metadata.get("dataset"):
            height, width, channels = built.metadata["input_shape"]
            images, _ = split_arrays(
                load_dataset(built.metadata["dataset"]).test,
                image_size=(height, width),
                channels=channels,
                limit=PARITY_LIMIT,
            )
        exported = export_model(
            built.model,
            destination,
            metadata={**built.metadata, "run": str(run_dir), "metrics": metrics},
            parity_images=images,
            overwrite=overwrite,
        )
    return EnsembleOutcome(run_dir, built.metadata, metrics, exported)


@dataclass
class Inspected:
    out_dir: Path
    written: list[Path]
    notes: list[str]
    log_dir: Path | None  # the run's TensorBoard directory the pictures went to, if any


def inspect(
    what: str, source: str | Path, images: Sequence[str], out: str | None, **options: Any
) -> Inspected:
    """One ``kerascnn inspect`` command on a run, export or ``.keras`` file: its pictures
    written under ``out`` (by default beside the model), and into the run's TensorBoard
    logs when ``source`` is a run directory."""
    target = load_inspectable(source)
    inputs = commands.file_inputs(target, images) if images else None
    result = commands.inspect(what, target, inputs, **options)
    return _write_inspection(target, what, result, out)


def _write_inspection(target, what: str, result, out: str | None) -> Inspected:
    """An inspection's files written under ``out`` (by default beside the model), and its
    pictures into the run's TensorBoard logs when the model is a run's."""
    out_dir = Path(out) if out else commands.default_out_dir(target, what)
    written = commands.save(result, out_dir)
    log_dir = None
    if target.run_dir is not None:
        log_dir = target.run_dir / "logs" / "inspect"
        commands.log_to_tensorboard(result, log_dir, what)
    return Inspected(out_dir, written, result.notes, log_dir)


def compress(
    source: str | Path,
    recipe: compression.Recipe,
    *,
    epochs: int,
    notify: Callable[[str], None] | None = None,
    **options: Any,
) -> compression.CompressionResult:
    """``kerascnn compress``: check everything (``plan_compression``; nothing is written on a
    bad input), then fine-tune, export and measure (``compression.compress``). ``options``:
    ``run_name``, ``output_dir``, ``export_dir``, ``learning_rate``, ``overwrite``."""
    plan = compression.plan_compression(source, recipe, epochs=epochs, **options)
    return compression.compress(plan, notify=notify)


def sensitivity(
    source: str | Path,
    *,
    sparsities: Sequence[float],
    split: str = "validation",
    tolerance: float = sensitivity_scan.DEFAULT_TOLERANCE,
    out: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> Inspected:
    """``kerascnn sensitivity``: each prunable layer pruned alone to each sparsity, no
    fine-tuning, measured on a split of the model's dataset (``compression.sensitivity``);
    its plot and JSON written under ``out`` (by default beside the model, as an inspection's)
    and the plot into the run's TensorBoard logs when ``source`` is a run directory."""
    sparsities = sensitivity_scan.check_sparsities(sparsities)
    target = load_inspectable(source)
    images = commands.dataset_inputs(target, split, count=None)
    if not len(images.classes):
        raise InvalidArgumentError(f"the {split} split of {source}'s dataset has no images")
    if notify:
        notify(
            f"Pruning each layer of {target.model.name} alone on {len(images.classes)} "
            f"{split} images at {', '.join(f'{s:g}' for s in sparsities)}:"
        )
    found = sensitivity_scan.scan(target.model, images.images, images.classes, sparsities, notify)
    result = commands.Inspection(
        pictures={"sensitivity.png": sensitivity_scan.picture(found, tolerance)},
        files={"sensitivity.json": json.dumps(found.to_dict(tolerance), indent=2) + "\n"},
        notes=sensitivity_scan.table(found, tolerance),
    )
    return _write_inspection(target, "sensitivity", result, out)
