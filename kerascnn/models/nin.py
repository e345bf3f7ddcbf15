"""Network in Network.

Reference: M. Lin, Q. Chen, S. Yan, "Network In Network", ICLR 2014 (arXiv:1312.4400),
section 3 (mlpconv layers, global average pooling) and section 4 (the CIFAR-10 network).
The ImageNet network is the one the authors published in the Caffe model zoo ("Network in
Network ImageNet Model", nin_imagenet train_val.prototxt and solver, gist
mavenlin/d802a5849de39225bcc6).

An mlpconv layer is a convolution followed by 1x1 convolutions (the paper's "cascaded
cross channel parametric pooling", ``cccp``), each with a ReLU (equation 2). There are no
fully connected layers: the last mlpconv layer's final 1x1 convolution gives one feature map
per class (named ``predictions``, after Keras's classifier), with its ReLU as in
equation 2 and in both published models, and global average pooling of those maps
(``avg_pool``) followed by the softmax gives the class probabilities (section 3.2).

``config="imagenet"`` (``nin``), 224x224x3 input:
    conv1 96 11x11/4, cccp1 96, cccp2 96, 3x3/2 max pool (54 -> 27);
    conv2 256 5x5 pad 2, cccp3 256, cccp4 256, 3x3/2 max pool (27 -> 13);
    conv3 384 3x3 pad 1, cccp5 384, cccp6 384, 3x3/2 max pool (13 -> 6), dropout 0.5;
    conv4 1024 3x3 pad 1, cccp7 1024, predictions (cccp8) classes, global average pool.
    Kernels start Gaussian with the prototxt's standard deviations (0.01 for conv1, conv3 and
    the class maps, 0.05 for the others), biases 0; weight decay 5e-4 (the solver's).
``config="cifar"`` (``nin_cifar``), the paper's CIFAR-10 network on 32x32x3:
    conv1 192 5x5 pad 2, cccp1 160, cccp2 96, 3x3/2 max pool (32 -> 16), dropout 0.5;
    conv2 192 5x5 pad 2, cccp3 192, cccp4 192, 3x3/2 average pool (16 -> 8), dropout 0.5;
    conv3 192 3x3 pad 1, cccp5 192, predictions (cccp6) 10, global average pool.
    Section 4.1 applies dropout to the outputs of all but the last mlpconv layer and weight
    decay "as used by Krizhevsky et al." (5e-4). The paper does not give its initialisation
    ("manually set"); He-normal kernels are used here so the nine ReLU layers train from
    scratch. Departure: the paper trains on globally contrast-normalised, ZCA-whitened
    images; the model takes raw pixels and normalises per channel only.

The poolings are Caffe's, rounding the output size up (``ceil_mode_pooling``): this gives the
published shapes, 54 -> 27 -> 13 -> 6 and 32 -> 16 -> 8, where Keras's rounding down would
give 26, 12, 5 and 15, 7.

``include_top=False`` ends before the class maps (at cccp7's, or cccp5's, ReLU), so the
features keep the network's own width (1024 or 192) whatever the class count; ``pooling``
then applies as for any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.alexnet import ceil_mode_pooling
from kerascnn.models.spec import (
    FB_RESNET_CIFAR10_MEAN,
    FB_RESNET_CIFAR10_STD,
    UNIT_STD,
    VGG_IMAGENET_MEAN,
    register_model,
)


@dataclass(frozen=True)
class Conv:
    """A convolution of an mlpconv layer; ``std`` of its Gaussian initialisation, or None
    for He-normal."""

    name: str
    filters: int
    kernel: int = 1
    strides: int = 1
    padding: str = "valid"
    std: float | None = None


@dataclass(frozen=True)
class MlpConv:
    """An mlpconv layer and what follows it: 3x3/2 "max" or "avg" pooling (None for the
    last one, whose class maps are averaged globally) and dropout."""

    convs: tuple[Conv, ...]
    pool: str | None = None
    dropout: bool = False


@dataclass(frozen=True)
class Layout:
    """The mlpconv layers, the last one without its class-map convolution, and that
    convolution's initialisation."""

    blocks: tuple[MlpConv, ...]
    class_std: float | None


LAYOUTS = {
    "imagenet": Layout(
        blocks=(
            MlpConv(
                (
                    Conv("conv1", 96, 11, strides=4, std=0.01),
                    Conv("cccp1", 96, std=0.05),
                    Conv("cccp2", 96, std=0.05),
                ),
                pool="max",
            ),
            MlpConv(
                (
                    Conv("conv2", 256, 5, padding="same", std=0.05),
                    Conv("cccp3", 256, std=0.05),
                    Conv("cccp4", 256, std=0.05),
                ),
                pool="max",
            ),
            MlpConv(
                (
                    Conv("conv3", 384, 3, padding="same", std=0.01),
                    Conv("cccp5", 384, std=0.05),
                    Conv("cccp6", 384, std=0.05),
                ),
                pool="max",
                dropout=True,
            ),
            MlpConv(
                (
                    Conv("conv4", 1024, 3, padding="same", std=0.05),
                    Conv("cccp7", 1024, std=0.05),
                ),
            ),
        ),
        class_std=0.01,
    ),
    "cifar": Layout(
        blocks=(
            MlpConv(
                (Conv("conv1", 192, 5, padding="same"), Conv("cccp1", 160), Conv("cccp2", 96)),
                pool="max",
                dropout=True,
            ),
            MlpConv(
                (Conv("conv2", 192, 5, padding="same"), Conv("cccp3", 192), Conv("cccp4", 192)),
                pool="avg",
                dropout=True,
            ),
            MlpConv((Conv("conv3", 192, 3, padding="same"), Conv("cccp5", 192))),
        ),
        class_std=None,
    ),
}
POOL_SIZE, POOL_STRIDES = 3, 2


def NIN(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    config: str = "imagenet",
    dropout: float = 0.5,
    weight_decay: float = 5e-4,
    name: str | None = None,
) -> keras.Model:
    """Build a Network in Network (Lin, Chen, Yan 2013).

    Args:
        input_shape: (height, width, channels); 224x224x3 for "imagenet", 32x32x3 for
            "cifar". Global average pooling makes any size from the registered minimum work
            with the same weights.
        num_classes: class maps of the last mlpconv layer (1000, or 10 for CIFAR-10).
        include_top: add the class-map convolution, global average pooling and the
            activation; otherwise end at the last mlpconv layer's preceding 1x1 convolution,
            pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for the averaged class maps (logits).
        mean, std: raw-pixel statistics of the first layer (``(x - mean) / std``).
        config: "imagenet" (the Caffe model zoo network) or "cifar" (the paper's CIFAR-10
            network).
        dropout: dropout rate after the pooled mlpconv layers that have it (0.5).
        weight_decay: L2 weight decay on every kernel (5e-4).
        name: the model's name; ``nin`` or ``nin_cifar`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an unknown config, or an input too small for the poolings.
    """
    if config not in LAYOUTS:
        raise InvalidArgumentError(
            f"NIN config must be one of {', '.join(LAYOUTS)}; received {config!r}"
        )
    layout = LAYOUTS[config]
    regularizer = layers.l2_decay(weight_decay)

    def conv(x, spec, activation):
        return keras.layers.Conv2D(
            spec.filters,
            spec.kernel,
            strides=spec.strides,
            padding=spec.padding,
            activation=activation,
            kernel_initializer=_initializer(spec.std),
            kernel_regularizer=regularizer,
            name=spec.name,
        )(x)

    inputs, x = layers.image_input(input_shape, mean, std)
    for index, block in enumerate(layout.blocks, start=1):
        for spec in block.convs:
            x = conv(x, spec, "relu")
        if block.pool is not None:
            pool_name = f"pool{index}"
            x = ceil_mode_pooling(x, POOL_SIZE, POOL_STRIDES, name=pool_name, kind=block.pool)
            if block.dropout:
                x = keras.layers.Dropout(dropout, name=f"{pool_name}_dropout")(x)

    if include_top:
        # The class maps' ReLU is a separate layer so that "predictions" holds the maps
        # before it.
        x = conv(x, Conv("predictions", num_classes, std=layout.class_std), None)
        x = keras.layers.ReLU(name="predictions_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.activation_output(x, classifier_activation)
    else:
        x = layers.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or ("nin" if config == "imagenet" else "nin_cifar"))


def _initializer(std: float | None) -> str | keras.initializers.Initializer:
    return "he_normal" if std is None else keras.initializers.RandomNormal(stddev=std)


PAPER = "Lin, Chen, Yan 2013, Network In Network"

register_model(
    "nin",
    NIN,
    title="NIN",
    paper=PAPER + " (ImageNet model: Caffe model zoo, nin_imagenet)",
    input_shape=(224, 224, 3),
    # 11x11/4 then three 3x3/2 poolings rounded up: 39 -> 8 -> 4 -> 2 -> 1 (38 -> 7 -> 3 -> 1
    # leaves nothing for the third pooling).
    min_size=(39, 39),
    num_classes=1000,
    # As alexnet: the ImageNet mean subtracted from raw pixels, no scaling.
    mean=VGG_IMAGENET_MEAN,
    std=UNIT_STD,
    description="4 mlpconv layers (conv + two 1x1), global average pooling, no FC layers",
    config="imagenet",
)
register_model(
    "nin_cifar",
    NIN,
    title="NIN (CIFAR-10)",
    paper=PAPER,
    input_shape=(32, 32, 3),
    # Two 3x3/2 poolings rounded up: 4 -> 2 -> 1 (3 -> 1 leaves nothing for the second).
    min_size=(4, 4),
    num_classes=10,
    # CIFAR-10 training-set channel statistics (as resnet20).
    mean=FB_RESNET_CIFAR10_MEAN,
    std=FB_RESNET_CIFAR10_STD,
    description="the paper's CIFAR-10 network: 3 mlpconv layers, global average pooling",
    config="cifar",
)
