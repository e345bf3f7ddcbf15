"""Export a trained model (``kerascnn export``, and the end of ``kerascnn train``): a
directory of artifacts written whole, each measured against the Keras model.

- ``directory``: ``export_model`` / ``export_trained`` (what is written, parity, thresholds);
- ``saved_model``, ``tflite``, ``onnx``: the converters, each returning or writing one format.

The runners that load and run the artifacts are ``kerascnn.runtime``'s.
"""

from kerascnn.export.directory import (
    FORMATS,
    ExportResult,
    export_model,
    export_trained,
    measure_parity,
)
from kerascnn.export.onnx import convert_onnx
from kerascnn.export.tflite import QUANTIZE_MODES, convert_tflite

__all__ = [
    "FORMATS",
    "QUANTIZE_MODES",
    "ExportResult",
    "convert_onnx",
    "convert_tflite",
    "export_model",
    "export_trained",
    "measure_parity",
]
