"""timm's republication of torchvision's ImageNet weights: ``weights="timm"``.

timm (pytorch-image-models) republishes torchvision's ImageNet weights as safetensors files on
the Hugging Face hub, one repository per network and weights (``timm/resnet18.tv_in1k``;
``tv2_in1k`` for torchvision's ``IMAGENET1K_V2``), in timm's module names: ResNet, ResNeXt, Wide
ResNet and DenseNet name their tensors as torchvision does; timm's VGG holds fc1 and fc2 as
convolutions (``pre_logits.fc1``, 7x7 over pool5's map, and ``pre_logits.fc2``, 1x1) and the
classifier as ``head.fc`` (``names.from_timm`` renames them). ``REPUBLISHED`` lists, for each
of our networks, the same weights as torchvision's ``PUBLISHED`` entry (so the same ImageNet
accuracy). SqueezeNet, AlexNet and GoogLeNet are not republished by timm.

``weights="timm"`` downloads ``https://huggingface.co/<repo>/resolve/main/model.safetensors``
once into Keras's cache (``keras.utils.get_file``), converts it and saves the converted
``.weights.h5`` beside it. What is checked: the hub publishes each file's SHA-256 (the Git LFS
object id of its repository) but kerascnn records none, so the download's hash is not
compared; the file is fetched over HTTPS, is never unpickled (safetensors holds arrays only),
and every tensor's name and shape is checked against the network before anything is assigned.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models.convert import torchvision
from kerascnn.models.spec import ModelSpec

SOURCE = "timm"
HUB_ROOT = "https://huggingface.co/"
FILE = "model.safetensors"


@dataclass(frozen=True)
class Republished:
    """A Hugging Face hub repository of timm holding torchvision's weights of one network."""

    repo: str
    revision: str = "main"

    @property
    def url(self) -> str:
        return f"{HUB_ROOT}{self.repo}/resolve/{self.revision}/{FILE}"

    @property
    def cached_name(self) -> str:
        """The download's name in Keras's cache: ``timm_resnet18.tv_in1k.safetensors``."""
        return self.repo.replace("/", "_") + ".safetensors"


# timm's tag for each of torchvision's weights.
TAGS = {torchvision.V1: "tv_in1k", torchvision.V2: "tv2_in1k"}
# timm's architecture names where they are not ours (timm's resnet50 is v1.5).
TIMM_ARCHITECTURES = {
    "resnet50_v1_5": "resnet50",
    "resnet101_v1_5": "resnet101",
    "resnet152_v1_5": "resnet152",
}
# Our networks whose torchvision weights timm republishes (timm 1.0's default_cfgs).
NETWORKS = (
    *("resnet18", "resnet34", "resnet50_v1_5", "resnet101_v1_5", "resnet152_v1_5"),
    *("resnext50_32x4d", "wide_resnet50_2"),
    *("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"),
    *("densenet121", "densenet161", "densenet169", "densenet201"),
)
REPUBLISHED: dict[str, Republished] = {
    name: Republished(
        f"timm/{TIMM_ARCHITECTURES.get(name, name)}.{TAGS[torchvision.PUBLISHED[name].weights]}"
    )
    for name in NETWORKS
}


def published(spec: ModelSpec) -> Republished:
    """timm's repository for ``spec``, or a one-line error listing the names that have one."""
    entry = REPUBLISHED.get(spec.name)
    if entry is None:
        raise InvalidArgumentError(
            f"{spec.title} has no timm weights; networks with them: {', '.join(REPUBLISHED)}"
        )
    return entry


def downloaded_checkpoint(spec: ModelSpec, origin: str | None = None) -> Path:
    """timm's safetensors file of ``spec``'s network in Keras's cache, downloaded the first
    time (no hash is compared: see the module's docstring)."""
    entry = published(spec)
    if torchvision.CACHE_DIR is not None:
        Path(torchvision.CACHE_DIR).mkdir(parents=True, exist_ok=True)
    return Path(
        keras.utils.get_file(
            entry.cached_name,
            origin=origin or entry.url,
            cache_dir=torchvision.CACHE_DIR,
            cache_subdir="models",
        )
    )


def cached_weights(spec: ModelSpec, build, origin: str | None = None) -> Path:
    """The converted ``.weights.h5`` of the full network beside the downloaded file."""
    return torchvision.cached_weights(spec, build, checkpoint=downloaded_checkpoint(spec, origin))


check_head = functools.partial(torchvision.check_head, source=SOURCE)
