"""The layers of quantisation-aware training (``kerascnn.compression.qat``), here so that
any ``.keras`` file holding them loads wherever kerascnn's models do.

Weights are fake-quantised int8 symmetric with narrow range (levels -127..127, scale
``max|w| / 127`` of the current weights, TF-MOT's ``LastValueQuantizer``); activations int8
asymmetric over a range tracked by a moving average of each training batch's minimum and
maximum (TF-MOT's ``MovingAverageQuantizer``). Both go through
``keras.quantizers.fake_quant_with_min_max_vars``: ``keras.ops`` with a straight-through
gradient on every backend, and under TensorFlow TensorFlow's own ``FakeQuantWithMinMaxVars``
ops, whose ranges the TFLite converter reads.
"""

from __future__ import annotations

import keras
from keras import ops

# The moving average's decay. TF-MOT uses 0.999 over ImageNet's hundreds of thousands of
# steps; a fine-tuning run of a few hundred steps would barely move from its first batch.
RANGE_DECAY = 0.99


def quantized_kernel(kernel, per_channel: bool = True):
    """``kernel`` fake-quantised int8 symmetric with narrow range (levels -127..127, scale
    ``max|w| / 127``), per channel of its last axis or per tensor; the range itself takes
    no gradient."""
    axes = tuple(range(len(kernel.shape) - 1)) if per_channel else None
    bound = ops.stop_gradient(ops.max(ops.abs(kernel), axis=axes))
    # An all-zero channel (pruned) still needs a range the converter accepts.
    bound = ops.maximum(bound, 1e-8)
    return keras.quantizers.fake_quant_with_min_max_vars(
        kernel, -bound, bound, num_bits=8, narrow_range=True, axis=-1 if per_channel else None
    )


@keras.saving.register_keras_serializable(package="kerascnn")
class ActivationRange(keras.layers.Layer):
    """Fake-quantises its input per tensor to 256 levels over ``[min, max]``.

    Training, each batch moves the range towards the batch's own minimum and maximum (each
    widened to include 0) by ``1 - decay``; the first batch sets it. Inference uses the
    range as it is. ``fixed`` pins the range (the raw-pixel input)."""

    def __init__(self, decay: float = RANGE_DECAY, fixed=None, **kwargs):
        super().__init__(**kwargs)
        self.decay = float(decay)
        self.fixed = None if fixed is None else [float(v) for v in fixed]

    def build(self, input_shape):
        low, high = self.fixed or (0.0, 0.0)
        constant = keras.initializers.Constant
        self.range_min = self.add_weight(
            shape=(), initializer=constant(low), trainable=False, name="range_min"
        )
        self.range_max = self.add_weight(
            shape=(), initializer=constant(high), trainable=False, name="range_max"
        )
        self.seen = self.add_weight(
            shape=(),
            initializer=constant(1.0 if self.fixed else 0.0),
            trainable=False,
            name="seen",
        )

    def call(self, x, training=False):
        if training and not self.fixed:
            self._track(ops.stop_gradient(x))
        low = ops.convert_to_tensor(self.range_min)
        high = ops.convert_to_tensor(self.range_max)
        # Before any batch the range is empty; the op needs a valid one (such an untrained
        # range passes nothing but zeros: QAT models are meant to be fine-tuned first).
        high = ops.where(ops.greater(high, low), high, low + 1e-6)
        return keras.quantizers.fake_quant_with_min_max_vars(x, low, high, num_bits=8)

    def _track(self, x) -> None:
        batch_min = ops.minimum(ops.min(x), 0.0)
        batch_max = ops.maximum(ops.max(x), 0.0)
        low = ops.convert_to_tensor(self.range_min)
        high = ops.convert_to_tensor(self.range_max)
        keep = ops.where(ops.equal(ops.convert_to_tensor(self.seen), 0.0), 0.0, self.decay)
        self.range_min.assign(keep * low + (1 - keep) * batch_min)
        self.range_max.assign(keep * high + (1 - keep) * batch_max)
        self.seen.assign(ops.ones((), dtype=self.seen.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "decay": self.decay, "fixed": self.fixed}


@keras.saving.register_keras_serializable(package="kerascnn")
class QuantizedConv2D(keras.layers.Conv2D):
    """``Conv2D`` computing with its kernel fake-quantised per output filter."""

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, quantized_kernel(kernel))


@keras.saving.register_keras_serializable(package="kerascnn")
class QuantizedDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``DepthwiseConv2D`` computing with its kernel fake-quantised per output channel (an
    input channel times a multiplier: TFLite's channel axis)."""

    def call(self, inputs):
        height, width, channels, multiplier = self.kernel.shape
        flat = ops.reshape(self.kernel, (height, width, channels * multiplier))
        kernel = ops.reshape(quantized_kernel(flat), self.kernel.shape)
        outputs = ops.depthwise_conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package="kerascnn")
class QuantizedDense(keras.layers.Dense):
    """``Dense`` computing with its kernel fake-quantised per tensor: TFLite's converter
    cannot carry a per-unit range through the transpose its fully connected op needs
    ("mismatched quantized axes"), so TF-MOT quantises Dense kernels per tensor too."""

    def call(self, inputs, training=None):
        x = ops.matmul(inputs, quantized_kernel(self.kernel, per_channel=False))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return x if self.activation is None else self.activation(x)
