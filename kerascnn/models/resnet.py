"""Residual networks.

Reference: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016 (arXiv:1512.03385), section 4.2 for the CIFAR networks.

The CIFAR network has depth 6n + 2: a 3x3 convolution with 16 filters, three stages of n
basic blocks (two 3x3 convolutions each) on 32x32, 16x16 and 8x8 maps with 16, 32 and 64
filters, the first block of the second and third stage subsampling with stride 2, then
global average pooling and the classifier. Batch normalisation follows every convolution and
precedes the ReLU; the addition is followed by a ReLU. Shortcuts use option A (identity,
subsampled, with the new channels zero-padded: no parameters) by default, or option B
(a 1x1 projection where dimensions change).

Layers are named in keras.applications' convention (``conv2_block1_1_conv``), with the stages
numbered conv2..conv4 after the stem ``conv1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import register_model

SHORTCUTS = ("A", "B")
CIFAR_WIDTHS = (16, 32, 64)


def CifarResNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    depth: int = 20,
    shortcut: str = "A",
    weight_decay: float = 1e-4,
    name: str | None = None,
) -> keras.Model:
    """Build a CIFAR ResNet of depth 6n + 2 (He et al. 2015, section 4.2).

    Args:
        input_shape: (height, width, channels); 32x32x3 in the paper, at least 8x8.
        num_classes: classifier units (10 for CIFAR-10).
        include_top: add global average pooling and the classifier; otherwise return the
            last stage's feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        depth: 6n + 2 layers (20, 32, 44, 56, 110, 1202 in the paper).
        shortcut: "A" (parameter-free, the paper's CIFAR choice) or "B" (1x1 projections
            where dimensions change).
        weight_decay: the paper's L2 weight decay (1e-4) on convolution and classifier kernels.
        name: the model's name, ``resnet{depth}`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for a depth that is not 6n + 2 or an unknown shortcut type.
    """
    if depth < 8 or (depth - 2) % 6:
        raise InvalidArgumentError(
            f"CIFAR ResNet depth must be 6n + 2 (20, 32, ...); received {depth}"
        )
    if shortcut not in SHORTCUTS:
        raise InvalidArgumentError(f"shortcut must be 'A' or 'B'; received {shortcut!r}")
    blocks = (depth - 2) // 6
    # Keras' L2(l) adds l * sum(w^2); the paper's decay lambda corresponds to
    # lambda/2 * sum(w^2) in the loss, whose gradient is lambda * w.
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    conv_kwargs = dict(
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
    )

    inputs, x = layers.image_input(input_shape, mean, std)
    x = keras.layers.Conv2D(CIFAR_WIDTHS[0], 3, name="conv1_conv", **conv_kwargs)(x)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(name="conv1_relu")(x)

    for stage, filters in enumerate(CIFAR_WIDTHS):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            prefix = f"conv{stage + 2}_block{block + 1}"
            x = basic_block(x, filters, strides, shortcut, prefix, conv_kwargs)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.classifier(
            x,
            num_classes,
            classifier_activation,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
        )
    else:
        x = layers.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or f"resnet{depth}")


def basic_block(x, filters: int, strides: int, shortcut: str, prefix: str, conv_kwargs: dict):
    """Two 3x3 convolutions with batch norm, added to the shortcut, then ReLU."""
    if strides == 1 and x.shape[-1] == filters:
        residual = x
    elif shortcut == "A":
        residual = layers.ZeroPadShortcut(filters, strides, name=f"{prefix}_0_pad")(x)
    else:
        residual = keras.layers.Conv2D(
            filters, 1, strides=strides, name=f"{prefix}_0_conv", **conv_kwargs
        )(x)
        residual = keras.layers.BatchNormalization(name=f"{prefix}_0_bn")(residual)

    y = keras.layers.Conv2D(filters, 3, strides=strides, name=f"{prefix}_1_conv", **conv_kwargs)(x)
    y = keras.layers.BatchNormalization(name=f"{prefix}_1_bn")(y)
    y = keras.layers.ReLU(name=f"{prefix}_1_relu")(y)
    y = keras.layers.Conv2D(filters, 3, name=f"{prefix}_2_conv", **conv_kwargs)(y)
    y = keras.layers.BatchNormalization(name=f"{prefix}_2_bn")(y)
    x = keras.layers.Add(name=f"{prefix}_add")([residual, y])
    return keras.layers.ReLU(name=f"{prefix}_out")(x)


register_model(
    "resnet20",
    CifarResNet,
    title="ResNet-20",
    paper="He, Zhang, Ren, Sun 2015, Deep Residual Learning for Image Recognition",
    input_shape=(32, 32, 3),
    # Two stride-2 stages: 8x8 leaves a 2x2 map for the last stage.
    min_size=(8, 8),
    num_classes=10,
    # CIFAR-10 training-set channel statistics in 0-255 units.
    mean=(125.3, 123.0, 113.9),
    std=(63.0, 62.1, 66.7),
    depth=20,
    description="CIFAR ResNet, 3x3 basic blocks, option-A shortcuts (0.27M parameters)",
)
