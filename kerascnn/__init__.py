"""kerascnn: the classic convolutional networks, faithful to their papers, in Keras 3.

Public API: ``create_model``, ``list_models``, ``model_info``. Importing kerascnn registers
its custom layers, so ``keras.saving.load_model`` reads kerascnn ``.keras`` files after it.

Started as the ``kerascnn`` or ``kerascnn-train`` command, the package waits: the command
line calls ``load`` before any command that needs TensorFlow, and its help, version, model
table and recipes answer without it.
"""

import importlib
import sys
from pathlib import Path

from kerascnn.errors import KerasCNNError
from kerascnn.quiet import import_tensorflow_quietly

__version__ = "0.1.0"

__all__ = ["KerasCNNError", "__version__", "create_model", "list_models", "model_info"]

COMMANDS = ("kerascnn", "kerascnn-train")
_API = ("create_model", "list_models", "model_info")


def load() -> None:
    """Import TensorFlow, its start-up lines captured, and register every model, custom layer
    and custom loss (idempotent)."""
    import_tensorflow_quietly()
    models = importlib.import_module("kerascnn.models")
    importlib.import_module("kerascnn.training.losses")  # registers rbf_penalty
    globals().update({name: getattr(models, name) for name in _API})


def __getattr__(name: str):
    if name in _API:
        load()
        return globals()[name]
    raise AttributeError(f"module 'kerascnn' has no attribute {name!r}")


def started_as_command() -> bool:
    """Whether this process is the ``kerascnn`` or ``kerascnn-train`` console script."""
    return bool(sys.argv) and Path(sys.argv[0]).name.removesuffix(".exe") in COMMANDS


if not started_as_command():
    load()
