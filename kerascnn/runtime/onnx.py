"""``.onnx`` files, run with ONNX Runtime on the CPU (the optional ``[onnx]`` extra).
Class names travel in the file's metadata (``class_names``, a JSON list)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kerascnn.errors import ExportError, InvalidArgumentError, first_line
from kerascnn.runtime.artifact import Artifact, check_image_model, metadata_near
from kerascnn.runtime.signature import INPUT_NAME, OUTPUT_NAME

INSTALL_HINT = "pip install 'kerascnn[onnx]' (tf2onnx and onnxruntime)"


class OnnxRunner:
    """Runs a ``.onnx`` file (or its bytes): ``runner(images) -> probabilities``."""

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None):
        try:
            import onnxruntime  # the optional [onnx] extra
        except ImportError as error:
            raise ExportError(f"running ONNX models needs onnxruntime: {INSTALL_HINT}") from error
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        options.log_severity_level = 3  # errors only
        source = model if isinstance(model, bytes) else str(model)
        self.session = onnxruntime.InferenceSession(
            source, options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name: i for i in self.session.get_inputs()}
        if INPUT_NAME not in inputs:
            raise ValueError(f"the ONNX model has no '{INPUT_NAME}' input")
        self.input_shape = tuple(inputs[INPUT_NAME].shape[1:])
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.class_names = json.loads(metadata["class_names"]) if "class_names" in metadata else []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype="float32")
        return np.asarray(self.session.run([OUTPUT_NAME], {INPUT_NAME: images})[0])


def load_onnx(path: Path, threads: int | None = None) -> Artifact:
    try:
        runner = OnnxRunner(path, threads)
    except ExportError:
        raise
    except Exception as error:
        raise InvalidArgumentError(f"cannot load ONNX file {path}: {first_line(error)}") from None
    check_image_model(path, (None, *runner.input_shape))
    metadata = metadata_near(path)
    if runner.class_names and not metadata.get("class_names"):
        metadata["class_names"] = runner.class_names
    return Artifact(
        path=path,
        kind="onnx",
        input_shape=tuple(int(d) for d in runner.input_shape),
        run=runner,
        metadata=metadata,
    )
