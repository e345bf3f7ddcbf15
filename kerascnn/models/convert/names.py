"""Which torchvision module each of our layers is: one explicit name map per family.

A map takes the built model's spec options and returns ``{our layer name: torchvision module
prefix}`` for every layer with weights (the ``preprocessing`` layer excepted), and the
prefixes of torchvision's classifier (left over, not wrong, when ``include_top=False``). The
names are spelt out from each family's layer table, never matched by the order of layers, so a
layer that moves fails loudly instead of receiving its neighbour's weights.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import alexnet, densenet, googlenet, resnet, squeezenet, vgg


@dataclass(frozen=True)
class NameMap:
    """Our layer names and torchvision's module prefixes, torchvision's classifier, and the
    prefixes of modules a checkpoint may hold that we take nothing from (GoogLeNet's
    auxiliary heads, which torchvision publishes untrained)."""

    modules: dict[str, str]
    head: tuple[str, ...]
    ignored: tuple[str, ...] = ()


def resnet_names(options: Mapping[str, Any], layer_names: Iterable[str]) -> NameMap:
    """torchvision's ``ResNet``: ``conv1``/``bn1``, ``layer{s}.{b}.conv{i}``/``bn{i}``,
    ``downsample.0``/``.1`` (the projection), ``fc``; ours ``conv{s+1}_block{b+1}_{i}_conv``."""
    modules = {"conv1_conv": "conv1", "conv1_bn": "bn1", "predictions": "fc"}
    block = re.compile(r"conv(\d)_block(\d+)_(\d)_(conv|bn)")
    for name in layer_names:
        match = block.fullmatch(name)
        if not match:
            continue
        stage, number, index, kind = match.groups()
        prefix = f"layer{int(stage) - 1}.{int(number) - 1}"
        if index == "0":
            modules[name] = f"{prefix}.downsample.{0 if kind == 'conv' else 1}"
        else:
            modules[name] = f"{prefix}.{kind}{index}"
    return NameMap(modules, head=("fc",))


# Table 1's configurations torchvision builds (torchvision/models/vgg.py, cfgs A, B, D, E).
TORCHVISION_VGG_CONFIGS = ("A", "B", "D", "E")


def vgg_names(options: Mapping[str, Any], layer_names: Iterable[str]) -> NameMap:
    """torchvision's ``VGG``: ``features.{i}`` numbered through the conv[, BN], ReLU and pool
    modules of the configuration (Table 1), ``classifier.0``, ``.3``, ``.6`` (FC, ReLU,
    dropout between)."""
    batch_norm = options.get("batch_norm", False)
    config = options.get("config", "D")
    if config not in TORCHVISION_VGG_CONFIGS:  # A-LRN and C (1x1 convolutions)
        raise InvalidArgumentError(
            f"torchvision's VGGs are configurations {', '.join(TORCHVISION_VGG_CONFIGS)} "
            f"(vgg11, vgg13, vgg16, vgg19 and their _bn); configuration {config} has no "
            f"torchvision layout"
        )
    modules = {"fc1": "classifier.0", "fc2": "classifier.3", "predictions": "classifier.6"}
    index = 0
    for block_index, block in enumerate(vgg.CONFIGS[config], start=1):
        for conv_index in range(1, len(block) + 1):
            name = f"block{block_index}_conv{conv_index}"
            modules[name] = f"features.{index}"
            if batch_norm:
                modules[f"{name}_bn"] = f"features.{index + 1}"
            index += 3 if batch_norm else 2  # conv, [BN,] ReLU
        index += 1  # max pool
    return NameMap(modules, head=("classifier.",))


def densenet_names(options: Mapping[str, Any], layer_names: Iterable[str]) -> NameMap:
    """torchvision's ``DenseNet``: ``features.conv0``/``norm0``, ``denseblock{i}.denselayer{j}``
    (``norm1``, ``conv1``, ``norm2``, ``conv2``), ``transition{i}`` (``norm``, ``conv``),
    ``norm5``, ``classifier``."""
    modules = {
        "conv1_conv": "features.conv0",
        "conv1_bn": "features.norm0",
        "bn": "features.norm5",
        "predictions": "classifier",
    }
    layer_modules = {"0_bn": "norm1", "1_conv": "conv1", "1_bn": "norm2", "2_conv": "conv2"}
    for stage, count in enumerate(options.get("blocks", (6, 12, 24, 16)), start=1):
        for layer in range(1, count + 1):
            for ours, theirs in layer_modules.items():
                modules[f"conv{stage + 1}_block{layer}_{ours}"] = (
                    f"features.denseblock{stage}.denselayer{layer}.{theirs}"
                )
        modules[f"pool{stage + 1}_bn"] = f"features.transition{stage}.norm"
        modules[f"pool{stage + 1}_conv"] = f"features.transition{stage}.conv"
    return NameMap(modules, head=("classifier",))


def squeezenet_names(options: Mapping[str, Any], layer_names: Iterable[str]) -> NameMap:
    """torchvision's ``SqueezeNet``: ``features.{i}`` numbered through conv1, ReLU, the max
    pools and the Fire modules (``squeeze``, ``expand1x1``, ``expand3x3``); ``classifier.1``
    (conv10, after dropout)."""
    layout = squeezenet.VERSIONS[options.get("version", "1.0")]
    modules = {"conv1": "features.0", "conv10": "classifier.1"}
    index = 3  # conv1, ReLU, max pool
    for offset in range(len(squeezenet.FIRE_MODULES)):
        number = squeezenet.FIRST_FIRE + offset
        for part in ("squeeze1x1", "expand1x1", "expand3x3"):
            theirs = "squeeze" if part == "squeeze1x1" else part
            modules[f"fire{number}_{part}"] = f"features.{index}.{theirs}"
        index += 2 if number in layout["pool_after"] else 1
    return NameMap(modules, head=("classifier.",))


def alexnet_names(options: Mapping[str, Any], layer_names: Iterable[str]) -> NameMap:
    """torchvision's ``AlexNet`` (``alexnet_owt``): ``features.{i}`` numbered through the
    convolutions, ReLUs and max pools, ``classifier.1``, ``.4``, ``.6`` (dropout before each
    hidden FC layer)."""
    if options.get("config") != "owt" or options.get("towers", 1) != 1:
        raise InvalidArgumentError(
            "torchvision's AlexNet is alexnet_owt (Krizhevsky 2014), not this layout"
        )
    modules = {f"conv{i + 1}": f"features.{index}" for i, index in enumerate((0, 3, 6, 8, 10))}
    modules.update({"fc6": "classifier.1", "fc7": "classifier.4", "predictions": "classifier.6"})
    return NameMap(modules, head=("classifier.",))


def googlenet_bn_names(options: Mapping[str, Any], layer_names: Iterable[str]) -> NameMap:
    """torchvision's ``GoogLeNet``: ``conv1``-``conv3`` and ``inception{m}.branch1``,
    ``branch2.0``/``.1``, ``branch3.0``/``.1``, ``branch4.1`` (after the pooling), each a
    ``BasicConv2d`` (``.conv``, ``.bn``); ``fc``. Its ``aux1``/``aux2`` are left alone."""
    stem = {"conv1_7x7_s2": "conv1", "conv2_3x3_reduce": "conv2", "conv2_3x3": "conv3"}
    branches = {
        "1x1": "branch1",
        "3x3_reduce": "branch2.0",
        "3x3": "branch2.1",
        "5x5_reduce": "branch3.0",
        "5x5": "branch3.1",
        "pool_proj": "branch4.1",
    }
    for module in googlenet.GOOGLENET_MODULES:
        for ours, theirs in branches.items():
            stem[f"inception_{module}_{ours}"] = f"inception{module}.{theirs}"
    modules = {"predictions": "fc"}
    for ours, theirs in stem.items():
        modules[f"{ours}_conv"] = f"{theirs}.conv"
        modules[f"{ours}_bn"] = f"{theirs}.bn"
    return NameMap(modules, head=("fc",), ignored=("aux1.", "aux2."))


# Our builder -> its map.
NAME_MAPS: dict[Callable[..., Any], Callable[..., NameMap]] = {
    resnet.ResNet: resnet_names,
    vgg.VGG: vgg_names,
    densenet.DenseNet: densenet_names,
    squeezenet.SqueezeNet: squeezenet_names,
    alexnet.AlexNet: alexnet_names,
    googlenet.GoogLeNetBN: googlenet_bn_names,
}

# torchvision's DenseNet checkpoints were published with the names of an older torchvision
# ("denselayer1.norm.1.weight" for "denselayer1.norm1.weight"); torchvision's own loader
# renames them with this pattern (torchvision/models/densenet.py, _load_state_dict).
OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def modern_keys(tensors: dict) -> dict:
    """``tensors`` with old DenseNet names renamed as torchvision renames them."""
    renamed = {}
    for key, value in tensors.items():
        match = OLD_DENSENET_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


# timm's VGG (timm/models/vgg.py, ``ConvMlp``): fc1 and fc2 as convolutions, the classifier
# as ``head.fc``; torchvision's modules of the same layers.
TIMM_VGG_MODULES = {
    "pre_logits.fc1": "classifier.0",
    "pre_logits.fc2": "classifier.3",
    "head.fc": "classifier.6",
}


def from_timm(tensors: dict) -> dict:
    """``tensors`` in torchvision's names: timm's VGG keys renamed and its convolutional fc1
    (4096, 512, 7, 7) and fc2 (4096, 4096, 1, 1) flattened to torchvision's linear layout,
    the same (C, H, W) order. Other checkpoints are returned as they are (timm names
    ResNet's and DenseNet's tensors as torchvision does)."""
    if "pre_logits.fc1.weight" not in tensors:
        return tensors
    renamed = {}
    for key, value in tensors.items():
        module, _, kind = key.rpartition(".")
        if module in TIMM_VGG_MODULES:
            key = f"{TIMM_VGG_MODULES[module]}.{kind}"
            if kind == "weight" and value.ndim == 4:
                value = value.reshape(value.shape[0], -1)
        renamed[key] = value
    return renamed
