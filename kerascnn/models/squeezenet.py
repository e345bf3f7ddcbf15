"""SqueezeNet.

Reference: F. N. Iandola, S. Han, M. W. Moskewicz, K. Ashraf, W. J. Dally, K. Keutzer,
"SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
arXiv:1602.07360, 2016: section 3.2 (the Fire module), Table 1 and Figure 2 (the network and
its bypass variants); and the authors' Caffe files (github.com/forresti/SqueezeNet:
``SqueezeNet_v1.0/train_val.prototxt``, ``solver.prototxt`` and ``SqueezeNet_v1.1/``).

A Fire module squeezes its input with a 1x1 convolution and expands it with 1x1 and 3x3
convolutions side by side, whose outputs are concatenated; every convolution has a bias and is
followed by a ReLU. SqueezeNet v1.0 (Table 1) is conv1 (96 7x7/2), max pool, fire2-4, max pool,
fire5-8, max pool, fire9, dropout 0.5, conv10 (1x1 to the classes) with ReLU and global
average pooling: the classifier is a convolution, not a Dense layer. v1.1 (the repository's
``SqueezeNet_v1.1``) has a 64-filter 3x3/2 conv1 and pools after conv1, fire3 and fire5
(2.4x less computation for the same accuracy). ``bypass="simple"`` adds the paper's identity
bypass around fire3, 5, 7 and 9 (where input and output channels match), ``"complex"`` also a
1x1 convolution bypass around fire2, 4, 6 and 8 (Figure 2).

Layers are named as in the Caffe files with ``_`` for ``/`` (``fire2_squeeze1x1``,
``fire2_relu_expand3x3``, ``fire2_concat``, ``pool4``, ``drop9``, ``conv10``, ``pool10``).
Initialisation as there: Caffe's default "xavier" filler, uniform with variance 1 / fan-in
(Keras' ``lecun_uniform``), and a Gaussian of std 0.01 for conv10.

Departures: Table 1's output sizes (conv1 111x111, pool1 55x55 ... conv10 13x13) are those of
the 227x227 crops the Caffe files train on (a 7x7/2 convolution makes 109x109 of a 224x224
image), so the default input is 227x227x3. Pooling rounds up, as Caffe's does (and torchvision's
``ceil_mode=True``; ``alexnet.ceil_mode_pooling``: the last window may hang over the
bottom/right edge). At 227 this changes nothing in v1.0 (every pooled map is odd), and gives
v1.1 the repository's 28x28 and 14x14 maps after pool3 and pool5 where flooring gave 27x27 and
13x13. The v1.0 Caffe file pads conv10 by 1 (15x15 outputs); this follows Table 1 (no
padding), as v1.1 and torchvision do.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.alexnet import ceil_mode_pooling
from kerascnn.models.spec import (
    CAFFE_PROTOTXT_IMAGENET_MEAN,
    TORCHVISION_TABLE,
    UNIT_STD,
    PublishedAccuracy,
    register_model,
)

# Table 1: (squeeze 1x1, expand 1x1, expand 3x3) filters of fire2 .. fire9.
FIRE_MODULES = (
    (16, 64, 64),
    (16, 64, 64),
    (32, 128, 128),
    (32, 128, 128),
    (48, 192, 192),
    (48, 192, 192),
    (64, 256, 256),
    (64, 256, 256),
)
FIRST_FIRE = 2
# conv1 (filters, kernel) and the layers followed by a 3x3/2 max pooling, per version.
VERSIONS = {
    "1.0": {"conv1": (96, 7), "pool_after": (1, 4, 8)},  # Table 1
    "1.1": {"conv1": (64, 3), "pool_after": (1, 3, 5)},  # SqueezeNet_v1.1/README.md
}
BYPASSES = (None, "simple", "complex")
# Caffe's XavierFiller (variance_norm FAN_IN by default): uniform, limit sqrt(3 / fan_in).
CAFFE_XAVIER = "lecun_uniform"


def SqueezeNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    version: str = "1.0",
    bypass: str | None = None,
    dropout_rate: float = 0.5,
    weight_decay: float = 2e-4,
    name: str | None = None,
) -> keras.Model:
    """Build a SqueezeNet (Iandola et al. 2016).

    Args:
        input_shape: (height, width, channels); 227x227x3 for the sizes of Table 1.
        num_classes: filters of conv10, the convolutional classifier.
        include_top: add dropout, conv10 with its ReLU and global average pooling; otherwise
            return fire9's feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits (the pooled conv10 outputs).
        mean, std: raw-pixel statistics of the first layer.
        version: "1.0" (the paper's Table 1) or "1.1" (3x3 conv1 of 64 filters, earlier
            pooling).
        bypass: None, "simple" (identity around fire3, 5, 7, 9) or "complex" (simple plus 1x1
            convolutions around fire2, 4, 6, 8), section 6 and Figure 2.
        dropout_rate: dropout after fire9 (0.5, section 3.3).
        weight_decay: L2 weight decay on the convolution kernels (0.0002 in the authors'
            ``solver.prototxt``).
        name: the model's name, ``squeezenet1_0`` or ``squeezenet1_1`` by default.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an unknown version or bypass, or a dropout rate outside
            [0, 1).
    """
    _check_arguments(version, bypass, dropout_rate)
    conv_kwargs = dict(
        kernel_initializer=CAFFE_XAVIER, kernel_regularizer=layers.l2_decay(weight_decay)
    )
    inputs, x = layers.image_input(input_shape, mean, std)
    x = features(x, VERSIONS[version], bypass=bypass, conv_kwargs=conv_kwargs)
    x = head(
        x,
        dropout_rate=dropout_rate,
        kernel_regularizer=conv_kwargs["kernel_regularizer"],
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )
    default_name = f"squeezenet{version.replace('.', '_')}"
    return keras.Model(inputs, x, name=name or default_name)


def _check_arguments(version: str, bypass: str | None, dropout_rate: float) -> None:
    """Reject an unknown version or bypass, or a dropout rate outside [0, 1)."""
    if version not in VERSIONS:
        raise InvalidArgumentError(f"version must be '1.0' or '1.1'; received {version!r}")
    if bypass not in BYPASSES:
        raise InvalidArgumentError(
            f"bypass must be None, 'simple' or 'complex'; received {bypass!r}"
        )
    if not 0.0 <= dropout_rate < 1.0:
        raise InvalidArgumentError(f"dropout_rate must be in [0, 1); received {dropout_rate}")


def features(x, layout: dict, *, bypass: str | None, conv_kwargs: dict):
    """conv1 with its ReLU and max pooling, then fire2 .. fire9 (Table 1) with 3x3/2 max
    pooling after the modules the version names."""
    filters, kernel = layout["conv1"]
    x = keras.layers.Conv2D(filters, kernel, strides=2, name="conv1", **conv_kwargs)(x)
    x = keras.layers.ReLU(name="conv1_relu")(x)
    x = ceil_mode_pooling(x, 3, 2, name="pool1")
    for index, (squeeze, expand1x1, expand3x3) in enumerate(FIRE_MODULES):
        number = FIRST_FIRE + index
        x = fire_module(
            x,
            squeeze,
            expand1x1,
            expand3x3,
            bypass=_bypass_of(number, bypass),
            name=f"fire{number}",
            conv_kwargs=conv_kwargs,
        )
        if number in layout["pool_after"]:
            x = ceil_mode_pooling(x, 3, 2, name=f"pool{number}")
    return x


def head(
    x,
    *,
    dropout_rate: float,
    kernel_regularizer: keras.regularizers.Regularizer | None,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
):
    """The convolutional classifier: dropout, conv10 (1x1 to the classes) with ReLU and
    global average pooling (``pool10``); or fire9's feature map pooled by ``pooling``."""
    if not include_top:
        return layers.global_pool(x, pooling)
    x = keras.layers.Dropout(dropout_rate, name="drop9")(x)
    x = keras.layers.Conv2D(
        num_classes,
        1,
        name="conv10",
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.01),
        kernel_regularizer=kernel_regularizer,
    )(x)
    x = keras.layers.ReLU(name="conv10_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool10")(x)
    return layers.activation_output(x, classifier_activation)


def _bypass_of(number: int, bypass: str | None) -> str | None:
    """Figure 2: identity bypass around the odd Fire modules (3, 5, 7, 9), whose input has as
    many channels as their output; 1x1 convolutions around the even ones for "complex"."""
    if bypass is None:
        return None
    if number % 2:
        return "identity"
    return "conv" if bypass == "complex" else None


def fire_module(
    x,
    squeeze: int,
    expand1x1: int,
    expand3x3: int,
    *,
    bypass: str | None,
    name: str,
    conv_kwargs: dict,
):
    """Squeeze 1x1, then expand 1x1 and 3x3 side by side, concatenated (section 3.2); with a
    bypass, the module's input (through a 1x1 convolution for "conv") is added to its output."""
    s = keras.layers.Conv2D(squeeze, 1, name=f"{name}_squeeze1x1", **conv_kwargs)(x)
    s = keras.layers.ReLU(name=f"{name}_relu_squeeze1x1")(s)
    e1 = keras.layers.Conv2D(expand1x1, 1, name=f"{name}_expand1x1", **conv_kwargs)(s)
    e1 = keras.layers.ReLU(name=f"{name}_relu_expand1x1")(e1)
    e3 = keras.layers.Conv2D(expand3x3, 3, padding="same", name=f"{name}_expand3x3", **conv_kwargs)(
        s
    )
    e3 = keras.layers.ReLU(name=f"{name}_relu_expand3x3")(e3)
    y = keras.layers.Concatenate(name=f"{name}_concat")([e1, e3])
    if bypass == "conv":
        x = keras.layers.Conv2D(y.shape[-1], 1, name=f"{name}_bypass_conv", **conv_kwargs)(x)
    if bypass is not None:
        y = keras.layers.Add(name=f"{name}_bypass")([x, y])
    return y


PAPER = (
    "Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer 2016, SqueezeNet: AlexNet-level accuracy "
    "with 50x fewer parameters and <0.5MB model size"
)

register_model(
    "squeezenet1_0",
    SqueezeNet,
    title="SqueezeNet 1.0",
    paper=PAPER,
    input_shape=(227, 227, 3),
    # conv1 7x7/2 and three 3x3/2 max poolings, all unpadded: 35x35 leaves 15, 7, 3, 1.
    min_size=(35, 35),
    num_classes=1000,
    # The Caffe files' mean_value 104, 117, 123 (BGR), subtracted without scaling.
    mean=CAFFE_PROTOTXT_IMAGENET_MEAN,
    std=UNIT_STD,
    description="Fire modules (squeeze 1x1, expand 1x1 + 3x3), conv10 classifier (Table 1)",
    imagenet_accuracy=PublishedAccuracy.from_errors(41.908, 19.58, TORCHVISION_TABLE),
    version="1.0",
)

register_model(
    "squeezenet1_1",
    SqueezeNet,
    title="SqueezeNet 1.1",
    paper=PAPER,
    input_shape=(227, 227, 3),
    # conv1 3x3/2 and three 3x3/2 max poolings, all unpadded: 31x31 leaves 15, 7, 3, 1.
    min_size=(31, 31),
    num_classes=1000,
    mean=CAFFE_PROTOTXT_IMAGENET_MEAN,
    std=UNIT_STD,
    description="SqueezeNet v1.1: 3x3 conv1, earlier pooling, 2.4x less computation",
    imagenet_accuracy=PublishedAccuracy.from_errors(41.822, 19.376, TORCHVISION_TABLE),
    version="1.1",
)
