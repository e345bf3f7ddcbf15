"""What the registry knows about each model: how to build it and its data defaults (STYLE 5)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kerascnn.registry import Registry


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

    def training_loss(self, options: Mapping[str, Any]) -> str:
        """The criterion to train this model with, given the options it is built with."""
        return self.loss(options) if callable(self.loss) else self.loss


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
