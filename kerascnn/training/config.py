"""The training configuration: every field once, with its default, help text and choices
(STYLE 7; ``kerascnn.settings``).

``TrainConfig`` holds the run's own fields (model, dataset, length, criterion, speed) and one
section per part of the library that reads the rest, each defined beside its owner:

- ``data``: ``kerascnn.data.config.DataConfig`` (reading, augmentation, test-time views);
- ``optimization``: ``optimizers.OptimizationConfig`` (optimiser, weight decay);
- ``lr_schedule``: ``schedules.ScheduleConfig`` (learning rate and its schedule);
- ``transfer``: ``transfer.TransferConfig`` (initial weights, frozen layers);
- ``distribution``: ``distribute.DistributionConfig`` (the strategy);
- ``distillation``: ``distillation.DistillationConfig`` (a teacher to learn from);
- ``logging``: ``tensorboard.LoggingConfig`` (TensorBoard beyond the scalars);
- ``adversarial_training``: ``adversarial.AdversarialConfig`` (attacks during training);
- ``output``: ``OutputConfig`` below (where the run and its export go).

Files and flags name every field flat, by its own name (``learning_rate``, ``mixup``), as they
always have; no field name is also a section name, so a flat key is never ambiguous. A config
file may also group fields under their section (``data: {mixup: 0.2}``). Reading a flat name
from a ``TrainConfig`` (``config.mixup``) reads through to its section; libraries take the
section they need (``config.data``).

Precedence: defaults < recipe < ``--config FILE`` (YAML) < command-line flags. The resolved
configuration is written to the run directory as ``config.yaml``, flat.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import typing
from pathlib import Path
from typing import Any

import yaml

from kerascnn.data import DATASETS
from kerascnn.data.config import DataConfig
from kerascnn.errors import InvalidArgumentError
from kerascnn.files import read_yaml, write_text_atomically
from kerascnn.settings import check, coerce, default_of, setting
from kerascnn.training import batchnorm
from kerascnn.training.adversarial import AdversarialConfig
from kerascnn.training.distillation import DistillationConfig
from kerascnn.training.distribute import DistributionConfig
from kerascnn.training.losses import LOSSES
from kerascnn.training.optimizers import OptimizationConfig
from kerascnn.training.schedules import ScheduleConfig
from kerascnn.training.tensorboard import LoggingConfig
from kerascnn.training.transfer import TransferConfig


def parse_size(text: str) -> tuple[int, int]:
    """``32`` (square) or ``32x40`` (height x width)."""
    try:
        parts = [int(p) for p in str(text).lower().replace(",", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or any(p < 1 for p in parts):
        raise ValueError(f"expected N or HxW with positive integers, got {text!r}")
    return (parts[0], parts[-1])


def dataset_forms() -> list[str]:
    """What ``dataset`` may be: a registered name, a folder, a file or ``SCHEME:ARGUMENT``."""
    schemes = [f"{s}:{DATASETS.get(s).argument}" for s in DATASETS.schemes()]
    return [*DATASETS.names(), "an image folder", "a .npz file", *schemes]


@dataclasses.dataclass
class OutputConfig:
    """Where a run and its export are written."""

    run_name: str | None = setting(None, "Run directory name.", shown="<model>-<dataset>-<time>")
    output_dir: str = setting("runs", "Runs go here.", directory=True)
    export_dir: str = setting("saved_models", "Exports go here.", directory=True)
    export: bool = setting(True, "Export after training.", flag="switch")
    overwrite: bool = setting(False, "Replace an existing run and export.", flag="on")

    def __post_init__(self) -> None:
        name = self.run_name
        if name is not None and (not name or "/" in name or name in (".", "..")):
            raise InvalidArgumentError(
                f"run_name must be a plain directory name; received {name!r}"
            )


def section(cls: type) -> dataclasses.Field:
    return dataclasses.field(default_factory=cls, metadata={"section": cls})


@dataclasses.dataclass(init=False)
class TrainConfig:
    """Everything ``kerascnn train`` needs; README "Options" explains each field.

    ``TrainConfig(epochs=5, mixup=0.2)`` takes any field by its flat name (or a whole
    section, ``data=DataConfig(...)``) and checks every value."""

    model: str = setting("lenet5", "Registered model name (see `kerascnn models`).")
    dataset: str = setting("digits", "{choices} (README: Data).", names=lambda: dataset_forms())
    epochs: int = setting(30, "Training epochs.", low=1)
    batch_size: int = setting(32, "Batch size (global: split across replicas).", low=1)
    loss: str = setting(
        "auto",
        "Training criterion: {choices} (auto: the model's, the paper's).",
        names=lambda: ["auto", *LOSSES.names()],
    )
    label_smoothing: float = setting(0.0, "Label smoothing epsilon.", low=0, high=1, high_open=True)
    image_size: tuple[int, int] | None = setting(
        None, "Input size N or HxW.", shown="the model's", parse=parse_size, metavar="SIZE"
    )
    seed: int = setting(0, "Random seed.")
    model_options: dict[str, Any] = setting(
        help="Family option, e.g. variant=modern (repeatable).",
        factory=dict,
        shown="",
        option="--model-option",
        metavar="KEY=VALUE",
    )
    early_stopping: int | None = setting(
        None,
        "Stop after PATIENCE epochs without a lower validation error.",
        low=1,
        shown="off",
        metavar="PATIENCE",
    )
    mixed_precision: str | None = setting(
        None, "Mixed precision.", choices=("float16", "bfloat16"), shown="off: float32"
    )
    jit_compile: bool = setting(False, "Compile with XLA.", flag="on", shown="Keras decides")
    steps_per_execution: int = setting(1, "Training steps per call into TensorFlow.", low=1)
    recompute_bn_stats: str = setting(
        "auto",
        "Recompute batch-norm statistics over the training split before the final "
        "evaluation and export: {choices} (auto: runs shorter than 5 averaging windows).",
        choices=batchnorm.MODES,
    )
    # The recipe (kerascnn/configs/<name>.yaml) the run started from, if any.
    recipe: str | None = setting(
        None, "A paper's recipe (see `kerascnn recipes`); --config overrides it.", shown=""
    )
    optimization: OptimizationConfig = section(OptimizationConfig)
    lr_schedule: ScheduleConfig = section(ScheduleConfig)
    data: DataConfig = section(DataConfig)
    transfer: TransferConfig = section(TransferConfig)
    distribution: DistributionConfig = section(DistributionConfig)
    distillation: DistillationConfig = section(DistillationConfig)
    logging: LoggingConfig = section(LoggingConfig)
    adversarial_training: AdversarialConfig = section(AdversarialConfig)
    output: OutputConfig = section(OutputConfig)

    def __init__(self, **values: Any) -> None:
        given = {name: {} for name in sections()}
        for key, value in values.items():
            if key in sections() and not isinstance(value, dict):
                given[key] = value  # a whole section
            elif key in sections():
                given[key] = {**given[key], **value}
            elif key in owners():
                given[owners()[key]][key] = value
            elif key not in own_fields():
                raise TypeError(f"TrainConfig got an unexpected keyword argument {key!r}")
        for name, field in own_fields().items():
            setattr(self, name, values.get(name, default_of(field)))
        for name, cls in sections().items():
            chosen = given[name]
            setattr(self, name, chosen if isinstance(chosen, cls) else cls(**chosen))
        self._check()

    def _check(self) -> None:
        check(self)
        if self.image_size is not None:
            size = tuple(self.image_size)
            if len(size) != 2 or any(s < 1 for s in size):
                raise InvalidArgumentError(
                    f"image_size must be two positive integers (height, width); "
                    f"received {self.image_size!r}"
                )
            self.image_size = size

    def __getattr__(self, name: str) -> Any:
        """A section's field by its flat name: ``config.mixup`` is ``config.data.mixup``."""
        owner = owners().get(name)
        if owner is None or owner not in self.__dict__:
            raise AttributeError(f"TrainConfig has no field {name!r}")
        return getattr(self.__dict__[owner], name)

    def resolved_run_name(self) -> str:
        if self.output.run_name:
            return self.output.run_name
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        return f"{self.model}-{self.dataset}-{stamp}"

    def to_dict(self) -> dict[str, Any]:
        """Every field under its flat name (what config.yaml holds)."""
        data = {name: getattr(self, name) for name in own_fields()}
        for name in sections():
            data.update(dataclasses.asdict(getattr(self, name)))
        if self.image_size is not None:
            data["image_size"] = list(self.image_size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "configuration") -> TrainConfig:
        """A config from plain data (flat keys, or sections as mappings), checking every key
        and type; one-line errors."""
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{source} must be a mapping of field: value")
        values = {}
        for key, value in data.items():
            if key in sections() and isinstance(value, dict):
                fields = hints(sections()[key])
                for inner, inner_value in value.items():
                    if inner not in fields:
                        _unknown(f"{key}.{inner}", source)
                    values[inner] = coerce(inner, inner_value, fields[inner], source)
            elif key in flat_hints():
                values[key] = coerce(key, value, flat_hints()[key], source)
            else:
                _unknown(key, source)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml(path), source=str(path))

    def updated(self, **overrides: Any) -> TrainConfig:
        """A copy with the given fields replaced (flags over file); None means 'not given'."""
        data = self.to_dict()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig.from_dict(data, source="command line")


@functools.cache
def sections() -> dict[str, type]:
    """Section name -> its dataclass, in declaration order."""
    return {
        f.name: f.metadata["section"]
        for f in dataclasses.fields(TrainConfig)
        if "section" in f.metadata
    }


@functools.cache
def own_fields() -> dict[str, dataclasses.Field]:
    """The fields of ``TrainConfig`` itself (not its sections)."""
    return {f.name: f for f in dataclasses.fields(TrainConfig) if "section" not in f.metadata}


@functools.cache
def owners() -> dict[str, str]:
    """Flat field name -> the section holding it."""
    found = {}
    for name, cls in sections().items():
        for field in dataclasses.fields(cls):
            if field.name in found or field.name in own_fields() or field.name in sections():
                raise TypeError(f"setting name {field.name!r} is used twice")
            found[field.name] = name
    return found


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """Field name -> its type, the annotations' strings resolved."""
    return typing.get_type_hints(cls)


@functools.cache
def flat_hints() -> dict[str, Any]:
    """Flat field name -> its type, ``TrainConfig``'s own fields first, then each section's."""
    found = {name: hints(TrainConfig)[name] for name in own_fields()}
    for cls in sections().values():
        found.update(hints(cls))
    return found


def flat_fields() -> list[dataclasses.Field]:
    """Every field, flat, in the order of ``--help``."""
    found = list(own_fields().values())
    for cls in sections().values():
        found += dataclasses.fields(cls)
    return found


def _unknown(key: str, source: str) -> None:
    raise InvalidArgumentError(
        f"{source}: unknown field {key!r}; fields: {', '.join(flat_hints())}"
    )


def write_yaml(path: str | Path, data: Any) -> None:
    write_text_atomically(path, yaml.safe_dump(data, sort_keys=False))
