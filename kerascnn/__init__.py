"""kerascnn: the classic convolutional networks, faithful to their papers, in Keras 3."""

from kerascnn.errors import KerasCNNError
from kerascnn.models import create_model, list_models, model_info

__version__ = "0.1.0"

__all__ = ["KerasCNNError", "__version__", "create_model", "list_models", "model_info"]
