"""AlexNet and ZFNet.

References:
    A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep
    Convolutional Neural Networks", NIPS 2012 (section 3 the architecture, section 5 the
    initialisation and weight decay).
    M. D. Zeiler, R. Fergus, "Visualizing and Understanding Convolutional Networks",
    arXiv:1311.2901, 2013 (Figure 3, the network of their section 3).
    A. Krizhevsky, "One weird trick for parallelizing convolutional neural networks",
    arXiv:1404.5997, 2014 (the one-column network torchvision's ``alexnet`` builds).

AlexNet (``alexnet``) is the single-tower network as taught (the layer table of Stanford's
CS231n AlexNet case study): a 227x227x3 input (the arithmetic of the 11x11/4 first layer
works for 227, not for the paper's stated 224), five convolutions 96-256-384-384-256,
overlapping 3x3/2 max pooling after the first, second and fifth, local response normalisation
(k=2, n=5, alpha=1e-4, beta=0.75) after the first two, then FC 4096-4096-classes with dropout
0.5 on the two hidden FC layers; ReLU everywhere. Departure from the paper's text: the paper
normalises *before* pooling (section 3.5: "Response-normalization layers follow the first and
second convolutional layers. Max-pooling layers ... follow both response-normalization
layers"); we follow that table, which pools first and normalises after (the order of Caffe's
reference CaffeNet). The parameter count is the same either way.

``towers=2`` (``alexnet_2tower``) is the paper's two-GPU layout (Figure 2): the second, fourth
and fifth convolutions see only the maps of their own tower (``groups=2``); the third
convolution and the FC layers are connected across both. As in Caffe's reference AlexNet,
normalisation runs over all channels, also across the towers' boundary, where the paper's
per-GPU normalisation would not.

ZFNet (``zfnet``, ``config="zfnet"``) is Zeiler & Fergus's modification (Figure 3): 7x7/2 first
layer instead of 11x11/4 and stride 2 in the second, on a 224x224 input, single tower, and
(their section 3) weights drawn with std 0.01 and all biases 0. Their
"contrast normalization across feature maps" is the same LRN layer. Not reproduced: their
renormalisation of every convolutional filter whose RMS exceeds 0.1 (a training-time
constraint of their optimiser). Their paper gives no weight decay; AlexNet's is kept.

``alexnet_owt`` (``config="owt"``) is AlexNet as torchvision builds it
(torchvision/models/alexnet.py, which cites Krizhevsky 2014), the network of torchvision's
ImageNet weights (``weights="torchvision"``): one tower of 64-192-384-256-256 convolutions
(11x11/4 padded by 2, 5x5, then three 3x3), no LRN, 3x3/2 max pooling after conv1, conv2 and
conv5 rounding down as PyTorch does, then dropout before each of FC6 (9216 -> 4096) and FC7,
and the classifier: 61,100,840 parameters with 1000 classes (torchvision's ``num_params``).
It takes 224x224 inputs (pool5 is 6x6) and torchvision's ImageNet statistics. torchvision
puts an adaptive average pooling to 6x6 before FC6, the identity at 224x224; ours flattens
pool5 directly, so the classifier needs an input whose pool5 is 6x6 (223 to 254 pixels;
``include_top=False`` takes any size from 63). The initialisation and weight decay are the
family's (section 5 of the 2012 paper, biases 0); torchvision's are PyTorch's defaults.

Pooling rounds the output size up, as Caffe (and so the published reference models) does:
``ceil((n - 3) / 2) + 1``. For AlexNet at 227 this is the same as Keras's "valid" pooling
(55 -> 27 -> 13 -> 6); ZFNet's Figure 3 needs it (110 -> 55 and 26 -> 13). See
``ceil_mode_pooling``.

Weights start Gaussian with std 0.01 (section 5); AlexNet's biases start at 1 in the second,
fourth and fifth convolutions and in the hidden FC layers, 0 elsewhere (the output layer
included: section 5 names only "the fully-connected hidden layers"). Weight decay 5e-4
(section 5) applies to every kernel. The mean is the ImageNet per-channel RGB mean; the paper
subtracts the mean image (section 2), which a per-channel mean approximates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import (
    TORCHVISION_IMAGENET_MEAN,
    TORCHVISION_IMAGENET_STD,
    TORCHVISION_TABLE,
    UNIT_STD,
    VGG_IMAGENET_MEAN,
    PublishedAccuracy,
    register_model,
)

# Section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75.
LRN_PARAMETERS = dict(k=2.0, n=5, alpha=1e-4, beta=0.75)
# Section 3.4: overlapping pooling, z = 3 with stride s = 2.
POOL_SIZE, POOL_STRIDES = 3, 2
# Section 5: "zero-mean Gaussian distribution with standard deviation 0.01".
INIT_STD = 0.01


@dataclass(frozen=True)
class Conv:
    """One convolution of the layer table: filters, square kernel, stride, zero padding."""

    filters: int
    kernel: int
    stride: int
    pad: int


@dataclass(frozen=True)
class Layout:
    """A network of the family: its five convolutions, the layers whose biases start at 1,
    whether pool1 and pool2 are followed by LRN, how pooling rounds ("ceil": Caffe's, "floor":
    PyTorch's) and whether dropout comes after the hidden FC layers or before them."""

    convs: tuple[Conv, ...]
    unit_bias: frozenset[str]
    lrn: bool = True
    rounding: str = "ceil"
    dropout_before_fc: bool = False


ALEXNET_CONVS = (
    Conv(96, 11, 4, 0),  # 227 -> 55
    Conv(256, 5, 1, 2),
    Conv(384, 3, 1, 1),
    Conv(384, 3, 1, 1),
    Conv(256, 3, 1, 1),
)
# Figure 3: 224 -> 110 needs one pixel of padding on each side, (224 + 2 - 7) // 2 + 1 = 110
# ("valid" gives 109, "same" 112); 55 -> 26 is the unpadded 5x5/2, (55 - 5) // 2 + 1 = 26.
ZFNET_CONVS = (Conv(96, 7, 2, 1), Conv(256, 5, 2, 0), *ALEXNET_CONVS[2:])

# torchvision's AlexNet (torchvision/models/alexnet.py), which it takes from Krizhevsky 2014:
# 64-192-384-256-256 filters, the first convolution padded by 2 (224 -> 55).
OWT_CONVS = (
    Conv(64, 11, 4, 2),
    Conv(192, 5, 1, 2),
    Conv(384, 3, 1, 1),
    Conv(256, 3, 1, 1),
    Conv(256, 3, 1, 1),
)

LAYOUTS = {
    "alexnet": Layout(ALEXNET_CONVS, frozenset({"conv2", "conv4", "conv5", "fc6", "fc7"})),
    "zfnet": Layout(ZFNET_CONVS, frozenset()),
    "owt": Layout(OWT_CONVS, frozenset(), lrn=False, rounding="floor", dropout_before_fc=True),
}
POOLED = ("conv1", "conv2", "conv5")  # each followed by a 3x3/2 max pooling
NORMALISED = ("pool1", "pool2")  # each followed by LRN
# Figure 2: "The kernels of the second, fourth, and fifth convolutional layers are connected
# only to those kernel maps in the previous layer which reside on the same GPU."
TOWER_CONVS = ("conv2", "conv4", "conv5")
TOWERS = (1, 2)
FC_UNITS = 4096


def AlexNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    config: str = "alexnet",
    towers: int = 1,
    dropout: float = 0.5,
    weight_decay: float = 5e-4,
    name: str | None = None,
) -> keras.Model:
    """Build AlexNet (Krizhevsky et al. 2012) or ZFNet (Zeiler & Fergus 2013).

    Args:
        input_shape: (height, width, channels); 227x227x3 for AlexNet, 224x224x3 for ZFNet.
            Any size from the registered minimum up builds; FC6's input size follows it.
        num_classes: classifier units (1000 in the papers).
        include_top: add FC6, FC7 and the classifier; otherwise end at ``pool5``, pooled by
            ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer (``(x - mean) / std``).
        config: "alexnet" (11x11/4 then 5x5/1), "zfnet" (7x7/2 then 5x5/2) or "owt"
            (torchvision's one-tower AlexNet of Krizhevsky 2014: 64-192-384-256-256, no LRN).
        towers: 1 (single tower) or 2 (the paper's two-GPU layout: grouped conv2, conv4,
            conv5).
        dropout: dropout rate after FC6 and FC7 (0.5 in both papers).
        weight_decay: L2 weight decay on every kernel (5e-4, section 5).
        name: the model's name; by default ``alexnet``, ``alexnet_2tower``, ``zfnet`` or
            ``alexnet_owt``.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an unknown config, a tower count other than 1 or 2, or an
            input too small for the three poolings.
    """
    _check_arguments(config, towers)
    layout = LAYOUTS[config]
    initializers = functools.partial(
        _initializers, unit_bias=layout.unit_bias, regularizer=layers.l2_decay(weight_decay)
    )
    inputs, x = layers.image_input(input_shape, mean, std)
    x = features(x, layout, towers=towers, initializers=initializers)
    x = head(
        x,
        dropout=dropout,
        dropout_before_fc=layout.dropout_before_fc,
        initializers=initializers,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )
    default_name = {"owt": "alexnet_owt"}.get(config, config) + ("_2tower" if towers == 2 else "")
    return keras.Model(inputs, x, name=name or default_name)


def _check_arguments(config: str, towers: int) -> None:
    """Reject an unknown layout or tower count, with the value echoed."""
    if config not in LAYOUTS:
        raise InvalidArgumentError(
            f"AlexNet config must be one of {', '.join(LAYOUTS)}; received {config!r}"
        )
    if towers not in TOWERS:
        raise InvalidArgumentError(f"towers must be 1 or 2; received {towers!r}")


def _initializers(
    layer_name: str,
    *,
    unit_bias: frozenset[str],
    regularizer: keras.regularizers.Regularizer | None,
) -> dict:
    """Section 5's Gaussian weights and 0 or 1 biases of one layer, and its weight decay."""
    bias = 1.0 if layer_name in unit_bias else 0.0
    return dict(
        kernel_initializer=keras.initializers.RandomNormal(stddev=INIT_STD),
        bias_initializer=keras.initializers.Constant(bias),
        kernel_regularizer=regularizer,
    )


def features(
    x: keras.KerasTensor,
    layout: Layout,
    *,
    towers: int,
    initializers: Callable[[str], dict],
) -> keras.KerasTensor:
    """The five convolutions with ReLU (``conv1`` ... ``conv5``, grouped by tower where
    Figure 2 splits them), max pooling after conv1, conv2 and conv5, LRN after pool1 and pool2
    (where the layout has it)."""
    for index, conv in enumerate(layout.convs, start=1):
        conv_name = f"conv{index}"
        if conv.stride == 1 and 2 * conv.pad == conv.kernel - 1:
            padding = "same"
        else:
            padding = "valid"
            if conv.pad:
                x = keras.layers.ZeroPadding2D(conv.pad, name=f"{conv_name}_pad")(x)
        x = keras.layers.Conv2D(
            conv.filters,
            conv.kernel,
            strides=conv.stride,
            padding=padding,
            groups=towers if conv_name in TOWER_CONVS else 1,
            activation="relu",
            name=conv_name,
            **initializers(conv_name),
        )(x)
        if conv_name in POOLED:
            pool_name = f"pool{index}"
            if layout.rounding == "ceil":
                x = ceil_mode_pooling(x, POOL_SIZE, POOL_STRIDES, name=pool_name)
            else:
                x = keras.layers.MaxPooling2D(POOL_SIZE, POOL_STRIDES, name=pool_name)(x)
            if layout.lrn and pool_name in NORMALISED:
                x = layers.LocalResponseNormalization(**LRN_PARAMETERS, name=f"norm{index}")(x)
    return x


def head(
    x: keras.KerasTensor,
    *,
    dropout: float,
    dropout_before_fc: bool = False,
    initializers: Callable[[str], dict],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
) -> keras.KerasTensor:
    """FC6 and FC7 with ReLU and dropout (after each, or before each with
    ``dropout_before_fc`` as torchvision places it), then the classifier (FC8); or ``pool5``'s
    feature map pooled by ``pooling``."""
    if not include_top:
        return layers.global_pool(x, pooling)
    x = keras.layers.Flatten(name="flatten")(x)
    for fc_name in ("fc6", "fc7"):
        if dropout_before_fc:
            x = keras.layers.Dropout(dropout, name=f"{fc_name}_dropout")(x)
        x = keras.layers.Dense(
            FC_UNITS,
            activation="relu",
            name=fc_name,
            **initializers(fc_name),
        )(x)
        if not dropout_before_fc:
            x = keras.layers.Dropout(dropout, name=f"{fc_name}_dropout")(x)
    return layers.classifier(x, num_classes, classifier_activation, **initializers("fc8"))


def ceil_mode_pooling(
    x: keras.KerasTensor,
    pool_size: int,
    strides: int,
    *,
    name: str,
    kind: str = "max",
) -> keras.KerasTensor:
    """Pooling with Caffe's output size, ``ceil((n - pool_size) / strides) + 1``.

    Caffe, in which the reference AlexNet, ZFNet and NIN models were published, rounds the
    pooled size up: the last window may hang over the bottom/right edge and pools only the
    pixels inside the map (an average divides by their number). Keras's "valid" rounds down.
    Where the two differ (for 3x3/2 pooling: an even size), "same" gives exactly Caffe's
    windows: its single pixel of padding goes at the bottom/right and is ignored by both
    max and average pooling. When the rows need one padding and the columns the other (a
    non-square input), rows and columns are pooled one after the other
    (``{name}_rows``, then ``name``): the max or mean over a rectangle of pixels is
    separable.

    Raises:
        InvalidArgumentError: when the map is too small for a single window.
    """
    pool_class = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}[kind]
    rows, columns = (_ceil_mode_padding(n, pool_size, strides, name) for n in x.shape[1:3])
    if rows == columns:
        return pool_class(pool_size, strides, padding=rows, name=name)(x)
    x = pool_class((pool_size, 1), (strides, 1), padding=rows, name=f"{name}_rows")(x)
    return pool_class((1, pool_size), (1, strides), padding=columns, name=name)(x)


def ceil_mode_size(size: int, pool_size: int, strides: int) -> int:
    """Caffe's pooled size of a ``size``-pixel axis (0 when no window fits)."""
    return max(-(-(size - pool_size) // strides) + 1, 0)


def _ceil_mode_padding(size: int, pool_size: int, strides: int, name: str) -> str:
    pooled = ceil_mode_size(size, pool_size, strides)
    if pooled < 1:
        raise InvalidArgumentError(
            f"{name}: a {size}-pixel feature map is too small for {pool_size}x{pool_size} "
            f"pooling; use a larger input"
        )
    if (size - pool_size) % strides == 0:
        return "valid"
    same_size = -(-size // strides)
    padding_before = max((same_size - 1) * strides + pool_size - size, 0) // 2
    if same_size != pooled or padding_before:
        raise NotImplementedError(  # not reached for the 3x3/2 pooling of these networks
            f"Caffe-rounded {pool_size}x{pool_size}/{strides} pooling of a {size}-pixel map"
        )
    return "same"


COMMON = dict(
    num_classes=1000,
    # The ImageNet mean RGB (the figures released with the VGG Caffe models), subtracted from
    # raw pixels without scaling, as the paper subtracts its mean image (section 2).
    mean=VGG_IMAGENET_MEAN,
    std=UNIT_STD,
)
ALEXNET_PAPER = (
    "Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep Convolutional "
    "Neural Networks"
)

register_model(
    "alexnet",
    AlexNet,
    title="AlexNet",
    paper=ALEXNET_PAPER,
    input_shape=(227, 227, 3),
    # 11x11/4 then three 3x3/2 poolings, rounded up: 39 -> 8 -> 4 -> 2 -> 1 (38 -> 7 -> 3 -> 1
    # leaves nothing for pool5).
    min_size=(39, 39),
    description="5 conv + 3 FC, ReLU, LRN, overlapping max pooling, dropout; single tower",
    # Table 2, "1 CNN": 40.7% top-1 and 18.2% top-5 error on the validation set (the
    # two-tower network; torchvision's "alexnet" is the one-weird-trick variant, not this).
    imagenet_accuracy=PublishedAccuracy.from_errors(
        40.7, 18.2, "Krizhevsky et al. 2012, Table 2 (1 CNN, validation)"
    ),
    **COMMON,
)
register_model(
    "alexnet_2tower",
    AlexNet,
    title="AlexNet (two towers)",
    paper=ALEXNET_PAPER,
    input_shape=(227, 227, 3),
    min_size=(39, 39),
    description="AlexNet as published: conv2, conv4, conv5 split across two GPUs (groups=2)",
    towers=2,
    **COMMON,
)
register_model(
    "alexnet_owt",
    AlexNet,
    title="AlexNet (one weird trick)",
    paper="Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks; "
    "torchvision's layout",
    input_shape=(224, 224, 3),
    # 11x11/4 padded by 2 and three 3x3/2 poolings rounding down: 63 -> 15 -> 7 -> 3 -> 1
    # (62 -> 14 -> 6 -> 2 leaves nothing for pool5); torchvision's min_size.
    min_size=(63, 63),
    num_classes=1000,
    mean=TORCHVISION_IMAGENET_MEAN,
    std=TORCHVISION_IMAGENET_STD,
    description="torchvision's AlexNet: one tower, 64-192-384-256-256, no LRN",
    imagenet_accuracy=PublishedAccuracy(56.522, 79.066, TORCHVISION_TABLE),
    config="owt",
)
register_model(
    "zfnet",
    AlexNet,
    title="ZFNet",
    paper="Zeiler, Fergus 2013, Visualizing and Understanding Convolutional Networks",
    input_shape=(224, 224, 3),
    # 7x7/2 (padded by 1), 3x3/2 pooling, 5x5/2, two more poolings, rounded up:
    # 47 -> 22 -> 11 -> 4 -> 2 -> 1 (46 -> 21 -> 10 -> 3 -> 1 leaves nothing for pool5).
    min_size=(47, 47),
    description="AlexNet with a 7x7/2 first layer and stride 2 in the second (Figure 3)",
    config="zfnet",
    **COMMON,
)
