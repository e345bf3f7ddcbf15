"""LeNet-5.

Reference: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-Based Learning Applied to
Document Recognition", Proc. IEEE 86(11), 1998, section II.B (the architecture), Table I
(the C3 connection table) and Appendix A (the squashing function and initialisation).

``variant="paper"`` (the default) is the network as published: scaled-tanh squashing after
every layer up to F6, trainable subsampling (sum of a 2x2 window times a trainable
coefficient plus a trainable bias), C3 connected to S2 through Table I (1,516 parameters),
and a Euclidean RBF output layer with fixed +-1 codes whose negative squared distances are
the logits (the paper's MAP criterion is cross-entropy over those penalties). Weights are
drawn uniformly from +-2.4 / fan-in. It has exactly the paper's 60,000 trainable parameters.

``variant="modern"`` is the version taught today: ReLU, 2x2 max pooling, a fully connected
C3 and a Dense softmax classifier (61,706 parameters for 10 classes). Its ``width`` (a
positive integer, default 1) multiplies the maps of C1, C3 and C5 and the units of F6 (6k, 16k,
120k, 84k): the capacity scale of Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep
Learning Models Resistant to Adversarial Attacks", ICLR 2018, section 4 ("Network capacity
and adversarial robustness", Figure 4), who scale a small MNIST network's filters and fully
connected units by 1, 2, 4, 8, 16 and find that adversarial training needs the larger ones.
The paper's variant keeps width 1: Table I is defined for 6 S2 maps and 16 C3 maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import register_model

# Table I of the paper: the S2 feature maps each C3 feature map takes its input from.
C3_CONNECTIONS = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip

# Appendix A: f(a) = A tanh(S a) with A = 1.7159 and S = 2/3, so that f(1) = 1 and f(-1) = -1.
TANH_AMPLITUDE = 1.7159
TANH_SLOPE = 2.0 / 3.0
# Appendix A: weights uniform in [-2.4 / F, 2.4 / F], F the fan-in of the unit.
FAN_IN_SCALE = 2.4


@keras.saving.register_keras_serializable(package="kerascnn")
class FanInUniform(keras.initializers.Initializer):
    """Uniform in [-scale / fan_in, scale / fan_in] (LeCun et al. 1998, Appendix A)."""

    def __init__(self, scale: float = FAN_IN_SCALE, seed: int | None = None):
        self.scale = float(scale)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        limit = self.scale / math.prod(shape[:-1])
        return keras.initializers.RandomUniform(-limit, limit, seed=self.seed)(shape, dtype=dtype)

    def get_config(self):
        return {"scale": self.scale, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerascnn")
class ScaledTanh(keras.layers.Layer):
    """The paper's squashing function ``A * tanh(S * a)``."""

    def __init__(self, amplitude: float = TANH_AMPLITUDE, slope: float = TANH_SLOPE, **kwargs):
        super().__init__(**kwargs)
        self.amplitude = float(amplitude)
        self.slope = float(slope)

    def call(self, x):
        return self.amplitude * ops.tanh(self.slope * x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "amplitude": self.amplitude, "slope": self.slope}


@keras.saving.register_keras_serializable(package="kerascnn")
class TrainableSubsampling(keras.layers.Layer):
    """S2/S4: each unit adds a non-overlapping ``pool_size`` window, multiplies the sum by a
    trainable per-map coefficient and adds a trainable per-map bias (2 parameters a map)."""

    def __init__(self, pool_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def build(self, input_shape):
        channels = input_shape[-1]
        area = self.pool_size**2
        self.coefficient = self.add_weight(
            shape=(channels,),
            # The coefficient's fan-in is the window's area (Appendix A's rule).
            initializer=keras.initializers.RandomUniform(-FAN_IN_SCALE / area, FAN_IN_SCALE / area),
            name="coefficient",
        )
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def call(self, x):
        p = self.pool_size
        window_sum = ops.average_pool(x, p, strides=p, padding="valid") * float(p * p)
        return window_sum * self.coefficient + self.bias

    def multiply_accumulates(self, input_shape, output_shape):
        """The window sum times the trainable coefficient: one per output value."""
        return output_shape[1] * output_shape[2] * output_shape[3]

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        p = self.pool_size
        return (
            batch,
            None if height is None else height // p,
            None if width is None else width // p,
            channels,
        )

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package="kerascnn")
class ConnectionTableConv2D(keras.layers.Layer):
    """A 'valid' convolution in which output map ``j`` sees only the input maps listed in
    ``connections[j]`` (C3's Table I). Only connected kernels are parameters; the full
    kernel is assembled from them with a constant 0/1 placement tensor."""

    def __init__(self, connections: Sequence[Sequence[int]], kernel_size: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.connections = [list(map(int, inputs)) for inputs in connections]
        self.kernel_size = int(kernel_size)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if max(max(c) for c in self.connections) >= in_channels:
            raise ValueError(
                f"connection table refers to input map {max(max(c) for c in self.connections)}"
                f" but the input has {in_channels} channels"
            )
        pairs = [(i, j) for j, inputs in enumerate(self.connections) for i in inputs]
        placement = np.zeros((len(pairs), in_channels, len(self.connections)), "float32")
        for k, (i, j) in enumerate(pairs):
            placement[k, i, j] = 1.0
        self._placement = placement
        area = self.kernel_size**2
        # Each connection's kernel is drawn with the fan-in of the unit it feeds.
        limits = np.array(
            [FAN_IN_SCALE / (area * len(self.connections[j])) for _, j in pairs], "float32"
        )

        def initializer(shape, dtype=None):
            unit = keras.random.uniform(shape, minval=-1.0, maxval=1.0, dtype=dtype)
            return unit * ops.convert_to_tensor(limits, dtype=dtype)

        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, len(pairs)),
            initializer=initializer,
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(len(self.connections),), initializer="zeros", name="bias"
        )

    def call(self, x):
        placement = ops.convert_to_tensor(self._placement, dtype=self.kernel.dtype)
        kernel = ops.einsum("hwk,kio->hwio", self.kernel, placement)
        return ops.conv(x, kernel, strides=1, padding="valid") + self.bias

    def multiply_accumulates(self, input_shape, output_shape):
        """One multiply-accumulate per connected kernel weight and output position."""
        connected = sum(len(inputs) for inputs in self.connections)
        return output_shape[1] * output_shape[2] * self.kernel_size**2 * connected

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        shrink = self.kernel_size - 1
        return (
            batch,
            None if height is None else height - shrink,
            None if width is None else width - shrink,
            len(self.connections),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "connections": self.connections,
            "kernel_size": self.kernel_size,
        }


@keras.saving.register_keras_serializable(package="kerascnn")
class EuclideanRBF(keras.layers.Layer):
    """The output layer: unit ``i`` computes ``-sum_j (x_j - w_ij)^2``, the negative of the
    paper's RBF penalty, so a softmax over it is the paper's MAP criterion without the
    'rubbish class' constant. The codes ``w_i`` are fixed +-1 vectors (the paper drew them
    as 7x12 character bitmaps, which it does not publish as numbers; these are drawn once
    from ``code_seed``) and are not trained."""

    def __init__(self, units: int, code_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.code_seed = int(code_seed)

    def build(self, input_shape):
        dims = input_shape[-1]
        codes = np.random.default_rng(self.code_seed).choice([-1.0, 1.0], size=(self.units, dims))
        self.codes = self.add_weight(
            shape=(self.units, dims),
            initializer=keras.initializers.Constant(codes.astype("float32")),
            trainable=False,
            name="codes",
        )

    def call(self, x):
        distance = (
            ops.sum(ops.square(x), axis=-1, keepdims=True)
            - 2.0 * ops.matmul(x, ops.transpose(self.codes))
            + ops.sum(ops.square(self.codes), axis=-1)
        )
        return -distance

    def multiply_accumulates(self, input_shape, output_shape):
        """The distance to each code: one (subtract-and-)square-accumulate per code entry."""
        return input_shape[-1] * self.units

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "code_seed": self.code_seed}


VARIANTS = ("paper", "modern")


def LeNet5(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    variant: str = "paper",
    width: int = 1,
    name: str = "lenet5",
) -> keras.Model:
    """Build LeNet-5 (LeCun et al. 1998).

    Args:
        input_shape: (height, width, channels); at least 32x32, the paper's input.
        num_classes: output units (the paper's 10 digits).
        include_top: add F6 and the output layer; otherwise end at C5, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: activation of the output ("softmax"), or None for logits.
        mean, std: raw-pixel statistics of the first layer (``(x - mean) / std``).
        variant: "paper" (as published) or "modern" (ReLU, max pooling, full C3, Dense output).
        width: with ``variant="modern"``, a positive integer multiplying the maps of C1, C3,
            C5 and the units of F6 (Madry et al. 2018, section 4's capacity scale); 1 is
            LeNet-5's own 6, 16, 120, 84.
        name: the model's name.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an unknown variant, or a width that is not a positive
            integer or is not 1 with the paper's variant.
    """
    if variant not in VARIANTS:
        raise InvalidArgumentError(
            f"LeNet-5 variant must be one of {', '.join(VARIANTS)}; received {variant!r}"
        )
    _check_width(width, variant)
    paper = variant == "paper"
    inputs, x = layers.image_input(input_shape, mean, std)

    def conv(x, filters, layer_name):
        init = FanInUniform() if paper else "glorot_uniform"
        x = keras.layers.Conv2D(filters, 5, kernel_initializer=init, name=layer_name)(x)
        return squash(x, layer_name)

    def squash(x, layer_name):
        if paper:
            return ScaledTanh(name=f"{layer_name}_tanh")(x)
        return keras.layers.ReLU(name=f"{layer_name}_relu")(x)

    def subsample(x, layer_name):
        if paper:
            return squash(TrainableSubsampling(2, name=layer_name)(x), layer_name)
        return keras.layers.MaxPooling2D(2, name=layer_name)(x)

    x = conv(x, 6 * width, "c1")
    x = subsample(x, "s2")
    if paper:
        x = squash(ConnectionTableConv2D(C3_CONNECTIONS, 5, name="c3")(x), "c3")
    else:
        x = conv(x, 16 * width, "c3")
    x = subsample(x, "s4")
    x = conv(x, 120 * width, "c5")

    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        init = FanInUniform() if paper else "glorot_uniform"
        x = squash(keras.layers.Dense(84 * width, kernel_initializer=init, name="f6")(x), "f6")
        if paper:
            x = EuclideanRBF(num_classes, name="predictions")(x)
            x = layers.activation_output(x, classifier_activation)
        else:
            x = layers.classifier(x, num_classes, classifier_activation)
    else:
        x = layers.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name)


def _check_width(width: object, variant: str) -> None:
    """Refuse a width that is not a positive integer, or not 1 with the paper's C3 table."""
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise InvalidArgumentError(f"LeNet-5 width must be a positive integer; received {width!r}")
    if width != 1 and variant != "modern":
        raise InvalidArgumentError(
            f"LeNet-5 width={width} needs variant=modern (the paper's C3 connection table,"
            " Table I, is defined for 6 and 16 maps)"
        )


register_model(
    "lenet5",
    LeNet5,
    title="LeNet-5",
    paper="LeCun, Bottou, Bengio, Haffner 1998, Gradient-Based Learning Applied to Document "
    "Recognition",
    input_shape=(32, 32, 1),
    min_size=(32, 32),
    num_classes=10,
    # Section II.B: inputs scaled so the background is -0.1 and the foreground 1.175;
    # (x - 20) / 200 maps raw pixel 0 to -0.1 and 255 to 1.175.
    mean=(20.0,),
    std=(200.0,),
    description="7 layers, Table I connections, RBF output; variant='modern' for ReLU/max-pool"
    " (width=k: k times the maps)",
    # Equation (8), the RBF penalty of the correct class, for the paper's network; the modern
    # variant's Dense output is trained with cross-entropy.
    loss=lambda options: (
        "rbf_penalty" if options.get("variant", "paper") == "paper" else "crossentropy"
    ),
)
