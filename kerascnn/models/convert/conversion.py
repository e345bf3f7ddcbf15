"""``kerascnn convert``: a torchvision checkpoint on disk into our network's ``.weights.h5``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from kerascnn.errors import InvalidArgumentError, MissingFileError
from kerascnn.models.convert import names, torchvision
from kerascnn.models.factory import create_model
from kerascnn.models.spec import MODELS
from kerascnn.weights import CHECKPOINT_SUFFIXES


@dataclass(frozen=True)
class Conversion:
    """What ``convert_checkpoint`` wrote: the file, the network, its parameters, the time."""

    out: Path
    model: str
    parameters: int
    seconds: float


def convert_checkpoint(
    checkpoint: str | os.PathLike, name: str, out: str | os.PathLike, *, overwrite: bool = False
) -> Conversion:
    """Convert a torchvision ``state_dict`` (``.pth`` or ``.safetensors``) of network ``name``
    into ``out``, the ``.weights.h5`` of our ``name`` with its classifier (1000 classes) and
    torchvision's input statistics; ``create_model(name, weights=out)`` loads it.

    Everything is checked before ``out`` is written: the names, the file, every tensor.

    Raises:
        UnknownNameError: ``name`` is not registered.
        MissingFileError: no such checkpoint.
        InvalidArgumentError: ``name`` has no torchvision layout, ``out`` exists (without
            ``overwrite``) or is not a ``.weights.h5``, or the checkpoint does not fit.
    """
    spec = MODELS.get(name)
    checkpoint, out = Path(checkpoint), Path(out)
    if spec.builder not in names.NAME_MAPS:
        families = sorted(n for n in MODELS.names() if MODELS.get(n).builder in names.NAME_MAPS)
        raise InvalidArgumentError(
            f"{spec.title} has no torchvision layout to convert from; networks that have one: "
            f"{', '.join(families)}"
        )
    if not out.name.endswith(".weights.h5"):
        raise InvalidArgumentError(f"--out must end in .weights.h5; received {out}")
    if out.exists() and not overwrite:
        raise InvalidArgumentError(f"{out} exists; pass --overwrite to replace it")
    if not checkpoint.is_file():
        raise MissingFileError(f"checkpoint not found: {checkpoint}")
    if not checkpoint.name.endswith(CHECKPOINT_SUFFIXES):
        raise InvalidArgumentError(
            f"{checkpoint}: a checkpoint must be a {', '.join(CHECKPOINT_SUFFIXES)} file"
        )
    torchvision.name_map(spec)  # a layout torchvision does not build, before building it
    started = time.perf_counter()
    model = create_model(name, **torchvision.statistics(spec))
    torchvision.load_checkpoint(spec, model, checkpoint)
    torchvision.save_converted(model, spec, out)
    return Conversion(out, name, model.count_params(), time.perf_counter() - started)
