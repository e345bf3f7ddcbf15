"""Architectures. Importing this package registers every family, and raises Python's recursion
limit to ``GRAPH_RECURSION_LIMIT`` (never lowers it) for Keras's deepest graphs.

Keras walks a functional graph recursively, about one Python call per layer along the path it
follows, each time it constructs one: building a model, ``keras.Model(model.input, ...)``
around it (as training and inspection do), ``keras.models.clone_model``, ``from_config`` and
loading a ``.keras`` file; calling, training, saving and weight files do not recurse.
ResNet-1202 (4,210 layers; the walk takes its shortcuts) needs a limit between 1,200 and 1,300
for any of these, over Python's default of 1,000, and its plain counterpart (``shortcut=None``),
one chain of 3,608 layers, more than 3,608. The limit is raised here, once, not by the builds of
the deepest models: a file saved from one then loads in a new process too, and building a model
changes no state of the process.
"""

import sys

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
    quantized,
    resnet,
    resnet_cifar,
    squeezenet,
    vgg,
)
from kerascnn.models.catalogue import model_info
from kerascnn.models.factory import (
    check_published,
    create_model,
    list_models,
    published_statistics,
)
from kerascnn.models.spec import MODELS, KerasApplication, ModelSpec

# Over twice what the deepest registered network needs, built plain (see above).
GRAPH_RECURSION_LIMIT = 10_000
if sys.getrecursionlimit() < GRAPH_RECURSION_LIMIT:
    sys.setrecursionlimit(GRAPH_RECURSION_LIMIT)

__all__ = [
    "GRAPH_RECURSION_LIMIT",
    "MODELS",
    "KerasApplication",
    "ModelSpec",
    "check_published",
    "create_model",
    "list_models",
    "model_info",
    "published_statistics",
]
