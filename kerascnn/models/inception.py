"""Inception v3, Inception-v4 and the Inception-ResNets.

References:

- C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna, "Rethinking the Inception
  Architecture for Computer Vision", CVPR 2016 (arXiv:1512.00567): Inception v3, Table 1,
  the grid modules of Figures 5 (35x35), 6 (17x17, factorised 1xn/nx1 convolutions) and 7
  (8x8, expanded filter banks), the grid-size reductions of Figure 10 and the batch-normalised
  auxiliary classifier on the last 17x17 grid (Figure 8, "BN-auxiliary").
- C. Szegedy, S. Ioffe, V. Vanhoucke, A. Alemi, "Inception-v4, Inception-ResNet and the Impact
  of Residual Connections on Learning", AAAI 2017 (arXiv:1602.07261): Inception-v4 (Figures
  3-9), Inception-ResNet-v1 (Figures 10-15) and Inception-ResNet-v2 (Figures 16-19),
  Reduction-A with Table 1's k, l, m, n, and the scaled residuals of section 3.3 (Figure 20).

Every network is a table: a stem of convolutions and poolings, then modules made of parallel
branches concatenated on the channel axis (the ``Conv``/``Pool``/``Split`` entries below),
then global average pooling, dropout (keep probability 0.8, Figures 9 and 15; TF-slim's
Inception v3 too) and the classifier. Every convolution is followed by batch normalisation
without a scale (gamma), as in TF-slim and keras.applications, and a ReLU, except the linear
1x1 convolutions that bring an Inception-ResNet branch back to the residual's width: those have
a bias and no batch normalisation ("batch-normalization only on top of the traditional layers,
but not on top of the summations", section 3.2). Their output is multiplied by a scale before
the addition (0.17, 0.1 and 0.2 for the A, B and C blocks, from the paper's range 0.1-0.3 and
the released models; an option).

Inception v3 and Inception-ResNet-v2 follow keras.applications' ``InceptionV3`` and
``InceptionResNetV2`` layer for layer (and so TF-slim's released models), so their ImageNet
weights load: the weighted layers come in Keras's order with Keras's shapes, and the layers
Keras names keep its names (``mixed0``..``mixed10``, ``mixed_5b``, ``block35_1_conv``,
``conv_7b``: every conv-BN-ReLU unit is named ``{unit}_conv``/``_bn``/``_relu``). This departs
from the papers where the released models do:

- Inception v3: after the first max pooling the stem is 1x1 (80), valid 3x3 (192) and a 3x3/2
  max pooling, where Table 1 lists conv 3x3/1, conv 3x3/2 and conv 3x3/1; the 35x35 modules
  keep a 5x5 branch next to Figure 5's pair of 3x3s. The grid sizes are Table 1's:
  35x35x288, 17x17x768, 8x8x1280 and 8x8x2048.
- Inception-ResNet-v2: Keras's stem is Inception v3's followed by an Inception-A-like module
  ``mixed_5b`` (35x35x320), not Figure 3's stem (35x35x384); hence 17x17x1088 after
  Reduction-A and 8x8x2080 after Reduction-B. It repeats the blocks 10, 20 and 10 times (the
  paper's Figure 15 schema: 5, 10, 5), the last C block is linear and unscaled, and a final
  1x1 convolution (``conv_7b``, 1536) precedes the pooling.

Inception-v4 and Inception-ResNet-v1 follow the paper's figures, with the branch order and
the order of each 1xn/nx1 pair of TF-slim's released Inception-v4 (also timm's port). The
paper's networks classify 1001 classes (ImageNet plus background); these are registered with
1000.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import keras
from keras import ops

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import (
    KERAS_APPLICATIONS_TABLE,
    KERAS_TF_MEAN,
    KERAS_TF_STD,
    KerasApplication,
    PublishedAccuracy,
    register_model,
)

PAPER_V3 = (
    "Szegedy, Vanhoucke, Ioffe, Shlens, Wojna 2015, Rethinking the Inception Architecture "
    "for Computer Vision"
)
PAPER_V4 = (
    "Szegedy, Ioffe, Vanhoucke, Alemi 2016, Inception-v4, Inception-ResNet and the Impact "
    "of Residual Connections on Learning"
)
# keras.applications' and TF-slim's batch-norm epsilon.
BN_EPSILON = 1e-3
# TF-slim's inception_arg_scope: L2 weight decay 4e-5 on convolution and classifier kernels.
WEIGHT_DECAY = 4e-5
# Figures 9 and 15: "Dropout (keep 0.8)" before the classifier.
DROPOUT = 0.2
# Section 3.3: residuals scaled by 0.1-0.3; the released models use 0.17 (A), 0.1 (B), 0.2 (C).
RESIDUAL_SCALES = (0.17, 0.1, 0.2)


# --- the table entries -----------------------------------------------------------------------


class Conv(NamedTuple):
    """A convolution, batch normalisation and ReLU."""

    filters: int
    kernel: int | tuple[int, int]
    strides: int = 1
    padding: str = "same"


class Pool(NamedTuple):
    """3x3 average pooling (stride 1, same: a module's pool branch) or 3x3/2 valid max
    pooling (a grid-size reduction)."""

    kind: str


class Split(NamedTuple):
    """Two convolutions on the same input, concatenated (Figure 7's expanded filter bank)."""

    first: Conv
    second: Conv


AVG = Pool("avg")
MAX = Pool("max")
VALID = "valid"

Branch = tuple[str, tuple[Conv | Pool | Split, ...]]
Module = tuple[Branch, ...]


def reduce3x3(filters: int) -> Conv:
    """The 3x3/2 valid convolution that halves a grid (the papers' "stride 2 V")."""
    return Conv(filters, 3, 2, VALID)


def expanded(filters: int) -> Split:
    """Figure 7's 1x3 and 3x1 convolutions side by side."""
    return Split(Conv(filters, (1, 3)), Conv(filters, (3, 1)))


# Inception v3 (keras.applications / TF-slim), named after Keras's variables.
def v3_figure5(pool_filters: int) -> Module:
    """35x35 module (mixed0..mixed2)."""
    return (
        ("branch1x1", (Conv(64, 1),)),
        ("branch5x5", (Conv(48, 1), Conv(64, 5))),
        ("branch3x3dbl", (Conv(64, 1), Conv(96, 3), Conv(96, 3))),
        ("pool", (AVG, Conv(pool_filters, 1))),
    )


def v3_figure6(width: int) -> Module:
    """17x17 module with 7x7 convolutions factorised into 1x7 and 7x1 (mixed4..mixed7)."""
    return (
        ("branch1x1", (Conv(192, 1),)),
        ("branch7x7", (Conv(width, 1), Conv(width, (1, 7)), Conv(192, (7, 1)))),
        (
            "branch7x7dbl",
            (
                Conv(width, 1),
                Conv(width, (7, 1)),
                Conv(width, (1, 7)),
                Conv(width, (7, 1)),
                Conv(192, (1, 7)),
            ),
        ),
        ("pool", (AVG, Conv(192, 1))),
    )


V3_FIGURE7: Module = (
    ("branch1x1", (Conv(320, 1),)),
    ("branch3x3", (Conv(384, 1), expanded(384))),
    ("branch3x3dbl", (Conv(448, 1), Conv(384, 3), expanded(384))),
    ("pool", (AVG, Conv(192, 1))),
)
V3_REDUCTION_35: Module = (
    ("branch3x3", (reduce3x3(384),)),
    ("branch3x3dbl", (Conv(64, 1), Conv(96, 3), reduce3x3(96))),
    ("pool", (MAX,)),
)
V3_REDUCTION_17: Module = (
    ("branch3x3", (Conv(192, 1), reduce3x3(320))),
    ("branch7x7x3", (Conv(192, 1), Conv(192, (1, 7)), Conv(192, (7, 1)), reduce3x3(192))),
    ("pool", (MAX,)),
)

# Stems, with TF-slim's unit names (Conv2d_1a_3x3 -> conv_1a). The first six layers are common
# to Inception v3, Inception-ResNet-v1 (Figure 14) and Keras's Inception-ResNet-v2.
STEM_BASE = (
    ("conv_1a", Conv(32, 3, 2, VALID)),
    ("conv_2a", Conv(32, 3, 1, VALID)),
    ("conv_2b", Conv(64, 3)),
    ("pool_3a", MAX),
    ("conv_3b", Conv(80, 1, 1, VALID)),
    ("conv_4a", Conv(192, 3, 1, VALID)),
)
V3_STEM = (*STEM_BASE, ("pool_5a", MAX))
V3_LAYOUT = (
    *V3_STEM,
    ("mixed0", v3_figure5(32)),
    ("mixed1", v3_figure5(64)),
    ("mixed2", v3_figure5(64)),
    ("mixed3", V3_REDUCTION_35),
    ("mixed4", v3_figure6(128)),
    ("mixed5", v3_figure6(160)),
    ("mixed6", v3_figure6(160)),
    ("mixed7", v3_figure6(192)),
    ("mixed8", V3_REDUCTION_17),
    ("mixed9", V3_FIGURE7),
    ("mixed10", V3_FIGURE7),
)
# The auxiliary classifier sits on the last 17x17 grid (Figure 8).
V3_AUX_INPUT = "mixed7"


# Inception-v4 and the Inception-ResNets, named after TF-slim's scopes (Mixed_5b -> mixed_5b)
# and Keras's Inception-ResNet-v2 variables (branch_0 -> branch0, branch_pool -> pool).
def reduction_a(k: int, l: int, m: int, n: int) -> Module:  # noqa: E741  (the paper's names)
    """Figure 7: 35x35 to 17x17, with Table 1's filter counts."""
    return (
        ("branch0", (reduce3x3(n),)),
        ("branch1", (Conv(k, 1), Conv(l, 3), reduce3x3(m))),
        ("pool", (MAX,)),
    )


def resnet_reduction_b(widths: tuple[int, int, int, int]) -> Module:
    """Figures 12 (v1) and 18 (v2): 17x17 to 8x8 through three 1x1 (256) bottlenecks."""
    a, b, c, d = widths
    return (
        ("branch0", (Conv(256, 1), reduce3x3(a))),
        ("branch1", (Conv(256, 1), reduce3x3(b))),
        ("branch2", (Conv(256, 1), Conv(c, 3), reduce3x3(d))),
        ("pool", (MAX,)),
    )


V4_STEM = (
    *STEM_BASE[:3],
    # Figure 3: 73x73x160, 71x71x192 and 35x35x384.
    ("mixed_3a", (("pool", (MAX,)), ("branch1", (reduce3x3(96),)))),
    (
        "mixed_4a",
        (
            ("branch0", (Conv(64, 1), Conv(96, 3, 1, VALID))),
            (
                "branch1",
                (Conv(64, 1), Conv(64, (1, 7)), Conv(64, (7, 1)), Conv(96, 3, 1, VALID)),
            ),
        ),
    ),
    ("mixed_5a", (("branch0", (reduce3x3(192),)), ("pool", (MAX,)))),
)
V4_BLOCK_A: Module = (  # Figure 4
    ("branch0", (Conv(96, 1),)),
    ("branch1", (Conv(64, 1), Conv(96, 3))),
    ("branch2", (Conv(64, 1), Conv(96, 3), Conv(96, 3))),
    ("pool", (AVG, Conv(96, 1))),
)
V4_BLOCK_B: Module = (  # Figure 5
    ("branch0", (Conv(384, 1),)),
    ("branch1", (Conv(192, 1), Conv(224, (1, 7)), Conv(256, (7, 1)))),
    (
        "branch2",
        (
            Conv(192, 1),
            Conv(192, (7, 1)),
            Conv(224, (1, 7)),
            Conv(224, (7, 1)),
            Conv(256, (1, 7)),
        ),
    ),
    ("pool", (AVG, Conv(128, 1))),
)
V4_BLOCK_C: Module = (  # Figure 6
    ("branch0", (Conv(256, 1),)),
    ("branch1", (Conv(384, 1), expanded(256))),
    ("branch2", (Conv(384, 1), Conv(448, (3, 1)), Conv(512, (1, 3)), expanded(256))),
    ("pool", (AVG, Conv(256, 1))),
)
V4_REDUCTION_B: Module = (  # Figure 8
    ("branch0", (Conv(192, 1), reduce3x3(192))),
    ("branch1", (Conv(256, 1), Conv(256, (1, 7)), Conv(320, (7, 1)), reduce3x3(320))),
    ("pool", (MAX,)),
)
# Figure 9: 4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B, 3 x Inception-C.
V4_BLOCKS = (4, 7, 3)
# Table 1: k, l, m, n of Reduction-A.
V4_REDUCTION_A = (192, 224, 256, 384)


@dataclass(frozen=True)
class ResNetVersion:
    """One Inception-ResNet: its stem, residual blocks and reductions.

    Attributes:
        stem: units up to the 35x35 grid.
        blocks: the number of A (35x35), B (17x17) and C (8x8) blocks.
        block_a, block_b, block_c: the branches of each residual block (before the linear 1x1
            convolution back to the residual's width).
        reduction_a: Table 1's k, l, m, n.
        reduction_b: the widths of Reduction-B's three convolution branches.
        linear_last_block: the last C block is unscaled and has no ReLU, and a 1x1 convolution
            of ``final_filters`` follows (the released Inception-ResNet-v2).
        final_filters: see ``linear_last_block``.
    """

    stem: tuple
    blocks: tuple[int, int, int]
    block_a: Module
    block_b: Module
    block_c: Module
    reduction_a: tuple[int, int, int, int]
    reduction_b: tuple[int, int, int, int]
    linear_last_block: bool = False
    final_filters: int = 0


RESNET_VERSIONS = {
    # Figures 10-15.
    "v1": ResNetVersion(
        stem=(*STEM_BASE, ("conv_4b", reduce3x3(256))),
        blocks=(5, 10, 5),
        block_a=(
            ("branch0", (Conv(32, 1),)),
            ("branch1", (Conv(32, 1), Conv(32, 3))),
            ("branch2", (Conv(32, 1), Conv(32, 3), Conv(32, 3))),
        ),
        block_b=(
            ("branch0", (Conv(128, 1),)),
            ("branch1", (Conv(128, 1), Conv(128, (1, 7)), Conv(128, (7, 1)))),
        ),
        block_c=(
            ("branch0", (Conv(192, 1),)),
            ("branch1", (Conv(192, 1), Conv(192, (1, 3)), Conv(192, (3, 1)))),
        ),
        reduction_a=(192, 192, 256, 384),
        reduction_b=(384, 256, 256, 256),
    ),
    # keras.applications.InceptionResNetV2 (Figures 16-19 for the blocks).
    "v2": ResNetVersion(
        stem=(
            *V3_STEM,
            (
                "mixed_5b",
                (
                    ("branch0", (Conv(96, 1),)),
                    ("branch1", (Conv(48, 1), Conv(64, 5))),
                    ("branch2", (Conv(64, 1), Conv(96, 3), Conv(96, 3))),
                    ("pool", (AVG, Conv(64, 1))),
                ),
            ),
        ),
        blocks=(10, 20, 10),
        block_a=(
            ("branch0", (Conv(32, 1),)),
            ("branch1", (Conv(32, 1), Conv(32, 3))),
            ("branch2", (Conv(32, 1), Conv(48, 3), Conv(64, 3))),
        ),
        block_b=(
            ("branch0", (Conv(192, 1),)),
            ("branch1", (Conv(128, 1), Conv(160, (1, 7)), Conv(192, (7, 1)))),
        ),
        block_c=(
            ("branch0", (Conv(192, 1),)),
            ("branch1", (Conv(192, 1), Conv(224, (1, 3)), Conv(256, (3, 1)))),
        ),
        reduction_a=(256, 256, 384, 384),
        reduction_b=(384, 288, 288, 320),
        linear_last_block=True,
        final_filters=1536,
    ),
}
# Keras's names for the residual blocks on the 35x35, 17x17 and 8x8 grids.
RESNET_BLOCK_NAMES = ("block35", "block17", "block8")


# --- layers ------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kerascnn")
class ScaledResidual(keras.layers.Layer):
    """``shortcut + scale * residual``: the scaled residual connection of Szegedy et al.
    2016, section 3.3 and Figure 20 ("scaling down the residuals before adding them to the
    previous layer activation"). Called on ``[shortcut, residual]``."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return ops.add(shortcut, ops.multiply(residual, self.scale))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def conv_bn(
    x: keras.KerasTensor,
    conv: Conv,
    *,
    name: str,
    kernel_initializer: str = "he_normal",
    kernel_regularizer: keras.regularizers.Regularizer | None = None,
) -> keras.KerasTensor:
    """Convolution without bias, batch normalisation without a scale, ReLU: layers
    ``{name}_conv``, ``{name}_bn``, ``{name}_relu``.

    keras.applications' and TF-slim's Inception units; ``layers.conv_bn`` always learns a BN
    scale, which a ReLU makes redundant and which these models' weights do not have.
    """
    x = keras.layers.Conv2D(
        conv.filters,
        conv.kernel,
        strides=conv.strides,
        padding=conv.padding,
        use_bias=False,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=kernel_regularizer,
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, scale=False, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def pool(x: keras.KerasTensor, kind: Pool, *, name: str) -> keras.KerasTensor:
    if kind.kind == "avg":
        return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)
    return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)


ConvFn = Callable[..., keras.KerasTensor]


def inception_module(
    x: keras.KerasTensor,
    branches: Module,
    *,
    name: str,
    conv: ConvFn,
    concat_name: str | None = None,
) -> keras.KerasTensor:
    """Parallel branches concatenated on the channel axis (layer ``concat_name or name``).

    A branch's units are named ``{name}_{branch}`` (one convolution) or
    ``{name}_{branch}_{j}`` (j = 1, 2, ...); a split unit's two convolutions are
    ``{name}_{branch}_{j}a`` and ``_{j}b`` and their concatenation ``{name}_{branch}_{j}``.
    A branch's pooling layer is ``{name}_{branch}``.
    """
    outputs = []
    for branch, units in branches:
        prefix = f"{name}_{branch}"
        convolutions = sum(not isinstance(unit, Pool) for unit in units)
        y, index = x, 0
        for unit in units:
            if isinstance(unit, Pool):
                y = pool(y, unit, name=prefix)
                continue
            index += 1
            unit_name = prefix if convolutions == 1 else f"{prefix}_{index}"
            if isinstance(unit, Split):
                first = conv(y, unit.first, name=f"{unit_name}a")
                second = conv(y, unit.second, name=f"{unit_name}b")
                y = keras.layers.Concatenate(name=unit_name)([first, second])
            else:
                y = conv(y, unit, name=unit_name)
        outputs.append(y)
    if len(outputs) == 1:
        return outputs[0]
    return keras.layers.Concatenate(name=concat_name or name)(outputs)


def sequence(x: keras.KerasTensor, table: Sequence, *, conv: ConvFn) -> keras.KerasTensor:
    """Build ``(name, Conv | Pool | Module)`` entries one after the other."""
    for name, entry in table:
        if isinstance(entry, Conv):
            x = conv(x, entry, name=name)
        elif isinstance(entry, Pool):
            x = pool(x, entry, name=name)
        else:
            x = inception_module(x, entry, name=name, conv=conv)
    return x


def residual_block(
    x: keras.KerasTensor,
    branches: Module,
    *,
    name: str,
    scale: float,
    activation: bool,
    conv: ConvFn,
    conv_kwargs: dict,
) -> keras.KerasTensor:
    """Inception-ResNet block (Figures 10-13, 16-19): the branches, concatenated
    (``{name}_mixed``), a linear 1x1 convolution with bias back to the input's width
    (``{name}_conv``, no batch normalisation), scaled and added to the input (``{name}``),
    then ReLU (``{name}_ac``), as keras.applications names them."""
    mixed = inception_module(x, branches, name=name, conv=conv, concat_name=f"{name}_mixed")
    up = keras.layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_conv", **conv_kwargs)(
        mixed
    )
    x = ScaledResidual(scale, name=name)([x, up])
    if activation:
        x = keras.layers.Activation("relu", name=f"{name}_ac")(x)
    return x


def tfslim_names(grid: int, first: str, count: int) -> list[str]:
    """TF-slim's module names on a grid: ``mixed_5b``, ``mixed_5c`` ... from ``first``."""
    start = string.ascii_lowercase.index(first)
    return [f"mixed_{grid}{string.ascii_lowercase[start + i]}" for i in range(count)]


# --- builders ----------------------------------------------------------------------------------


def _check_rates(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(f"dropout must be in [0, 1); received {dropout}")


def _conv_options(weight_decay: float | None) -> tuple[ConvFn, dict]:
    regularizer = layers.l2_decay(weight_decay)
    conv_kwargs = dict(kernel_initializer="he_normal", kernel_regularizer=regularizer)
    return functools.partial(conv_bn, **conv_kwargs), conv_kwargs


def _top(
    x: keras.KerasTensor,
    *,
    include_top: bool,
    pooling: str | None,
    num_classes: int,
    classifier_activation: str | None,
    dropout: float,
    regularizer: keras.regularizers.Regularizer | None,
) -> keras.KerasTensor:
    """Global average pooling, dropout and the classifier, or the feature extractor's
    pooling."""
    if not include_top:
        return layers.global_pool(x, pooling)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return layers.classifier(x, num_classes, classifier_activation, kernel_regularizer=regularizer)


def InceptionV3(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    aux_logits: bool = False,
    dropout: float = DROPOUT,
    weight_decay: float = WEIGHT_DECAY,
    name: str | None = None,
) -> keras.Model:
    """Build Inception v3 (Szegedy et al. 2015, Table 1), laid out as keras.applications'
    ``InceptionV3``.

    Args:
        input_shape: (height, width, channels); 299x299x3 in the paper, at least 75x75.
        num_classes: classifier units.
        include_top: add global average pooling, dropout and the classifier; otherwise
            return the 8x8x2048 feature map (``mixed10``), pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer (Keras's "tf" mode: 127.5).
        aux_logits: with ``include_top``, add the auxiliary classifier on the last 17x17 grid
            (``mixed7``) as a second output (Figure 8): 5x5/3 average pooling, a 1x1
            convolution (128), a 5x5 valid convolution (768: the "fully connected" layer,
            batch-normalised as in "BN-auxiliary") and the classifier. On inputs smaller than
            299x299 the pooling and the 5x5 convolution shrink to the grid, as in TF-slim.
        dropout: dropout rate before the classifier (TF-slim: keep probability 0.8).
        weight_decay: L2 weight decay on convolution and classifier kernels (TF-slim's 4e-5).
        name: the model's name, ``inception_v3`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels; with ``aux_logits`` and ``include_top``
        its outputs are ``[main, aux]``.

    Raises:
        InvalidArgumentError: for a dropout rate outside [0, 1).
    """
    _check_rates(dropout)
    conv, conv_kwargs = _conv_options(weight_decay)
    inputs, x = layers.image_input(input_shape, mean, std)
    aux_input = None
    for entry in V3_LAYOUT:
        x = sequence(x, (entry,), conv=conv)
        if entry[0] == V3_AUX_INPUT:
            aux_input = x
    head = dict(
        num_classes=num_classes,
        classifier_activation=classifier_activation,
        regularizer=conv_kwargs["kernel_regularizer"],
    )
    outputs = _top(x, include_top=include_top, pooling=pooling, dropout=dropout, **head)
    if aux_logits and include_top:
        aux = auxiliary_head(aux_input, conv=conv, **head)
        outputs = [outputs, aux]
    return keras.Model(inputs, outputs, name=name or "inception_v3")


def auxiliary_head(
    x: keras.KerasTensor,
    *,
    conv: ConvFn,
    num_classes: int,
    classifier_activation: str | None,
    regularizer: keras.regularizers.Regularizer | None,
) -> keras.KerasTensor:
    """Figure 8's auxiliary classifier, every layer named ``aux1_*``."""
    size = min(5, x.shape[1]), min(5, x.shape[2])
    x = keras.layers.AveragePooling2D(size, strides=3, name="aux1_avg_pool")(x)
    x = conv(x, Conv(128, 1), name="aux1_reduce")
    kernel = min(5, x.shape[1]), min(5, x.shape[2])
    x = conv(x, Conv(768, kernel, 1, VALID), name="aux1_fc")
    # 1x1 at 299x299; averages what remains on larger inputs.
    x = keras.layers.GlobalAveragePooling2D(name="aux1_global_pool")(x)
    return layers.classifier(
        x,
        num_classes,
        classifier_activation,
        name="aux1_predictions",
        kernel_regularizer=regularizer,
    )


def InceptionV4(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    dropout: float = DROPOUT,
    weight_decay: float = WEIGHT_DECAY,
    name: str | None = None,
) -> keras.Model:
    """Build Inception-v4 (Szegedy et al. 2016, Figure 9).

    Args:
        input_shape: (height, width, channels); 299x299x3 in the paper, at least 75x75.
        num_classes: classifier units (the paper: 1001, with a background class).
        include_top: add global average pooling, dropout and the classifier; otherwise
            return the 8x8x1536 feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        dropout: dropout rate before the classifier (Figure 9: keep 0.8).
        weight_decay: L2 weight decay on convolution and classifier kernels (TF-slim's 4e-5).
        name: the model's name, ``inception_v4`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for a dropout rate outside [0, 1).
    """
    _check_rates(dropout)
    conv, conv_kwargs = _conv_options(weight_decay)
    a, b, c = V4_BLOCKS
    layout = (
        *V4_STEM,
        *((block, V4_BLOCK_A) for block in tfslim_names(5, "b", a)),
        ("mixed_6a", reduction_a(*V4_REDUCTION_A)),
        *((block, V4_BLOCK_B) for block in tfslim_names(6, "b", b)),
        ("mixed_7a", V4_REDUCTION_B),
        *((block, V4_BLOCK_C) for block in tfslim_names(7, "b", c)),
    )
    inputs, x = layers.image_input(input_shape, mean, std)
    x = sequence(x, layout, conv=conv)
    x = _top(
        x,
        include_top=include_top,
        pooling=pooling,
        num_classes=num_classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
        regularizer=conv_kwargs["kernel_regularizer"],
    )
    return keras.Model(inputs, x, name=name or "inception_v4")


def InceptionResNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    version: str = "v2",
    residual_scale: float | Sequence[float] = RESIDUAL_SCALES,
    dropout: float = DROPOUT,
    weight_decay: float = WEIGHT_DECAY,
    name: str | None = None,
) -> keras.Model:
    """Build Inception-ResNet-v1 or -v2 (Szegedy et al. 2016, Figure 15).

    Args:
        input_shape: (height, width, channels); 299x299x3 in the paper, at least 75x75.
        num_classes: classifier units (the paper: 1001, with a background class).
        include_top: add global average pooling, dropout and the classifier; otherwise
            return the last 8x8 feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        version: "v1" (the paper's Figures 10-15) or "v2" (keras.applications'
            ``InceptionResNetV2``, whose ImageNet weights load).
        residual_scale: the factor each residual is multiplied by before the addition, for
            the A, B and C blocks (section 3.3: between 0.1 and 0.3); one number for all.
        dropout: dropout rate before the classifier (Figure 15: keep 0.8).
        weight_decay: L2 weight decay on convolution and classifier kernels (TF-slim's 4e-5).
        name: the model's name, ``inception_resnet_{version}`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an unknown version, scales that are not one or three
            positive numbers, or a dropout rate outside [0, 1).
    """
    if version not in RESNET_VERSIONS:
        raise InvalidArgumentError(
            f"version must be one of {', '.join(map(repr, RESNET_VERSIONS))}; received {version!r}"
        )
    scales = _residual_scales(residual_scale)
    _check_rates(dropout)
    spec = RESNET_VERSIONS[version]
    conv, conv_kwargs = _conv_options(weight_decay)

    inputs, x = layers.image_input(input_shape, mean, std)
    x = sequence(x, spec.stem, conv=conv)
    x = residual_stages(x, spec, scales, conv=conv, conv_kwargs=conv_kwargs)
    if spec.final_filters:
        x = conv(x, Conv(spec.final_filters, 1), name="conv_7b")
    x = _top(
        x,
        include_top=include_top,
        pooling=pooling,
        num_classes=num_classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
        regularizer=conv_kwargs["kernel_regularizer"],
    )
    return keras.Model(inputs, x, name=name or f"inception_resnet_{version}")


def residual_stages(
    x: keras.KerasTensor,
    spec: ResNetVersion,
    scales: Sequence[float],
    *,
    conv: ConvFn,
    conv_kwargs: dict,
) -> keras.KerasTensor:
    """Figure 15 from the stem on: the A blocks (``block35_1`` ...), Reduction-A
    (``mixed_6a``), the B blocks (``block17_*``), Reduction-B (``mixed_7a``) and the C blocks
    (``block8_*``), each residual scaled by its stage's entry of ``scales`` (the last C block
    linear and unscaled with ``spec.linear_last_block``)."""
    stages = zip(
        RESNET_BLOCK_NAMES,
        spec.blocks,
        (spec.block_a, spec.block_b, spec.block_c),
        scales,
        strict=True,
    )
    reductions = (
        ("mixed_6a", reduction_a(*spec.reduction_a)),
        ("mixed_7a", resnet_reduction_b(spec.reduction_b)),
    )
    for stage, (block_name, count, branches, scale) in enumerate(stages):
        for index in range(1, count + 1):
            last = spec.linear_last_block and stage == 2 and index == count
            x = residual_block(
                x,
                branches,
                name=f"{block_name}_{index}",
                scale=1.0 if last else scale,
                activation=not last,
                conv=conv,
                conv_kwargs=conv_kwargs,
            )
        if stage < len(reductions):
            x = sequence(x, reductions[stage : stage + 1], conv=conv)
    return x


def _residual_scales(residual_scale: float | Sequence[float]) -> tuple[float, float, float]:
    try:
        scales = (
            (float(residual_scale),) * 3
            if isinstance(residual_scale, int | float)
            else tuple(float(s) for s in residual_scale)
        )
    except (TypeError, ValueError):
        scales = ()
    if len(scales) != 3 or min(scales) <= 0:
        raise InvalidArgumentError(
            f"residual_scale must be one positive number or three (A, B, C blocks); "
            f"received {residual_scale!r}"
        )
    return scales


# --- registry ------------------------------------------------------------------------------
# Every network reaches its last grid through five valid 3x3 convolutions or poolings of stride
# 2 and two of stride 1 (Table 1; Figures 3 and 14; Keras's stem): 75x75 leaves 37, 35, 17
# (stem), 15, 7 (35x35 grid), 3 (17x17) and 1 (8x8); 74x74 leaves 0 after the last reduction.
# Keras's InceptionV3 and InceptionResNetV2 accept the same minimum.
MIN_SIZE = (75, 75)

register_model(
    "inception_v3",
    InceptionV3,
    title="Inception v3",
    paper=PAPER_V3,
    input_shape=(299, 299, 3),
    min_size=MIN_SIZE,
    num_classes=1000,
    mean=KERAS_TF_MEAN,
    std=KERAS_TF_STD,
    auxiliary_loss_weights=(0.4,),
    keras_application=KerasApplication("InceptionV3"),
    imagenet_accuracy=PublishedAccuracy(77.9, 93.7, KERAS_APPLICATIONS_TABLE),
    description="Factorised Inception modules on 35, 17 and 8 grids, BN auxiliary head (23.9M)",
)
register_model(
    "inception_v4",
    InceptionV4,
    title="Inception-v4",
    paper=PAPER_V4,
    input_shape=(299, 299, 3),
    min_size=MIN_SIZE,
    num_classes=1000,
    mean=KERAS_TF_MEAN,
    std=KERAS_TF_STD,
    description="Inception-A/B/C x 4/7/3 with Reductions A/B; 1000 classes (paper: 1001)",
)
register_model(
    "inception_resnet_v1",
    InceptionResNet,
    title="Inception-ResNet-v1",
    paper=PAPER_V4,
    input_shape=(299, 299, 3),
    min_size=MIN_SIZE,
    num_classes=1000,
    mean=KERAS_TF_MEAN,
    std=KERAS_TF_STD,
    version="v1",
    description="Scaled residual Inception blocks, 5/10/5, Inception-v3 cost; 1000 classes",
)
register_model(
    "inception_resnet_v2",
    InceptionResNet,
    title="Inception-ResNet-v2",
    paper=PAPER_V4,
    input_shape=(299, 299, 3),
    min_size=MIN_SIZE,
    num_classes=1000,
    mean=KERAS_TF_MEAN,
    std=KERAS_TF_STD,
    version="v2",
    keras_application=KerasApplication("InceptionResNetV2"),
    description="Keras's Inception-ResNet-v2: scaled residual blocks 10/20/10 (55.9M)",
)
