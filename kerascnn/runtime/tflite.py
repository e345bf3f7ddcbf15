"""``.tflite`` files, run with the LiteRT interpreter (XNNPACK delegate).

Integer models (``int8``) are fed raw pixels quantised with the input's scale and zero
point, and their output is dequantised, so every quantisation mode takes and returns float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from kerascnn.errors import InvalidArgumentError, first_line
from kerascnn.quiet import native_stderr_captured
from kerascnn.runtime.artifact import Artifact, metadata_near
from kerascnn.runtime.signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE


class TFLiteRunner:
    """Runs a ``.tflite`` file (or its bytes): ``runner(images) -> probabilities``."""

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None):
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


def load_tflite(path: Path, threads: int | None = None) -> Artifact:
    try:
        runner = TFLiteRunner(path, threads)
    except Exception as error:
        raise InvalidArgumentError(f"cannot load TFLite file {path}: {first_line(error)}") from None
    return Artifact(
        path=path,
        kind="tflite",
        input_shape=runner.input_shape,
        run=runner,
        metadata=metadata_near(path),
    )
