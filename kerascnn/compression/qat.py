"""Quantisation-aware training (Jacob et al. 2018, "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference"), as TF-MOT and TFLite do it, in
Keras 3: fine-tune with the int8 rounding in the forward pass, so that the exported
full-integer TFLite file computes what the model was trained to compute.

- weights: the kernels of ``Conv2D`` and ``DepthwiseConv2D`` are fake-quantised per output
  channel, those of ``Dense`` per tensor (see ``QuantizedDense``), int8 symmetric
  (``[-127, 127]``, scale ``max|w| / 127``, the current weights' own range each step,
  TF-MOT's ``LastValueQuantizer``);
- activations: the output of every layer but those that only move values around (pooling by
  maximum, flattening, reshaping, dropout, padding) and the model's input are fake-quantised
  per tensor, int8 asymmetric (256 levels over ``[min, max]``, 0 exactly representable),
  the range a moving average of each training batch's minimum and maximum (TF-MOT's
  ``MovingAverageQuantizer``), started at the first batch's;
- gradients: straight through, inside the range (zero outside it).

The layers are ``kerascnn.models.quantized``'s. Both kinds of range go through
``keras.quantizers.fake_quant_with_min_max_vars``: ``keras.ops`` on every backend and, under
TensorFlow, TensorFlow's own ``FakeQuantWithMinMaxVars(PerChannel)`` ops, which stay in the
exported SavedModel. The TFLite converter turns each into a quantise/dequantise pair and
quantises with its range, as it does TF-MOT's models: the int8 export's weight scales are
``max|w| / 127`` and its activation scales ``(max - min) / 255`` of the trained ranges
(tested). The converter still asks for a representative dataset (TF 2.21's check for a
quantisation-aware model does not find the ops inside the SavedModel's functions); the
calibration images only set the ranges of tensors no ``ActivationRange`` covers (those inside
a custom layer, such as LeNet-5's RBF output). The converter drops fake quantisation from a
float32 file, so a QAT model is exported to int8 alone (``Recipe.modes``).
"""

from __future__ import annotations

import keras
from keras import ops

from kerascnn.models.layers import flat_layers
from kerascnn.models.quantized import (
    ActivationRange,
    QuantizedConv2D,
    QuantizedDense,
    QuantizedDepthwiseConv2D,
    quantized_kernel,
)

__all__ = ["activation_ranges", "quantization_aware", "quantized_kernel"]

# Raw pixels, the input of every kerascnn model: int8 with scale 1 and zero point -128, as
# the post-training int8 export calibrates it.
INPUT_RANGE = (0.0, 255.0)
# Layers whose output holds values of their input, which keep their input's quantisation.
PASSTHROUGH = (
    keras.layers.MaxPooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.ZeroPadding2D,
    keras.layers.InputLayer,
)


QUANTIZED = {
    keras.layers.Conv2D: QuantizedConv2D,
    keras.layers.DepthwiseConv2D: QuantizedDepthwiseConv2D,
    keras.layers.Dense: QuantizedDense,
}


def quantization_aware(model: keras.Model) -> keras.Model:
    """A copy of the functional ``model`` (its weights copied) that trains with fake
    quantisation: its Conv2D, DepthwiseConv2D and Dense layers replaced by the ``Quantized``
    ones (same configuration and weights), an ``ActivationRange`` after every layer but the
    ``PASSTHROUGH`` ones, and one pinned to raw pixels on the input. A model nested inside
    is copied as it is (a layer, with no range after it), not made quantisation-aware
    within."""
    inputs = set(map(id, model.inputs))
    readers = {
        layer.name
        for layer in model.layers
        for node in layer._inbound_nodes
        if any(id(t) in inputs for t in node.input_tensors)
    }
    pixels = ActivationRange(fixed=INPUT_RANGE, name="input_range")

    def clone(layer):
        kind = QUANTIZED.get(type(layer), type(layer))
        return kind.from_config(layer.get_config())

    def call(layer, *args, **kwargs):
        if layer.name in readers:
            args = (pixels(args[0]), *args[1:])
        outputs = layer(*args, **kwargs)
        if isinstance(layer, PASSTHROUGH) or isinstance(layer, keras.Model):
            return outputs
        return ActivationRange(name=f"{layer.name}_range")(outputs)

    quantized = keras.models.clone_model(model, clone_function=clone, call_function=call)
    copy_weights(model, quantized)
    return quantized


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Each layer's weights into the layer of the same name in ``target``."""
    by_name = {layer.name: layer for layer in flat_layers(target)}
    for layer in flat_layers(source):
        if layer.weights:
            by_name[layer.name].set_weights(layer.get_weights())


def activation_ranges(model: keras.Model) -> dict[str, tuple[float, float]]:
    """Each ``ActivationRange``'s ``(min, max)``, by layer name."""
    return {
        layer.name: (
            float(ops.convert_to_numpy(layer.range_min)),
            float(ops.convert_to_numpy(layer.range_max)),
        )
        for layer in flat_layers(model)
        if isinstance(layer, ActivationRange)
    }
