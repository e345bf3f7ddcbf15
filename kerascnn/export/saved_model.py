"""SavedModel export.

``export_serving_model`` writes what TF Serving loads, with two signatures:

- ``serving_default``: ``images``, float32 raw 0-255 pixels ``(batch, height, width, channels)``;
- ``serving_bytes``: ``image_bytes``, a batch of encoded JPEG/PNG/BMP/GIF strings, decoded,
  converted to the model's channels and resized inside the graph exactly as the training
  pipeline does (``kerascnn.data.pipeline.image_converter``).

Both return ``probabilities`` ``(batch, classes)``, ``top_k_indices`` ``(batch, k)`` (int32)
and ``top_k_classes`` ``(batch, k)`` (the class names of those indices, strings), so a client
needs neither kerascnn nor a label file.

``export_saved_model`` writes the plain pixels-to-probabilities signature alone: the input of
the TFLite and ONNX converters, which have no use for strings.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from kerascnn.data.pipeline import image_converter
from kerascnn.runtime.signature import (
    BYTES_INPUT_NAME,
    BYTES_SIGNATURE,
    INPUT_NAME,
    OUTPUT_NAME,
    SIGNATURE,
    TOP_K_CLASSES,
    TOP_K_INDICES,
)

DEFAULT_TOP_K = 5


def export_saved_model(model: keras.Model, directory: str | Path) -> None:
    """Write ``model`` as a SavedModel whose ``serving_default`` signature takes ``images``
    (float32 raw 0-255 pixels, ``(batch, height, width, channels)``) and returns
    ``{"probabilities": (batch, classes)}``. Preprocessing is inside the model."""
    archive = _archive(model)

    def serve(images):
        return {OUTPUT_NAME: model(images, training=False)}

    archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[_pixels_spec(model)])
    _write(archive, directory)


def export_serving_model(
    model: keras.Model,
    directory: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> None:
    """Write ``model`` as a SavedModel with the ``serving_default`` (raw pixels) and
    ``serving_bytes`` (encoded images) signatures, each returning probabilities, the top-k
    class indices and their names.

    Args:
        model: an inference model taking raw pixels and returning probabilities.
        directory: the version directory, e.g. ``saved_models/<name>/1``.
        class_names: in index order; by default the indices as strings.
        top_k: how many classes the top-k outputs hold (at most the number of classes).
    """
    height, width, channels = model.input_shape[1:]
    classes = int(model.output_shape[-1])
    names = [str(n) for n in class_names] if class_names else [str(i) for i in range(classes)]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for a model with {classes} classes")
    k = max(1, min(int(top_k), classes))
    convert = image_converter((height, width), channels)
    archive = _archive(model)

    def outputs(probabilities):
        top = tf.math.top_k(probabilities, k=k)
        return {
            OUTPUT_NAME: probabilities,
            TOP_K_INDICES: top.indices,
            TOP_K_CLASSES: tf.gather(tf.constant(names), top.indices),
        }

    def serve(images):
        return outputs(model(images, training=False))

    def decode(encoded):
        image = tf.io.decode_image(encoded, expand_animations=False)
        image = tf.ensure_shape(to_channels(image, channels), [None, None, channels])
        return convert(image)

    def serve_bytes(image_bytes):
        images = tf.map_fn(
            decode,
            image_bytes,
            fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32),
        )
        return outputs(model(images, training=False))

    archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[_pixels_spec(model)])
    archive.add_endpoint(
        name=BYTES_SIGNATURE,
        fn=serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT_NAME)],
    )
    _write(archive, directory)


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Graph-safe channel conversion for a decoded image whose channel count is known only at
    run time (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA), as ``pipeline.convert_channels`` does for
    a known count: alpha dropped, RGB to gray by ``tf.image.rgb_to_grayscale``."""
    image = tf.cast(image, tf.float32)
    have = tf.shape(image)[-1]
    color = lambda: image[..., :3]  # noqa: E731
    gray = lambda: image[..., :1]  # noqa: E731
    if channels == 1:
        return tf.cond(have >= 3, lambda: tf.image.rgb_to_grayscale(color()), gray)
    if channels == 3:
        return tf.cond(have >= 3, color, lambda: tf.image.grayscale_to_rgb(gray()))
    raise ValueError(f"cannot serve encoded images to a model with {channels} channels")


def _pixels_spec(model: keras.Model) -> tf.TensorSpec:
    height, width, channels = model.input_shape[1:]
    return tf.TensorSpec([None, height, width, channels], tf.float32, name=INPUT_NAME)


def _archive(model: keras.Model) -> keras.export.ExportArchive:
    archive = keras.export.ExportArchive()
    archive.track(model)
    return archive


def _write(archive: keras.export.ExportArchive, directory: str | Path) -> None:
    # write_out announces itself on stdout (its `verbose` argument is Keras 3.5+ only).
    with contextlib.redirect_stdout(io.StringIO()):
        archive.write_out(str(directory))
