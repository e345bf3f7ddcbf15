"""Transfer learning: start from published or another run's weights, freeze the early layers.

``--weights imagenet|torchvision`` starts every layer but the classifier from the published
ImageNet weights of the network (keras.applications' or torchvision's, converted; see
``create_model``); the classifier, sized for the dataset's classes, starts afresh, and the
network normalises its input as those weights expect.

``--init-from`` takes a run directory (its ``model.keras``, else ``checkpoints/best.keras``),
a ``.keras`` file or a ``.weights.h5`` file. Layers whose name and weight shapes match are
loaded; the rest (typically the classifier, sized for other classes) keep their fresh
initialisation. Simonyan & Zisserman (2015) initialised the deeper VGG configurations from a
trained configuration A this way: ``vgg13`` from ``vgg11`` loads every layer they share.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import keras
import numpy as np

from kerascnn.errors import InvalidArgumentError, MissingFileError
from kerascnn.models import create_model, published_statistics
from kerascnn.settings import setting

PUBLISHED_WEIGHTS = ("imagenet", "torchvision", "timm")


@dataclass
class TransferConfig:
    """Where a run's weights start and which layers stay frozen."""

    weights: str | None = setting(
        None,
        "Start from published ImageNet weights ({choices}: keras.applications', "
        "torchvision's, or torchvision's as timm republishes them); the classifier starts "
        "afresh.",
        choices=PUBLISHED_WEIGHTS,
        shown="",
    )
    init_from: str | None = setting(
        None,
        "Start from the matching layers of a run, .keras or .weights.h5.",
        metavar="RUN_DIR_OR_WEIGHTS",
        shown="",
    )
    freeze_until: str | None = setting(
        None, "Freeze layers up to and including LAYER.", metavar="LAYER", shown=""
    )
    trainable_from: str | None = setting(
        None, "Freeze the layers before LAYER.", metavar="LAYER", shown=""
    )

    def __post_init__(self) -> None:
        if self.freeze_until and self.trainable_from:
            raise InvalidArgumentError("give freeze_until or trainable_from, not both")
        if self.weights and self.init_from:
            raise InvalidArgumentError("give weights or init_from, not both")

    def model_options(self, name: str) -> dict:
        """Build options the weights need (the input statistics they were trained with)."""
        return published_statistics(name, self.weights) if self.weights else {}

    def apply(self, model: keras.Model, *, name: str | None = None, **build) -> list[str]:
        """Load and freeze as configured; lines saying what was done. ``name`` and ``build``
        (``input_shape`` and options) rebuild the network for ``weights``."""
        notes = []
        if self.weights:
            notes.append(load_published(model, name, self.weights, **build))
        if self.init_from:
            notes += init_from(model, self.init_from).lines()
        frozen = freeze(model, until=self.freeze_until, trainable_from=self.trainable_from)
        if frozen:
            notes.append(f"frozen {len(frozen)} layers: {frozen[0]} ... {frozen[-1]}")
        return notes


@dataclass
class TransferReport:
    source: Path
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: reason"

    def lines(self) -> list[str]:
        lines = [f"init from {self.source}: loaded {len(self.loaded)} layers"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}: {'; '.join(self.skipped)}")
        return lines


def layers_of(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers, looking through a wrapper such as ``AuxiliaryLossModel``."""
    network = getattr(model, "network", None)
    return list(network.layers) if isinstance(network, keras.Model) else list(model.layers)


def source_weights(source: str | Path) -> tuple[Path, dict[str, list[np.ndarray]]]:
    """``{layer key: weights}`` of a run directory, ``.keras`` or ``.weights.h5``."""
    path = Path(source)
    if path.is_dir():
        for candidate in (path / "model.keras", path / "checkpoints" / "best.keras"):
            if candidate.is_file():
                path = candidate
                break
        else:
            raise MissingFileError(f"--init-from: {source} has no model.keras or checkpoints")
    if not path.is_file():
        raise MissingFileError(f"--init-from: {source} not found")
    if path.name.endswith(".weights.h5"):
        return path, _weights_file(path)
    if path.suffix != ".keras":
        raise InvalidArgumentError(
            f"--init-from takes a run directory, .keras or .weights.h5 file; received {source}"
        )
    model = keras.saving.load_model(path, compile=False)
    return path, {
        layer.name: [np.asarray(w) for w in layer.get_weights()]
        for layer in layers_of(model)
        if layer.weights
    }


def _weights_file(path: Path) -> dict[str, list[np.ndarray]]:
    """A ``.weights.h5`` names layers as Keras writes them (class name, then _1, _2...), so
    those keys are matched with the same keys computed for the model being trained."""
    weights = {}
    with h5py.File(path, "r") as file:
        group = file["layers"]
        if len(group) == 1 and "layers" in next(iter(group.values())):  # a wrapped network
            group = next(iter(group.values()))["layers"]
        for key, layer in group.items():
            arrays = layer.get("vars", {})
            values = [np.asarray(arrays[str(i)]) for i in range(len(arrays))]
            if values:
                weights[key] = values
    return weights


def _keras_keys(layers) -> list[str]:
    counts: dict[str, int] = {}
    keys = []
    for layer in layers:
        base = re.sub(r"(?<!^)(?=[A-Z])", "_", layer.__class__.__name__).lower()
        count = counts.get(base, 0)
        counts[base] = count + 1
        keys.append(base if count == 0 else f"{base}_{count}")
    return keys


def init_from(model: keras.Model, source: str | Path) -> TransferReport:
    """Load the weights of ``source``'s layers into ``model``'s layers of the same name and
    weight shapes; report what was loaded and what was skipped."""
    path, weights = source_weights(source)
    layers = [layer for layer in layers_of(model)]
    keys = _keras_keys(layers) if path.name.endswith(".weights.h5") else [x.name for x in layers]
    report = TransferReport(source=path)
    for key, layer in zip(keys, layers, strict=True):
        if not layer.weights:
            continue
        values = weights.get(key)
        if values is None:
            report.skipped.append(f"{layer.name} (not in the source)")
            continue
        ours = [tuple(w.shape) for w in layer.weights]
        theirs = [tuple(v.shape) for v in values]
        if ours != theirs:
            report.skipped.append(f"{layer.name} (shapes {theirs} != {ours})")
            continue
        layer.set_weights(values)
        report.loaded.append(layer.name)
    if not report.loaded:
        raise InvalidArgumentError(f"--init-from {source}: no layer matches the model")
    return report


def load_published(model: keras.Model, name: str, weights: str, **build) -> str:
    """Every layer of ``name`` without its classifier, built with ``weights``, into ``model``'s
    layers of the same names (the classifier keeps its fresh initialisation)."""
    source = create_model(name, include_top=False, weights=weights, **build)
    targets = {layer.name: layer for layer in layers_of(model)}
    loaded = 0
    for layer in source.layers:
        if layer.weights and layer.name in targets:
            targets[layer.name].set_weights(layer.get_weights())
            loaded += 1
    return f"{weights} weights: loaded {loaded} layers; the classifier starts afresh"


def freeze(model: keras.Model, *, until: str | None = None, trainable_from: str | None = None):
    """Freeze the layers up to and including ``until``, or those before ``trainable_from``;
    returns the names of the frozen layers. Frozen batch normalisation runs in inference
    mode (Keras 3), as fine-tuning wants."""
    name = until or trainable_from
    if name is None:
        return []
    layers = layers_of(model)
    names = [layer.name for layer in layers]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InvalidArgumentError(f"the model has no layer {name!r}{hint}")
    stop = names.index(name) + (1 if until else 0)
    for layer in layers[:stop]:
        layer.trainable = False
    return names[:stop]
