"""Blocks shared by several families. Custom layers are serialisable (STYLE 9)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from kerascnn.errors import InvalidArgumentError

POOLINGS = (None, "avg", "max")


def image_input(
    input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The model's input (raw 0-255 pixels) and its normalisation ``(x - mean) / std``.

    ``mean``/``std`` are per channel; a single value, or statistics for a different channel
    count (RGB statistics on a grayscale input), collapse to their average so the same
    registered model works on grayscale and colour data.
    """
    channels = int(input_shape[-1])
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    std = _per_channel(std, channels)
    if np.shape(mean) == tuple(input_shape):
        # A mean image (AlexNet subtracted the training set's mean image): one mean per
        # pixel and channel, the std per channel broadcast over the image.
        variance = np.broadcast_to(np.square(std), tuple(input_shape))
        x = keras.layers.Normalization(
            axis=(1, 2, 3), mean=np.asarray(mean), variance=variance, name="preprocessing"
        )(inputs)
        return inputs, x
    mean = _per_channel(mean, channels)
    x = keras.layers.Normalization(mean=mean, variance=[s * s for s in std], name="preprocessing")(
        inputs
    )
    return inputs, x


def _per_channel(values: Sequence[float] | float, channels: int) -> list[float]:
    values = np.atleast_1d(np.asarray(values, dtype="float64"))
    if values.size != channels:
        values = np.full(channels, values.mean())
    return [float(v) for v in values]


def classifier(
    x: keras.KerasTensor,
    num_classes: int,
    classifier_activation: str | None,
    *,
    name: str = "predictions",
    **dense_kwargs,
) -> keras.KerasTensor:
    """The final Dense layer (``predictions``; ``aux1_predictions`` for an auxiliary head)
    and its activation, kept in float32 so a softmax stays exact under mixed precision."""
    x = keras.layers.Dense(num_classes, name=name, **dense_kwargs)(x)
    activation_name = "classifier_activation" if name == "predictions" else f"{name}_activation"
    return activation_output(x, classifier_activation, name=activation_name)


def activation_output(
    x: keras.KerasTensor, classifier_activation: str | None, name: str = "classifier_activation"
) -> keras.KerasTensor:
    if classifier_activation is None:
        return x
    return keras.layers.Activation(classifier_activation, dtype="float32", name=name)(x)


def main_head(model: keras.Model) -> keras.Model:
    """The inference model of a network built with auxiliary heads (``aux_logits=True``):
    the same layers up to the first output only, so the auxiliary classifiers are neither
    evaluated, saved nor exported. A single-output model is returned as it is."""
    if len(model.outputs) == 1:
        return model
    inputs = model.input if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, model.outputs[0], name=model.name)


def l2_decay(weight_decay: float | None) -> keras.regularizers.Regularizer | None:
    """The papers' weight decay lambda as a Keras regulariser.

    Keras' ``L2(l)`` adds ``l * sum(w^2)`` to the loss; the papers' decay lambda is
    ``lambda / 2 * sum(w^2)``, whose gradient is ``lambda * w``.
    """
    return keras.regularizers.L2(weight_decay / 2) if weight_decay else None


def conv_bn(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int | Sequence[int],
    *,
    name: str,
    strides: int | Sequence[int] = 1,
    padding: str = "same",
    activation: str | None = "relu",
    groups: int = 1,
    epsilon: float = 1e-3,
    kernel_initializer: str | keras.initializers.Initializer = "he_normal",
    kernel_regularizer: keras.regularizers.Regularizer | None = None,
) -> keras.KerasTensor:
    """Convolution without bias, batch normalisation, then the activation (if any):
    layers ``{name}_conv``, ``{name}_bn``, ``{name}_{activation}``."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        groups=groups,
        use_bias=False,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=kernel_regularizer,
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(epsilon=epsilon, name=f"{name}_bn")(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def global_pool(x: keras.KerasTensor, pooling: str | None) -> keras.KerasTensor:
    """Feature-extraction pooling for ``include_top=False``: None keeps the 4-D map."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def check_head_arguments(num_classes: int, include_top: bool, pooling: str | None) -> None:
    if pooling not in POOLINGS:
        raise InvalidArgumentError(f"pooling must be None, 'avg' or 'max'; received {pooling!r}")
    if include_top and (not isinstance(num_classes, numbers.Integral) or num_classes < 1):
        raise InvalidArgumentError(
            f"num_classes must be a positive integer; received {num_classes!r}"
        )


@keras.saving.register_keras_serializable(package="kerascnn")
class ZeroPadShortcut(keras.layers.Layer):
    """He et al. 2015's option-A shortcut: identity, subsampled by ``strides`` and with the
    extra channels zero-padded, so increasing dimensions adds no parameters."""

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, x):
        if self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        extra = self.filters - x.shape[-1]
        if extra > 0:
            # Pad symmetrically, as the reference CIFAR implementations do.
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if self.strides > 1:
            height = None if height is None else -(-height // self.strides)
            width = None if width is None else -(-width // self.strides)
        return (batch, height, width, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package="kerascnn")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al. 2012, section 3.3):

    ``b_i = a_i / (k + alpha * sum_j a_j^2) ** beta``, the sum over the ``n`` channels
    centred on ``i`` (clipped at the edges). The defaults are the paper's k=2, n=5,
    alpha=1e-4, beta=0.75; alpha multiplies the plain sum, as in the paper and
    ``tf.nn.local_response_normalization`` (Caffe divides it by ``n``). Written with
    ``keras.ops``, so it runs on every Keras backend and converts to TFLite.
    """

    def __init__(
        self, k: float = 2.0, n: int = 5, alpha: float = 1e-4, beta: float = 0.75, **kwargs
    ):
        super().__init__(**kwargs)
        if int(n) < 1 or int(n) % 2 == 0:
            raise InvalidArgumentError(f"LRN size n must be a positive odd number; received {n}")
        self.k, self.n, self.alpha, self.beta = float(k), int(n), float(alpha), float(beta)

    def call(self, x):
        squared = ops.square(x)
        radius = self.n // 2
        channels = x.shape[-1]
        padded = ops.pad(squared, [[0, 0]] * (len(x.shape) - 1) + [[radius, radius]])
        window_sum = padded[..., 0:channels]
        for offset in range(1, self.n):
            window_sum = window_sum + padded[..., offset : offset + channels]
        return x / ops.power(self.k + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "k": self.k,
            "n": self.n,
            "alpha": self.alpha,
            "beta": self.beta,
        }


@keras.saving.register_keras_serializable(package="kerascnn")
class StochasticDepth(keras.layers.Layer):
    """A residual branch that training skips at random (Huang et al. 2016, "Deep Networks
    with Stochastic Depth").

    Holds the branch (a functional model) and is called on the branch's input; returns the
    branch's output, which the block adds to its shortcut. In training, one draw per
    mini-batch, as in the paper: with probability ``survival_probability`` the branch runs and
    its output is scaled by the inverse probability; otherwise it does not run at all
    (``keras.ops.cond``: no convolution, no gradient, no batch-norm statistics update) and the
    output is zeros, so the block passes its shortcut on. The expected output equals the full
    branch's, so inference runs the full branch unscaled: the paper's test-time rescaling by
    the survival probability, folded into training.

    The branch runs through ``stateless_call`` inside the condition and its state (batch-norm
    statistics, dropout seeds) is assigned after it, so the same code runs under JAX's
    ``lax.cond``, which cannot assign variables inside a branch, as under TensorFlow.
    """

    def __init__(
        self,
        branch: keras.Model,
        survival_probability: float,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 < float(survival_probability) <= 1.0:
            raise InvalidArgumentError(
                f"survival probability must be in (0, 1]; received {survival_probability}"
            )
        self.branch = branch
        self.survival_probability = float(survival_probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        pass  # the branch is a functional model, built with it

    def call(self, x, training=None):
        if not training or self.survival_probability == 1.0:
            return self.branch(x, training=training)
        keep = keras.random.uniform((), seed=self.seed_generator) < self.survival_probability
        weights = [v.value for v in self.branch.trainable_variables]
        state = [v.value for v in self.branch.non_trainable_variables]

        def run():
            y, new_state = self.branch.stateless_call(weights, state, x, training=True)
            return y / ops.cast(self.survival_probability, y.dtype), new_state

        def skip():
            return self._zeros(x), state

        y, new_state = ops.cond(keep, run, skip)
        for variable, value in zip(self.branch.non_trainable_variables, new_state, strict=True):
            variable.assign(value)
        return y

    def _zeros(self, x):
        output = self.branch.outputs[0]
        return ops.zeros((ops.shape(x)[0], *output.shape[1:]), dtype=output.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.branch.outputs[0].shape[1:])

    def get_config(self):
        return {
            **super().get_config(),
            "branch": keras.saving.serialize_keras_object(self.branch),
            "survival_probability": self.survival_probability,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        branch = keras.saving.deserialize_keras_object(config.pop("branch"))
        return cls(branch=branch, **config)


def nested_model(layer: keras.layers.Layer) -> keras.Model | None:
    """The functional model ``layer`` runs: the layer itself when it is a model, the residual
    branch of a ``StochasticDepth`` layer (its ``branch``); None for any other layer."""
    if isinstance(layer, keras.Model):
        return layer
    branch = getattr(layer, "branch", None)
    return branch if isinstance(branch, keras.Model) else None


def flat_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """``model``'s layers with each nested model's layers (inputs aside) in its place."""
    flat = []
    for layer in model.layers:
        nested = nested_model(layer)
        if nested is None:
            flat.append(layer)
        else:
            inner = flat_layers(nested)
            flat += [x for x in inner if not isinstance(x, keras.layers.InputLayer)]
    return flat


def linear_survival(index: int, total: int, final: float = 0.5) -> float:
    """Huang et al.'s linear decay rule: block ``index`` (0-based) of ``total`` survives with
    probability ``1 - (index + 1) / total * (1 - final)``, so the last block has ``final``."""
    return 1.0 - (index + 1) / total * (1.0 - final)
