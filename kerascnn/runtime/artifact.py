"""``Artifact``: a loaded model of any kind, taking raw pixels and returning probabilities,
with what is known about it (``metadata.json`` or ``labels.txt`` beside it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerascnn.errors import InvalidArgumentError

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


def metadata_near(path: Path) -> dict[str, Any]:
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


def check_image_model(path: Path, shape: Sequence[Any]) -> None:
    if len(shape) != 4 or any(not isinstance(d, int) for d in list(shape)[1:]):
        raise InvalidArgumentError(
            f"{path} does not take (batch, height, width, channels) images of a fixed size"
        )
