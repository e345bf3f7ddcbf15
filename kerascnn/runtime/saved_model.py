"""SavedModels (an export's ``1/``, or a TF Serving model directory of numbered versions),
run through their pixel signature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from kerascnn.errors import InvalidArgumentError, first_line
from kerascnn.runtime.artifact import Artifact, check_image_model, metadata_near
from kerascnn.runtime.signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE


class SavedModelRunner:
    """``runner(images) -> probabilities`` through a SavedModel's ``serving_default``."""

    def __init__(self, path: str | Path):
        # The loaded object owns the variables the signature reads: keep it alive.
        self.loaded = tf.saved_model.load(str(path))
        self.serving = self.loaded.signatures[SIGNATURE]
        self.input_spec = self.serving.structured_input_signature[1].get(INPUT_NAME)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.serving(**{INPUT_NAME: tf.constant(images)})[OUTPUT_NAME].numpy()


def latest_version(directory: Path) -> Path | None:
    """The highest numbered version holding a SavedModel, in TF Serving's layout."""
    versions = [
        p for p in directory.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()
    ]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def load_saved_model(path: Path, threads: int | None = None) -> Artifact:
    """The SavedModel in ``path`` (``threads`` does not apply)."""
    try:
        runner = SavedModelRunner(path)
    except Exception as error:
        raise InvalidArgumentError(f"cannot load SavedModel {path}: {first_line(error)}") from None
    spec = runner.input_spec
    if spec is None:
        raise InvalidArgumentError(f"{path} has no '{INPUT_NAME}' input in {SIGNATURE}")
    check_image_model(path, spec.shape)
    return Artifact(
        path=path,
        kind="saved_model",
        input_shape=tuple(int(d) for d in spec.shape[1:]),
        run=runner,
        metadata=metadata_near(path),
    )
