"""Whether a run can fit in this machine's memory, known before anything is allocated.

The network is built once under ``keras.StatelessScope(initialize_variables=False)``: every
layer computes its output shape and declares its weights, and no weight is allocated, so an
absurd input size (LeNet-5 at 100000x100000 declares 6.3 trillion weights) costs a fraction of
a second instead of a ``ResourceExhaustedError`` from deep inside TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from kerascnn.data.pipeline import machine_memory
from kerascnn.errors import InvalidArgumentError
from kerascnn.models import create_model

BYTES_PER_VALUE = 4  # float32


@dataclass
class Footprint:
    """The sizes of a network, counted from its declared shapes."""

    parameters: int
    activations_per_image: int  # the values of every layer's output for one image
    outputs: int = 1  # the network's outputs (auxiliary classifiers add theirs)

    def training_bytes(self, batch_size: int) -> int:
        """A lower bound on what one training step holds: the weights and one batch's layer
        outputs (training also keeps gradients, optimiser state and workspace besides)."""
        return BYTES_PER_VALUE * (self.parameters + batch_size * self.activations_per_image)


def footprint(name: str, input_shape: tuple[int, int, int], **options) -> Footprint:
    """Build model ``name`` without allocating its weights and count them and its outputs.

    Raises:
        KerasCNNError / ValueError: as ``create_model`` does for bad options or sizes.
    """
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = create_model(name, input_shape=input_shape, **options)
            parameters = sum(int(np.prod(w.shape)) for w in model.weights)
            activations = sum(_output_values(layer) for layer in model.layers)
            outputs = len(model.outputs)
    finally:
        keras.backend.clear_session()
    return Footprint(parameters, activations, outputs)


def _output_values(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.Model):  # a nested network: its own layers' outputs
        return sum(_output_values(inner) for inner in layer.layers)
    outputs = layer.output if isinstance(layer.output, list | tuple) else [layer.output]
    return sum(int(np.prod(t.shape[1:])) for t in outputs)


def check_fits(
    name: str, input_shape: tuple[int, int, int], batch_size: int, **options
) -> Footprint:
    """``footprint`` of the run's network, refused when even its lower bound for one
    training step exceeds the machine's memory.

    Raises:
        InvalidArgumentError: the run cannot fit, with the estimate.
    """
    found = footprint(name, input_shape, **options)
    memory = machine_memory()
    needed = found.training_bytes(batch_size)
    if memory is not None and needed > memory:
        size = "x".join(map(str, input_shape))
        raise InvalidArgumentError(
            f"{name} at {size} needs at least {_bytes(needed)} for one training step of "
            f"{batch_size} images ({_bytes(BYTES_PER_VALUE * found.parameters)} of weights, "
            f"{_bytes(BYTES_PER_VALUE * batch_size * found.activations_per_image)} of layer "
            f"outputs), more than this machine's {_bytes(memory)} of memory; choose a "
            f"smaller --image-size or --batch-size"
        )
    return found


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.3g} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
