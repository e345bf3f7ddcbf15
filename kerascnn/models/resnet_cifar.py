"""Residual networks for CIFAR (32x32 inputs), built from the blocks of ``resnet.py``.

References:
    K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
    (arXiv:1512.03385), section 4.2: ResNet-20 ... 1202 and their plain counterparts.
    K. He, X. Zhang, S. Ren, J. Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016
    (arXiv:1603.05027), Table 3: pre-activation ResNet-110, -164 and -1001.
    G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Weinberger, "Deep Networks with Stochastic Depth",
    ECCV 2016 (arXiv:1603.09382): ResNet-110 with linear decay to p_L = 0.5.
    S. Zagoruyko, N. Komodakis, "Wide Residual Networks", BMVC 2016 (arXiv:1605.07146).
    S. Xie, R. Girshick, P. Dollar, Z. Tu, K. He, "Aggregated Residual Transformations for Deep
    Neural Networks", CVPR 2017 (arXiv:1611.05431), section 5.3: ResNeXt-29.

All are a 3x3 convolution, three stages on 32x32, 16x16 and 8x8 maps (the second and third
subsampling with stride 2 in their first block), global average pooling and the classifier;
layers are named in keras.applications' convention (stem ``conv1``, stages conv2..conv4).

- ``CifarResNet``: He et al. 2015's network of depth 6n + 2 (16, 32, 64 filters, basic
  blocks, option A shortcuts; ``shortcut=None`` gives the plain network of the same layers,
  whose 110-layer version the paper reports as failing to train, Figure 6), and He et al.
  2016's pre-activation networks (``preact=True``; bottleneck blocks of depth 9n + 2 with 64,
  128, 256 output channels). As in the authors' resnet-1k-layers code, every unit starts with
  BN-ReLU (the first one too), which also feeds the 1x1 projection where the channels change,
  the bottleneck's stride is on its first 1x1, and BN-ReLU follows the last unit. Table 3's
  10.2M for ResNet-1001 counts convolution and classifier weights only (10,178,490); with
  its BN parameters the network has 10,327,706.
- ``WideResNet``: WRN-d-k, depth 6n + 4 (counting the three projections), pre-activation
  basic blocks of 16k, 32k, 64k filters laid out as above (the authors' code), optional
  dropout between the two convolutions.
- ``CifarResNeXt``: ResNeXt-29, v1 bottlenecks whose 3x3 convolution has ``cardinality``
  groups of ``bottleneck_width`` channels (doubling each stage), 256, 512, 1024 outputs,
  1x1 projection shortcuts with BN, the stride on the 3x3 (the authors' code).

Departure: strided 3x3 convolutions use TensorFlow's "same" padding (Torch pads one pixel on
every side; at even sizes "same" pads only bottom and right), as ``resnet20`` always has. It
shifts the sampling grid by one pixel and changes no parameter count or output size.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.resnet import (
    EXPANSION,
    HE_2015,
    HE_2016,
    XIE_2017,
    ZAGORUYKO_2016,
    BlockPlan,
    BlockStyle,
    batch_norm,
    check_style,
    head,
    relu,
    residual_stages,
    stage_plan,
)
from kerascnn.models.spec import FB_RESNET_CIFAR10_MEAN, FB_RESNET_CIFAR10_STD, register_model

# He et al. 2015, section 4.2: "The numbers of filters are {16, 32, 64} respectively".
CIFAR_PLANES = (16, 32, 64)
# Xie et al. 2017, section 5.3: ResNeXt-29 stages output 256, 512, 1024 channels.
RESNEXT_PLANES = (64, 128, 256)
STRIDES = (1, 2, 2)
# Blocks per stage from the depth: layers per block on the main path, plus the stem and
# the classifier (He et al.), or plus the stem and three projections (Zagoruyko et al.).
LAYERS_PER_BLOCK = {"basic": 2, "bottleneck": 3}


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
    block: str = "basic",
    preact: bool = False,
    shortcut: str | None = "A",
    stochastic_depth: float | None = None,
    weight_decay: float = 1e-4,
    name: str | None = None,
) -> keras.Model:
    """Build a CIFAR ResNet (He et al. 2015 section 4.2; He et al. 2016 pre-activation).

    Args:
        input_shape: (height, width, channels); 32x32x3 in the paper, at least 8x8.
        num_classes: classifier units (10 for CIFAR-10).
        include_top: add global average pooling and the classifier; otherwise return the
            last stage's feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        depth: 6n + 2 with basic blocks (20, 32, 44, 56, 110, 1202 in the paper), 9n + 2
            with bottleneck blocks (164, 1001).
        block: "basic" (two 3x3 convolutions) or "bottleneck" (1x1, 3x3, 1x1 expanding 4x).
        preact: pre-activation units (He et al. 2016).
        shortcut: "A" (parameter-free, the 2015 paper's CIFAR choice), "B" (1x1 projections
            where the channels change, the 2016 paper's code), or None for the plain network.
        stochastic_depth: survival probability of the last block, decaying linearly from 1
            (Huang et al. 2016 use 0.5); None or 1.0 for none.
        weight_decay: L2 weight decay on convolution and classifier kernels (1e-4).
        name: the model's name; ``resnet{depth}``, ``plain{depth}`` or
            ``preact_resnet{depth}`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for a depth that does not fit the block, an unknown block or
            shortcut type, or stochastic depth outside (0, 1] or without shortcuts.
    """
    if shortcut not in ("A", "B", None):
        raise InvalidArgumentError(
            f"shortcut must be 'A' or 'B'; received {shortcut!r} (None builds a plain network)"
        )
    style = BlockStyle(
        block=block,
        preact=preact,
        shortcut=shortcut,
        pad_explicitly=False,
        regularizer=layers.l2_decay(weight_decay),
    )
    check_style(style, stochastic_depth)
    blocks = _blocks_per_stage(depth, 2, LAYERS_PER_BLOCK[block], "CIFAR ResNet")
    filters = [planes * EXPANSION[block] for planes in CIFAR_PLANES]
    plan = stage_plan((blocks,) * 3, CIFAR_PLANES, filters, STRIDES)
    if name is None:
        kind = "plain" if shortcut is None else "preact_resnet" if preact else "resnet"
        name = f"{kind}{depth}"
    return _cifar_network(
        style,
        plan,
        stem_width=CIFAR_PLANES[0],
        stochastic_depth=stochastic_depth,
        name=name,
        input_shape=input_shape,
        mean=mean,
        std=std,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


def WideResNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    depth: int = 28,
    widen_factor: int = 10,
    dropout: float = 0.0,
    stochastic_depth: float | None = None,
    weight_decay: float = 5e-4,
    name: str | None = None,
) -> keras.Model:
    """Build a wide residual network WRN-d-k for CIFAR (Zagoruyko & Komodakis 2016).

    Args:
        input_shape: (height, width, channels); 32x32x3 in the paper, at least 8x8.
        num_classes: classifier units (10 for CIFAR-10).
        include_top: add global average pooling and the classifier; otherwise return the
            final ``post_relu`` feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        depth: d = 6n + 4 (16, 22, 28, 40 in the paper).
        widen_factor: k, multiplying the 16, 32, 64 filters of the three stages.
        dropout: rate of the dropout between the two convolutions of each block (the paper
            uses 0.3 in its "-dropout" networks); 0 for none.
        stochastic_depth: survival probability of the last block (Huang et al. 2016); None
            or 1.0 for none.
        weight_decay: L2 weight decay (the paper's 5e-4).
        name: the model's name, ``wrn{depth}_{widen_factor}`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for a depth that is not 6n + 4, a widen factor below 1, a
            dropout rate outside [0, 1) or a survival probability outside (0, 1].
    """
    if int(widen_factor) != widen_factor or widen_factor < 1:
        raise InvalidArgumentError(
            f"widen_factor must be a positive integer; received {widen_factor!r}"
        )
    style = BlockStyle(
        block="basic",
        preact=True,
        shortcut="B",
        pad_explicitly=False,
        dropout=float(dropout),
        regularizer=layers.l2_decay(weight_decay),
    )
    check_style(style, stochastic_depth)
    blocks = _blocks_per_stage(depth, 4, 2, "Wide ResNet")
    widths = [planes * int(widen_factor) for planes in CIFAR_PLANES]
    plan = stage_plan((blocks,) * 3, widths, widths, STRIDES)
    return _cifar_network(
        style,
        plan,
        stem_width=CIFAR_PLANES[0],
        stochastic_depth=stochastic_depth,
        name=name or f"wrn{depth}_{widen_factor}",
        input_shape=input_shape,
        mean=mean,
        std=std,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


def CifarResNeXt(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    depth: int = 29,
    cardinality: int = 8,
    bottleneck_width: int = 64,
    stochastic_depth: float | None = None,
    weight_decay: float = 5e-4,
    name: str | None = None,
) -> keras.Model:
    """Build a CIFAR ResNeXt (Xie et al. 2017, section 5.3).

    Args:
        input_shape: (height, width, channels); 32x32x3 in the paper, at least 8x8.
        num_classes: classifier units (10 for CIFAR-10).
        include_top: add global average pooling and the classifier; otherwise return the
            last stage's feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        depth: 9n + 2 (29 in the paper).
        cardinality: C, the groups of each 3x3 convolution (8 or 16 in the paper).
        bottleneck_width: d, channels per group in the first stage, doubled at each stage.
        stochastic_depth: survival probability of the last block (Huang et al. 2016); None
            or 1.0 for none.
        weight_decay: L2 weight decay (the paper's 5e-4 for CIFAR).
        name: the model's name, ``resnext{depth}_{cardinality}x{bottleneck_width}d`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for a depth that is not 9n + 2, a cardinality or width below 1,
            or a survival probability outside (0, 1].
    """
    if cardinality < 1 or bottleneck_width < 1:
        raise InvalidArgumentError(
            f"cardinality and bottleneck_width must be positive; received "
            f"cardinality={cardinality}, bottleneck_width={bottleneck_width}"
        )
    style = BlockStyle(
        block="bottleneck",
        groups=int(cardinality),
        stride_in_1x1=False,
        pad_explicitly=False,
        regularizer=layers.l2_decay(weight_decay),
    )
    check_style(style, stochastic_depth)
    blocks = _blocks_per_stage(depth, 2, 3, "CIFAR ResNeXt")
    widths = [planes * bottleneck_width // 64 * cardinality for planes in RESNEXT_PLANES]
    filters = [planes * EXPANSION["bottleneck"] for planes in RESNEXT_PLANES]
    plan = stage_plan((blocks,) * 3, widths, filters, STRIDES)
    return _cifar_network(
        style,
        plan,
        stem_width=RESNEXT_PLANES[0],
        stochastic_depth=stochastic_depth,
        name=name or f"resnext{depth}_{cardinality}x{bottleneck_width}d",
        input_shape=input_shape,
        mean=mean,
        std=std,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )


def _blocks_per_stage(depth: int, extra: int, per_block: int, title: str) -> int:
    """n in depth = 3 * per_block * n + extra, or a one-line error."""
    step = 3 * per_block
    if depth < step + extra or (depth - extra) % step:
        examples = ", ".join(str(step * n + extra) for n in (1, 2, 3))
        raise InvalidArgumentError(
            f"{title} depth must be {step}n + {extra} ({examples}, ...); received {depth}"
        )
    return (depth - extra) // step


def _cifar_network(
    style: BlockStyle,
    plan: Sequence[BlockPlan],
    *,
    stem_width: int,
    stochastic_depth: float | None,
    name: str,
    input_shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    **head_arguments,
) -> keras.Model:
    """A 3x3 stem (with BN-ReLU in v1 networks; v2 blocks normalise their own input), the
    blocks of ``plan`` and the head."""
    inputs, x = layers.image_input(input_shape, mean, std)
    x = keras.layers.Conv2D(
        stem_width,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=style.regularizer,
        name="conv1_conv",
    )(x)
    if not style.preact:
        x = relu(batch_norm(x, style, "conv1_bn"), "conv1_relu")
    x = residual_stages(x, style, plan, stochastic_depth)
    x = head(x, style, **head_arguments)
    return keras.Model(inputs, x, name=name)


CIFAR = dict(
    input_shape=(32, 32, 3),
    # Two stride-2 stages: 8x8 leaves a 2x2 map for the last stage.
    min_size=(8, 8),
    num_classes=10,
    # CIFAR-10 training-set channel statistics, those of the authors' Torch code.
    mean=FB_RESNET_CIFAR10_MEAN,
    std=FB_RESNET_CIFAR10_STD,
)
HUANG_2016 = "Huang, Sun, Liu, Sedra, Weinberger 2016, Deep Networks with Stochastic Depth"

# He et al. 2015, Table 6: depth and parameters (millions) of the CIFAR-10 ResNets.
for _depth, _millions in ((20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7), (1202, 19.4)):
    register_model(
        f"resnet{_depth}",
        CifarResNet,
        title=f"ResNet-{_depth}",
        paper=HE_2015,
        **CIFAR,
        description=f"CIFAR ResNet, 3x3 basic blocks, option-A shortcuts ({_millions}M parameters)",
        depth=_depth,
    )
    if _depth <= 110:  # Figure 6 and Table 6 train plain networks up to 110 layers
        register_model(
            f"plain{_depth}",
            CifarResNet,
            title=f"Plain-{_depth}",
            paper=HE_2015,
            **CIFAR,
            description=f"ResNet-{_depth}'s layers without shortcuts (He et al.'s plain net)",
            depth=_depth,
            shortcut=None,
        )

register_model(
    "resnet110_sd",
    CifarResNet,
    title="ResNet-110 (stochastic depth)",
    paper=HUANG_2016,
    **CIFAR,
    description="ResNet-110, branches dropped in training, survival decaying linearly to 0.5",
    depth=110,
    stochastic_depth=0.5,
)

# He et al. 2016, Tables 2-4: pre-activation ResNets on CIFAR.
for _depth, _block, _millions in (
    (110, "basic", 1.7),
    (164, "bottleneck", 1.7),
    (1001, "bottleneck", 10.2),
):
    register_model(
        f"preact_resnet{_depth}",
        CifarResNet,
        title=f"Pre-act ResNet-{_depth}",
        paper=HE_2016,
        **CIFAR,
        description=f"CIFAR pre-activation ResNet, {_block} blocks ({_millions}M parameters)",
        depth=_depth,
        block=_block,
        preact=True,
        shortcut="B",
    )

for _depth, _k, _millions in ((16, 8, 11.0), (28, 10, 36.5)):
    register_model(
        f"wrn{_depth}_{_k}",
        WideResNet,
        title=f"WRN-{_depth}-{_k}",
        paper=ZAGORUYKO_2016,
        **CIFAR,
        description=f"Wide ResNet, pre-activation basic blocks {_k}x wider ({_millions}M params)",
        depth=_depth,
        widen_factor=_k,
    )

register_model(
    "resnext29_8x64d",
    CifarResNeXt,
    title="ResNeXt-29 (8x64d)",
    paper=XIE_2017,
    **CIFAR,
    description="CIFAR ResNeXt, 8 groups of 64 channels in the first stage (34.4M parameters)",
    depth=29,
    cardinality=8,
    bottleneck_width=64,
)
