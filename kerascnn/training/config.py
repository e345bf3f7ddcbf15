"""The training configuration: every field with its default in one place (STYLE 7).

Precedence: defaults < ``--config FILE`` (YAML) < command-line flags. The resolved
configuration is written to the run directory as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from kerascnn.errors import InvalidArgumentError, MissingFileError
from kerascnn.files import write_text_atomically


@dataclasses.dataclass
class TrainConfig:
    """Everything ``kerascnn train`` needs; see README.md for each field."""

    model: str = "lenet5"
    dataset: str = "digits"
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    # Training criterion; "auto" takes the model's (the paper's) from its registry entry.
    loss: str = "auto"
    # (height, width) fed to the model; None means the model's default input size.
    image_size: tuple[int, int] | None = None
    seed: int = 0
    run_name: str | None = None
    output_dir: str = "runs"
    export_dir: str = "saved_models"
    export: bool = True
    overwrite: bool = False
    # Family options passed to create_model, e.g. {"variant": "modern"}.
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    augmentation: str = "none"  # named augmentation recipe (kerascnn/data/ops.py, issue 5)
    tta: str = "none"  # test-time view for evaluation: none|ten-crop|multi-scale
    # The recipe (kerascnn/configs/<name>.yaml) the run started from, if any.
    recipe: str | None = None
    # Optimisation (kerascnn/training/optimizers.py, schedules.py); README lists each field.
    momentum: float = 0.9  # sgd (and rmsprop's momentum when set in optimizer_options)
    nesterov: bool = False
    weight_decay: float = 0.0
    decay_mode: str = "l2"  # l2: the papers' lambda/2 |w|^2 in the loss; decoupled: AdamW-style
    decay_bias_and_norm: bool = True  # false: no decay on biases and normalisation parameters
    # Further keyword arguments of the Keras optimiser, e.g. {rho: 0.9, epsilon: 1.0}.
    optimizer_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    label_smoothing: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    lr_decay_factor: float = 0.1  # step, multistep, exponential, plateau; inverse_time's rate
    lr_decay_epochs: float = 30.0  # step and exponential period; inverse_time's time unit
    lr_milestones: list[float] = dataclasses.field(default_factory=list)  # multistep epochs
    lr_staircase: bool = False  # exponential and inverse_time: change once per period
    lr_power: float = 1.0  # polynomial
    min_learning_rate: float = 0.0  # cosine, polynomial and plateau floor
    plateau_patience: int = 5  # epochs without a lower validation error before dividing
    # Runs that survive (kerascnn/training/resume.py, transfer.py).
    early_stopping: int | None = None  # patience in epochs on validation error
    init_from: str | None = None  # run directory, .keras or .weights.h5
    freeze_until: str | None = None  # layers up to and including this one are frozen
    trainable_from: str | None = None  # layers before this one are frozen
    # Speed.
    mixed_precision: str | None = None  # float16 or bfloat16
    jit_compile: bool = False
    steps_per_execution: int = 1
    # TensorBoard (kerascnn/training/tensorboard.py): weight histograms every N epochs (0:
    # none), validation pictures every N epochs and at the last (0: the last only), and the
    # batches (first, last) to profile.
    histogram_freq: int = 0
    tb_images_every: int = 5
    profile_batches: tuple[int, int] | None = None
    # auto|one-device|mirrored|multi-worker|tpu (kerascnn/training/distribute.py).
    strategy: str = "auto"
    # Data options (issue 5; README "Data"): pixel statistics baked into the model's first
    # layer (auto|channel-mean|mean-image), batch mixing alphas (0 = off), the evaluation
    # centre-crop fraction (None: the recipe's), unreadable images an error instead of
    # skipped, and what is subtracted from TFRecord labels.
    normalization: str = "auto"
    mixup: float = 0.0
    cutmix: float = 0.0
    crop_fraction: float | None = None
    strict: bool = False
    label_offset: int = 1

    def __post_init__(self) -> None:
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "steps_per_execution": self.steps_per_execution,
            "plateau_patience": self.plateau_patience,
        }
        if self.early_stopping is not None:
            positive["early_stopping"] = self.early_stopping
        for key, value in positive.items():
            if value < 1:
                raise InvalidArgumentError(f"{key} must be at least 1; received {value}")
        if not self.learning_rate > 0:
            raise InvalidArgumentError(
                f"learning_rate must be positive; received {self.learning_rate}"
            )
        for key in ("histogram_freq", "tb_images_every"):
            if getattr(self, key) < 0:
                raise InvalidArgumentError(
                    f"{key} must be 0 or more; received {getattr(self, key)}"
                )
        if self.profile_batches is not None:
            first, last = self.profile_batches = tuple(self.profile_batches)
            if not 1 <= first <= last:
                raise InvalidArgumentError(
                    f"profile_batches must be two batch numbers A,B with 1 <= A <= B; "
                    f"received {self.profile_batches!r}"
                )
        from kerascnn.training.distribute import check_strategy

        check_strategy(self.strategy)
        from kerascnn.data.checks import check_data_options

        check_data_options(self)
        if self.image_size is not None:
            size = tuple(self.image_size)
            if len(size) != 2 or any(s < 1 for s in size):
                raise InvalidArgumentError(
                    f"image_size must be two positive integers (height, width); "
                    f"received {self.image_size!r}"
                )
            self.image_size = size
        _check_training_fields(self)
        if self.run_name is not None and (
            not self.run_name or "/" in self.run_name or self.run_name in (".", "..")
        ):
            raise InvalidArgumentError(
                f"run_name must be a plain directory name; received {self.run_name!r}"
            )

    def resolved_run_name(self) -> str:
        if self.run_name:
            return self.run_name
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        return f"{self.model}-{self.dataset}-{stamp}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.image_size is not None:
            data["image_size"] = list(self.image_size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "configuration") -> TrainConfig:
        """A config from plain data, checking every key and type; one-line errors."""
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"{source} must be a mapping of field: value")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in data.items():
            if key not in fields:
                raise InvalidArgumentError(
                    f"{source}: unknown field {key!r}; fields: {', '.join(fields)}"
                )
            values[key] = _coerce(key, value, hints[key], source)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml(path), source=str(path))

    def updated(self, **overrides: Any) -> TrainConfig:
        """A copy with the given fields replaced (flags over file); None means 'not given'."""
        data = self.to_dict()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig.from_dict(data, source="command line")


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"config file not found: {path}")
    try:
        # safe_load never constructs Python objects from the file.
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise InvalidArgumentError(f"{path} is not valid YAML{where}") from None
    return {} if data is None else data


def write_yaml(path: str | Path, data: Any) -> None:
    write_text_atomically(path, yaml.safe_dump(data, sort_keys=False))


def _coerce(key: str, value: Any, hint: Any, source: str) -> Any:
    """Check ``value`` against the field's type, allowing int for float and list for tuple."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    bad = InvalidArgumentError(f"{source}: {key} must be {_type_name(hint)}; received {value!r}")
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise bad
        if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise bad
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(key, v, args[0], source) for v in value]
    raise TypeError(f"unsupported config type {hint}")


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return f"a list of {len(typing.get_args(hint))} integers"
    if origin is dict:
        return "a mapping"
    if origin is list:
        return "a list of numbers"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]


def _check_training_fields(config: TrainConfig) -> None:
    """Range and choice checks of the optimisation and speed fields (names are checked
    against their registries when training starts)."""
    choices = {
        "decay_mode": (config.decay_mode, ("l2", "decoupled")),
        "mixed_precision": (config.mixed_precision, (None, "float16", "bfloat16")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            names = ", ".join(str(a) for a in allowed if a is not None)
            raise InvalidArgumentError(f"{key} must be one of {names}; received {value!r}")
    non_negative = {
        "weight_decay": config.weight_decay,
        "warmup_epochs": config.warmup_epochs,
        "min_learning_rate": config.min_learning_rate,
        "momentum": config.momentum,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise InvalidArgumentError(f"{key} must be at least 0; received {value}")
    if not 0 <= config.label_smoothing < 1:
        raise InvalidArgumentError(
            f"label_smoothing must be in [0, 1); received {config.label_smoothing}"
        )
    if not config.lr_decay_factor > 0 or not config.lr_decay_epochs > 0:
        raise InvalidArgumentError(
            "lr_decay_factor and lr_decay_epochs must be positive; received "
            f"{config.lr_decay_factor} and {config.lr_decay_epochs}"
        )
    if list(config.lr_milestones) != sorted(config.lr_milestones) or any(
        m <= 0 for m in config.lr_milestones
    ):
        raise InvalidArgumentError(
            f"lr_milestones must be increasing positive epochs; received {config.lr_milestones}"
        )
    if config.freeze_until and config.trainable_from:
        raise InvalidArgumentError("give freeze_until or trainable_from, not both")
