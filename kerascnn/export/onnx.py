"""ONNX conversion with tf2onnx from the pixels-to-probabilities SavedModel;
``kerascnn.runtime.onnx`` runs the result.

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

import tensorflow as tf

from kerascnn.errors import ExportError
from kerascnn.quiet import native_stderr_captured
from kerascnn.runtime.onnx import INSTALL_HINT
from kerascnn.runtime.signature import SIGNATURE

OPSET = 17


def convert_onnx(saved_model_dir: str | Path, class_names: Sequence[str] | None = None) -> bytes:
    """A serialised ONNX model of the SavedModel's ``serving_default`` signature (raw pixels
    in, probabilities out), with ``class_names`` in its metadata.

    Raises:
        ExportError: tf2onnx is not installed.
    """
    try:  # the optional [onnx] extra
        import tf2onnx
        from tf2onnx import tf_loader
    except ImportError as error:
        raise ExportError(f"ONNX export needs tf2onnx: {INSTALL_HINT}") from error

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
