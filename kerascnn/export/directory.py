"""An export directory: ``model.keras``, a TF Serving SavedModel, TFLite files in any
quantisation mode and ONNX, each measured against the Keras model with the runners of
``kerascnn.runtime``.

``export_model`` writes everything into a temporary directory beside the destination and
renames it into place only when every file is written and its parity checked, so a failed or
killed export never leaves a partial artifact. Exporting the same model again adds the
artifacts it asks for beside those already there (``--quantize int8`` after a run's export
adds ``model_int8.tflite`` and keeps the SavedModel and ``model.tflite``); ``metadata.json``
holds the parity of every artifact in the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascnn.data import load_dataset, split_arrays
from kerascnn.errors import ExportError, InvalidArgumentError, first_line
from kerascnn.evaluation import result_warnings
from kerascnn.export.onnx import convert_onnx
from kerascnn.export.saved_model import DEFAULT_TOP_K, export_saved_model, export_serving_model
from kerascnn.export.tflite import (
    MIN_REPRESENTATIVE_IMAGES,
    QUANTIZE_MODES,
    convert_tflite,
    tflite_filename,
)
from kerascnn.runtime import OnnxRunner, SavedModelRunner, TFLiteRunner, load_artifact

SAVED_MODEL_VERSION = "1"
FORMATS = ("saved_model", "tflite", "onnx")
ONNX_FILENAME = "model.onnx"
LABELS_FILENAME = "labels.txt"
# Parity of float32 artifacts against the Keras model: the largest probability difference.
FLOAT32_TOLERANCE = 1e-4
# Least top-1 agreement with the Keras model, per artifact (README "Export and deployment";
# "dynamic" is held to int8's, as its weights are int8 too), and the most accuracy an
# artifact may lose (in fraction, 0.01 = 1 point) where labels are known.
MIN_AGREEMENT = {"float32": 1.0, "float16": 0.995, "dynamic": 0.98, "int8": 0.98}
MAX_ACCURACY_LOSS = {"int8": 0.01}
# Images used to calibrate full-integer quantisation.
REPRESENTATIVE_IMAGES = 256


# Written by every export of a model, so never kept from an earlier one.
SHARED_FILES = ("model.keras", LABELS_FILENAME, "metadata.json")


@dataclass
class ExportResult:
    directory: Path
    parity: dict[str, dict[str, Any]]
    kept: list[str] = field(default_factory=list)  # artifacts an earlier export had written


def export_model(
    model: keras.Model,
    destination: str | Path,
    *,
    metadata: dict[str, Any],
    parity_images: np.ndarray | None = None,
    parity_labels: np.ndarray | None = None,
    formats: Sequence[str] = ("saved_model", "tflite"),
    quantize: Sequence[str] = ("none",),
    representative_images: np.ndarray | None = None,
    top_k: int = DEFAULT_TOP_K,
    overwrite: bool = False,
) -> ExportResult:
    """Write ``destination/`` with ``model.keras``, and per format: ``1/`` (SavedModel with
    the ``serving_default`` and ``serving_bytes`` signatures), one ``.tflite`` per
    quantisation mode (``model.tflite`` for float32, ``model_<mode>.tflite`` otherwise),
    ``model.onnx``; then ``labels.txt`` (class names, one a line, index order) and
    ``metadata.json``; and measure each artifact against ``model``.

    Args:
        model: an inference model taking raw pixels and returning probabilities.
        destination: the export directory, e.g. ``saved_models/<run-name>``.
        metadata: written to ``metadata.json`` (model name, class names, ...), with the
            parity figures added under ``"parity"``.
        parity_images: held-out images at the model's input size (raw pixels) to compare on.
        parity_labels: their labels, to measure each artifact's accuracy loss.
        formats: any of ``FORMATS``.
        quantize: TFLite modes, any of ``QUANTIZE_MODES``.
        representative_images: raw-pixel training images calibrating ``int8`` (at least 200).
        top_k: classes in the SavedModel's top-k outputs.
        overwrite: rewrite the asked-for artifacts an earlier export of the same model wrote,
            or replace an export of another model.

    Returns:
        An ``ExportResult`` with the directory, the parity figures and the artifacts kept
        from an earlier export.

    Raises:
        ExportError: the destination holds another model's export (without ``overwrite``),
            a conversion failed, or an artifact disagrees with the Keras model beyond
            tolerance.
        InvalidArgumentError: an unknown format or mode, or int8 without calibration images.
    """
    formats, quantize = check_formats(formats, quantize, representative_images)
    destination = Path(destination)
    earlier = destination.exists() and exported_model_matches(destination, model)
    if destination.exists() and not earlier and not overwrite:
        raise ExportError(
            f"export directory {destination} holds another model's export; choose another "
            f"name or pass --overwrite"
        )
    class_names = metadata.get("class_names") or [
        str(i) for i in range(int(model.output_shape[-1]))
    ]
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=destination.parent)
    )
    # mkdtemp makes it private (0700); a server running as another user must read it.
    os.chmod(temporary, 0o755)
    try:
        kept, parity = [], {}
        if earlier:
            rewritten = artifact_names(formats, quantize) if overwrite else ()
            kept = link_artifacts(destination, temporary, skip=rewritten)
            parity = read_parity(destination)
        write_artifacts(
            model, temporary, class_names, formats, quantize, representative_images, top_k
        )
        if parity_images is not None and len(parity_images):
            parity = measure_parity(model, temporary, parity_images, parity_labels)
        (temporary / "metadata.json").write_text(
            json.dumps({**metadata, "parity": parity}, indent=2) + "\n"
        )
        replace_directory(temporary, destination)
    except ExportError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if str(destination) in str(error):
            raise
        raise ExportError(f"export to {destination} failed: {error}") from error
    except Exception as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise ExportError(f"export to {destination} failed: {first_line(error)}") from error
    return ExportResult(directory=destination, parity=parity, kept=kept)


def artifact_names(formats: Sequence[str], quantize: Sequence[str]) -> list[str]:
    """The files (or directory) each asked-for artifact is written to."""
    names = [SAVED_MODEL_VERSION] if "saved_model" in formats else []
    if "tflite" in formats:
        names += [tflite_filename(mode) for mode in quantize]
    if "onnx" in formats:
        names.append(ONNX_FILENAME)
    return names


def exported_model_matches(directory: Path, model: keras.Model) -> bool:
    """Whether ``directory/model.keras`` holds ``model``'s weights (an export of it)."""
    try:
        exported = keras.saving.load_model(directory / "model.keras", compile=False)
    except Exception:  # absent, unreadable or foreign: not this model's export
        return False
    ours, theirs = model.get_weights(), exported.get_weights()
    return len(ours) == len(theirs) and all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True)
    )


def link_artifacts(source: Path, target: Path, skip: Sequence[str] = ()) -> list[str]:
    """Hard-link (or copy) ``source``'s artifacts into ``target``, but for the files every
    export rewrites and ``skip``; the names linked, sorted."""
    linked = []
    for item in sorted(source.iterdir()):
        if item.name in SHARED_FILES or item.name in skip:
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name, copy_function=_link_or_copy)
        else:
            _link_or_copy(item, target / item.name)
        linked.append(item.name + ("/" if item.is_dir() else ""))
    return linked


def _link_or_copy(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def read_parity(directory: Path) -> dict[str, Any]:
    """The parity figures an earlier export recorded in ``directory/metadata.json``."""
    try:
        return json.loads((directory / "metadata.json").read_text()).get("parity", {})
    except (OSError, ValueError, AttributeError):
        return {}


def write_artifacts(
    model: keras.Model,
    directory: Path,
    class_names: Sequence[str],
    formats: Sequence[str],
    quantize: Sequence[str],
    representative_images: np.ndarray | None,
    top_k: int,
) -> None:
    """``model.keras``, each format's artifacts (but those ``directory`` already holds) and
    ``labels.txt`` into ``directory``."""
    model.save(directory / "model.keras")
    if "saved_model" in formats and not (directory / SAVED_MODEL_VERSION).exists():
        export_serving_model(
            model, directory / SAVED_MODEL_VERSION, class_names=class_names, top_k=top_k
        )
    modes = [m for m in quantize if not (directory / tflite_filename(m)).exists()]
    modes = modes if "tflite" in formats else []
    onnx = "onnx" in formats and not (directory / ONNX_FILENAME).exists()
    if modes or onnx:
        # The converters take a SavedModel of raw pixels to probabilities alone.
        plain = directory / ".convert"
        export_saved_model(model, plain)
        for mode in modes:
            (directory / tflite_filename(mode)).write_bytes(
                convert_tflite(plain, mode, representative_images)
            )
        if onnx:
            (directory / ONNX_FILENAME).write_bytes(convert_onnx(plain, class_names))
        shutil.rmtree(plain)
    (directory / LABELS_FILENAME).write_text("".join(f"{n}\n" for n in class_names))


def check_formats(
    formats: Sequence[str], quantize: Sequence[str], representative_images: np.ndarray | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    formats, quantize = tuple(dict.fromkeys(formats)), tuple(dict.fromkeys(quantize))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InvalidArgumentError(
            f"unknown export format {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(FORMATS)}"
        )
    unknown = [q for q in quantize if q not in QUANTIZE_MODES]
    if unknown or not quantize:
        raise InvalidArgumentError(
            f"unknown quantisation {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(QUANTIZE_MODES)}"
        )
    if quantize != ("none",) and "tflite" not in formats:
        raise InvalidArgumentError("--quantize applies to TFLite; add tflite to --format")
    if "int8" in quantize and "tflite" in formats:
        count = 0 if representative_images is None else len(representative_images)
        if count < MIN_REPRESENTATIVE_IMAGES:
            raise InvalidArgumentError(
                f"int8 quantisation is calibrated on at least {MIN_REPRESENTATIVE_IMAGES} "
                f"training images; got {count} (name a dataset with --dataset)"
            )
    return formats, quantize


def artifact_runners(directory: Path) -> dict[str, tuple[str, Any]]:
    """The artifacts exported into ``directory``: name -> (precision, runner)."""
    runners: dict[str, tuple[str, Any]] = {}
    if (directory / SAVED_MODEL_VERSION / "saved_model.pb").is_file():
        runners["saved_model"] = ("float32", SavedModelRunner(directory / SAVED_MODEL_VERSION))
    for mode in QUANTIZE_MODES:
        path = directory / tflite_filename(mode)
        if path.is_file():
            name = "tflite" if mode == "none" else f"tflite_{mode}"
            runners[name] = ("float32" if mode == "none" else mode, TFLiteRunner(path))
    if (directory / ONNX_FILENAME).is_file():
        runners["onnx"] = ("float32", OnnxRunner(directory / ONNX_FILENAME))
    return runners


def measure_parity(
    model: keras.Model,
    directory: Path,
    images: np.ndarray,
    labels: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Compare every artifact in ``directory`` with ``model`` on ``images``: the largest
    probability difference, top-1 agreement and, given ``labels``, the accuracy of both.

    Raises:
        ExportError: an artifact falls short of its precision's thresholds.
    """
    images = np.asarray(images, dtype="float32")
    expected = model.predict(images, verbose=0, batch_size=64)
    parity = {}
    for name, (precision, run) in artifact_runners(Path(directory)).items():
        actual = np.concatenate([run(images[i : i + 64]) for i in range(0, len(images), 64)])
        figures: dict[str, Any] = {
            "images": len(images),
            "precision": precision,
            "max_abs_diff": float(np.abs(actual - expected).max()),
            "top1_agreement": float(np.mean(actual.argmax(-1) == expected.argmax(-1))),
        }
        if labels is not None:
            labels = np.asarray(labels)
            figures["keras_accuracy"] = float(np.mean(expected.argmax(-1) == labels))
            figures["accuracy"] = float(np.mean(actual.argmax(-1) == labels))
            figures["accuracy_loss"] = figures["keras_accuracy"] - figures["accuracy"]
            useless = result_warnings(figures["keras_accuracy"], expected.shape[-1], what="Keras")
            if useless:
                figures["warning"] = f"{useless[0]}; agreement between the two means nothing"
        parity[name] = figures
        check_parity(name, figures)
    return parity


def check_parity(name: str, figures: dict[str, Any]) -> None:
    precision, count = figures["precision"], figures["images"]
    if precision == "float32" and figures["max_abs_diff"] >= FLOAT32_TOLERANCE:
        raise ExportError(
            f"{name} disagrees with the Keras model: max probability difference "
            f"{figures['max_abs_diff']:.2e} >= {FLOAT32_TOLERANCE:.0e} on {count} images"
        )
    if figures["top1_agreement"] < MIN_AGREEMENT[precision]:
        raise ExportError(
            f"{name} disagrees with the Keras model: top-1 agreement "
            f"{100 * figures['top1_agreement']:.2f}% < {100 * MIN_AGREEMENT[precision]:g}% "
            f"on {count} images"
        )
    loss = figures.get("accuracy_loss")
    if precision in MAX_ACCURACY_LOSS and loss is not None and loss > MAX_ACCURACY_LOSS[precision]:
        raise ExportError(
            f"{name} loses {100 * loss:.2f} points of accuracy against the Keras model "
            f"(at most {100 * MAX_ACCURACY_LOSS[precision]:g}) on {count} images"
        )


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
    formats: Sequence[str] = ("saved_model", "tflite"),
    quantize: Sequence[str] = ("none",),
    top_k: int = DEFAULT_TOP_K,
    overwrite: bool = False,
) -> ExportResult:
    """``kerascnn export``: export a run directory (its ``model.keras``) or a ``.keras``
    file to ``export_dir/<name>``, checking parity on the test split of ``dataset`` (by
    default the dataset the run was trained on, if known) and calibrating ``int8`` on the
    first ``REPRESENTATIVE_IMAGES`` of its training split, through the same pipeline as
    training."""
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
    images = labels = representative = None
    if dataset:
        data = load_dataset(dataset)
        height, width, channels = artifact.input_shape
        size = {"image_size": (height, width), "channels": channels}
        images, labels = split_arrays(data.test, **size)
        if "int8" in quantize:
            representative, _ = split_arrays(data.train, limit=REPRESENTATIVE_IMAGES, **size)
    return export_model(
        model,
        Path(export_dir) / (name or default_export_name(source)),
        metadata=metadata,
        parity_images=images,
        parity_labels=labels,
        formats=formats,
        quantize=quantize,
        representative_images=representative,
        top_k=top_k,
        overwrite=overwrite,
    )
