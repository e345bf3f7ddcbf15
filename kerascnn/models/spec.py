"""What the registry knows about each model: how to build it and its data defaults (STYLE 5)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kerascnn.registry import Registry

# Arguments every builder takes; everything else a builder accepts is a family option.
SHARED_ARGUMENTS = frozenset(
    {"input_shape", "num_classes", "include_top", "pooling", "classifier_activation"}
)

# Pixel statistics (mean, std) in raw 0-255 units, RGB order: the published values the
# registrations refer to, each under the name of where it is published. A model's first layer
# computes ``(x - mean) / std``; where a network subtracts a mean and does not scale, its
# registration says so with ``std=UNIT_STD``.

UNIT_STD = (1.0, 1.0, 1.0)

# The ImageNet mean pixel published with the VGG team's Caffe models (BGR 103.939, 116.779,
# 123.68: the Caffe Model Zoo page of Simonyan & Zisserman's ILSVRC-2014 models), which
# keras.applications' ``preprocess_input(mode="caffe")`` subtracts (VGG16/19, ResNet50/101/152);
# no scaling.
VGG_IMAGENET_MEAN = (123.68, 116.779, 103.939)

# The rounded ImageNet mean of BVLC Caffe's train_val.prototxt files, ``mean_value: 104, 117,
# 123`` (BGR), which SqueezeNet's Caffe files use too; no scaling.
CAFFE_PROTOTXT_IMAGENET_MEAN = (123.0, 117.0, 104.0)

# torchvision's ImageNet normalisation (``transforms.Normalize(mean=[0.485, 0.456, 0.406],
# std=[0.229, 0.224, 0.225])``, on pixels scaled to [0, 1]) times 255; keras.applications'
# ``mode="torch"`` (DenseNet) uses the same figures.
TORCHVISION_IMAGENET_MEAN = (123.675, 116.28, 103.53)  # 255 x (0.485, 0.456, 0.406)
TORCHVISION_IMAGENET_STD = (58.395, 57.12, 57.375)  # 255 x (0.229, 0.224, 0.225)

# keras.applications' ``mode="tf"`` (Inception v3, Inception-ResNet-v2, MobileNet, ResNet v2):
# ``x / 127.5 - 1``, pixels scaled to [-1, 1]; a scaling, not dataset statistics.
KERAS_TF_MEAN = (127.5, 127.5, 127.5)
KERAS_TF_STD = (127.5, 127.5, 127.5)

# The CIFAR-10 training set's channel statistics as fb.resnet.torch gives them
# (datasets/cifar10.lua, "Computed from entire CIFAR-10 training set"), which the Torch code of
# the CIFAR ResNets, pre-activation ResNets, Wide ResNets and DenseNets builds on. (PyTorch
# code often uses 255 x (0.4914, 0.4822, 0.4465) and 255 x (0.2470, 0.2435, 0.2616) instead,
# which differ from these by up to 0.05.)
FB_RESNET_CIFAR10_MEAN = (125.3, 123.0, 113.9)
FB_RESNET_CIFAR10_STD = (63.0, 62.1, 66.7)


@dataclass(frozen=True)
class KerasApplication:
    """A keras.applications model with the same layers as ours, in the same order.

    Attributes:
        name: the ``keras.applications`` constructor (``"VGG16"``).
        bgr: its ImageNet weights expect BGR input (Caffe-converted weights): loading them
            flips the first convolution's input channels, since our models take RGB.
        options: our family options passed to the constructor under the same name
            (``("alpha",)`` for MobileNet).
    """

    name: str
    bgr: bool = False
    options: tuple[str, ...] = ()


# Where the published accuracies of the registrations come from.
TORCHVISION_TABLE = (
    "torchvision's model table (docs.pytorch.org/vision/stable/models.html), acc@1/acc@5 on "
    "the ILSVRC-2012 validation set of the weights weights='torchvision' converts"
)
KERAS_APPLICATIONS_TABLE = (
    "keras.applications' table (keras.io/api/applications), top-1/top-5 on the ILSVRC-2012 "
    "validation set of the weights weights='imagenet' loads"
)


@dataclass(frozen=True)
class PublishedAccuracy:
    """A single model's published ImageNet (ILSVRC-2012 validation) accuracy, in percent,
    with its ``source``; ``top1`` or ``top5`` is None where the source gives only the other.
    The weights measured may be another implementation's of the same architecture: the
    source says whose."""

    top1: float | None
    top5: float | None
    source: str

    @classmethod
    def from_errors(cls, top1: float | None, top5: float | None, source: str):
        """From error rates in percent, as torchvision's table and most papers print them."""
        return cls(
            None if top1 is None else round(100.0 - top1, 3),
            None if top5 is None else round(100.0 - top5, 3),
            source,
        )


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture.

    Attributes:
        name: registry name (``"resnet20"``).
        title: the name the paper uses (``"ResNet-20"``).
        builder: family builder, called with the shared keyword-only signature plus ``options``.
        paper: citation of the paper the network follows.
        input_shape: default input (height, width, channels), the paper's.
        min_size: smallest (height, width) the network accepts.
        num_classes: the paper's class count, used for the reference parameter count.
        mean, std: per-channel statistics in raw 0-255 pixel units; the model's first layer
            computes ``(x - mean) / std`` so that it takes raw pixels.
        options: family options fixed by this variant (variants are data, STYLE 2).
        description: one line for ``kerascnn models``.
        loss: the paper's training criterion by name (see ``kerascnn.training.losses``), or
            a function of the build options returning one, when it depends on a variant.
        auxiliary_loss_weights: the weights of the auxiliary classifiers' losses, in the
            order of the model's extra outputs when built with ``aux_logits=True``
            (GoogLeNet: (0.3, 0.3)); empty for a network without auxiliary heads.
        keras_application: the keras.applications model whose weights fit this network
            (``weights="imagenet"``, or a file saved from that model), if any.
        imagenet_accuracy: the published ImageNet accuracy of this architecture, with its
            source, if there is one (``kerascnn compare``); never estimated.
        feature_layers: the layers that end the network's stages, for ``features_only``,
            where the search of ``features.stage_ends`` would pick the wrong ones; empty to
            search.
    """

    name: str
    title: str
    builder: Callable[..., Any]
    paper: str
    input_shape: tuple[int, int, int]
    min_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""
    loss: str | Callable[[Mapping[str, Any]], str] = "crossentropy"
    auxiliary_loss_weights: tuple[float, ...] = ()
    keras_application: KerasApplication | None = None
    imagenet_accuracy: PublishedAccuracy | None = None
    feature_layers: tuple[str, ...] = ()

    def training_loss(self, options: Mapping[str, Any]) -> str:
        """The criterion to train this model with, given the options it is built with."""
        return self.loss(options) if callable(self.loss) else self.loss

    def family_options(self) -> dict[str, Any]:
        """The builder's keyword arguments beyond the shared signature, with their defaults
        (None where the builder has none: ``mean`` and ``std``, which the spec gives)."""
        parameters = inspect.signature(self.builder).parameters
        return {
            key: (None if p.default is inspect.Parameter.empty else p.default)
            for key, p in parameters.items()
            if key not in SHARED_ARGUMENTS
        }


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, builder: Callable[..., Any], /, **fields: Any) -> ModelSpec:
    """Register one variant of a family: ``register_model("resnet20", CifarResNet, depth=...)``.

    Keyword arguments that are ``ModelSpec`` fields fill the spec; the rest become the
    variant's fixed builder options.
    """
    spec_fields = set(ModelSpec.__dataclass_fields__) - {"name", "builder", "options"}
    spec_kwargs = {k: v for k, v in fields.items() if k in spec_fields}
    options = {k: v for k, v in fields.items() if k not in spec_fields}
    spec = ModelSpec(name=name, builder=builder, options=MappingProxyType(options), **spec_kwargs)
    return MODELS.add(name, spec)
