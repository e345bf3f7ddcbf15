"""MobileNet (v1).

Reference: A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto,
H. Adam, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
arXiv:1704.04861, 2017: section 3.1 (depthwise separable convolutions), Table 1 (the body),
section 3.3 (the width multiplier alpha) and 3.4 (the resolution multiplier).

A full 3x3/2 convolution of 32 filters, then 13 depthwise separable blocks (a 3x3 depthwise
convolution, then a 1x1 pointwise one, each with batch norm and ReLU), downsampling by a
stride-2 depthwise convolution, global average pooling and the classifier. The width multiplier
alpha thins every layer to ``int(alpha * filters)``; the resolution multiplier is the input
size (224, 192, 160 or 128 in the paper).

Layers are named and ordered as in ``keras.applications.MobileNet`` (``conv1``, ``conv_dw_1``,
``conv_pw_1_bn``, ``conv_pad_2`` ...), so Keras' ImageNet weights load (alpha 0.25, 0.5, 0.75,
1.0). As there: the activation is ReLU6, a stride-2 depthwise convolution pads one pixel at the
bottom and right (TensorFlow's "same"), and the classifier is a 1x1 convolution ``conv_preds``
on the pooled features (after a dropout of 1e-3) reshaped to a vector. Table 1's last depthwise
convolution is listed as stride 2 on a 7x7 input but keeps 7x7; it has stride 1 here, as in
Keras and the authors' TF-slim code.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import KERAS_TF_MEAN, KERAS_TF_STD, KerasApplication, register_model

# Table 1: the first convolution's filters and, per depthwise separable block, the pointwise
# filters and the depthwise stride.
FIRST_FILTERS = 32
SEPARABLE_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
RELU6 = 6.0


def MobileNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    alpha: float = 1.0,
    dropout_rate: float = 1e-3,
    weight_decay: float = 4e-5,
    name: str | None = None,
) -> keras.Model:
    """Build a MobileNet (Howard et al. 2017).

    Args:
        input_shape: (height, width, channels); the resolution multiplier is the input size
            (224x224x3 by default; 192, 160, 128 in the paper).
        num_classes: filters of the classifier convolution ``conv_preds``.
        include_top: add global average pooling, dropout and the classifier; otherwise return
            the last block's feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        alpha: the width multiplier (section 3.3): every layer has ``int(alpha * filters)``
            filters; 1.0, 0.75, 0.5 and 0.25 in the paper.
        dropout_rate: dropout before the classifier (keras.applications' 1e-3).
        weight_decay: L2 weight decay on the full and pointwise convolution kernels and the
            classifier, none on the depthwise ones (section 4: "very little or no weight decay
            ... on the depthwise filters"); 4e-5 as the authors' TF-slim ``mobilenet_v1``.
        name: the model's name, ``mobilenet_{alpha:.2f}_{height}`` (Keras' convention) by
            default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for a width multiplier that leaves a layer without filters, or
            a dropout rate outside [0, 1).
    """
    if int(FIRST_FILTERS * alpha) < 1:
        raise InvalidArgumentError(
            f"alpha must leave every layer at least one filter (alpha >= "
            f"{1 / FIRST_FILTERS}); received {alpha}"
        )
    if not 0.0 <= dropout_rate < 1.0:
        raise InvalidArgumentError(f"dropout_rate must be in [0, 1); received {dropout_rate}")
    regularizer = layers.l2_decay(weight_decay)

    inputs, x = layers.image_input(input_shape, mean, std)
    x = keras.layers.Conv2D(
        int(FIRST_FILTERS * alpha),
        3,
        strides=2,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
        name="conv1",
    )(x)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(RELU6, name="conv1_relu")(x)
    for block_id, (filters, strides) in enumerate(SEPARABLE_BLOCKS, start=1):
        x = depthwise_separable_block(
            x, int(filters * alpha), strides, block_id=block_id, regularizer=regularizer
        )

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
        x = keras.layers.Conv2D(
            num_classes, 1, padding="same", kernel_regularizer=regularizer, name="conv_preds"
        )(x)
        x = keras.layers.Reshape((num_classes,), name="reshape")(x)
        x = layers.activation_output(x, classifier_activation)
    else:
        x = layers.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or f"mobilenet_{alpha:0.2f}_{int(input_shape[0])}")


def depthwise_separable_block(
    x, filters: int, strides: int, *, block_id: int, regularizer: keras.regularizers.Regularizer
):
    """3x3 depthwise convolution, BN, ReLU6, then 1x1 pointwise convolution, BN, ReLU6
    (Figure 3, right); a stride-2 block pads the bottom and right by one first."""
    if strides == 1:
        padding = "same"
    else:
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
        padding = "valid"
    x = keras.layers.DepthwiseConv2D(
        3,
        strides=strides,
        padding=padding,
        use_bias=False,
        depthwise_initializer="he_normal",
        name=f"conv_dw_{block_id}",
    )(x)
    x = keras.layers.BatchNormalization(name=f"conv_dw_{block_id}_bn")(x)
    x = keras.layers.ReLU(RELU6, name=f"conv_dw_{block_id}_relu")(x)
    x = keras.layers.Conv2D(
        filters,
        1,
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
        name=f"conv_pw_{block_id}",
    )(x)
    x = keras.layers.BatchNormalization(name=f"conv_pw_{block_id}_bn")(x)
    return keras.layers.ReLU(RELU6, name=f"conv_pw_{block_id}_relu")(x)


register_model(
    "mobilenet",
    MobileNet,
    title="MobileNet",
    paper=(
        "Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam 2017, MobileNets: "
        "Efficient Convolutional Neural Networks for Mobile Vision Applications"
    ),
    input_shape=(224, 224, 3),
    # A "same" 3x3/2 convolution (ceil(h / 2)), then four stride-2 depthwise convolutions
    # (floor(h / 2), each needing 2 rows): 31x31 leaves 16, 8, 4, 2, 1; 30x30 leaves 0.
    min_size=(31, 31),
    num_classes=1000,
    # keras.applications.mobilenet.preprocess_input, mode "tf": pixels scaled to [-1, 1].
    mean=KERAS_TF_MEAN,
    std=KERAS_TF_STD,
    keras_application=KerasApplication("MobileNet", options=("alpha",)),
    description="Depthwise separable convolutions, width multiplier alpha (4.2M parameters)",
    alpha=1.0,
)
