"""Load any kerascnn artifact and use it: ``.keras``, SavedModel, ``.tflite``, run or
export directory. Every kind takes raw pixels and returns class probabilities."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerascnn.errors import InvalidArgumentError, MissingFileError

KINDS = (
    "a .keras file, a .tflite file, a .onnx file, a SavedModel directory, or a run or export "
    "directory"
)


@dataclass
class Artifact:
    """A loaded model of any kind. ``predict(images)`` takes raw pixels (N, H, W, C)."""

    path: Path
    kind: str  # "keras", "saved_model", "tflite" or "onnx"
    input_shape: tuple[int, int, int]
    run: Callable[[np.ndarray], np.ndarray]
    metadata: dict[str, Any] = field(default_factory=dict)
    keras_model: Any = None  # the keras.Model for kind "keras"

    @property
    def class_names(self) -> list[str]:
        names = self.metadata.get("class_names")
        if names:
            return [str(n) for n in names]
        return [str(i) for i in range(self.num_classes)]

    @property
    def num_classes(self) -> int:
        names = self.metadata.get("class_names")
        if names:
            return len(names)
        return int(self.run(np.zeros((1, *self.input_shape), "float32")).shape[-1])

    def predict(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        images = np.asarray(images, dtype="float32")
        outputs = [self.run(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, self.num_classes), "float32")


def load_artifact(path: str | Path) -> Artifact:
    """Load ``path``, which is a ``.keras`` file, a ``.tflite`` file, a SavedModel directory
    (or a TF Serving model directory holding numbered versions), or a kerascnn run or
    export directory (its ``model.keras``). Class names come from ``metadata.json``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a kerascnn artifact or cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no such file or directory: {path}")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return _load_saved_model(path)
        if (path / "model.keras").is_file():
            return _load_keras(path / "model.keras")
        versions = sorted(
            (p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()),
            key=lambda p: int(p.name),
        )
        if versions:
            return _load_saved_model(versions[-1])
        if (path / "checkpoints").is_dir():
            raise InvalidArgumentError(
                f"{path} has no model.keras; the run did not finish (its checkpoints are in "
                f"{path / 'checkpoints'})"
            )
        raise InvalidArgumentError(f"{path} is not a kerascnn artifact; expected {KINDS}")
    loaders = {".keras": _load_keras, ".tflite": _load_tflite, ".onnx": _load_onnx}
    if path.suffix not in loaders:
        raise InvalidArgumentError(f"{path} is not a kerascnn artifact; expected {KINDS}")
    return loaders[path.suffix](path)


def _load_keras(path: Path) -> Artifact:
    import keras

    if not zipfile.is_zipfile(path):
        raise InvalidArgumentError(f"cannot load {path}: not a .keras (zip) archive")
    try:
        # safe_mode refuses to deserialise Python lambdas from the file.
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise InvalidArgumentError(f"cannot load {path}: {_first_line(error)}") from None
    _check_image_model(path, model.input_shape)
    return Artifact(
        path=path,
        kind="keras",
        input_shape=tuple(model.input_shape[1:]),
        run=lambda images: np.asarray(model(images, training=False)),
        metadata=_metadata_near(path),
        keras_model=model,
    )


def _load_saved_model(path: Path) -> Artifact:
    import tensorflow as tf

    from kerascnn.export.saved_model import INPUT_NAME, OUTPUT_NAME, SIGNATURE

    try:
        loaded = tf.saved_model.load(str(path))
        serving = loaded.signatures[SIGNATURE]
    except Exception as error:
        raise InvalidArgumentError(f"cannot load SavedModel {path}: {_first_line(error)}") from None
    spec = serving.structured_input_signature[1].get(INPUT_NAME)
    if spec is None:
        raise InvalidArgumentError(f"{path} has no '{INPUT_NAME}' input in {SIGNATURE}")
    _check_image_model(path, spec.shape)

    def run(images: np.ndarray) -> np.ndarray:
        return serving(**{INPUT_NAME: tf.constant(images)})[OUTPUT_NAME].numpy()

    return Artifact(
        path=path,
        kind="saved_model",
        input_shape=tuple(int(d) for d in spec.shape[1:]),
        run=run,
        metadata=_metadata_near(path),
    )


def _load_tflite(path: Path) -> Artifact:
    from kerascnn.export.tflite import TFLiteRunner

    try:
        runner = TFLiteRunner(path)
    except Exception as error:
        raise InvalidArgumentError(
            f"cannot load TFLite file {path}: {_first_line(error)}"
        ) from None
    return Artifact(
        path=path,
        kind="tflite",
        input_shape=runner.input_shape,
        run=runner,
        metadata=_metadata_near(path),
    )


def _load_onnx(path: Path) -> Artifact:
    from kerascnn.errors import ExportError
    from kerascnn.export.onnx import OnnxRunner

    try:
        runner = OnnxRunner(path)
    except ExportError:
        raise
    except Exception as error:
        raise InvalidArgumentError(f"cannot load ONNX file {path}: {_first_line(error)}") from None
    _check_image_model(path, (None, *runner.input_shape))
    metadata = _metadata_near(path)
    if runner.class_names and not metadata.get("class_names"):
        metadata["class_names"] = runner.class_names
    return Artifact(
        path=path,
        kind="onnx",
        input_shape=tuple(int(d) for d in runner.input_shape),
        run=runner,
        metadata=metadata,
    )


def _metadata_near(path: Path) -> dict[str, Any]:
    """``metadata.json`` beside the artifact, or in the run/export directory above it; else
    the class names of a ``labels.txt`` there (one a line, index order)."""
    for directory in (path.parent, path.parent.parent):
        candidate = directory / "metadata.json"
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError:
                raise InvalidArgumentError(f"{candidate} is not valid JSON") from None
    for directory in (path.parent, path.parent.parent):
        labels = directory / "labels.txt"
        if labels.is_file():
            return {"class_names": labels.read_text().splitlines()}
    return {}


def _check_image_model(path: Path, shape: Sequence[Any]) -> None:
    if len(shape) != 4 or any(not isinstance(d, int) for d in list(shape)[1:]):
        raise InvalidArgumentError(
            f"{path} does not take (batch, height, width, channels) images of a fixed size"
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_images(paths: Sequence[str | Path], input_shape: Sequence[int]) -> np.ndarray:
    """Decode JPEG/PNG/BMP/GIF files into raw pixels at ``input_shape`` (H, W, C), converting
    grayscale/RGB/RGBA as the model needs."""
    import tensorflow as tf

    from kerascnn.data.pipeline import image_converter

    height, width, channels = input_shape
    convert = image_converter((height, width), channels)
    images = []
    for path in map(Path, paths):
        if not path.is_file():
            raise MissingFileError(f"image not found: {path}")
        try:
            image = tf.io.decode_image(path.read_bytes(), expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError):
            raise InvalidArgumentError(
                f"cannot decode {path}: not a JPEG, PNG, BMP or GIF image"
            ) from None
        images.append(convert(image).numpy())
    return np.stack(images)


def top_k(probabilities: np.ndarray, class_names: Sequence[str], k: int) -> list[list[dict]]:
    """Per image, the ``k`` most probable classes as ``{"class", "index", "probability"}``."""
    k = min(k, probabilities.shape[-1])
    results = []
    for row in probabilities:
        order = np.argsort(-row)[:k]
        results.append(
            [
                {"class": class_names[i], "index": int(i), "probability": float(row[i])}
                for i in order
            ]
        )
    return results


def evaluate_artifact(artifact: Artifact, images: np.ndarray, labels: np.ndarray) -> dict:
    """Cross-entropy loss, top-1 and top-5 accuracy of ``artifact`` on raw-pixel ``images``."""
    probabilities = artifact.predict(images)
    if probabilities.shape[-1] != artifact.num_classes:
        raise InvalidArgumentError("the artifact's outputs do not match its class names")
    labels = np.asarray(labels, dtype="int64")
    classes = probabilities.shape[-1]
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= classes:
        raise InvalidArgumentError(
            f"the dataset has labels from {labels.min()} to {labels.max()} but the model has "
            f"{classes} classes"
        )
    picked = probabilities[np.arange(len(labels)), labels]
    # The label's rank, ties going to the lower index as argmax does; a non-finite output
    # never counts as correct.
    ranks = (probabilities > picked[:, None]).sum(-1) + (
        (probabilities == picked[:, None]) & (np.arange(classes) < labels[:, None])
    ).sum(-1)
    ranks[~np.isfinite(picked)] = classes
    metrics = {
        "images": int(len(labels)),
        "loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
        "accuracy": float(np.mean(ranks == 0)),
    }
    if probabilities.shape[-1] > 5:
        metrics["top5_accuracy"] = float(np.mean(ranks < 5))
    return metrics
