"""torchvision's ImageNet weights for our networks: the published files, their conversion, and
``weights="torchvision"``.

``PUBLISHED`` is torchvision's model table (torchvision 0.29, ``torchvision.models``'
``*_Weights.DEFAULT``: the URL, and the ImageNet-1K validation top-1/top-5 torchvision
publishes for those weights at its evaluation resize and 224x224 centre crop; see
https://docs.pytorch.org/vision/stable/models.html). A converted model takes raw 0-255 pixels
with torchvision's normalisation ``(x / 255 - mean) / std`` as its first layer, so
``ours(x) == torchvision_model((x / 255 - mean) / std)``.

``weights="torchvision"`` downloads the published file once into Keras's cache
(``~/.keras/models``, through ``keras.utils.get_file``), checks the SHA-256 prefix in its
name as ``torch.hub`` does, converts it and saves the converted ``.weights.h5`` beside it; later
builds load that file. ``conversion.convert_checkpoint`` does the same for a file already on
disk (the ``kerascnn convert`` command).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from kerascnn.errors import InvalidArgumentError
from kerascnn.models.convert import assign, names
from kerascnn.models.layers import flat_layers
from kerascnn.models.spec import (
    KERAS_TF_MEAN,
    KERAS_TF_STD,
    TORCHVISION_IMAGENET_MEAN,
    TORCHVISION_IMAGENET_STD,
    ModelSpec,
)
from kerascnn.weights import read_checkpoint

SOURCE = "torchvision"
STATISTICS = {"mean": TORCHVISION_IMAGENET_MEAN, "std": TORCHVISION_IMAGENET_STD}
# Attributes of a converted .weights.h5: which model and which input normalisation its
# weights expect (a Keras weights file stores no preprocessing: our Normalization layer's
# statistics are constants, not variables).
MODEL_ATTRIBUTE, MEAN_ATTRIBUTE, STD_ATTRIBUTE = "kerascnn_model", "kerascnn_mean", "kerascnn_std"
URL_ROOT = "https://download.pytorch.org/models/"
# Who republishes torchvision's weights (the same statistics): kerascnn.models.convert.timm.
REPUBLISHERS = ("timm",)
# Where downloads go: None for Keras's cache (``~/.keras``, or ``$KERAS_HOME``).
CACHE_DIR: str | None = None


@dataclass(frozen=True)
class Published:
    """One file of torchvision's table: ``URL_ROOT + file``, the weights' name in torchvision
    (``IMAGENET1K_V1``), ImageNet-1K validation top-1/top-5 (%) and the resize before the
    224x224 centre crop of its evaluation."""

    file: str
    weights: str
    top1: float
    top5: float
    resize: int = 256
    # The raw-pixel statistics the weights expect: torchvision's normalisation, except where
    # the network transforms its input further (GoogLeNet's ``transform_input``).
    mean: tuple[float, ...] = TORCHVISION_IMAGENET_MEAN
    std: tuple[float, ...] = TORCHVISION_IMAGENET_STD

    @property
    def statistics(self) -> dict[str, tuple[float, ...]]:
        return {"mean": self.mean, "std": self.std}

    @property
    def url(self) -> str:
        return URL_ROOT + self.file

    @property
    def sha256_prefix(self) -> str:
        """torch.hub's convention: the file name ends in the first hex digits of its SHA-256."""
        return re.search(r"-([0-9a-f]{6,})\.pth$", self.file).group(1)


V1, V2 = "IMAGENET1K_V1", "IMAGENET1K_V2"
# Our name -> torchvision's default ImageNet weights for the same network.
PUBLISHED: dict[str, Published] = {
    "resnet18": Published("resnet18-f37072fd.pth", V1, 69.758, 89.078),
    "resnet34": Published("resnet34-b627a593.pth", V1, 73.314, 91.42),
    "resnet50_v1_5": Published("resnet50-11ad3fa6.pth", V2, 80.858, 95.434, 232),
    "resnet101_v1_5": Published("resnet101-cd907fc2.pth", V2, 81.886, 95.78, 232),
    "resnet152_v1_5": Published("resnet152-f82ba261.pth", V2, 82.284, 96.002, 232),
    "resnext50_32x4d": Published("resnext50_32x4d-1a0047aa.pth", V2, 81.198, 95.34, 232),
    "wide_resnet50_2": Published("wide_resnet50_2-9ba9bcbe.pth", V2, 81.602, 95.758, 232),
    "vgg11": Published("vgg11-8a719046.pth", V1, 69.02, 88.628),
    "vgg11_bn": Published("vgg11_bn-6002323d.pth", V1, 70.37, 89.81),
    "vgg13": Published("vgg13-19584684.pth", V1, 69.928, 89.246),
    "vgg13_bn": Published("vgg13_bn-abd245e5.pth", V1, 71.586, 90.374),
    "vgg16": Published("vgg16-397923af.pth", V1, 71.592, 90.382),
    "vgg16_bn": Published("vgg16_bn-6c64b313.pth", V1, 73.36, 91.516),
    "vgg19": Published("vgg19-dcbb9e9d.pth", V1, 72.376, 90.876),
    "vgg19_bn": Published("vgg19_bn-c79401a0.pth", V1, 74.218, 91.842),
    "densenet121": Published("densenet121-a639ec97.pth", V1, 74.434, 91.972),
    "densenet161": Published("densenet161-8d451a50.pth", V1, 77.138, 93.56),
    "densenet169": Published("densenet169-b2777c0a.pth", V1, 75.6, 92.806),
    "densenet201": Published("densenet201-c1103571.pth", V1, 76.896, 93.37),
    "squeezenet1_0": Published("squeezenet1_0-b66bff10.pth", V1, 58.092, 80.42),
    "squeezenet1_1": Published("squeezenet1_1-b8a52dc0.pth", V1, 58.178, 80.624),
    "alexnet_owt": Published("alexnet-owt-7be5be79.pth", V1, 56.522, 79.066),
    # Trained with transform_input=True: torchvision's normalisation undone into x / 127.5 - 1.
    "googlenet_bn": Published(
        "googlenet-1378be20.pth", V1, 69.778, 89.53, mean=KERAS_TF_MEAN, std=KERAS_TF_STD
    ),
}


def statistics(spec: ModelSpec) -> dict[str, tuple[float, ...]]:
    """The input statistics of ``spec``'s converted torchvision weights."""
    entry = PUBLISHED.get(spec.name)
    return dict(entry.statistics if entry else STATISTICS)


def published(spec: ModelSpec) -> Published:
    """torchvision's entry for ``spec``, or a one-line error listing the names that have one."""
    entry = PUBLISHED.get(spec.name)
    if entry is None:
        raise InvalidArgumentError(
            f"{spec.title} has no torchvision weights; networks with them: {', '.join(PUBLISHED)}"
        )
    return entry


def name_map(spec: ModelSpec, model: keras.Model | None = None) -> names.NameMap:
    """torchvision's module of each of ``model``'s layers; without ``model``, only whether
    ``spec``'s layout is one torchvision builds (raising if not), before building anything."""
    family = names.NAME_MAPS.get(spec.builder)
    if family is None:
        raise InvalidArgumentError(f"no torchvision name map for {spec.title}")
    layer_names = [] if model is None else [layer.name for layer in model.layers]
    return family({**spec.family_options(), **spec.options}, layer_names)


def load_checkpoint(spec: ModelSpec, model: keras.Model, path: str | os.PathLike) -> None:
    """Read a torchvision checkpoint (``.pth`` or ``.safetensors``; or timm's file of
    torchvision's weights) of ``spec``'s network into ``model`` (built with torchvision's
    statistics), every shape checked first."""
    tensors = names.modern_keys(names.from_timm(read_checkpoint(path)))
    pending = assign.plan_assignment(model, name_map(spec, model), tensors, source=Path(path).name)
    assign.assign(pending)


def save_converted(model: keras.Model, spec: ModelSpec, out: str | os.PathLike) -> Path:
    """``model``'s weights as a Keras ``.weights.h5``, marked with the model's name and the
    input statistics they expect (``create_model(name, weights=out)`` reads them back)."""
    out = Path(out)
    if not out.name.endswith(".weights.h5"):
        raise InvalidArgumentError(f"the converted file must end in .weights.h5; received {out}")
    partial = out.with_name(out.name + ".partial.weights.h5")
    model.save_weights(partial)
    with h5py.File(partial, "a") as file:
        file.attrs[MODEL_ATTRIBUTE] = spec.name
        expected = statistics(spec)
        file.attrs[MEAN_ATTRIBUTE] = np.asarray(expected["mean"], "float64")
        file.attrs[STD_ATTRIBUTE] = np.asarray(expected["std"], "float64")
    partial.replace(out)  # never a half-written file under the final name
    return out


def converted_statistics(spec: ModelSpec, weights: Any) -> dict[str, tuple[float, ...]]:
    """The input statistics ``weights`` expect: torchvision's for ``"torchvision"`` and for a
    file written by ``save_converted`` (which must be for ``spec``'s network); none otherwise."""
    if weights in (SOURCE, *REPUBLISHERS):
        return statistics(spec)
    path = Path(os.fspath(weights)) if isinstance(weights, str | os.PathLike) else None
    if path is None or not path.name.endswith(".weights.h5") or not path.is_file():
        return {}
    try:
        with h5py.File(path, "r") as file:
            if MODEL_ATTRIBUTE not in file.attrs:
                return {}
            converted_for = str(file.attrs[MODEL_ATTRIBUTE])
            mean = tuple(float(v) for v in file.attrs[MEAN_ATTRIBUTE])
            std = tuple(float(v) for v in file.attrs[STD_ATTRIBUTE])
    except OSError:
        return {}
    if converted_for != spec.name:
        raise InvalidArgumentError(
            f"{path} holds weights converted for {converted_for}, not {spec.name}"
        )
    return {"mean": mean, "std": std}


def downloaded_checkpoint(spec: ModelSpec, origin: str | None = None) -> Path:
    """The published file of ``spec``'s network in Keras's cache, downloaded the first time
    and checked against the SHA-256 prefix in its name (a mismatch deletes it).

    ``origin`` replaces the published URL (a mirror, or a local ``file://`` copy).
    """
    entry = published(spec)
    if CACHE_DIR is not None:  # Keras falls back to /tmp/.keras for a folder not yet made
        Path(CACHE_DIR).mkdir(parents=True, exist_ok=True)
    path = Path(
        keras.utils.get_file(
            entry.file, origin=origin or entry.url, cache_dir=CACHE_DIR, cache_subdir="models"
        )
    )
    digest = _sha256(path)
    if not digest.startswith(entry.sha256_prefix):
        path.unlink()
        raise InvalidArgumentError(
            f"{entry.file}: SHA-256 {digest[:16]}... does not start with "
            f"{entry.sha256_prefix}, as the published file's does; the download was deleted"
        )
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_weights(
    spec: ModelSpec, build, origin: str | None = None, *, checkpoint: Path | None = None
) -> Path:
    """The converted ``.weights.h5`` of the full network (include_top, 1000 classes, default
    input) beside the downloaded file (or ``checkpoint``, already downloaded: timm's);
    ``build(**arguments)`` builds that network."""
    if checkpoint is None:
        checkpoint = downloaded_checkpoint(spec, origin)
    stem = checkpoint.name.removesuffix(".pth").removesuffix(".safetensors")
    converted = checkpoint.with_name(stem + ".weights.h5")
    if not converted.is_file():
        model = build(include_top=True, num_classes=1000, **statistics(spec))
        load_checkpoint(spec, model, checkpoint)
        save_converted(model, spec, converted)
    return converted


def copy_by_name(source: keras.Model, target: keras.Model, *, what: str) -> None:
    """``source``'s weights into ``target``'s layers of the same names (all of ``target``'s
    weighted layers must be in ``source``, with the same shapes), checked before assigning.
    Nested models' layers (stochastic depth's branches) count as layers of their own."""
    by_name = {layer.name: layer for layer in flat_layers(source)}
    pending = []
    for layer in flat_layers(target):
        if not layer.weights or layer.name in assign.OWN_LAYERS:
            continue
        theirs = by_name.get(layer.name)
        if theirs is None:
            raise InvalidArgumentError(f"{what} have no layer {layer.name} for {target.name}")
        values = theirs.get_weights()
        if [v.shape for v in values] != [tuple(w.shape) for w in layer.weights]:
            raise InvalidArgumentError(
                f"{what} do not fit {target.name}'s {layer.name}: "
                f"{[v.shape for v in values]} != {[tuple(w.shape) for w in layer.weights]} "
                f"(a classifier reading a flattened map needs the default input size; "
                f"include_top=False takes any)"
            )
        pending.append((layer, values))
    assign.assign(pending)


def check_head(spec: ModelSpec, arguments: Mapping[str, Any], source: str = SOURCE) -> None:
    if arguments["include_top"] and arguments["num_classes"] != 1000:
        raise InvalidArgumentError(
            f"weights={source!r} with include_top=True needs num_classes=1000; received "
            f"num_classes={arguments['num_classes']} (use include_top=False for a new classifier)"
        )
