"""kerascnn: the classic convolutional networks, faithful to their papers, in Keras 3.

Public API: ``create_model``, ``list_models``, ``model_info``. Importing kerascnn registers
its custom layers, so ``keras.saving.load_model`` reads kerascnn ``.keras`` files after it.
"""

from kerascnn.quiet import import_tensorflow_quietly

# TensorFlow's native start-up lines (CUDA probing, CPU features) are captured, not shown.
import_tensorflow_quietly()

from kerascnn.errors import KerasCNNError  # noqa: E402
from kerascnn.models import create_model, list_models, model_info  # noqa: E402
from kerascnn.training import losses as _losses  # noqa: E402, F401  (registers rbf_penalty)

__version__ = "0.1.0"

__all__ = ["KerasCNNError", "__version__", "create_model", "list_models", "model_info"]
