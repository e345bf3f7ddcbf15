"""Keeping TensorFlow's native start-up chatter off the terminal.

TensorFlow 2.20+ logs CUDA-probe and CPU-feature lines through absl before
``TF_CPP_MIN_LOG_LEVEL`` takes effect, and the TFLite converter and interpreter log INFO
lines of their own. The CLI captures file descriptor 2 around those calls and shows the
captured text only if the call fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr_captured():
    """Redirect file descriptor 2 (where C++ code writes) into a temporary file; yields the
    file, readable after the block. Python-level ``sys.stderr`` writes are flushed first."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras with their start-up lines captured; if the import fails,
    the captured lines are shown before the error propagates. TensorFlow's C++ INFO and
    WARNING lines stay off too unless ``TF_CPP_MIN_LOG_LEVEL`` is set already."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_captured() as captured:
        try:
            import keras  # noqa: F401
            import tensorflow

            # Probing devices is what logs "failed call to cuInit" on machines without a GPU.
            tensorflow.config.list_physical_devices()
        except BaseException:
            captured.seek(0)
            text = captured.read()
            failed = True
        else:
            failed = False
    if failed:
        sys.stderr.write(text)
        raise ImportError("TensorFlow could not be imported; its log is above")
