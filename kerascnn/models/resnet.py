"""Residual networks for ImageNet, and the residual blocks every ResNet family shares.

References:
    K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
    (arXiv:1512.03385): ResNet v1, Table 1 (18, 34, 50, 101, 152 layers).
    K. He, X. Zhang, S. Ren, J. Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016
    (arXiv:1603.05027): ResNet v2, pre-activation units (BN-ReLU-conv).
    S. Xie, R. Girshick, P. Dollar, Z. Tu, K. He, "Aggregated Residual Transformations for Deep
    Neural Networks", CVPR 2017 (arXiv:1611.05431): ResNeXt, grouped 3x3 convolutions.
    S. Zagoruyko, N. Komodakis, "Wide Residual Networks", BMVC 2016 (arXiv:1605.07146).
    G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Weinberger, "Deep Networks with Stochastic Depth",
    ECCV 2016 (arXiv:1603.09382): residual branches dropped at random in training.

An ImageNet ResNet is a 7x7/2 convolution and a 3x3/2 max pool, four stages (conv2..conv5)
of basic blocks (two 3x3 convolutions) or bottleneck blocks (1x1 reduce, 3x3, 1x1 expand to 4x)
on 56, 28, 14 and 7-pixel maps (at 224x224), global average pooling and the classifier.
Layers carry keras.applications' names (``conv1_pad``, ``conv2_block1_1_conv``, ``post_bn``)
and come in keras.applications' order, so ResNet50/101/152 and ResNet50V2/101V2/152V2 weights
load into ``resnet50`` ... ``resnet152_v2``. Keras's conventions, kept for those weights:

- v1 (``resnet50/101/152``): every convolution has a bias (redundant before BN), and the
  stride of a bottleneck is on its first 1x1 convolution (the original Caffe models).
- v2 (``*_v2``): the stem has no BN; each block starts with BN-ReLU ("preact"), whose output
  feeds the projection shortcut and the residual branch; the network ends with ``post_bn``,
  ``post_relu``. As in TF-slim, stages conv2..conv4 subsample in their *last* block, by the
  3x3 convolution, with a 1x1 max pool (a subsampled identity) as its shortcut; only the
  convolutions not followed by BN have biases.
- Batch normalisation epsilon 1.001e-5.

``resnet18``/``resnet34``, ``resnet50_v1_5`` ... ``resnet152_v1_5``, ``resnext*`` and
``wide_resnet50_2`` follow torchvision instead
(with the same names, and Keras's BN epsilon): no convolution biases, so their trainable
parameters equal torchvision's, and the v1.5 networks, ResNeXt and the wide ResNet subsample
by the 3x3 convolution (ResNet v1.5), as the ResNeXt paper's code does; torchvision's ImageNet
weights load into all of them (``weights="torchvision"``).

Stochastic depth (``stochastic_depth=p_L``, off by default) puts every residual branch in a
``StochasticDepth`` layer (``{block}_stochastic_depth``, holding the branch's layers as the
nested model ``{block}_branch``), which in training skips the whole branch with one draw per
mini-batch, the survival probability decaying linearly to ``p_L`` at the last block (Huang et
al. 2016, equation 4). The CIFAR networks of the same
papers are in ``resnet_cifar.py``, built from the blocks below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import (
    KERAS_APPLICATIONS_TABLE,
    KERAS_TF_MEAN,
    KERAS_TF_STD,
    TORCHVISION_IMAGENET_MEAN,
    TORCHVISION_IMAGENET_STD,
    TORCHVISION_TABLE,
    UNIT_STD,
    VGG_IMAGENET_MEAN,
    KerasApplication,
    PublishedAccuracy,
    register_model,
)

BLOCKS = ("basic", "bottleneck")
SHORTCUTS = ("A", "B", None)
# Table 1 of He et al. 2015: output channels of the 3x3 layers of conv2..conv5; a bottleneck
# block expands them 4x.
IMAGENET_PLANES = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}
KERAS_EPSILON = 1.001e-5


@dataclass(frozen=True)
class BlockStyle:
    """How one network builds its residual blocks; the same for all of its blocks.

    Attributes:
        block: "basic" (two 3x3 convolutions) or "bottleneck" (1x1, 3x3, 1x1).
        preact: pre-activation (v2) units, BN-ReLU before each convolution and nothing after
            the addition; otherwise v1, BN after each convolution and ReLU after the addition.
        shortcut: where channels change, "A" (subsampled identity, zero-padded channels),
            "B" (1x1 projection); None builds a plain network without shortcuts.
        groups: groups of the 3x3 convolution of a bottleneck (ResNeXt's cardinality).
        conv_bias: Keras's convolution biases (v1: all; v2: those not followed by BN).
        stride_in_1x1: a bottleneck subsamples by its first 1x1 convolution, not its 3x3.
        pad_explicitly: strided 3x3 convolutions pad one pixel on every side (Caffe, Torch,
            keras.applications); otherwise TensorFlow's "same" (bottom/right at even sizes).
        dropout: dropout rate before the last convolution of a branch (Wide ResNets).
        epsilon: batch normalisation epsilon.
        regularizer: on every convolution kernel.
    """

    block: str
    preact: bool = False
    shortcut: str | None = "B"
    groups: int = 1
    conv_bias: bool = False
    stride_in_1x1: bool = True
    pad_explicitly: bool = True
    dropout: float = 0.0
    epsilon: float = 1e-3
    regularizer: keras.regularizers.Regularizer | None = None


@dataclass(frozen=True)
class BlockPlan:
    """One residual block: its name, bottleneck width, output channels and stride."""

    name: str
    width: int
    filters: int
    strides: int


def check_style(style: BlockStyle, stochastic_depth: float | None) -> None:
    """Reject option values the blocks cannot build, with the value echoed."""
    if style.block not in BLOCKS:
        raise InvalidArgumentError(
            f"block must be 'basic' or 'bottleneck'; received {style.block!r}"
        )
    if style.shortcut not in SHORTCUTS:
        raise InvalidArgumentError(
            f"shortcut must be 'A', 'B' or None; received {style.shortcut!r}"
        )
    if style.block == "basic" and style.groups != 1:
        raise InvalidArgumentError(
            f"grouped convolutions need bottleneck blocks; received groups={style.groups}"
        )
    if not 0.0 <= style.dropout < 1.0:
        raise InvalidArgumentError(f"dropout must be in [0, 1); received {style.dropout}")
    if stochastic_depth is not None:
        if not 0.0 < stochastic_depth <= 1.0:
            raise InvalidArgumentError(
                f"stochastic_depth (the last block's survival probability) must be in (0, 1]; "
                f"received {stochastic_depth}"
            )
        if style.shortcut is None:
            raise InvalidArgumentError(
                "stochastic_depth drops residual branches and needs shortcuts; received "
                "shortcut=None"
            )


def stage_plan(
    stages: Sequence[int],
    widths: Sequence[int],
    filters: Sequence[int],
    strides: Sequence[int],
    *,
    subsample_last: bool = False,
) -> list[BlockPlan]:
    """Blocks of stages conv2, conv3, ...: ``stages[s]`` blocks of bottleneck width
    ``widths[s]`` and ``filters[s]`` output channels; the stage subsamples by ``strides[s]``
    in its first block, or in its last with ``subsample_last`` (keras.applications' v2)."""
    plan = []
    for stage, (count, width, out, stride) in enumerate(
        zip(stages, widths, filters, strides, strict=True)
    ):
        where = count - 1 if subsample_last else 0
        for block in range(count):
            name = f"conv{stage + 2}_block{block + 1}"
            plan.append(BlockPlan(name, width, out, stride if block == where else 1))
    return plan


def residual_stages(
    x: keras.KerasTensor,
    style: BlockStyle,
    plan: Sequence[BlockPlan],
    stochastic_depth: float | None = None,
) -> keras.KerasTensor:
    """The blocks of ``plan`` in order; with ``stochastic_depth``, block ``l`` of ``L``
    survives with probability ``1 - l / L * (1 - stochastic_depth)`` (Huang et al. eq. 4)."""
    for index, block in enumerate(plan):
        survival = None
        if stochastic_depth is not None and stochastic_depth < 1.0:
            survival = layers.linear_survival(index, len(plan), stochastic_depth)
        x = residual_block(x, style, block, survival)
    return x


def residual_block(
    x: keras.KerasTensor, style: BlockStyle, block: BlockPlan, survival: float | None = None
) -> keras.KerasTensor:
    """One residual unit: v1 ``relu(shortcut + BN(conv(...)))`` or v2
    ``shortcut + conv(relu(BN(...)))``; layers ``{name}_0_conv`` (projection shortcut),
    ``{name}_1_conv`` ... in keras.applications' naming and order."""
    name = block.name
    source = x
    if style.preact:
        source = batch_norm(x, style, f"{name}_preact_bn")
        source = relu(source, f"{name}_preact_relu")
    shortcut = _shortcut(x, source, style, block)
    if survival is None:
        y = _branch(source, style, block)
    else:
        y = _droppable_branch(source, style, block, survival)
    if shortcut is None:  # a plain network
        return y if style.preact else relu(y, f"{name}_out")
    if style.preact:
        return keras.layers.Add(name=f"{name}_out")([shortcut, y])
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return relu(y, f"{name}_out")


def _droppable_branch(source, style: BlockStyle, block: BlockPlan, survival: float):
    """The branch as a nested model ``{name}_branch`` (its layers named as in the plain
    block) run by ``{name}_stochastic_depth``, so that a dropped branch is not computed."""
    inputs = keras.Input(
        shape=source.shape[1:], dtype=source.dtype, name=f"{block.name}_branch_input"
    )
    branch = keras.Model(inputs, _branch(inputs, style, block), name=f"{block.name}_branch")
    return layers.StochasticDepth(branch, survival, name=f"{block.name}_stochastic_depth")(source)


def _shortcut(x, source, style: BlockStyle, block: BlockPlan):
    """Identity where shapes agree; a subsampled identity where only the size changes;
    option A or B where the channels change (a v2 projection reads the pre-activation)."""
    if style.shortcut is None:
        return None
    if x.shape[-1] == block.filters:
        if block.strides == 1:
            return x
        return keras.layers.MaxPooling2D(1, block.strides, name=f"{block.name}_0_pool")(x)
    if style.shortcut == "A":
        return layers.ZeroPadShortcut(block.filters, block.strides, name=f"{block.name}_0_pad")(x)
    y = conv(source, style, block.filters, 1, f"{block.name}_0", block.strides, style.conv_bias)
    return y if style.preact else batch_norm(y, style, f"{block.name}_0_bn")


def _branch(x, style: BlockStyle, block: BlockPlan):
    if style.block == "bottleneck":
        first, middle = (block.strides, 1) if style.stride_in_1x1 else (1, block.strides)
        convs = [
            (block.width, 1, first, 1),
            (block.width, 3, middle, style.groups),
            (block.filters, 1, 1, 1),
        ]
    else:
        convs = [(block.filters, 3, block.strides, 1), (block.filters, 3, 1, 1)]
    last = len(convs)
    for number, (filters, kernel, strides, groups) in enumerate(convs, start=1):
        prefix = f"{block.name}_{number}"
        if style.preact and number > 1:
            previous = f"{block.name}_{number - 1}"
            x = relu(batch_norm(x, style, f"{previous}_bn"), f"{previous}_relu")
        if style.dropout and number == last:
            x = keras.layers.Dropout(style.dropout, name=f"{block.name}_dropout")(x)
        # Keras's v2 has biases only where no BN follows: the last convolution.
        bias = style.conv_bias and (not style.preact or number == last)
        x = conv(x, style, filters, kernel, prefix, strides, bias, groups)
        if not style.preact:
            x = batch_norm(x, style, f"{prefix}_bn")
            if number < last:
                x = relu(x, f"{prefix}_relu")
    return x


def conv(
    x: keras.KerasTensor,
    style: BlockStyle,
    filters: int,
    kernel: int,
    prefix: str,
    strides: int = 1,
    use_bias: bool = False,
    groups: int = 1,
) -> keras.KerasTensor:
    """Convolution ``{prefix}_conv``; a strided one with ``pad_explicitly`` is preceded by
    ``{prefix}_pad`` (``kernel // 2`` pixels on every side) and pads no further."""
    padding = "same"
    if strides > 1 and kernel > 1 and style.pad_explicitly:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{prefix}_pad")(x)
        padding = "valid"
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        groups=groups,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        kernel_regularizer=style.regularizer,
        name=f"{prefix}_conv",
    )(x)


def batch_norm(x: keras.KerasTensor, style: BlockStyle, name: str) -> keras.KerasTensor:
    return keras.layers.BatchNormalization(epsilon=style.epsilon, name=name)(x)


def relu(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return keras.layers.Activation("relu", name=name)(x)


def head(
    x: keras.KerasTensor,
    style: BlockStyle,
    *,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
) -> keras.KerasTensor:
    """v2's final ``post_bn``/``post_relu``, then global average pooling and the classifier,
    or the feature map pooled by ``pooling``."""
    if style.preact:
        x = relu(batch_norm(x, style, "post_bn"), "post_relu")
    if not include_top:
        return layers.global_pool(x, pooling)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.classifier(
        x,
        num_classes,
        classifier_activation,
        kernel_initializer="he_normal",
        kernel_regularizer=style.regularizer,
    )


def ResNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    block: str = "bottleneck",
    stages: Sequence[int] = (3, 4, 6, 3),
    preact: bool = False,
    groups: int = 1,
    width_per_group: int = 64,
    conv_bias: bool = False,
    stride_in_1x1: bool = True,
    stochastic_depth: float | None = None,
    weight_decay: float = 1e-4,
    name: str | None = None,
) -> keras.Model:
    """Build an ImageNet ResNet (v1 or v2), ResNeXt or wide ResNet.

    Args:
        input_shape: (height, width, channels); 224x224x3 in the papers, at least 32x32.
        num_classes: classifier units (1000 for ImageNet).
        include_top: add global average pooling and the classifier; otherwise return the
            last stage's feature map (after ``post_relu`` in v2), pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        block: "basic" (ResNet-18/34) or "bottleneck" (50 and deeper).
        stages: blocks in conv2..conv5 ((3, 4, 6, 3) for ResNet-50).
        preact: ResNet v2 (pre-activation units) in keras.applications' layout.
        groups: cardinality of the grouped 3x3 convolutions (ResNeXt: 32).
        width_per_group: channels per group of a conv2 bottleneck, doubled at each stage:
            a bottleneck is ``planes * width_per_group / 64 * groups`` wide for ``planes`` =
            64, 128, 256, 512 (64 for ResNet, 4 for ResNeXt-50 32x4d, 128 for WRN-50-2).
        conv_bias: keras.applications' convolution biases (see the module docstring).
        stride_in_1x1: subsample a v1 bottleneck by its first 1x1 convolution (Caffe, Keras)
            rather than by its 3x3 (torchvision's v1.5, ResNeXt).
        stochastic_depth: survival probability of the last block, decaying linearly from 1
            (Huang et al. 2016); None or 1.0 for none.
        weight_decay: L2 weight decay on convolution and classifier kernels (1e-4 in He et al.).
        name: the model's name.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an unknown block, a stage count other than four,
            non-positive ``groups``/``width_per_group`` or either with basic blocks, or a
            survival probability outside (0, 1].
    """
    style = BlockStyle(
        block=block,
        preact=preact,
        groups=groups,
        conv_bias=conv_bias,
        stride_in_1x1=stride_in_1x1,
        epsilon=KERAS_EPSILON,
        regularizer=layers.l2_decay(weight_decay),
    )
    check_style(style, stochastic_depth)
    _check_stages(block, stages, groups, width_per_group)
    plan = imagenet_plan(block, stages, preact, groups, width_per_group)
    inputs, x = layers.image_input(input_shape, mean, std)
    x = imagenet_stem(x, style)
    x = residual_stages(x, style, plan, stochastic_depth)
    x = head(
        x,
        style,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )
    return keras.Model(inputs, x, name=name or "resnet")


def _check_stages(block: str, stages: Sequence[int], groups: int, width_per_group: int) -> None:
    """Reject a stage table or bottleneck width the ImageNet layout cannot build."""
    if len(stages) != len(IMAGENET_PLANES) or min(stages) < 1:
        raise InvalidArgumentError(
            f"stages must give the blocks of the four stages conv2..conv5; received {stages!r}"
        )
    if groups < 1 or width_per_group < 1:
        raise InvalidArgumentError(
            f"groups and width_per_group must be positive; received groups={groups}, "
            f"width_per_group={width_per_group}"
        )
    if block == "basic" and width_per_group != 64:
        raise InvalidArgumentError(
            f"width_per_group needs bottleneck blocks; received width_per_group={width_per_group}"
        )


def imagenet_plan(
    block: str, stages: Sequence[int], preact: bool, groups: int, width_per_group: int
) -> list[BlockPlan]:
    """The blocks of conv2..conv5 (Table 1), ``planes * width_per_group / 64 * groups`` wide."""
    widths = [planes * width_per_group // 64 * groups for planes in IMAGENET_PLANES]
    filters = [planes * EXPANSION[block] for planes in IMAGENET_PLANES]
    # v1 subsamples at the start of conv3..conv5; keras's v2 at the end of conv2..conv4.
    strides = (2, 2, 2, 1) if preact else (1, 2, 2, 2)
    return stage_plan(stages, widths, filters, strides, subsample_last=preact)


def imagenet_stem(x: keras.KerasTensor, style: BlockStyle) -> keras.KerasTensor:
    """conv1, a 7x7/2 convolution of 64 filters (with BN-ReLU in v1; v2 blocks normalise their
    own input), and pool1, a 3x3/2 max pooling."""
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(
        64,
        7,
        strides=2,
        use_bias=style.conv_bias,
        kernel_initializer="he_normal",
        kernel_regularizer=style.regularizer,
        name="conv1_conv",
    )(x)
    if not style.preact:
        x = relu(batch_norm(x, style, "conv1_bn"), "conv1_relu")
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


HE_2015 = "He, Zhang, Ren, Sun 2015, Deep Residual Learning for Image Recognition"
HE_2016 = "He, Zhang, Ren, Sun 2016, Identity Mappings in Deep Residual Networks"
XIE_2017 = (
    "Xie, Girshick, Dollar, Tu, He 2017, Aggregated Residual Transformations for Deep Neural "
    "Networks"
)
ZAGORUYKO_2016 = "Zagoruyko, Komodakis 2016, Wide Residual Networks"
IMAGENET = dict(
    input_shape=(224, 224, 3),
    # Total stride 32 (the 7x7/2 convolution, the 3x3/2 pool and three stride-2 stages):
    # 32x32 leaves a 1x1 map for conv5, the smallest keras.applications accepts too.
    min_size=(32, 32),
    num_classes=1000,
)
# torchvision's statistics, for the networks in torchvision's layout.
TORCHVISION_STATISTICS = dict(mean=TORCHVISION_IMAGENET_MEAN, std=TORCHVISION_IMAGENET_STD)
# Table 1 of He et al. 2015 (and of Xie et al. 2017): blocks in conv2..conv5.
DEPTHS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}

# torchvision's resnet18..152: (top-1, top-5) error. Its ResNet-50/101/152 subsample on the
# 3x3 convolution of a bottleneck, ours (the paper's Caffe models) on the first 1x1.
TORCHVISION_ERRORS = {
    18: (30.242, 10.922),
    34: (26.686, 8.58),
}
# keras.applications' ResNet50/101/152: top-1, top-5 accuracy (the paper's v1, as ours).
KERAS_ACCURACY = {50: (74.9, 92.1), 101: (76.4, 92.8), 152: (76.6, 93.1)}

for _depth in (18, 34):
    register_model(
        f"resnet{_depth}",
        ResNet,
        title=f"ResNet-{_depth}",
        paper=HE_2015,
        **IMAGENET,
        **TORCHVISION_STATISTICS,
        description="ImageNet ResNet v1, basic blocks, torchvision's layout (no conv biases)",
        imagenet_accuracy=PublishedAccuracy.from_errors(
            *TORCHVISION_ERRORS[_depth], TORCHVISION_TABLE
        ),
        block="basic",
        stages=DEPTHS[_depth],
        name=f"resnet{_depth}",
    )

for _depth in (50, 101, 152):
    register_model(
        f"resnet{_depth}",
        ResNet,
        title=f"ResNet-{_depth}",
        paper=HE_2015,
        **IMAGENET,
        # keras.applications.resnet.preprocess_input, mode "caffe" (BGR weights: the loader
        # flips the first convolution): the VGG release's mean, no scaling.
        mean=VGG_IMAGENET_MEAN,
        std=UNIT_STD,
        description="ImageNet ResNet v1, bottleneck blocks",
        imagenet_accuracy=PublishedAccuracy(*KERAS_ACCURACY[_depth], KERAS_APPLICATIONS_TABLE),
        stages=DEPTHS[_depth],
        conv_bias=True,
        name=f"resnet{_depth}",
        keras_application=KerasApplication(f"ResNet{_depth}", bgr=True),
    )
    register_model(
        f"resnet{_depth}_v2",
        ResNet,
        title=f"ResNet-{_depth} v2",
        paper=HE_2016,
        **IMAGENET,
        # keras.applications.resnet_v2.preprocess_input, mode "tf".
        mean=KERAS_TF_MEAN,
        std=KERAS_TF_STD,
        description="ImageNet pre-activation ResNet",
        stages=DEPTHS[_depth],
        preact=True,
        conv_bias=True,
        stride_in_1x1=False,
        name=f"resnet{_depth}_v2",
        keras_application=KerasApplication(f"ResNet{_depth}V2"),
    )

# ResNet v1.5: He et al.'s bottleneck networks with the stride on the 3x3 convolution, no
# convolution biases and torchvision's statistics, as Facebook's Torch code (fb.resnet.torch,
# Gross & Wilber 2016) and torchvision build them; the name "v1.5" is NVIDIA's. torchvision's
# ImageNet weights fit these, not the Caffe-layout ``resnet50`` (weights="torchvision").
RESNET_V1_5 = f"{HE_2015}; v1.5 as torchvision's (Gross, Wilber 2016, fb.resnet.torch)"
for _depth in (50, 101, 152):
    register_model(
        f"resnet{_depth}_v1_5",
        ResNet,
        title=f"ResNet-{_depth} v1.5",
        paper=RESNET_V1_5,
        **IMAGENET,
        **TORCHVISION_STATISTICS,
        description="ImageNet ResNet v1.5: stride on the 3x3, torchvision's layout",
        stages=DEPTHS[_depth],
        stride_in_1x1=False,
        name=f"resnet{_depth}_v1_5",
    )

for _name, _title, _paper, _depth, _groups, _width, _description in (
    ("resnext50_32x4d", "ResNeXt-50 (32x4d)", XIE_2017, 50, 32, 4, "32 groups of 4 channels"),
    ("resnext101_32x8d", "ResNeXt-101 (32x8d)", XIE_2017, 101, 32, 8, "32 groups of 8 channels"),
    ("wide_resnet50_2", "Wide ResNet-50-2", ZAGORUYKO_2016, 50, 1, 128, "bottlenecks 2x wider"),
):
    register_model(
        _name,
        ResNet,
        title=_title,
        paper=_paper,
        **IMAGENET,
        **TORCHVISION_STATISTICS,
        description=f"ImageNet ResNet-{_depth}, {_description} in conv2, torchvision's layout",
        stages=DEPTHS[_depth],
        groups=_groups,
        width_per_group=_width,
        stride_in_1x1=False,
        name=_name,
    )
