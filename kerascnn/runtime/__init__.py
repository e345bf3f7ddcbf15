"""Load any kerascnn artifact and use it: ``.keras``, SavedModel, ``.tflite``, ``.onnx``, run
or export directory. Every kind takes raw pixels and returns class probabilities.

The bottom of the deployment side: export measures its artifacts with these runners, and
``evaluate``, ``predict``, ``benchmark`` and inspection load what they are given with
``load_artifact``.
"""

from __future__ import annotations

from pathlib import Path

from kerascnn.errors import InvalidArgumentError, MissingFileError
from kerascnn.runtime.artifact import KINDS, Artifact
from kerascnn.runtime.images import decode_image, read_images, top_k
from kerascnn.runtime.keras_model import load_keras
from kerascnn.runtime.onnx import OnnxRunner, load_onnx
from kerascnn.runtime.saved_model import SavedModelRunner, latest_version, load_saved_model
from kerascnn.runtime.tflite import TFLiteRunner, load_tflite

# A file's kind by its suffix.
LOADERS = {".keras": load_keras, ".tflite": load_tflite, ".onnx": load_onnx}


def load_artifact(path: str | Path, *, threads: int | None = None) -> Artifact:
    """Load ``path``, which is a ``.keras``, ``.tflite`` or ``.onnx`` file, a SavedModel
    directory (or a TF Serving model directory holding numbered versions), or a kerascnn run
    or export directory (its ``model.keras``). Class names come from ``metadata.json``.

    ``threads`` is the thread count of the TFLite and ONNX runtimes (None: all cores).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a kerascnn artifact or cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no such file or directory: {path}")
    if not path.is_dir():
        if path.suffix not in LOADERS:
            raise InvalidArgumentError(f"{path} is not a kerascnn artifact; expected {KINDS}")
        return LOADERS[path.suffix](path, threads)
    if (path / "saved_model.pb").is_file():
        return load_saved_model(path)
    if (path / "model.keras").is_file():
        return load_keras(path / "model.keras")
    version = latest_version(path)
    if version is not None:
        return load_saved_model(version)
    if (path / "checkpoints").is_dir():
        raise InvalidArgumentError(
            f"{path} has no model.keras; the run did not finish (its checkpoints are in "
            f"{path / 'checkpoints'})"
        )
    raise InvalidArgumentError(f"{path} is not a kerascnn artifact; expected {KINDS}")


__all__ = [
    "Artifact",
    "OnnxRunner",
    "SavedModelRunner",
    "TFLiteRunner",
    "decode_image",
    "load_artifact",
    "read_images",
    "top_k",
]
