"""kerascnn: the classic convolutional networks, faithful to their papers, in Keras 3.

Public API: ``create_model``, ``list_models``, ``model_info``. They are loaded on first use,
so importing ``kerascnn`` (or its CLI) does not start TensorFlow until a command needs it.
"""

from kerascnn.errors import KerasCNNError

__version__ = "0.1.0"

__all__ = ["KerasCNNError", "__version__", "create_model", "list_models", "model_info"]

_MODEL_API = ("create_model", "list_models", "model_info")


def __getattr__(name):
    if name in _MODEL_API:
        from kerascnn import models

        return getattr(models, name)
    raise AttributeError(f"module 'kerascnn' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
