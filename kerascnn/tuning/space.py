"""A search space over ``TrainConfig`` fields, parsed from ``FIELD=KIND:ARGUMENTS``, and its
coarse-to-fine narrowing.

Kinds (CS231n "training neural networks": search at random, on a log scale for rates):

- ``log:LOW:HIGH``: log-uniform (``0 < LOW < HIGH``), for a float or an integer field;
- ``uniform:LOW:HIGH``: uniform, for a float field;
- ``int:LOW:HIGH``: an integer in ``[LOW, HIGH]``, for an integer field;
- ``choice:A,B,C``: one of the values (read as YAML scalars, checked against the field's type).

Each dimension becomes a KerasTuner hyperparameter of the field's name (``to_hyperparameters``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras_tuner
import yaml

from kerascnn.errors import InvalidArgumentError, UnknownNameError
from kerascnn.settings import about, coerce
from kerascnn.training.config import OutputConfig, TrainConfig, flat_fields, flat_hints

KINDS = ("log", "uniform", "int", "choice")
# Fields that name files or directories, or where a search would write: never searched.
UNSEARCHABLE = (
    "dataset",
    "init_from",
    "recipe",
    *(name for name in OutputConfig.__dataclass_fields__),
)
SEARCHABLE_TYPES = (bool, int, float, str)


@dataclass(frozen=True)
class Dimension:
    """One searched field: ``kind`` and its bounds (``low``, ``high``) or ``choices``."""

    field: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def spec(self) -> str:
        """The ``FIELD=KIND:ARGUMENTS`` text this dimension reads back from."""
        if self.kind == "choice":
            return f"{self.field}=choice:{','.join(_scalar(c) for c in self.choices)}"
        return f"{self.field}={self.kind}:{self.low:g}:{self.high:g}"

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.choices
        return self.low <= value <= self.high

    def width(self) -> float:
        """The size of the range: log-width for ``log``, the number of choices for ``choice``."""
        if self.kind == "choice":
            return len(self.choices)
        if self.kind == "log":
            return math.log(self.high / self.low)
        return self.high - self.low


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def field_type(name: str) -> type:
    """The field's scalar type (``int`` for ``int | None``), or an error if it is not one a
    search can vary."""
    if name not in flat_hints():
        raise InvalidArgumentError(
            f"--search: unknown field {name!r}; fields: {', '.join(searchable_fields())}"
        )
    hint = flat_hints()[name]
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    scalar = args[0] if len(args) == 1 else hint
    if name in UNSEARCHABLE or scalar not in SEARCHABLE_TYPES:
        raise InvalidArgumentError(
            f"--search: {name} cannot be searched (a path, an output setting or not a single "
            f"value); searchable fields: {', '.join(searchable_fields())}"
        )
    return scalar


def searchable_fields() -> list[str]:
    found = []
    for name, hint in flat_hints().items():
        args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
        scalar = args[0] if len(args) == 1 else hint
        if name not in UNSEARCHABLE and scalar in SEARCHABLE_TYPES:
            found.append(name)
    return found


def parse_dimension(text: str) -> Dimension:
    """``learning_rate=log:1e-4:1e-1`` -> a checked ``Dimension`` (see the module's kinds)."""
    name, sep, rest = text.partition("=")
    kind, _, arguments = rest.partition(":")
    if not sep or not name.strip() or kind not in KINDS:
        raise InvalidArgumentError(
            f"--search {text!r}: expected FIELD=KIND:ARGUMENTS with KIND one of "
            f"{', '.join(KINDS)} (e.g. learning_rate=log:1e-4:1e-1)"
        )
    name = name.strip()
    scalar = field_type(name)
    if kind == "choice":
        items = [item.strip() for item in arguments.split(",") if item.strip()]
        if not items:
            raise InvalidArgumentError(f"--search {text!r}: an empty choice")
        values = tuple(coerce(name, _yaml_scalar(i), flat_hints()[name], "--search") for i in items)
        if len(set(values)) != len(values):
            raise InvalidArgumentError(f"--search {text!r}: a value is listed twice")
        return _checked(Dimension(name, kind, choices=values))
    return _checked(_range(text, name, kind, arguments, scalar))


def _yaml_scalar(item: str) -> Any:
    try:
        return yaml.safe_load(item)
    except yaml.YAMLError:
        return item


def _range(text: str, name: str, kind: str, arguments: str, scalar: type) -> Dimension:
    parts = arguments.split(":")
    try:
        low, high = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        low = high = None
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidArgumentError(f"--search {text!r}: expected {kind}:LOW:HIGH with numbers")
    if low >= high:
        raise InvalidArgumentError(f"--search {text!r}: LOW must be below HIGH")
    if kind == "log" and low <= 0:
        raise InvalidArgumentError(f"--search {text!r}: a log range needs 0 < LOW")
    if scalar is bool or scalar is str:
        raise InvalidArgumentError(f"--search {text!r}: {name} takes choice:..., not a range")
    if scalar is int and kind == "uniform":
        kind = "int"  # an integer field: a uniform range is an integer one
    if scalar is float and kind == "int":
        raise InvalidArgumentError(f"--search {text!r}: {name} is a number; use uniform or log")
    if scalar is int and not (low.is_integer() and high.is_integer()):
        raise InvalidArgumentError(f"--search {text!r}: {name} takes integer bounds")
    return Dimension(name, kind, low, high)


def _checked(dimension: Dimension) -> Dimension:
    """Every end of the range (or every choice) must make a valid ``TrainConfig``."""
    values = dimension.choices or (dimension.low, dimension.high)
    scalar = field_type(dimension.field)
    names = about(flat_fields_by_name()[dimension.field]).names
    for value in values:
        try:
            TrainConfig(**{dimension.field: scalar(value) if scalar is int else value})
        except InvalidArgumentError as error:
            raise InvalidArgumentError(f"--search {dimension.spec()}: {error}") from None
        if names is not None and value not in names():
            raise UnknownNameError(
                f"--search {dimension.spec()}: unknown {dimension.field} {value!r}; "
                f"known: {', '.join(names())}"
            )
    return dimension


def flat_fields_by_name() -> dict[str, Any]:
    return {f.name: f for f in flat_fields()}


def parse_space(texts: Sequence[str]) -> list[Dimension]:
    dimensions = [parse_dimension(text) for text in texts]
    names = [d.field for d in dimensions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidArgumentError(f"--search: {', '.join(repeated)} given twice")
    return dimensions


def to_hyperparameters(dimensions: Sequence[Dimension]) -> keras_tuner.HyperParameters:
    """The space as KerasTuner hyperparameters, one per field, named after it."""
    hp = keras_tuner.HyperParameters()
    for d in dimensions:
        scalar = field_type(d.field)
        if d.kind == "choice":
            hp.Choice(d.field, list(d.choices))
        elif scalar is int:
            sampling = "log" if d.kind == "log" else "linear"
            hp.Int(d.field, int(d.low), int(d.high), sampling=sampling)
        else:
            hp.Float(d.field, d.low, d.high, sampling="log" if d.kind == "log" else "linear")
    return hp


# -- coarse to fine ------------------------------------------------------------------------

# Each narrowed range reaches this fraction of the old range's width beyond the top trials.
REFINE_MARGIN = 0.1


def refine(dimension: Dimension, top_values: Sequence[Any]) -> Dimension:
    """The dimension narrowed around ``top_values`` (the best trials' values): a range spans
    them with ``REFINE_MARGIN`` of the old width either side (log-scaled for ``log``), clipped
    to the old range; a choice keeps the values the top trials took."""
    if dimension.kind == "choice":
        kept = tuple(c for c in dimension.choices if c in top_values)
        return Dimension(dimension.field, "choice", choices=kept)
    log = dimension.kind == "log"
    forward = math.log if log else (lambda v: v)
    backward = math.exp if log else (lambda v: v)
    margin = REFINE_MARGIN * dimension.width()
    low = max(forward(dimension.low), forward(min(top_values)) - margin)
    high = min(forward(dimension.high), forward(max(top_values)) + margin)
    low, high = backward(low), backward(high)
    if field_type(dimension.field) is int:
        low, high = math.floor(low), math.ceil(high)
        low, high = max(low, int(dimension.low)), min(high, int(dimension.high))
        if low == high:  # an integer range needs two ends
            return Dimension(dimension.field, "choice", choices=(low,))
    return Dimension(dimension.field, dimension.kind, low, high)
