"""GoogLeNet (Inception v1) and BN-Inception.

References:
    C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke,
    A. Rabinovich, "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842): Table 1 (the
    layer table), Figure 3 (the network with its LRNs and auxiliary classifiers), section 5
    (the auxiliary classifiers).

    S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
    Internal Covariate Shift", ICML 2015 (arXiv:1502.03167): section 4.2 and the appendix's
    Figure 5 (the BN-Inception layer table).

GoogLeNet: a 7x7/2 convolution, 3x3/2 max pooling and LRN, a 1x1 and a 3x3 convolution and LRN,
3x3/2 max pooling, then nine inception modules (3a, 3b, pool, 4a-4e, pool, 5a, 5b), global
average pooling, dropout 0.4 and the classifier. A module concatenates a 1x1 convolution, a
1x1 reduction then 3x3, a 1x1 reduction then 5x5, and 3x3 max pooling then a 1x1 projection.
Every convolution has a bias and a ReLU, initialised with Xavier (``glorot_uniform``). With
``aux_logits=True`` the two auxiliary classifiers of section 5 are added after 4a and 4d (5x5/3
average pooling, 1x1 convolution with 128 filters, fully connected 1024, dropout 0.7, the
classifier). Layers keep the Caffe reference model's names, with "/" written "_"
(``inception_3a_5x5_reduce``).

BN-Inception: the same stem without LRN and with batch normalisation after every convolution
(``conv_bn``: no bias, He initialisation), each 5x5 convolution replaced by two 3x3 ones (the
"double 3x3" branch), average or max pooling in the pool branch as the table says, and the
stride-2 modules 3c and 4e (no 1x1 branch; the pooled input passes through unprojected) in
place of the max pools between stages; no dropout (section 4.2.1: "Remove Dropout").

GoogLeNet with batch normalisation (``googlenet_bn``) is the network of torchvision's ImageNet
weights (torchvision/models/googlenet.py), registered beside the paper's. Where torchvision
departs from Szegedy et al. 2014: every convolution is torchvision's ``BasicConv2d``, a
convolution without bias, batch normalisation (epsilon 1e-3) and ReLU, and there is no LRN
(6,624,904 trainable parameters without the auxiliary heads, torchvision's ``num_params``);
each module's "5x5" branch convolves 3x3 (torchvision keeps this known bug for its weights,
pytorch/vision#906; the layers keep the ``_5x5`` names of the table); the pooling after 4e is
2x2/2, not 3x3/2; pooling rounds up (``ceil_mode``) and the stem's 7x7/2 pads 3 on every side,
so maps are the same at every input size; dropout before the classifier is 0.2, not 0.4.
torchvision's weights were trained with ``transform_input=True``, which maps its normalised
input back to ``x / 127.5 - 1`` in raw pixels: the registration's statistics. torchvision's
auxiliary heads pool adaptively to 4x4 with a batch-normalised 1x1 convolution; ours
(``aux_logits=True``) are section 5's, the 1x1 convolution batch-normalised, and start afresh
from torchvision's weights, whose auxiliary heads torchvision publishes untrained.

Departures from the papers and the Caffe reference, none of which changes a shape of the tables
at 224x224:

- Every convolution and pooling pads "same". Caffe pads the convolutions symmetrically (the
  same outputs, except that the 7x7/2 stem convolution samples one pixel further right and
  down) and pools in "ceil mode" without padding, which is what "same" does on maps of even
  size (all of them at 224x224); on odd sizes "same" keeps one row and column more.
- The auxiliary heads' 5x5/3 average pooling is "valid" (14x14 -> 4x4 as in Caffe); on a map
  smaller than 5 pixels (inputs below 65 pixels) its window shrinks to the map, so the heads,
  like the rest of the network, build at every input size.
- GoogLeNet's LRN uses the Caffe model's parameters (the paper gives none): size 5,
  alpha 1e-4 divided by the size (Caffe's convention), beta 0.75, k 1.
- BN-Inception follows the widths of Figure 5's columns; they give 608 channels after 4c and
  4d and 1024 + 32 = 1056 after 4e where the table's size column says 576, 576 and 1024 (the
  Caffe BN-Inception model has the same 608/1056).
- The papers give no weight decay: GoogLeNet's default is the BVLC Caffe reproduction's 2e-4;
  BN-Inception's 4e-5 is a fifth of it (section 4.2.1 reduces Inception's L2 by a factor of 5),
  also TF-slim's Inception default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.alexnet import ceil_mode_pooling
from kerascnn.models.spec import (
    KERAS_TF_MEAN,
    KERAS_TF_STD,
    TORCHVISION_IMAGENET_MEAN,
    TORCHVISION_IMAGENET_STD,
    TORCHVISION_TABLE,
    UNIT_STD,
    PublishedAccuracy,
    register_model,
)


@dataclass(frozen=True)
class InceptionModule:
    """One row of an inception layer table; a width of 0 means the branch is absent.

    Attributes:
        conv1x1: the 1x1 branch.
        reduce3x3, conv3x3: the 1x1 reduction and the 3x3 convolution.
        reduce5x5, conv5x5: the 1x1 reduction and the 5x5 convolution (GoogLeNet), or the two
            3x3 convolutions of the "double 3x3" branch (BN-Inception).
        pool_proj: the 1x1 projection after pooling; 0 passes the pooled input through.
        pool: "max" or "avg" pooling in the pool branch (3x3).
        strides: 2 for BN-Inception's subsampling modules 3c and 4e.
    """

    conv1x1: int
    reduce3x3: int
    conv3x3: int
    reduce5x5: int
    conv5x5: int
    pool_proj: int
    pool: str = "max"
    strides: int = 1


# Szegedy et al. 2014, Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
GOOGLENET_MODULES = {
    "3a": InceptionModule(64, 96, 128, 16, 32, 32),
    "3b": InceptionModule(128, 128, 192, 32, 96, 64),
    "4a": InceptionModule(192, 96, 208, 16, 48, 64),
    "4b": InceptionModule(160, 112, 224, 24, 64, 64),
    "4c": InceptionModule(128, 128, 256, 24, 64, 64),
    "4d": InceptionModule(112, 144, 288, 32, 64, 64),
    "4e": InceptionModule(256, 160, 320, 32, 128, 128),
    "5a": InceptionModule(256, 160, 320, 32, 128, 128),
    "5b": InceptionModule(384, 192, 384, 48, 128, 128),
}
# Section 5: auxiliary classifiers "put on top of the output of the Inception (4a) and (4d)".
GOOGLENET_AUX_AFTER = ("4a", "4d")

# Ioffe & Szegedy 2015, Figure 5: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3,
# pool + proj; 3c and 4e have stride 2.
BN_INCEPTION_MODULES = {
    "3a": InceptionModule(64, 64, 64, 64, 96, 32, "avg"),
    "3b": InceptionModule(64, 64, 96, 64, 96, 64, "avg"),
    "3c": InceptionModule(0, 128, 160, 64, 96, 0, "max", strides=2),
    "4a": InceptionModule(224, 64, 96, 96, 128, 128, "avg"),
    "4b": InceptionModule(192, 96, 128, 96, 128, 128, "avg"),
    "4c": InceptionModule(160, 128, 160, 128, 160, 128, "avg"),
    "4d": InceptionModule(96, 128, 192, 160, 192, 128, "avg"),
    "4e": InceptionModule(0, 128, 192, 192, 256, 0, "max", strides=2),
    "5a": InceptionModule(352, 192, 320, 160, 224, 128, "avg"),
    "5b": InceptionModule(352, 192, 320, 192, 224, 128, "max"),
}

# Caffe's bvlc_googlenet LRN: local_size 5, alpha 1e-4 (Caffe divides it by the size), beta 0.75.
LRN_PARAMETERS = {"k": 1.0, "n": 5, "alpha": 1e-4 / 5, "beta": 0.75}
# Section 5: "An average pooling layer with 5x5 filter size and stride 3", "A 1x1 convolution
# with 128 filters", "A fully connected layer with 1024 units".
AUX_POOL_SIZE, AUX_POOL_STRIDES, AUX_FILTERS, AUX_UNITS = 5, 3, 128, 1024


def GoogLeNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    aux_logits: bool = False,
    dropout: float = 0.4,
    aux_dropout: float = 0.7,
    weight_decay: float | None = 2e-4,
    name: str | None = None,
) -> keras.Model:
    """Build GoogLeNet (Szegedy et al. 2014, Table 1).

    Args:
        input_shape: (height, width, channels); 224x224x3 in the paper. Every layer pads, so
            any size builds.
        num_classes: classifier units (1000 in the paper).
        include_top: add global average pooling, dropout and the classifier (and the
            auxiliary classifiers if ``aux_logits``); otherwise return inception 5b's feature
            map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits (all heads).
        mean, std: raw-pixel statistics of the first layer.
        aux_logits: with ``include_top``, add the auxiliary classifiers after 4a and 4d: the
            model's outputs are then ``[main, aux1, aux2]`` (section 5; losses weighted 0.3).
        dropout: dropout rate before the classifier (the paper's 0.4).
        aux_dropout: dropout rate in the auxiliary classifiers (the paper's 0.7).
        weight_decay: L2 weight decay on every kernel (None or 0 for none).
        name: the model's name, ``googlenet`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: a dropout rate outside [0, 1).
    """
    return _googlenet(
        conv_relu,
        functools.partial(stem, lrn=True),
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        mean=mean,
        std=std,
        aux_logits=aux_logits,
        dropout=dropout,
        aux_dropout=aux_dropout,
        weight_decay=weight_decay,
        name=name or "googlenet",
    )


def _googlenet(
    conv_layer,
    stem_layers: Callable,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    aux_logits: bool,
    dropout: float,
    aux_dropout: float,
    weight_decay: float | None,
    name: str,
    **module_options,
) -> keras.Model:
    """GoogLeNet's network with ``conv_layer`` for every convolution (the auxiliary heads'
    too), ``stem_layers(x, conv)`` before inception 3a and ``module_options`` for
    ``googlenet_modules``."""
    _check_rate("dropout", dropout)
    _check_rate("aux_dropout", aux_dropout)
    kernel_kwargs = dict(
        kernel_initializer="glorot_uniform", kernel_regularizer=layers.l2_decay(weight_decay)
    )
    conv = functools.partial(conv_layer, **kernel_kwargs)
    auxiliary = None
    if include_top and aux_logits:
        auxiliary = functools.partial(
            auxiliary_classifier,
            num_classes=num_classes,
            classifier_activation=classifier_activation,
            dropout=aux_dropout,
            kernel_kwargs=kernel_kwargs,
            conv=conv_layer,
        )
    inputs, x = layers.image_input(input_shape, mean, std)
    x = stem_layers(x, conv)
    x, aux_outputs = googlenet_modules(x, conv, auxiliary, **module_options)
    x = head(
        x,
        dropout=dropout,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        **kernel_kwargs,
    )
    outputs = [x, *aux_outputs] if aux_outputs else x
    return keras.Model(inputs, outputs, name=name)


def googlenet_modules(
    x: keras.KerasTensor,
    conv,
    auxiliary: Callable[[keras.KerasTensor, str], keras.KerasTensor] | None,
    *,
    pool: Callable[[keras.KerasTensor, str], keras.KerasTensor] | None = None,
    third_kernel: int = 5,
) -> tuple[keras.KerasTensor, list[keras.KerasTensor]]:
    """Table 1's inception modules 3a .. 5b with a 3x3/2 max pooling between stages (or
    ``pool(x, stage)``), and the outputs of ``auxiliary(x, prefix)`` after 4a and 4d (none
    when ``auxiliary`` is None); ``third_kernel`` is the kernel of the "5x5" branch."""
    aux_outputs = []
    stage = "3"
    for module_name, module in GOOGLENET_MODULES.items():
        if module_name[0] != stage:  # a 3x3/2 max pool between stages (pool3, pool4)
            if pool is None:
                x = max_pool(x, f"pool{stage}_3x3_s2", strides=2)
            else:
                x = pool(x, stage)
            stage = module_name[0]
        x = inception_module(
            x,
            f"inception_{module_name}",
            module,
            conv,
            double_3x3=False,
            third_kernel=third_kernel,
        )
        if auxiliary is not None and module_name in GOOGLENET_AUX_AFTER:
            index = GOOGLENET_AUX_AFTER.index(module_name) + 1
            aux_outputs.append(auxiliary(x, f"aux{index}"))
    return x, aux_outputs


def GoogLeNetBN(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    aux_logits: bool = False,
    dropout: float = 0.2,
    aux_dropout: float = 0.7,
    weight_decay: float | None = 2e-4,
    name: str | None = None,
) -> keras.Model:
    """Build GoogLeNet with batch normalisation as torchvision builds it (``googlenet_bn``).

    Table 1's widths, every convolution a ``conv_bn`` (no bias, batch norm with epsilon 1e-3,
    ReLU); no LRN; the "5x5" branch convolves 3x3; 3x3/2 and 2x2/2 max poolings rounding up
    (PyTorch's ``ceil_mode``); the stem's 7x7/2 padded by 3 on every side; dropout 0.2.

    Args:
        input_shape, num_classes, include_top, pooling, classifier_activation, mean, std,
        aux_logits, aux_dropout, weight_decay, name: as ``GoogLeNet``'s (the auxiliary heads
            are section 5's, their 1x1 convolution with batch norm).
        dropout: dropout rate before the classifier (torchvision's 0.2).

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: a dropout rate outside [0, 1), or an input too small to pool.
    """
    return _googlenet(
        layers.conv_bn,
        _torchvision_stem,
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        mean=mean,
        std=std,
        aux_logits=aux_logits,
        dropout=dropout,
        aux_dropout=aux_dropout,
        weight_decay=weight_decay,
        name=name or "googlenet_bn",
        pool=_torchvision_stage_pool,
        third_kernel=3,
    )


def _torchvision_stem(x: keras.KerasTensor, conv) -> keras.KerasTensor:
    """torchvision's stem: the 7x7/2 convolution padded by 3 on every side (Keras's "same"
    would shift it by a pixel), no LRN, pooling rounding up."""
    x = keras.layers.ZeroPadding2D(3, name="conv1_7x7_s2_pad")(x)
    x = conv(x, 64, 7, strides=2, padding="valid", name="conv1_7x7_s2")
    x = ceil_mode_pooling(x, 3, 2, name="pool1_3x3_s2")
    x = conv(x, 64, 1, name="conv2_3x3_reduce")
    x = conv(x, 192, 3, name="conv2_3x3")
    return ceil_mode_pooling(x, 3, 2, name="pool2_3x3_s2")


def _torchvision_stage_pool(x: keras.KerasTensor, stage: str) -> keras.KerasTensor:
    """torchvision's pooling between stages: 3x3/2 after 3b, 2x2/2 after 4e, rounding up."""
    size = 3 if stage == "3" else 2
    return ceil_mode_pooling(x, size, 2, name=f"pool{stage}_{size}x{size}_s2")


def BNInception(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    dropout: float = 0.0,
    weight_decay: float | None = 4e-5,
    name: str | None = None,
) -> keras.Model:
    """Build BN-Inception (Ioffe & Szegedy 2015, Figure 5).

    Args:
        input_shape: (height, width, channels); 224x224x3 in the paper. Every layer pads, so
            any size builds.
        num_classes: classifier units (1000 in the paper).
        include_top: add global average pooling and the classifier; otherwise return
            inception 5b's feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        dropout: dropout rate before the classifier; 0 (none) as in section 4.2.1.
        weight_decay: L2 weight decay on every kernel (None or 0 for none).
        name: the model's name, ``bn_inception`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: a dropout rate outside [0, 1).
    """
    _check_rate("dropout", dropout)
    regularizer = layers.l2_decay(weight_decay)
    conv = functools.partial(
        layers.conv_bn, kernel_initializer="he_normal", kernel_regularizer=regularizer
    )
    inputs, x = layers.image_input(input_shape, mean, std)
    x = stem(x, conv, lrn=False)
    for module_name, module in BN_INCEPTION_MODULES.items():
        x = inception_module(x, f"inception_{module_name}", module, conv, double_3x3=True)
    x = head(
        x,
        dropout=dropout,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        kernel_regularizer=regularizer,
    )
    return keras.Model(inputs, x, name=name or "bn_inception")


def stem(x: keras.KerasTensor, conv, *, lrn: bool) -> keras.KerasTensor:
    """The layers before inception 3a: a 7x7/2 convolution, 3x3/2 max pooling, a 1x1 and a
    3x3 convolution and 3x3/2 max pooling, with GoogLeNet's two LRNs where ``lrn``."""
    x = conv(x, 64, 7, strides=2, name="conv1_7x7_s2")
    x = max_pool(x, "pool1_3x3_s2", strides=2)
    if lrn:
        x = layers.LocalResponseNormalization(**LRN_PARAMETERS, name="pool1_norm1")(x)
    x = conv(x, 64, 1, name="conv2_3x3_reduce")
    x = conv(x, 192, 3, name="conv2_3x3")
    if lrn:
        x = layers.LocalResponseNormalization(**LRN_PARAMETERS, name="conv2_norm2")(x)
    return max_pool(x, "pool2_3x3_s2", strides=2)


def head(
    x: keras.KerasTensor,
    *,
    dropout: float,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    **dense_kwargs,
) -> keras.KerasTensor:
    """Global average pooling, dropout and the classifier; or inception 5b's feature map
    pooled by ``pooling``."""
    if not include_top:
        return layers.global_pool(x, pooling)
    # Table 1's "avg pool 7x7/1" on the 7x7 map, global at any size.
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return layers.classifier(x, num_classes, classifier_activation, **dense_kwargs)


def conv_relu(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    strides: int = 1,
    **kernel_kwargs,
) -> keras.KerasTensor:
    """GoogLeNet's convolution: "same" padding, a bias, then ReLU (``{name}_relu``)."""
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", name=name, **kernel_kwargs
    )(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def max_pool(x: keras.KerasTensor, name: str, strides: int) -> keras.KerasTensor:
    """3x3 max pooling, "same" (Caffe's ceil mode on maps of even size)."""
    return keras.layers.MaxPooling2D(3, strides=strides, padding="same", name=name)(x)


def inception_module(
    x: keras.KerasTensor,
    name: str,
    module: InceptionModule,
    conv,
    *,
    double_3x3: bool,
    third_kernel: int = 5,
) -> keras.KerasTensor:
    """The branches of one table row, concatenated in the table's order (``{name}_output``).

    ``conv(x, filters, kernel_size, name=..., strides=...)`` builds one convolution with its
    activation; ``double_3x3`` makes the third branch two 3x3 convolutions (BN-Inception)
    instead of one 5x5 (GoogLeNet; ``third_kernel`` 3 for torchvision's). A stride-2 module
    subsamples in its last convolutions and in its pooling.
    """
    strides = module.strides
    branches = []
    if module.conv1x1:
        branches.append(conv(x, module.conv1x1, 1, name=f"{name}_1x1"))
    y = conv(x, module.reduce3x3, 1, name=f"{name}_3x3_reduce")
    branches.append(conv(y, module.conv3x3, 3, strides=strides, name=f"{name}_3x3"))
    if double_3x3:
        y = conv(x, module.reduce5x5, 1, name=f"{name}_double_3x3_reduce")
        y = conv(y, module.conv5x5, 3, name=f"{name}_double_3x3_1")
        branches.append(conv(y, module.conv5x5, 3, strides=strides, name=f"{name}_double_3x3_2"))
    else:
        y = conv(x, module.reduce5x5, 1, name=f"{name}_5x5_reduce")
        branches.append(conv(y, module.conv5x5, third_kernel, strides=strides, name=f"{name}_5x5"))
    pool = keras.layers.MaxPooling2D if module.pool == "max" else keras.layers.AveragePooling2D
    y = pool(3, strides=strides, padding="same", name=f"{name}_pool")(x)
    if module.pool_proj:
        y = conv(y, module.pool_proj, 1, name=f"{name}_pool_proj")
    branches.append(y)
    return keras.layers.Concatenate(name=f"{name}_output")(branches)


def auxiliary_pool_size(height: int, width: int) -> tuple[int, int]:
    """The auxiliary heads' pooling window: the paper's 5x5, shrunk to a smaller map."""
    return min(AUX_POOL_SIZE, height), min(AUX_POOL_SIZE, width)


def auxiliary_classifier(
    x: keras.KerasTensor,
    prefix: str,
    num_classes: int,
    classifier_activation: str | None,
    dropout: float,
    kernel_kwargs: dict,
    conv=conv_relu,
) -> keras.KerasTensor:
    """Section 5's auxiliary classifier, every layer named ``{prefix}_...``; ``conv`` builds
    its 1x1 convolution with its activation (``layers.conv_bn`` for ``googlenet_bn``)."""
    _, height, width, _ = x.shape
    y = keras.layers.AveragePooling2D(
        auxiliary_pool_size(height, width),
        strides=AUX_POOL_STRIDES,
        padding="valid",
        name=f"{prefix}_avg_pool",
    )(x)
    y = conv(y, AUX_FILTERS, 1, name=f"{prefix}_conv", **kernel_kwargs)
    y = keras.layers.Flatten(name=f"{prefix}_flatten")(y)
    y = keras.layers.Dense(AUX_UNITS, name=f"{prefix}_fc", **kernel_kwargs)(y)
    y = keras.layers.ReLU(name=f"{prefix}_fc_relu")(y)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{prefix}_dropout")(y)
    return layers.classifier(
        y, num_classes, classifier_activation, name=f"{prefix}_predictions", **kernel_kwargs
    )


def _check_rate(option: str, rate: float) -> None:
    if not 0.0 <= float(rate) < 1.0:
        raise InvalidArgumentError(f"{option} must be in [0, 1); received {rate!r}")


register_model(
    "googlenet",
    GoogLeNet,
    title="GoogLeNet",
    paper="Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich 2014, "
    "Going Deeper with Convolutions",
    input_shape=(224, 224, 3),
    # Every convolution and pooling pads and both kinds of head adapt to the map, so any size
    # builds; 2x2 is the smallest the registry can state (one pixel less must be refused).
    min_size=(2, 2),
    num_classes=1000,
    # Table 5: one model, one crop, 10.07% top-5 error (top-1 not given).
    imagenet_accuracy=PublishedAccuracy.from_errors(
        None, 10.07, "Szegedy et al. 2014, Table 5 (1 model, 1 crop, validation)"
    ),
    # Section 5: the 224x224 RGB input is taken "with mean subtraction" only (no scaling):
    # torchvision's ImageNet mean, with a unit std.
    mean=TORCHVISION_IMAGENET_MEAN,
    std=UNIT_STD,
    auxiliary_loss_weights=(0.3, 0.3),
    description="Inception v1: 9 inception modules, LRN stem, aux heads with aux_logits=True",
)

# torchvision's GoogLeNet: its ImageNet weights were trained with ``transform_input=True``,
# which turns torchvision's normalised input back into ``x / 127.5 - 1`` before conv1
# (torchvision/models/googlenet.py, ``_transform_input``): those are the statistics the
# converted weights expect (``weights="torchvision"``), and this registration's.
register_model(
    "googlenet_bn",
    GoogLeNetBN,
    title="GoogLeNet (batch norm)",
    paper="Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich 2014, "
    "Going Deeper with Convolutions; with batch norm as torchvision builds it",
    input_shape=(224, 224, 3),
    # 7x7/2 padded by 3, then four poolings rounding up: 15 -> 8 -> 4 -> 2 -> 1 -> 1
    # (14 -> 7 -> 3 -> 1 leaves nothing for pool3), as torchvision's smallest input.
    min_size=(15, 15),
    num_classes=1000,
    imagenet_accuracy=PublishedAccuracy(69.778, 89.53, TORCHVISION_TABLE),
    mean=KERAS_TF_MEAN,
    std=KERAS_TF_STD,
    auxiliary_loss_weights=(0.3, 0.3),
    description="GoogLeNet with BN after every convolution, torchvision's layout",
)

register_model(
    "bn_inception",
    BNInception,
    title="BN-Inception",
    paper="Ioffe, Szegedy 2015, Batch Normalization: Accelerating Deep Network Training by "
    "Reducing Internal Covariate Shift",
    input_shape=(224, 224, 3),
    # As GoogLeNet: every layer pads, so any size builds.
    min_size=(2, 2),
    num_classes=1000,
    # torchvision's ImageNet statistics: the paper normalises each layer, not the input, and
    # states no preprocessing.
    mean=TORCHVISION_IMAGENET_MEAN,
    std=TORCHVISION_IMAGENET_STD,
    description="Inception with batch norm after every convolution and double-3x3 branches",
)
