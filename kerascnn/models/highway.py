"""Convolutional highway networks.

Reference: R. K. Srivastava, K. Greff, J. Schmidhuber, "Training Very Deep Networks", NIPS 2015
(arXiv:1507.06228), section 2 (the highway layer) and section 4.1 / the CIFAR-10 table
(highway networks in the layout of the Fitnets of Romero et al.); the authors' released Caffe
network for CIFAR-10 ("cifar10-19layers" in github.com/flukeskywalker/highway-networks) for the
layer table and initialisation.

A highway layer computes ``y = H(x) * T(x) + x * (1 - T(x))``: ``H`` a 3x3 convolution with
ReLU, ``T`` (the transform gate) a 3x3 convolution with a sigmoid, both keeping the channel
count. The gate's bias ``b_T`` starts negative so that the layer starts close to carrying its
input through: -2 in the authors' CIFAR networks (the paper suggests -1, -3 etc. depending on
depth). The combination is written ``x + T * (H - x)`` with Keras' Subtract, Multiply and Add
layers, the same function with no custom layer.

The 19-layer network (the paper's "Highway B", after Fitnet B; 2.3M parameters, 92.46%
CIFAR-10 accuracy in the paper's table) is three stages on 32x32, 16x16 and 8x8 maps: a plain
3x3 convolution with ReLU setting the width (32, 80, 128), then 4, 5 and 5 highway layers;
2x2 max pooling and dropout (0.2) between stages; then a 1x1 convolution with 100 filters and
ReLU, 8x8 average pooling (global on a 32x32 input; global for any input here), dropout and the
classifier. Dropout (0.2) is also applied to the normalised input. That is 17 + 1
convolutional layers and the classifier: 19 weighted layers.

Initialisation as released: Caffe's "xavier" filler (uniform, variance 1 / fan-in: Keras'
``lecun_uniform``) for the convolutions, zero biases, transform-gate biases ``gate_bias``, and
Gaussian weights of standard deviation 0.05 for the classifier and the first convolution (the
released file writes that value where Caffe reads none, which would make it 1; 0.05 is taken as
meant). Weight decay 0.001 on every kernel and ten times that on the classifier's (the released
solver's ``decay_mult``), none on biases. The paper's 32-layer "Highway C" (1.25M parameters)
has no published layer table, so it is not registered; ``stages`` builds other depths.
Preprocessing: the authors used global contrast normalisation; here per-channel
standardisation with CIFAR-10 statistics.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import FB_RESNET_CIFAR10_MEAN, FB_RESNET_CIFAR10_STD, register_model

# (filters, highway layers) per stage of the released 19-layer CIFAR network; each stage opens
# with a plain convolution of that width.
HIGHWAY_19_STAGES = ((32, 4), (80, 5), (128, 5))
HEAD_FILTERS = 100
GATE_BIAS = -2.0
DROPOUT = 0.2
WEIGHT_DECAY = 1e-3
CLASSIFIER_DECAY_MULTIPLIER = 10.0
CAFFE_XAVIER = "lecun_uniform"


def HighwayNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    stages: Sequence[Sequence[int]] = HIGHWAY_19_STAGES,
    head_filters: int = HEAD_FILTERS,
    gate_bias: float = GATE_BIAS,
    dropout: float = DROPOUT,
    weight_decay: float | None = WEIGHT_DECAY,
    name: str | None = None,
) -> keras.Model:
    """Build a convolutional highway network (Srivastava, Greff, Schmidhuber 2015).

    Args:
        input_shape: (height, width, channels); 32x32x3 in the paper, at least
            ``2^(len(stages) - 1)`` on each side (a 2x2 max pooling between stages).
        num_classes: classifier units (10 for CIFAR-10).
        include_top: add global average pooling, dropout and the classifier; otherwise
            return the 1x1 convolution's feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        stages: ``(filters, highway_layers)`` per stage; each stage is a plain 3x3
            convolution to ``filters`` followed by ``highway_layers`` highway layers.
        head_filters: filters of the 1x1 convolution before the average pooling.
        gate_bias: initial bias ``b_T`` of every transform gate (negative: carry at first).
        dropout: rate of the dropout on the input, after each pooling and before the
            classifier (0 for none).
        weight_decay: L2 decay of the convolution kernels; the classifier's is ten times it.
        name: the model's name, ``highway{depth}`` by default (weighted layers).

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an invalid stage table, width, rate or gate bias, or an
            input too small for the number of poolings.
    """
    stages = _check_arguments(input_shape, stages, head_filters, gate_bias, dropout)
    regularizer = layers.l2_decay(weight_decay)
    classifier_regularizer = layers.l2_decay(
        weight_decay * CLASSIFIER_DECAY_MULTIPLIER if weight_decay else None
    )
    depth = sum(1 + blocks for _, blocks in stages) + 2

    inputs, x = layers.image_input(input_shape, mean, std)
    if dropout:
        x = keras.layers.Dropout(dropout, name="input_dropout")(x)
    x = highway_stages(x, stages, gate_bias=gate_bias, dropout=dropout, regularizer=regularizer)
    x = head(
        x,
        head_filters=head_filters,
        dropout=dropout,
        regularizer=regularizer,
        classifier_regularizer=classifier_regularizer,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )
    return keras.Model(inputs, x, name=name or f"highway{depth}")


def highway_stages(
    x,
    stages: Sequence[tuple[int, int]],
    *,
    gate_bias: float,
    dropout: float,
    regularizer: keras.regularizers.Regularizer | None,
):
    """Stages ``stage1``, ``stage2`` ...: a plain 3x3 convolution with ReLU setting the width,
    then the highway layers; 2x2 max pooling and dropout between stages."""
    for index, (filters, blocks) in enumerate(stages):
        prefix = f"stage{index + 1}"
        if index > 0:
            x = keras.layers.MaxPooling2D(2, name=f"stage{index}_pool")(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"stage{index}_dropout")(x)
        first_initializer = (
            keras.initializers.RandomNormal(0.0, 0.05) if index == 0 else CAFFE_XAVIER
        )
        x = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            activation="relu",
            kernel_initializer=first_initializer,
            kernel_regularizer=regularizer,
            name=f"{prefix}_conv",
        )(x)
        for block in range(blocks):
            x = highway_conv(
                x,
                gate_bias=gate_bias,
                kernel_initializer=CAFFE_XAVIER,
                kernel_regularizer=regularizer,
                name=f"{prefix}_highway{block + 1}",
            )
    return x


def head(
    x,
    *,
    head_filters: int,
    dropout: float,
    regularizer: keras.regularizers.Regularizer | None,
    classifier_regularizer: keras.regularizers.Regularizer | None,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
):
    """The 1x1 convolution with ReLU, then global average pooling, dropout and the
    classifier, or the convolution's feature map pooled by ``pooling``."""
    x = keras.layers.Conv2D(
        head_filters,
        1,
        activation="relu",
        kernel_initializer=CAFFE_XAVIER,
        kernel_regularizer=regularizer,
        name="head_conv",
    )(x)
    if not include_top:
        return layers.global_pool(x, pooling)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return layers.classifier(
        x,
        num_classes,
        classifier_activation,
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.05),
        kernel_regularizer=classifier_regularizer,
    )


def highway_conv(
    x,
    *,
    name: str,
    gate_bias: float = GATE_BIAS,
    kernel_size: int = 3,
    kernel_initializer: str | keras.initializers.Initializer = CAFFE_XAVIER,
    kernel_regularizer: keras.regularizers.Regularizer | None = None,
):
    """A convolutional highway layer ``y = H(x) T(x) + x (1 - T(x)) = x + T(x) (H(x) - x)``.

    Layers: ``{name}_h`` (H: convolution + ReLU), ``{name}_t`` (T: convolution + sigmoid,
    bias initialised to ``gate_bias``), ``{name}_h_minus_x``, ``{name}_gated`` and
    ``{name}_out``. Both convolutions keep the input's channel count and size.
    """
    filters = x.shape[-1]
    conv_kwargs = dict(
        padding="same",
        kernel_initializer=kernel_initializer,
        kernel_regularizer=kernel_regularizer,
    )
    h = keras.layers.Conv2D(
        filters, kernel_size, activation="relu", name=f"{name}_h", **conv_kwargs
    )(x)
    t = keras.layers.Conv2D(
        filters,
        kernel_size,
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(gate_bias),
        name=f"{name}_t",
        **conv_kwargs,
    )(x)
    difference = keras.layers.Subtract(name=f"{name}_h_minus_x")([h, x])
    gated = keras.layers.Multiply(name=f"{name}_gated")([t, difference])
    return keras.layers.Add(name=f"{name}_out")([x, gated])


def _check_arguments(input_shape, stages, head_filters, gate_bias, dropout):
    def positive(value, allow_zero=False):
        return (
            not isinstance(value, bool)
            and isinstance(value, numbers.Integral)
            and (value >= 0 if allow_zero else value >= 1)
        )

    try:
        stages = tuple((filters, blocks) for filters, blocks in stages)
    except (TypeError, ValueError):
        stages = ()
    valid = bool(stages) and all(
        positive(filters) and positive(blocks, allow_zero=True) for filters, blocks in stages
    )
    if not valid:
        raise InvalidArgumentError(
            f"stages must be (filters, highway_layers) pairs with filters >= 1 and "
            f"highway_layers >= 0; received {stages!r}"
        )
    if not positive(head_filters):
        raise InvalidArgumentError(
            f"head_filters must be a positive integer; received {head_filters!r}"
        )
    if not isinstance(gate_bias, numbers.Real) or not math.isfinite(gate_bias):
        raise InvalidArgumentError(f"gate_bias must be a finite number; received {gate_bias!r}")
    if not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(f"dropout must be in [0, 1); received {dropout!r}")
    size = 2 ** (len(stages) - 1)
    if input_shape[0] < size or input_shape[1] < size:
        raise InvalidArgumentError(
            f"a highway network with {len(stages)} stages needs inputs of at least "
            f"{size}x{size}; received input_shape={tuple(input_shape)}"
        )
    return stages


register_model(
    "highway",
    HighwayNet,
    title="Highway Network",
    paper="Srivastava, Greff, Schmidhuber 2015, Training Very Deep Networks",
    input_shape=(32, 32, 3),
    # Two 2x2 max poolings: 4x4 leaves 1x1 for the last stage; 3x3 leaves nothing.
    min_size=(4, 4),
    num_classes=10,
    # CIFAR-10 training-set channel statistics.
    mean=FB_RESNET_CIFAR10_MEAN,
    std=FB_RESNET_CIFAR10_STD,
    stages=HIGHWAY_19_STAGES,
    description="Convolutional highway network, 19 layers (Highway B, 2.3M parameters)",
)
