"""Export a trained model as ``model.keras``, a TF Serving SavedModel and a ``.tflite`` file.

``export_model`` writes everything into a temporary directory beside the destination and
renames it into place only when every file is written and checked, so a failed or killed
export never leaves a partial artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascnn.errors import ExportError, InvalidArgumentError
from kerascnn.export.saved_model import OUTPUT_NAME, SIGNATURE, export_saved_model
from kerascnn.export.tflite import TFLiteRunner, convert_tflite

SAVED_MODEL_VERSION = "1"
# Parity tolerance of float32 artifacts against the Keras model (probabilities).
FLOAT32_TOLERANCE = 1e-4


@dataclass
class ExportResult:
    directory: Path
    parity: dict[str, dict[str, Any]]


def export_model(
    model: keras.Model,
    destination: str | Path,
    *,
    metadata: dict[str, Any],
    parity_images: np.ndarray | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Write ``destination/`` with ``model.keras``, ``1/`` (SavedModel), ``model.tflite`` and
    ``metadata.json``, and measure the SavedModel and TFLite outputs against ``model``.

    Args:
        model: an inference model taking raw pixels and returning probabilities.
        destination: the export directory, e.g. ``saved_models/<run-name>``.
        metadata: written to ``metadata.json`` (model name, class names, ...), with the
            parity figures added under ``"parity"``.
        parity_images: held-out images at the model's input size (raw pixels) to compare on.
        overwrite: replace an existing export.

    Returns:
        An ``ExportResult`` with the directory and the parity figures.

    Raises:
        ExportError: the destination exists (without ``overwrite``), a conversion failed, or
            an artifact disagrees with the Keras model beyond tolerance.
    """
    destination = Path(destination)
    if destination.exists() and not overwrite:
        raise ExportError(f"export directory {destination} already exists; pass --overwrite")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=destination.parent)
    )
    try:
        model.save(temporary / "model.keras")
        export_saved_model(model, temporary / SAVED_MODEL_VERSION)
        tflite = convert_tflite(temporary / SAVED_MODEL_VERSION)
        (temporary / "model.tflite").write_bytes(tflite)
        parity = {}
        if parity_images is not None and len(parity_images):
            parity = measure_parity(model, temporary, parity_images)
        (temporary / "metadata.json").write_text(
            json.dumps({**metadata, "parity": parity}, indent=2) + "\n"
        )
        replace_directory(temporary, destination)
    except ExportError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    except Exception as error:
        shutil.rmtree(temporary, ignore_errors=True)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"export to {destination} failed: {reason}") from error
    return ExportResult(directory=destination, parity=parity)


def measure_parity(
    model: keras.Model, directory: Path, images: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Compare the SavedModel and the TFLite file in ``directory`` with ``model`` on
    ``images``: maximum absolute probability difference and top-1 agreement."""
    import tensorflow as tf

    images = np.asarray(images, dtype="float32")
    expected = model.predict(images, verbose=0, batch_size=64)
    serving = tf.saved_model.load(str(directory / SAVED_MODEL_VERSION)).signatures[SIGNATURE]
    outputs = {
        "saved_model": serving(images=tf.constant(images))[OUTPUT_NAME].numpy(),
        "tflite": TFLiteRunner(directory / "model.tflite")(images),
    }
    parity = {}
    for name, actual in outputs.items():
        max_diff = float(np.abs(actual - expected).max())
        agreement = float(np.mean(actual.argmax(-1) == expected.argmax(-1)))
        parity[name] = {
            "images": len(images),
            "max_abs_diff": max_diff,
            "top1_agreement": agreement,
        }
        if max_diff > FLOAT32_TOLERANCE:
            raise ExportError(
                f"{name} disagrees with the Keras model: max probability difference "
                f"{max_diff:.2e} > {FLOAT32_TOLERANCE:.0e} on {len(images)} images"
            )
    return parity


def replace_directory(source: Path, destination: Path) -> None:
    """Move ``source`` to ``destination``; an existing destination is moved aside first and
    removed only once the new one is in place."""
    previous = None
    if destination.exists():
        previous = destination.with_name(f".{destination.name}.old-{os.getpid()}")
        os.replace(destination, previous)
    os.replace(source, destination)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def default_export_name(path: str | Path) -> str:
    path = Path(path)
    if not path.name:
        raise InvalidArgumentError(f"cannot name an export after {path}")
    return path.stem if path.suffix == ".keras" else path.name


def export_trained(
    source: str | Path,
    export_dir: str | Path,
    *,
    name: str | None = None,
    dataset: str | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """``kerascnn export``: export a run directory (its ``model.keras``) or a ``.keras``
    file to ``export_dir/<name>``, checking parity on the test split of ``dataset`` (by
    default the dataset the run was trained on, if known)."""
    from kerascnn.artifacts import load_artifact
    from kerascnn.data import load_dataset, split_arrays

    artifact = load_artifact(source)
    if artifact.kind != "keras":
        raise InvalidArgumentError(
            f"export needs a run directory or a .keras file; {source} is a {artifact.kind}"
        )
    model = artifact.keras_model
    metadata = dict(artifact.metadata) or {"model": model.name}
    metadata.pop("parity", None)
    metadata.setdefault("input_shape", list(artifact.input_shape))
    metadata.setdefault("class_names", artifact.class_names)
    dataset = dataset or metadata.get("dataset")
    images = None
    if dataset:
        height, width, channels = artifact.input_shape
        images, _ = split_arrays(
            load_dataset(dataset).test, image_size=(height, width), channels=channels
        )
    return export_model(
        model,
        Path(export_dir) / (name or default_export_name(source)),
        metadata=metadata,
        parity_images=images,
        overwrite=overwrite,
    )


__all__ = [
    "ExportResult",
    "TFLiteRunner",
    "convert_tflite",
    "export_model",
    "export_trained",
    "measure_parity",
]
