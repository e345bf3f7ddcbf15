"""Architectures. Importing this package registers every family."""

from kerascnn.models import (  # noqa: F401  (registers the models)
    alexnet,
    densenet,
    fractalnet,
    googlenet,
    highway,
    inception,
    lenet,
    mobilenet,
    nin,
    resnet,
    resnet_cifar,
    squeezenet,
    vgg,
)
from kerascnn.models.catalogue import model_info
from kerascnn.models.factory import create_model, list_models
from kerascnn.models.spec import MODELS, KerasApplication, ModelSpec

__all__ = ["MODELS", "KerasApplication", "ModelSpec", "create_model", "list_models", "model_info"]
