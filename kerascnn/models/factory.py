"""The one door every model is built through (STYLE 1): ``create_model`` and ``list_models``.
What is known of a model without building it, ``model_info``, is in ``catalogue.py``."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from kerascnn.errors import InvalidArgumentError, MissingFileError, first_line
from kerascnn.models import features, layers, pretrained
from kerascnn.models.convert import timm, torchvision
from kerascnn.models.spec import MODELS, ModelSpec

WEIGHT_SUFFIXES = (".weights.h5", ".keras")
# weights= values converted from PyTorch checkpoints, and the module that fetches each.
CONVERTED = {torchvision.SOURCE: torchvision, timm.SOURCE: timm}


def create_model(
    name: str,
    /,
    *,
    input_shape: Sequence[int] | None = None,
    num_classes: int = 1000,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **options: Any,
) -> keras.Model:
    """Build a registered architecture.

    Args:
        name: a registered name (see ``list_models()``), e.g. ``"lenet5"``; positional, so
            the family option ``name=`` can rename the built model.
        input_shape: (height, width, channels) of the raw 0-255 pixels the model takes; None
            for the model's default (the paper's input).
        num_classes: classifier units.
        include_top: include the classifier; otherwise the model ends at its last feature map.
        pooling: with ``include_top=False``: None (4-D feature map), "avg" or "max".
        classifier_activation: "softmax" (probabilities) or None (logits).
        weights: None (random initialisation); ``"imagenet"`` for the published ImageNet
            weights of the keras.applications model of the same name (models with a
            ``keras_application`` in their spec; downloaded once into Keras's cache);
            ``"torchvision"`` for torchvision's ImageNet weights, converted (the networks of
            ``kerascnn.models.convert.PUBLISHED``; downloaded and converted once, into Keras's
            cache; the model then normalises its input with torchvision's statistics);
            ``"timm"`` for the same weights as timm republishes them on the Hugging Face hub
            (``kerascnn.models.convert.timm.REPUBLISHED``, safetensors); or a
            ``.weights.h5``/``.keras`` file saved from this architecture or from that
            keras.applications model (or converted by ``kerascnn convert``).
        features_only: return the backbone's feature maps instead (``features.feature_model``):
            one output per stage, at strides 2, 4, 8, 16, 32 (as many as the network has),
            described by the model's ``feature_info``; ``include_top`` and ``pooling`` are
            then ignored.
        out_indices: with ``features_only``, the stages to output (default: all).
        **options: family options (``variant="modern"`` for LeNet-5, ``shortcut="B"`` for the
            CIFAR ResNets, ``mean``/``std`` to replace the registered pixel statistics).

    Returns:
        An uncompiled ``keras.Model``.

    Raises:
        ValueError: unknown name (listing the closest names), unknown option, input smaller
            than the model's minimum, weights that do not fit, or ``out_indices`` that are not
            stages (listing those that are).
        FileNotFoundError: ``weights`` names a file that does not exist.
    """
    spec = MODELS.get(name)
    input_shape = _check_input_shape(spec, input_shape)
    if features_only:
        include_top, pooling = False, None
    elif out_indices is not None:
        raise InvalidArgumentError("out_indices needs features_only=True")
    layers.check_head_arguments(num_classes, include_top, pooling)
    kwargs = {**spec.options, "mean": spec.mean, "std": spec.std}
    if weights is not None:  # converted weights expect their own input statistics
        kwargs.update(torchvision.converted_statistics(spec, weights))
    valid = sorted(spec.family_options())
    for key, value in options.items():
        if key not in valid:
            raise InvalidArgumentError(
                f"{spec.title} has no option {key!r}; valid options: {', '.join(valid)}"
            )
        kwargs[key] = value
    model = spec.builder(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        **kwargs,
    )
    if weights is not None:
        _load_weights(
            spec,
            model,
            weights,
            input_shape=input_shape,
            num_classes=num_classes,
            include_top=include_top,
            options=kwargs,
        )
    if features_only:
        return features.feature_model(model, out_indices, spec.feature_layers, spec.title)
    return model


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally filtered by a shell pattern (``"resnet*"``)."""
    return MODELS.names(pattern)


def published_statistics(name: str, weights: str) -> dict[str, tuple[float, ...]]:
    """The ``mean``/``std`` options a model of ``name`` needs for published ``weights``
    (torchvision's statistics for ``"torchvision"``; none for ``"imagenet"``, whose networks
    are registered with their application's)."""
    return torchvision.converted_statistics(MODELS.get(name), weights)


def check_published(name: str, weights: str) -> None:
    """Refuse ``weights`` ("imagenet", "torchvision", "timm") not published for ``name``."""
    spec = MODELS.get(name)
    if weights in CONVERTED:
        CONVERTED[weights].published(spec)
    elif weights == "imagenet" and spec.keras_application is None:
        raise InvalidArgumentError(f"{spec.title} has no keras.applications ImageNet weights")
    elif weights != "imagenet":
        raise InvalidArgumentError(
            f"published weights are 'imagenet', 'torchvision' or 'timm'; received {weights!r}"
        )


def _check_input_shape(spec: ModelSpec, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    if input_shape is None:
        return tuple(spec.input_shape)
    try:
        shape = tuple(int(d) for d in input_shape)
        valid = len(shape) == 3 and all(d > 0 for d in shape)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise InvalidArgumentError(
            f"input_shape must be (height, width, channels) with positive sizes; "
            f"received input_shape={input_shape!r}"
        )
    min_h, min_w = spec.min_size
    if shape[0] < min_h or shape[1] < min_w:
        raise InvalidArgumentError(
            f"{spec.title} needs inputs of at least {min_h}x{min_w}; received input_shape={shape}"
        )
    return shape


def _load_weights(
    spec: ModelSpec,
    model: keras.Model,
    weights: str | os.PathLike,
    **application_arguments: Any,
) -> None:
    application = spec.keras_application
    if isinstance(weights, str) and weights in CONVERTED:
        _load_converted(spec, model, application_arguments, CONVERTED[weights])
        return
    if weights == "imagenet":
        if application is None:
            raise InvalidArgumentError(
                f"{spec.title} has no published ImageNet weights; weights must be None or a "
                f"path to a .weights.h5 or .keras file"
            )
        source = pretrained.keras_application_model(spec, weights, **application_arguments)
        _transfer_application_weights(spec, source, model, application_arguments)
        return
    path = Path(weights)
    if application is not None and path.is_file() and not pretrained.saved_by_kerascnn(path):
        # Saved from the keras.applications model (a Keras 3 file, or Keras's own .h5
        # downloads): Keras's preprocessing, BGR included, is part of those weights' contract.
        source = pretrained.keras_application_model(spec, path, **application_arguments)
        _transfer_application_weights(spec, source, model, application_arguments)
        return
    target = model
    if len(model.outputs) > 1 and path.is_file():
        # An inference model's weights (no auxiliary heads) into a network built with them.
        inference = layers.main_head(model)
        if pretrained.stored_variable_count(path) == len(inference.weights):
            target = inference
    load_weights(target, path)


def _transfer_application_weights(
    spec: ModelSpec, source: keras.Model, model: keras.Model, arguments: dict
) -> None:
    """The keras.applications model's weights into ``model``, layer by layer in order; a
    model with stochastic depth (its branches nested) gets them through the same network
    without it, copied by layer name."""
    if not any(layers.nested_model(layer) for layer in model.layers):
        pretrained.transfer_weights(source, model, bgr=spec.keras_application.bgr)
        return
    plain = spec.builder(
        input_shape=arguments["input_shape"],
        num_classes=arguments["num_classes"],
        include_top=arguments["include_top"],
        pooling=None,  # poolings and activations hold no weights
        classifier_activation=None,
        **{**arguments["options"], "stochastic_depth": None},
    )
    pretrained.transfer_weights(source, plain, bgr=spec.keras_application.bgr)
    torchvision.copy_by_name(plain, model, what=f"keras.applications' {spec.name} weights")


def _load_converted(spec: ModelSpec, model: keras.Model, arguments: dict, source) -> None:
    """torchvision's weights (from torchvision, or timm's republication: ``source``),
    converted once into Keras's cache, copied by layer name into ``model`` (any input size and
    head the weights fit)."""
    source.published(spec)
    source.check_head(spec, arguments)
    build = functools.partial(create_model, spec.name, **torchvision.statistics(spec))
    cached = source.cached_weights(spec, build)
    reference = build(include_top=True, num_classes=1000)
    reference.load_weights(cached)
    # Auxiliary heads (aux_logits=True) start afresh: torchvision publishes none trained.
    torchvision.copy_by_name(
        reference, layers.main_head(model), what=f"{source.SOURCE}'s {spec.name} weights"
    )


def load_weights(model: keras.Model, weights: str | os.PathLike) -> None:
    """Load a ``.weights.h5`` or ``.keras`` file into ``model``, with one-line errors."""
    path = Path(weights)
    if not str(path).endswith(WEIGHT_SUFFIXES):
        raise InvalidArgumentError(
            f"weights must be None or a path to a .weights.h5 or .keras file; "
            f"{model.name} has no named weights {str(weights)!r}"
        )
    if not path.is_file():
        raise MissingFileError(f"weights file not found: {path}")
    try:
        model.load_weights(path)
    except Exception as error:  # Keras raises ValueError or KeyError with long messages
        raise InvalidArgumentError(
            f"weights in {path} do not fit {model.name}: {first_line(error)}"
        ) from error
