"""Architectures. Importing this package registers every family."""

from kerascnn.models import lenet, resnet  # noqa: F401  (registers the models)
from kerascnn.models.factory import create_model, list_models, model_info
from kerascnn.models.spec import MODELS, ModelSpec

__all__ = ["MODELS", "ModelSpec", "create_model", "list_models", "model_info"]
