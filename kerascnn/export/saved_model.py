"""SavedModel export with a ``serving_default`` signature on raw pixels."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import keras
import tensorflow as tf

SIGNATURE = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"


def export_saved_model(model: keras.Model, directory: str | Path) -> None:
    """Write ``model`` as a SavedModel whose ``serving_default`` signature takes ``images``
    (float32 raw 0-255 pixels, ``(batch, height, width, channels)``) and returns
    ``{"probabilities": (batch, classes)}``. Preprocessing is inside the model."""
    height, width, channels = model.input_shape[1:]
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        return {OUTPUT_NAME: model(images, training=False)}

    archive.add_endpoint(
        name=SIGNATURE,
        fn=serve,
        input_signature=[
            tf.TensorSpec([None, height, width, channels], tf.float32, name=INPUT_NAME)
        ],
    )
    # write_out announces itself on stdout (its `verbose` argument is Keras 3.5+ only).
    with contextlib.redirect_stdout(io.StringIO()):
        archive.write_out(str(directory))
