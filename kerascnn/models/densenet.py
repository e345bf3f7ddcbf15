"""Densely connected convolutional networks (DenseNet).

Reference: G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger, "Densely Connected
Convolutional Networks", CVPR 2017 (arXiv:1608.06993): section 3 (dense blocks, growth rate,
bottleneck and compression), Table 1 (the ImageNet networks) and section 4.1/Table 2 (the
CIFAR networks).

Within a dense block every layer takes the concatenation of all earlier feature maps and adds
``growth_rate`` (k) new ones; a layer is BN-ReLU-Conv(3x3), with a BN-ReLU-Conv(1x1) bottleneck
of 4k maps in front for DenseNet-B. Between blocks a transition layer (BN-ReLU-Conv(1x1)-2x2
average pooling) keeps ``floor(compression * m)`` of its m maps (DenseNet-C; both: DenseNet-BC).
After the last block come BN-ReLU, global average pooling and the classifier.

The ImageNet networks (Table 1: DenseNet-121/169/201/264, k=32, four blocks) start with a 7x7/2
convolution of 2k filters with BN-ReLU and a 3x3/2 max pooling; the CIFAR networks (section 4.1)
with a 3x3 convolution of 2k filters (16 for the basic DenseNet) and three blocks on 32x32,
16x16 and 8x8 maps. Layers are named and ordered as in ``keras.applications.DenseNet121``
(``conv1_conv``, ``conv2_block1_0_bn``, ``pool2_conv`` ...; the blocks are numbered conv2..
after the stem ``conv1`` and each transition is named after the block it follows), so Keras'
ImageNet weights load into DenseNet-121/169/201. Batch-norm epsilon is Keras' 1.001e-5.

Note: the paper's "DenseNet-264" has 265 weighted layers by Table 1's count (2 * 130 in the
blocks, 3 transitions, the first convolution and the classifier). The registry keeps the
paper's name (``densenet264``); the built model's default name counts its layers
(``densenet265``), as for every other layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import (
    FB_RESNET_CIFAR10_MEAN,
    FB_RESNET_CIFAR10_STD,
    TORCHVISION_IMAGENET_MEAN,
    TORCHVISION_IMAGENET_STD,
    TORCHVISION_TABLE,
    KerasApplication,
    PublishedAccuracy,
    register_model,
)

STEMS = ("imagenet", "cifar")
# Keras' DenseNet batch-norm epsilon, kept so that its ImageNet weights give the same outputs.
BN_EPSILON = 1.001e-5
# Section 3, "Bottleneck layers": "we let each 1x1 convolution produce 4k feature-maps".
BOTTLENECK_WIDTH = 4


def DenseNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    blocks: Sequence[int] = (6, 12, 24, 16),
    growth_rate: int = 32,
    bottleneck: bool = True,
    compression: float = 0.5,
    stem: str = "imagenet",
    stem_filters: int | None = None,
    dropout_rate: float = 0.0,
    weight_decay: float = 1e-4,
    name: str | None = None,
) -> keras.Model:
    """Build a DenseNet (Huang et al. 2017).

    Args:
        input_shape: (height, width, channels); 224x224x3 for the ImageNet networks, 32x32x3
            for CIFAR.
        num_classes: classifier units.
        include_top: add BN-ReLU's global average pooling and the classifier; otherwise return
            the final BN-ReLU feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        blocks: layers per dense block (Table 1: 6-12-24-16 for DenseNet-121).
        growth_rate: k, the feature maps each layer adds (32 on ImageNet, 12 for the CIFAR
            DenseNet-BC with L=100).
        bottleneck: put a 1x1 convolution to 4k maps before each 3x3 (DenseNet-B).
        compression: theta, the fraction of maps a transition layer keeps (0.5 for
            DenseNet-C/BC; 1 for none).
        stem: "imagenet" (7x7/2 convolution, BN-ReLU, 3x3/2 max pooling) or "cifar" (one 3x3
            convolution).
        stem_filters: filters of the first convolution; None for 2k, the paper's choice for
            DenseNet-BC and the ImageNet networks (the basic CIFAR DenseNet used 16).
        dropout_rate: dropout after every convolution but the first (the paper's 0.2 when
            training without data augmentation); 0 adds no dropout layers.
        weight_decay: the paper's L2 weight decay (1e-4) on convolution and classifier kernels.
        name: the model's name; by default ``densenet{L}`` for the ImageNet layout and
            ``densenet_bc_{L}_{k}`` (``_b``, ``_c`` or neither, as configured) for CIFAR.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for empty or non-positive ``blocks``, a non-positive growth rate,
            a compression outside (0, 1], a dropout rate outside [0, 1) or an unknown stem.
    """
    blocks = _check_arguments(blocks, growth_rate, compression, dropout_rate, stem)
    growth_rate = int(growth_rate)
    conv_kwargs = dict(
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=layers.l2_decay(weight_decay),
    )
    inputs, x = layers.image_input(input_shape, mean, std)
    x = stem_layers(x, stem, int(stem_filters) if stem_filters else 2 * growth_rate, conv_kwargs)
    x = dense_blocks(
        x,
        blocks,
        growth_rate,
        bottleneck=bottleneck,
        compression=compression,
        dropout_rate=dropout_rate,
        conv_kwargs=conv_kwargs,
    )
    x = head(
        x,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        kernel_regularizer=conv_kwargs["kernel_regularizer"],
    )
    return keras.Model(
        inputs, x, name=name or default_name(blocks, growth_rate, bottleneck, compression, stem)
    )


def _check_arguments(
    blocks: Sequence[int], growth_rate: int, compression: float, dropout_rate: float, stem: str
) -> tuple[int, ...]:
    """Reject option values the network cannot build; the layer counts as a tuple."""
    blocks = tuple(int(b) for b in blocks)
    if not blocks or min(blocks) < 1:
        raise InvalidArgumentError(
            f"blocks must be one or more positive layer counts; received {blocks}"
        )
    if int(growth_rate) < 1:
        raise InvalidArgumentError(f"growth_rate must be positive; received {growth_rate}")
    if not 0.0 < compression <= 1.0:
        raise InvalidArgumentError(f"compression must be in (0, 1]; received {compression}")
    if not 0.0 <= dropout_rate < 1.0:
        raise InvalidArgumentError(f"dropout_rate must be in [0, 1); received {dropout_rate}")
    if stem not in STEMS:
        raise InvalidArgumentError(f"stem must be 'imagenet' or 'cifar'; received {stem!r}")
    return blocks


def stem_layers(x, stem: str, filters: int, conv_kwargs: dict):
    """The layers before the first dense block: ImageNet's 7x7/2 convolution, BN-ReLU and
    3x3/2 max pooling (Table 1), or CIFAR's single 3x3 convolution (section 4.1)."""
    if stem == "cifar":
        return keras.layers.Conv2D(filters, 3, padding="same", name="conv1_conv", **conv_kwargs)(x)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(filters, 7, strides=2, name="conv1_conv", **conv_kwargs)(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)


def dense_blocks(
    x,
    blocks: Sequence[int],
    growth_rate: int,
    *,
    bottleneck: bool,
    compression: float,
    dropout_rate: float,
    conv_kwargs: dict,
):
    """The dense blocks conv2, conv3, ... of ``blocks[i]`` layers each, with a transition
    layer (``pool2``, ``pool3`` ...) after every block but the last."""
    for index, layer_count in enumerate(blocks):
        stage = index + 2
        for layer in range(layer_count):
            x = dense_layer(
                x,
                growth_rate,
                bottleneck=bottleneck,
                dropout_rate=dropout_rate,
                name=f"conv{stage}_block{layer + 1}",
                conv_kwargs=conv_kwargs,
            )
        if index < len(blocks) - 1:
            x = transition_layer(
                x,
                compression,
                dropout_rate=dropout_rate,
                name=f"pool{stage}",
                conv_kwargs=conv_kwargs,
            )
    return x


def head(
    x,
    *,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    kernel_regularizer: keras.regularizers.Regularizer | None,
):
    """The final BN-ReLU, then global average pooling and the classifier, or the feature map
    pooled by ``pooling``."""
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name="bn")(x)
    x = keras.layers.Activation("relu", name="relu")(x)
    if not include_top:
        return layers.global_pool(x, pooling)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.classifier(
        x, num_classes, classifier_activation, kernel_regularizer=kernel_regularizer
    )


def weighted_layers(blocks: Sequence[int], bottleneck: bool) -> int:
    """L, the paper's depth: convolutions in the blocks, transitions, the first convolution
    and the classifier."""
    return (2 if bottleneck else 1) * sum(blocks) + (len(blocks) - 1) + 2


def default_name(
    blocks: Sequence[int], growth_rate: int, bottleneck: bool, compression: float, stem: str
) -> str:
    """``densenet121`` for the ImageNet layout; ``densenet_bc_100_12`` (variant, L, k) for
    CIFAR, as the paper names them."""
    depth = weighted_layers(blocks, bottleneck)
    if stem == "imagenet":
        return f"densenet{depth}"
    letters = ("b" if bottleneck else "") + ("c" if compression < 1 else "")
    variant = f"_{letters}" if letters else ""
    return f"densenet{variant}_{depth}_{growth_rate}"


def dense_layer(
    x,
    growth_rate: int,
    *,
    bottleneck: bool,
    dropout_rate: float,
    name: str,
    conv_kwargs: dict,
):
    """One layer of a dense block: [BN-ReLU-Conv(1x1, 4k)] BN-ReLU-Conv(3x3, k), its k maps
    concatenated to its input (keras.applications' ``conv_block``)."""
    y = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_0_bn")(x)
    y = keras.layers.Activation("relu", name=f"{name}_0_relu")(y)
    if bottleneck:
        y = keras.layers.Conv2D(
            BOTTLENECK_WIDTH * growth_rate, 1, name=f"{name}_1_conv", **conv_kwargs
        )(y)
        y = _dropout(y, dropout_rate, name=f"{name}_1_drop")
        y = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_1_bn")(y)
        y = keras.layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = keras.layers.Conv2D(growth_rate, 3, padding="same", name=f"{name}_2_conv", **conv_kwargs)(y)
    y = _dropout(y, dropout_rate, name=f"{name}_2_drop")
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def transition_layer(x, compression: float, *, dropout_rate: float, name: str, conv_kwargs: dict):
    """BN-ReLU-Conv(1x1) to ``floor(compression * m)`` maps, then 2x2 average pooling."""
    filters = int(x.shape[-1] * compression)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    x = keras.layers.Conv2D(filters, 1, name=f"{name}_conv", **conv_kwargs)(x)
    x = _dropout(x, dropout_rate, name=f"{name}_drop")
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def _dropout(x, rate: float, *, name: str):
    return keras.layers.Dropout(rate, name=name)(x) if rate else x


PAPER = "Huang, Liu, van der Maaten, Weinberger 2017, Densely Connected Convolutional Networks"
# Table 1, the ImageNet networks (k=32): layers per dense block, and the keras.applications
# model with the same layout where there is one.
# torchvision's densenet121..201 (the same networks): (top-1, top-5) error.
TORCHVISION_ERRORS = {121: (25.566, 8.028), 169: (24.4, 7.194), 201: (23.104, 6.63)}
IMAGENET_DENSENETS = (
    (121, (6, 12, 24, 16), "DenseNet121"),
    (169, (6, 12, 32, 32), "DenseNet169"),
    (201, (6, 12, 48, 32), "DenseNet201"),
    (264, (6, 12, 64, 48), None),
)

for _depth, _blocks, _application in IMAGENET_DENSENETS:  # k=32
    register_model(
        f"densenet{_depth}",
        DenseNet,
        title=f"DenseNet-{_depth}",
        paper=PAPER,
        input_shape=(224, 224, 3),
        # A 7x7/2 convolution (pad 3), a 3x3/2 max pooling (pad 1), then three 2x2/2 average
        # poolings: 29x29 leaves 15, 8, 4, 2 and 1; 28x28 leaves 0 after the last transition.
        min_size=(29, 29),
        num_classes=1000,
        # keras.applications.densenet.preprocess_input, mode "torch": torchvision's statistics.
        mean=TORCHVISION_IMAGENET_MEAN,
        std=TORCHVISION_IMAGENET_STD,
        keras_application=KerasApplication(_application) if _application else None,
        imagenet_accuracy=PublishedAccuracy.from_errors(
            *TORCHVISION_ERRORS[_depth], TORCHVISION_TABLE
        )
        if _depth in TORCHVISION_ERRORS
        else None,
        description=f"ImageNet DenseNet-BC, k=32, dense blocks {'-'.join(map(str, _blocks))}",
        blocks=_blocks,
        growth_rate=32,
    )

register_model(
    "densenet161",
    DenseNet,
    title="DenseNet-161",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_size=(29, 29),
    num_classes=1000,
    mean=TORCHVISION_IMAGENET_MEAN,
    std=TORCHVISION_IMAGENET_STD,
    # The ImageNet DenseNet-BC with k=48 of Table 3 (blocks 6-12-36-24, a first convolution
    # of 2k = 96 filters), in torchvision's configuration.
    description="ImageNet DenseNet-BC, k=48, dense blocks 6-12-36-24",
    blocks=(6, 12, 36, 24),
    growth_rate=48,
)

register_model(
    "densenet_bc_100_12",
    DenseNet,
    title="DenseNet-BC (L=100, k=12)",
    paper=PAPER,
    input_shape=(32, 32, 3),
    # Two 2x2/2 average poolings between the three blocks: 4x4 leaves 1x1.
    min_size=(4, 4),
    num_classes=10,
    # CIFAR-10 training-set channel statistics (section 4.2: "we normalize the data using the
    # channel means and standard deviations"; the authors' Torch code is fb.resnet.torch's).
    mean=FB_RESNET_CIFAR10_MEAN,
    std=FB_RESNET_CIFAR10_STD,
    description="CIFAR DenseNet-BC, three blocks of 16 bottleneck layers, k=12 (0.8M parameters)",
    blocks=(16, 16, 16),
    growth_rate=12,
    stem="cifar",
)
