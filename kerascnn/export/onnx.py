"""ONNX conversion with tf2onnx from the pixels-to-probabilities SavedModel, and a runner
built on ONNX Runtime.

Why this route: ``keras.Model.export(format="onnx")`` (and ``tf2onnx.convert.from_function`` on
the model's ``tf.function``) produce a graph with the preprocessing layer's mean and variance
left as extra required *inputs* (``.../preprocessing/Sub/y:0``; Keras keeps them as captured
tensors, not variables), which onnxruntime refuses to run without. Converting the SavedModel
freezes every capture into a constant and keeps the signature's names: input ``images``,
output ``probabilities``. Class names go into the ONNX file's metadata (``class_names``, a
JSON list) as well as the export's ``labels.txt``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kerascnn.errors import ExportError
from kerascnn.export.saved_model import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from kerascnn.quiet import native_stderr_captured

OPSET = 17
INSTALL_HINT = "pip install 'kerascnn[onnx]' (tf2onnx and onnxruntime)"


def convert_onnx(saved_model_dir: str | Path, class_names: Sequence[str] | None = None) -> bytes:
    """A serialised ONNX model of the SavedModel's ``serving_default`` signature (raw pixels
    in, probabilities out), with ``class_names`` in its metadata.

    Raises:
        ExportError: tf2onnx is not installed.
    """
    try:
        import tf2onnx
        from tf2onnx import tf_loader
    except ImportError as error:
        raise ExportError(f"ONNX export needs tf2onnx: {INSTALL_HINT}") from error
    import tensorflow as tf

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    previous = tf.get_logger().level
    tf.get_logger().setLevel(logging.ERROR)  # deprecation notices of the TF1 freezing API
    try:
        with native_stderr_captured():
            graph_def, inputs, outputs, _, renames = tf_loader.from_saved_model(
                str(saved_model_dir),
                None,
                None,
                signatures=[SIGNATURE],
                return_initialized_tables=True,
                return_tensors_to_rename=True,
            )
            proto, _ = tf2onnx.convert.from_graph_def(
                graph_def,
                name="kerascnn",
                input_names=inputs,
                output_names=outputs,
                opset=OPSET,
                tensors_to_rename=renames,
            )
    finally:
        tf.get_logger().setLevel(previous)
    if class_names:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "class_names", json.dumps([str(n) for n in class_names])
    return proto.SerializeToString()


class OnnxRunner:
    """Runs a ``.onnx`` file (or its bytes) with ONNX Runtime on the CPU:
    ``runner(images) -> probabilities``."""

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None):
        try:
            import onnxruntime
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
