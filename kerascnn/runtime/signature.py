"""The serving contract every exported artifact keeps: the SavedModel signatures and the
names of their inputs and outputs (TFLite and ONNX files keep the pixel signature's names).

- ``serving_default``: ``images``, float32 raw 0-255 pixels ``(batch, height, width,
  channels)``;
- ``serving_bytes``: ``image_bytes``, a batch of encoded JPEG/PNG/BMP/GIF strings.

Both return ``probabilities`` ``(batch, classes)``, ``top_k_indices`` and ``top_k_classes``.
"""

SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serving_bytes"
INPUT_NAME = "images"
BYTES_INPUT_NAME = "image_bytes"
OUTPUT_NAME = "probabilities"
TOP_K_INDICES = "top_k_indices"
TOP_K_CLASSES = "top_k_classes"
