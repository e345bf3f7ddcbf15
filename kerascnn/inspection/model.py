"""Find what inspection needs in any registered network, from the model itself: the first
convolution, the layer Grad-CAM looks at, the penultimate features and the class scores.

Every model takes raw pixels (0-255) and starts with its preprocessing layer, so every
gradient here is with respect to raw pixels.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerascnn.adversarial.attacks import score_tensor  # noqa: F401  (inspection's name for it)
from kerascnn.errors import InvalidArgumentError
from kerascnn.models.lenet import ScaledTanh
from kerascnn.runtime import load_artifact


@dataclass
class Inspectable:
    """A Keras model with what is known about it: metadata.json, and the run directory."""

    model: keras.Model
    metadata: dict[str, Any]
    path: Path
    run_dir: Path | None  # set when the source is a run directory (it has logs/)

    @property
    def class_names(self) -> list[str]:
        names = self.metadata.get("class_names")
        if names:
            return [str(n) for n in names]
        return [str(i) for i in range(int(self.model.output.shape[-1]))]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.model.input_shape[1:])


def load_inspectable(source: str | Path) -> Inspectable:
    """A run directory, export directory or ``.keras`` file, as a Keras model.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: ``source`` is a SavedModel or TFLite file (no layers to look into).
    """
    artifact = load_artifact(source)
    if artifact.keras_model is None:
        raise InvalidArgumentError(
            f"{source} is a {artifact.kind} artifact; inspection needs the layers of a .keras "
            f"model (a run directory, an export directory or a .keras file)"
        )
    source = Path(source)
    is_run = source.is_dir() and (source / "metrics.json").is_file()
    return Inspectable(
        model=artifact.keras_model,
        metadata=artifact.metadata,
        path=artifact.path,
        run_dir=source if is_run else None,
    )


def get_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """The layer called ``name``; an unknown name lists a few that exist."""
    try:
        return model.get_layer(name)
    except ValueError:
        names = [layer.name for layer in model.layers]
        close = [n for n in names if name.lower() in n.lower()] or names[-8:]
        raise InvalidArgumentError(
            f"model {model.name!r} has no layer {name!r}; layers include: {', '.join(close)}"
        ) from None


def _spatial(layer: keras.layers.Layer) -> tuple[int, int] | None:
    shape = layer.output.shape
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def first_conv(model: keras.Model) -> keras.layers.Layer:
    """The first layer (in graph order) with a 4-D convolution kernel."""
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) == 4:
            return layer
    raise InvalidArgumentError(f"model {model.name!r} has no convolutional layer")


def feature_map_layer(model: keras.Model, name: str | None = None) -> keras.layers.Layer:
    """``name``, or the default for Grad-CAM and activations: the last layer whose output is a
    4-D map larger than 1x1 (before global pooling or flattening; a 1x1 map cannot localise).

    Raises:
        ValueError: ``name`` is unknown or its output is not a 4-D feature map.
    """
    if name is not None:
        layer = get_layer(model, name)
        if _spatial(layer) is None:
            raise InvalidArgumentError(
                f"layer {name!r} has output shape {tuple(layer.output.shape)}; it needs a "
                f"(batch, height, width, channels) feature map"
            )
        return layer
    candidates = [
        layer
        for layer in model.layers[1:]
        if _spatial(layer) is not None and max(_spatial(layer)) > 1
    ]
    if not candidates:
        raise InvalidArgumentError(f"model {model.name!r} has no spatial feature map")
    return candidates[-1]


def penultimate_tensor(model: keras.Model):
    """The input of the classifier: the last layer that holds weights (Dense, or LeNet-5's
    RBF units). A 4-D input (NIN's last convolution) is averaged over space."""
    for layer in reversed(model.layers):
        if layer.weights:
            return layer.input
    raise InvalidArgumentError(f"model {model.name!r} has no layer with weights")


def submodel(model: keras.Model, outputs) -> keras.Model:
    return keras.Model(model.input, outputs)


def features(model: keras.Model, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Penultimate features of raw-pixel ``images``, (N, D) float32."""
    extractor = submodel(model, penultimate_tensor(model))
    out = [
        np.asarray(extractor(images[i : i + batch_size], training=False))
        for i in range(0, len(images), batch_size)
    ]
    values = np.concatenate(out).astype("float32")
    if values.ndim == 4:
        values = values.mean(axis=(1, 2))
    return values.reshape(len(images), -1)


def preprocessing_mean(model: keras.Model) -> np.ndarray | None:
    """The per-channel raw-pixel mean of the model's Normalization layer, if it has one."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            return np.ravel(np.asarray(layer.mean, dtype="float32"))
    return None


# Layers that are elementwise nonlinearities: guided backpropagation gates their gradients.
def _is_activation_layer(layer: keras.layers.Layer) -> bool:
    kinds = (
        keras.layers.Activation,
        keras.layers.ReLU,
        keras.layers.LeakyReLU,
        keras.layers.ELU,
        keras.layers.PReLU,
        ScaledTanh,
    )
    if isinstance(layer, keras.layers.Activation):
        return layer.activation not in (keras.activations.softmax, keras.activations.linear)
    return isinstance(layer, kinds)


def _guided(fn):
    """``fn`` with its backward pass gated: only positive gradients flow back through it
    (Springenberg et al. 2015), on top of the function's own derivative (x > 0 for ReLU)."""

    def call(x, *args, **kwargs):
        @tf.custom_gradient
        def gated(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x, *args, **kwargs)

            def grad(dy):
                return tape.gradient(y, x, output_gradients=tf.nn.relu(dy))

            return y, grad

        return gated(x)

    return call


@contextlib.contextmanager
def guided_backprop(model: keras.Model):
    """Inside this block, ``model``'s activations back-propagate only positive gradients:
    activation layers and the fused activations of convolutions and dense layers."""
    patched = []
    for layer in model.layers:
        if _is_activation_layer(layer):
            patched.append((layer, "call", layer.call))
            # object.__setattr__: past Keras's attribute tracking, on this instance only.
            object.__setattr__(layer, "call", _guided(layer.call))
        else:
            activation = getattr(layer, "activation", None)
            if activation is not None and activation not in (
                keras.activations.linear,
                keras.activations.softmax,
            ):
                patched.append((layer, "activation", activation))
                object.__setattr__(layer, "activation", _guided(activation))
    try:
        yield model
    finally:
        for layer, attribute, original in reversed(patched):
            if attribute == "call":
                object.__delattr__(layer, "call")  # back to the class's method
            else:
                object.__setattr__(layer, "activation", original)
