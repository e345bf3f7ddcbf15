"""Weights from keras.applications: ``weights="imagenet"`` and files saved from those models.

Our networks lay out their weighted layers in the same order and shapes as the
keras.applications model of the same name (``ModelSpec.keras_application``); ours add only a
``preprocessing`` layer in front (raw pixels in, the application's preprocessing inside) and,
when built with them, auxiliary heads. The weights are copied layer by layer in order, each
pair checked for equal shapes, so a layout that drifts from Keras's fails loudly.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from kerascnn.errors import InvalidArgumentError, first_line
from kerascnn.models.layers import main_head
from kerascnn.models.spec import ModelSpec

# Layers of ours that the keras.applications model does not have.
OWN_LAYERS = frozenset({"preprocessing"})


def keras_application_model(
    spec: ModelSpec,
    weights: str | os.PathLike,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    include_top: bool,
    options: dict[str, Any],
) -> keras.Model:
    """The keras.applications model matching ``spec``, with ``weights`` loaded.

    ``weights="imagenet"`` downloads Keras's published weights into Keras's own cache
    (``~/.keras/models``) the first time.
    """
    application = spec.keras_application
    constructor = getattr(keras.applications, application.name)
    kwargs = {key: options[key] for key in application.options if key in options}
    if weights == "imagenet" and include_top and num_classes != 1000:
        raise InvalidArgumentError(
            f"weights='imagenet' with include_top=True needs num_classes=1000; received "
            f"num_classes={num_classes} (use include_top=False for a new classifier)"
        )
    try:
        return constructor(
            weights=str(weights),
            include_top=include_top,
            input_shape=tuple(input_shape),
            classes=num_classes if include_top else 1000,
            **kwargs,
        )
    except InvalidArgumentError:
        raise
    except Exception as error:  # Keras raises ValueError, OSError or h5py errors
        raise InvalidArgumentError(
            f"keras.applications.{application.name} could not load weights {str(weights)!r}: "
            f"{first_line(error)}"
        ) from error


def transfer_weights(source: keras.Model, target: keras.Model, *, bgr: bool = False) -> None:
    """Copy ``source``'s weights into ``target`` layer by layer, in order.

    Args:
        source: the keras.applications model.
        target: ours; its ``preprocessing`` layer and any auxiliary heads are left alone.
        bgr: flip the first convolution's input channels (BGR-trained kernels, RGB input).

    Raises:
        ValueError: the two models' weighted layers differ in number or shape.
    """
    theirs = [layer for layer in source.layers if layer.weights]
    ours = [
        layer
        for layer in main_head(target).layers
        if layer.weights and layer.name not in OWN_LAYERS
    ]
    if len(theirs) != len(ours):
        raise InvalidArgumentError(
            f"{source.name} has {len(theirs)} layers with weights, {target.name} has "
            f"{len(ours)}; the weights do not fit"
        )
    pending = []
    for index, (their_layer, our_layer) in enumerate(zip(theirs, ours, strict=True)):
        values = [np.asarray(v) for v in their_layer.get_weights()]
        shapes = [tuple(w.shape) for w in our_layer.weights]
        if [v.shape for v in values] != shapes:
            raise InvalidArgumentError(
                f"weights of {source.name}/{their_layer.name} {[v.shape for v in values]} do "
                f"not fit {target.name}/{our_layer.name} {shapes}"
            )
        if bgr and index == 0:
            values[0] = values[0][:, :, ::-1, :]
        pending.append((our_layer, values))
    for our_layer, values in pending:  # only once every layer fits: never half-loaded
        our_layer.set_weights(values)


def saved_by_kerascnn(path: str | os.PathLike) -> bool:
    """Whether a weights file was saved from one of our models: Keras 3 files key layers by
    class and order, not by name, so ours are told apart from keras.applications' by our
    ``preprocessing`` (Normalization) layer, which no keras.applications model we mirror has."""
    weights = _open_weights(path)
    if weights is None:
        return False
    with weights:
        return "layers/normalization" in weights


def stored_variable_count(path: str | os.PathLike) -> int | None:
    """The number of layer variables stored in a Keras 3 weights file (None if unreadable)."""
    weights = _open_weights(path)
    if weights is None:
        return None
    counted = []
    with weights:
        if "layers" in weights:
            weights["layers"].visititems(
                lambda _, item: counted.append(1) if isinstance(item, h5py.Dataset) else None
            )
    return len(counted)


def _open_weights(path: str | os.PathLike) -> h5py.File | None:
    """The Keras 3 weights of a ``.weights.h5`` or ``.keras`` file (None for anything else)."""
    path = Path(path)
    try:
        if path.name.endswith(".weights.h5"):
            return h5py.File(path, "r")
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                return h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    return None
