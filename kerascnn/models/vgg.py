"""VGG networks, configurations A to E.

Reference: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (arXiv:1409.1556), section 2 and Table 1 (the configurations),
section 3.1 (training).

Five blocks of 3x3 convolutions (stride 1, padding 1), each ended by 2x2/2 max pooling, then
FC 4096-4096-classes with dropout 0.5 after the two hidden FC layers; ReLU after every
convolution and hidden FC layer. Table 1's columns are the ``CONFIGS`` table below, written
in the paper's notation: A (``vgg11``), A-LRN (``vgg11_lrn``: LRN after the first
convolution), B (``vgg13``), C (``vgg16_c``: a 1x1 convolution ends blocks 3, 4 and 5), D
(``vgg16``) and E (``vgg19``). The paper preprocesses by subtracting the training set's mean
RGB (section 2.1): the registered mean/std are keras.applications' "caffe" statistics, the
VGG release's mean and no scaling.

``batch_norm=True`` (``vgg11_bn`` ... ``vgg19_bn``) is the later variant of torchvision's
``vgg*_bn``, not in the paper: batch normalisation between each convolution (which keeps its
bias) and its ReLU, He-normal convolution kernels.

Initialisation (section 3.1): weights from a zero-mean normal distribution, biases 0. The
paper's text says "10^-2 variance"; we use a standard deviation of 0.01 as the Caffe models
released with the paper do. The paper trained the deeper configurations from net A's weights
(or, after submission, with Glorot initialisation): from scratch with this initialisation
D and E train poorly. Weight decay 5e-4 on every kernel (section 3.1).

``vgg16`` and ``vgg19`` are laid out and named as ``keras.applications.VGG16``/``VGG19``
(``block1_conv1`` ... ``block5_pool``, ``flatten``, ``fc1``, ``fc2``, ``predictions``), so
``weights="imagenet"`` loads Keras's published weights (Keras's VGG has no dropout layers,
which carry no weights). With the classifier the input can be any size from 32x32: FC1's
input size follows it, as in keras.applications.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import (
    TORCHVISION_TABLE,
    UNIT_STD,
    VGG_IMAGENET_MEAN,
    KerasApplication,
    PublishedAccuracy,
    register_model,
)

# Table 1, one tuple per block (each block ends with "maxpool"). "convK-N": a KxK
# convolution with N filters; "LRN": local response normalisation.
CONFIGS = {
    "A": (
        ("conv3-64",),
        ("conv3-128",),
        ("conv3-256",) * 2,
        ("conv3-512",) * 2,
        ("conv3-512",) * 2,
    ),
    "A-LRN": (
        ("conv3-64", "LRN"),
        ("conv3-128",),
        ("conv3-256",) * 2,
        ("conv3-512",) * 2,
        ("conv3-512",) * 2,
    ),
    "B": (
        ("conv3-64",) * 2,
        ("conv3-128",) * 2,
        ("conv3-256",) * 2,
        ("conv3-512",) * 2,
        ("conv3-512",) * 2,
    ),
    "C": (
        ("conv3-64",) * 2,
        ("conv3-128",) * 2,
        ("conv3-256", "conv3-256", "conv1-256"),
        ("conv3-512", "conv3-512", "conv1-512"),
        ("conv3-512", "conv3-512", "conv1-512"),
    ),
    "D": (
        ("conv3-64",) * 2,
        ("conv3-128",) * 2,
        ("conv3-256",) * 3,
        ("conv3-512",) * 3,
        ("conv3-512",) * 3,
    ),
    "E": (
        ("conv3-64",) * 2,
        ("conv3-128",) * 2,
        ("conv3-256",) * 4,
        ("conv3-512",) * 4,
        ("conv3-512",) * 4,
    ),
}

INIT_STD = 0.01  # section 3.1
FC_UNITS = 4096
# torchvision's BatchNorm2d defaults (momentum 0.1 in its convention).
BN_EPSILON, BN_MOMENTUM = 1e-5, 0.9


def VGG(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    config: str = "D",
    batch_norm: bool = False,
    dropout: float = 0.5,
    weight_decay: float = 5e-4,
    name: str | None = None,
) -> keras.Model:
    """Build a VGG network of Table 1 (Simonyan & Zisserman 2014).

    Args:
        input_shape: (height, width, channels); 224x224x3 in the paper, at least 32x32.
        num_classes: classifier units (1000 in the paper).
        include_top: add the three FC layers; otherwise end at ``block5_pool``, pooled by
            ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer (``(x - mean) / std``).
        config: a column of Table 1: "A", "A-LRN", "B", "C", "D" or "E".
        batch_norm: batch normalisation after every convolution (torchvision's ``_bn``
            variants).
        dropout: dropout rate after FC1 and FC2 (0.5 in the paper).
        weight_decay: L2 weight decay on every kernel (5e-4 in the paper).
        name: the model's name; by default the registry name (``vgg16``, ``vgg16_c``,
            ``vgg11_lrn``, ``vgg19_bn`` ...).

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an unknown config.
    """
    if config not in CONFIGS:
        raise InvalidArgumentError(
            f"VGG config must be one of {', '.join(CONFIGS)}; received {config!r}"
        )
    regularizer = layers.l2_decay(weight_decay)
    dense_kwargs = dict(
        kernel_initializer=keras.initializers.RandomNormal(stddev=INIT_STD),
        kernel_regularizer=regularizer,
    )

    inputs, x = layers.image_input(input_shape, mean, std)
    for block_index, block in enumerate(CONFIGS[config], start=1):
        prefix = f"block{block_index}"
        conv_index = 0
        for entry in block:
            if entry == "LRN":
                # Section 2.1: "the parameters for the LRN layer are those of (Krizhevsky et
                # al., 2012)", the layer's defaults.
                x = layers.LocalResponseNormalization(name=f"{prefix}_lrn")(x)
                continue
            conv_index += 1
            kernel, filters = (int(n) for n in entry.removeprefix("conv").split("-"))
            x = _conv(x, filters, kernel, f"{prefix}_conv{conv_index}", batch_norm, regularizer)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"{prefix}_pool")(x)

    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for fc_name in ("fc1", "fc2"):
            x = keras.layers.Dense(FC_UNITS, activation="relu", name=fc_name, **dense_kwargs)(x)
            x = keras.layers.Dropout(dropout, name=f"{fc_name}_dropout")(x)
        x = layers.classifier(x, num_classes, classifier_activation, **dense_kwargs)
    else:
        x = layers.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or default_name(config, batch_norm))


def _conv(x, filters, kernel, conv_name, batch_norm, regularizer):
    """A convolution and its ReLU (inline, as keras.applications), or conv, BN, ReLU."""
    x = keras.layers.Conv2D(
        filters,
        kernel,
        padding="same",
        activation=None if batch_norm else "relu",
        kernel_initializer=(
            "he_normal" if batch_norm else keras.initializers.RandomNormal(stddev=INIT_STD)
        ),
        kernel_regularizer=regularizer,
        name=conv_name,
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(
            epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{conv_name}_bn"
        )(x)
        x = keras.layers.ReLU(name=f"{conv_name}_relu")(x)
    return x


def depth(config: str) -> int:
    """Weight layers of a configuration: its convolutions and the three FC layers."""
    return sum(entry != "LRN" for block in CONFIGS[config] for entry in block) + 3


def default_name(config: str, batch_norm: bool = False) -> str:
    suffix = {"A-LRN": "_lrn", "C": "_c"}.get(config, "")
    return f"vgg{depth(config)}{suffix}" + ("_bn" if batch_norm else "")


PAPER = (
    "Simonyan, Zisserman 2014, Very Deep Convolutional Networks for Large-Scale Image Recognition"
)
DESCRIPTIONS = {
    "A": "configuration A: 8 conv 3x3 + 3 FC",
    "A-LRN": "configuration A-LRN: A with LRN after the first convolution",
    "B": "configuration B: 10 conv 3x3 + 3 FC",
    "C": "configuration C: B plus a 1x1 conv ending blocks 3, 4, 5",
    "D": "configuration D: 13 conv 3x3 + 3 FC",
    "E": "configuration E: 16 conv 3x3 + 3 FC",
}
KERAS_APPLICATIONS = {
    "D": KerasApplication("VGG16", bgr=True),
    "E": KerasApplication("VGG19", bgr=True),
}
TITLES = {"A-LRN": "VGG-11-LRN", "C": "VGG-16-C"}
# torchvision's vgg11..vgg19 (the same networks): (top-1, top-5) error.
TORCHVISION_ERRORS = {
    "vgg11": (30.98, 11.37),
    "vgg13": (30.07, 10.75),
    "vgg16": (28.41, 9.62),
    "vgg19": (27.62, 9.12),
}
# Registry name: (Table 1 column, batch normalisation).
VARIANTS = {
    "vgg11": ("A", False),
    "vgg11_lrn": ("A-LRN", False),
    "vgg13": ("B", False),
    "vgg16_c": ("C", False),
    "vgg16": ("D", False),
    "vgg19": ("E", False),
    "vgg11_bn": ("A", True),
    "vgg13_bn": ("B", True),
    "vgg16_bn": ("D", True),
    "vgg19_bn": ("E", True),
}

for _name, (_config, _batch_norm) in VARIANTS.items():
    register_model(
        _name,
        VGG,
        title=TITLES.get(_config, f"VGG-{depth(_config)}") + ("-BN" if _batch_norm else ""),
        paper=PAPER,
        input_shape=(224, 224, 3),
        # Five 2x2/2 poolings: 32 -> 1 (31 leaves nothing after block5_pool).
        min_size=(32, 32),
        num_classes=1000,
        # The mean pixel released with the paper's Caffe models, subtracted without scaling
        # (section 2.1); keras.applications.vgg16.preprocess_input, mode "caffe".
        mean=VGG_IMAGENET_MEAN,
        std=UNIT_STD,
        description=DESCRIPTIONS[_config]
        + (", batch normalisation (torchvision's _bn)" if _batch_norm else ""),
        keras_application=None if _batch_norm else KERAS_APPLICATIONS.get(_config),
        imagenet_accuracy=PublishedAccuracy.from_errors(
            *TORCHVISION_ERRORS[_name], TORCHVISION_TABLE
        )
        if _name in TORCHVISION_ERRORS
        else None,
        config=_config,
        batch_norm=_batch_norm,
    )
