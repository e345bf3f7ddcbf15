"""``.keras`` files (a run's ``model.keras``, an export's, or any saved kerascnn model)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import keras
import numpy as np

from kerascnn.errors import InvalidArgumentError, first_line
from kerascnn.runtime.artifact import Artifact, check_image_model, metadata_near


def load_keras(path: Path, threads: int | None = None) -> Artifact:
    """The model in a ``.keras`` file (``threads`` does not apply: Keras uses every core)."""
    if not zipfile.is_zipfile(path):
        raise InvalidArgumentError(f"cannot load {path}: not a .keras (zip) archive")
    try:
        # safe_mode refuses to deserialise Python lambdas from the file.
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        missing = re.search(r"Could not locate class '([^']+)'", str(error))
        if missing:
            raise InvalidArgumentError(
                f"cannot load {path}: it uses a layer class kerascnn does not have "
                f"({missing.group(1)}); load it in Python after importing the code that "
                f"defines that class"
            ) from None
        raise InvalidArgumentError(f"cannot load {path}: {first_line(error)}") from None
    check_image_model(path, model.input_shape)
    return Artifact(
        path=path,
        kind="keras",
        input_shape=tuple(model.input_shape[1:]),
        run=lambda images: np.asarray(model(images, training=False)),
        metadata=metadata_near(path),
        keras_model=model,
    )
