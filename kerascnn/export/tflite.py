"""TFLite conversion (from a SavedModel, the route that works under Keras 3) in four
quantisation modes, and a runner built on the LiteRT interpreter.

Modes:

- ``none``: float32 weights and arithmetic.
- ``float16``: float16 weights, dequantised to float32 when the model loads.
- ``dynamic``: int8 weights; activations quantised on the fly, float32 input and output.
- ``int8``: full integer: int8 weights and activations, int8 input and output, with
  activation ranges calibrated on a representative set of training images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerascnn.export.saved_model import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from kerascnn.quiet import native_stderr_captured

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
    import tensorflow as tf

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
    with native_stderr_captured() as captured:
        try:
            return converter.convert()
        except Exception as error:
            # The converter's own log usually says why; keep its last line in the message.
            detail = [line for line in captured.read().splitlines() if line.strip()]
            if detail and detail[-1] not in str(error):
                raise RuntimeError(f"{error} ({detail[-1].strip()})") from error
            raise


class TFLiteRunner:
    """Runs a ``.tflite`` file (or its bytes) with LiteRT: ``runner(images) -> probabilities``.

    Integer models (``int8``) are fed raw pixels quantised with the input's scale and zero
    point, and their output is dequantised, so every mode takes and returns float32."""

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        source = (
            {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        )
        with native_stderr_captured():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interpreter = Interpreter(**source, num_threads=num_threads)
            self.interpreter.allocate_tensors()  # applies the delegate, which logs
            self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.input_details = self.runner.get_input_details()[INPUT_NAME]
        self.output_details = self.runner.get_output_details()[OUTPUT_NAME]
        self.input_shape = tuple(int(d) for d in self.input_details["shape_signature"][1:])
        self.input_dtype = np.dtype(self.input_details["dtype"])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = quantize(np.asarray(images, dtype="float32"), self.input_details)
        outputs = np.asarray(self.runner(**{INPUT_NAME: images})[OUTPUT_NAME])
        return dequantize(outputs, self.output_details)


def quantize(values: np.ndarray, details: dict) -> np.ndarray:
    """Float values to a tensor's integer type by its (scale, zero point); float tensors
    take them as they are."""
    dtype = np.dtype(details["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = details["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, details: dict) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.integer):
        return values.astype("float32")
    scale, zero_point = details["quantization"]
    return ((values.astype("float32") - zero_point) * scale).astype("float32")
