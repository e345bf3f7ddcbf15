"""TFLite conversion (from the SavedModel, the route that works under Keras 3) and a runner
built on the LiteRT interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerascnn.export.saved_model import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from kerascnn.quiet import native_stderr_captured


def convert_tflite(saved_model_dir: str | Path) -> bytes:
    """A float32 TFLite flatbuffer of the SavedModel's ``serving_default`` signature."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[SIGNATURE]
    )
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
    """Runs a ``.tflite`` file (or its bytes) with LiteRT: ``runner(images) -> probabilities``."""

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        source = (
            {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        )
        with native_stderr_captured():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interpreter = Interpreter(**source, num_threads=num_threads)
            self.interpreter.allocate_tensors()  # applies the delegate, which logs
            self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        details = self.runner.get_input_details()[INPUT_NAME]
        self.input_shape = tuple(int(d) for d in details["shape_signature"][1:])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype="float32")
        return np.asarray(self.runner(**{INPUT_NAME: images})[OUTPUT_NAME])
