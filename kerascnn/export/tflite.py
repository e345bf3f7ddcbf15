"""TFLite conversion (from a SavedModel, the route that works under Keras 3) in four
quantisation modes; ``kerascnn.runtime.tflite`` runs the result.

Modes:

- ``none``: float32 weights and arithmetic.
- ``float16``: float16 weights, dequantised to float32 when the model loads.
- ``dynamic``: int8 weights; activations quantised on the fly, float32 input and output.
- ``int8``: full integer: int8 weights and activations, int8 input and output, with
  activation ranges calibrated on a representative set of training images.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerascnn.quiet import native_stderr_captured
from kerascnn.runtime.signature import INPUT_NAME, SIGNATURE

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
# Calibrating full-integer quantisation on fewer images gives unreliable activation ranges.
MIN_REPRESENTATIVE_IMAGES = 200


def tflite_filename(quantize: str) -> str:
    """``model.tflite`` for float32, ``model_<mode>.tflite`` for the quantised modes."""
    return "model.tflite" if quantize == "none" else f"model_{quantize}.tflite"


def convert_tflite(
    saved_model_dir: str | Path,
    quantize: str = "none",
    representative_images: np.ndarray | None = None,
) -> bytes:
    """A TFLite flatbuffer of the SavedModel's ``serving_default`` signature.

    Args:
        saved_model_dir: a SavedModel whose ``serving_default`` takes raw pixels and returns
            probabilities only (``export_saved_model``).
        quantize: one of ``QUANTIZE_MODES``.
        representative_images: raw-pixel training images (at least 200) for ``int8``.

    Raises:
        ValueError: unknown mode, or ``int8`` without enough representative images.
        RuntimeError (or TensorFlow's error): the converter failed.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantisation {quantize!r}; choose from {QUANTIZE_MODES}")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[SIGNATURE]
    )
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        images = np.asarray(representative_images if representative_images is not None else [])
        if len(images) < MIN_REPRESENTATIVE_IMAGES:
            raise ValueError(
                f"int8 quantisation needs at least {MIN_REPRESENTATIVE_IMAGES} representative "
                f"images; got {len(images)}"
            )
        images = images.astype("float32")

        def representative():
            for image in images:
                yield {INPUT_NAME: image[None]}

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with native_stderr_captured() as captured, warnings.catch_warnings():
        # int8 calibration runs TensorFlow's own (deprecated) tf.lite.Interpreter inside the
        # converter; kerascnn runs every .tflite file with LiteRT's.
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter")
        try:
            return converter.convert()
        except Exception as error:
            # The converter's own log usually says why; keep its last line in the message.
            detail = [line for line in captured.read().splitlines() if line.strip()]
            if detail and detail[-1] not in str(error):
                raise RuntimeError(f"{error} ({detail[-1].strip()})") from error
            raise
