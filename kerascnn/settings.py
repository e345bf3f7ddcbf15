"""Typed settings with their help text, choices and bounds, declared once (STYLE 7).

A configuration section is a dataclass whose fields are made with ``setting(default, help,
...)``. The field's metadata carries everything else that is said about it: the help text,
a closed set of ``choices`` (or the ``names`` of a registry, checked by the registry), numeric
bounds, how the command line spells it. ``check`` validates a section against that metadata,
``coerce`` checks a value read from YAML against the field's type, and the command line
generates its options from the same fields, so a new setting is one line in one place.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from kerascnn.errors import InvalidArgumentError

METADATA_KEY = "kerascnn"


@dataclasses.dataclass(frozen=True)
class Setting:
    """What is said about one field besides its name, type and default.

    Attributes:
        help: one line for ``--help`` (the default is appended in brackets); ``{choices}``
            is replaced by the choices or names, joined "a, b or c".
        choices: the only values allowed (a tuple, or a function returning one).
        names: a function returning a registry's names: listed in the help, but any string
            is accepted here and the registry refuses an unknown one with its closest
            matches when the run starts.
        low, high, low_open, high_open: numeric bounds, inclusive unless open.
        shown: the default as the help shows it, where the value would not say it ("the
            model's" for None).
        flag: for booleans: ``"switch"`` (``--x/--no-x``) or ``"on"`` (``--x`` turns it on).
        metavar: the placeholder of the value in ``--help``.
        parse: turns the command line's text into the value (``"32x40"`` -> (32, 40));
            raises ``ValueError`` with the reason.
        option: the flag when it is not ``--field-name`` (``--model-option``).
        directory: the value names a directory (the command line refuses a file).
        cli: False for settings only a config file sets.
    """

    help: str
    choices: tuple[Any, ...] | Callable[[], Sequence[Any]] | None = None
    names: Callable[[], Sequence[str]] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    shown: str | None = None
    flag: str | None = None
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    option: str | None = None
    directory: bool = False
    cli: bool = True

    def allowed(self) -> tuple[Any, ...] | None:
        choices = self.choices() if callable(self.choices) else self.choices
        return None if choices is None else tuple(choices)

    def listed(self) -> list[str]:
        """The choices or the registry's names, for the help."""
        values = self.allowed() or (self.names() if self.names else ())
        return [str(v) for v in values if v is not None]


def setting(default: Any = dataclasses.MISSING, help: str = "", *, factory=None, **about):
    """A dataclass field with its ``Setting`` (see there for ``about``)."""
    metadata = {METADATA_KEY: Setting(help, **about)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def about(field: dataclasses.Field) -> Setting:
    return field.metadata[METADATA_KEY]


def default_of(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def join(values: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b or c"``."""
    values = list(values)
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def shown_default(field: dataclasses.Field) -> str:
    """The default as ``--help`` shows it."""
    setting_ = about(field)
    if setting_.shown is not None:
        return setting_.shown  # "" shows no default
    value = default_of(field)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        raise ValueError(f"{field.name} defaults to None; its Setting needs `shown`")
    return str(value)


def help_text(field: dataclasses.Field) -> str:
    setting_ = about(field)
    text = setting_.help
    if "{choices}" in text:
        text = text.replace("{choices}", join(setting_.listed()))
    default = shown_default(field)
    return f"{text} [{default}]" if default else text


# -- checking -----------------------------------------------------------------------------


def check(section: Any) -> None:
    """Each field of a section dataclass against its choices and bounds (None passes where
    it is the default); one-line ``InvalidArgumentError`` naming the field."""
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if METADATA_KEY not in field.metadata or (value is None and field.default is None):
            continue
        check_value(field.name, value, about(field))


def check_value(name: str, value: Any, setting_: Setting) -> None:
    allowed = setting_.allowed()
    if allowed is not None and value not in allowed:
        listed = ", ".join(str(a) for a in allowed if a is not None)
        raise InvalidArgumentError(f"unknown {name} {value!r}; choose one of {listed}")
    if setting_.low is None and setting_.high is None:
        return
    above = setting_.low is None or (
        value > setting_.low if setting_.low_open else value >= setting_.low
    )
    below = setting_.high is None or (
        value < setting_.high if setting_.high_open else value <= setting_.high
    )
    if not (above and below):  # NaN fails both
        raise InvalidArgumentError(f"{name} must be {bounds(setting_)}; received {value}")


def bounds(setting_: Setting) -> str:
    """``at least 1``, ``positive``, ``in [0, 1)``."""
    low, high = setting_.low, setting_.high
    if high is None:
        if setting_.low_open:
            return "positive" if low == 0 else f"greater than {low:g}"
        return f"at least {low:g}"
    if low is None:
        return f"below {high:g}" if setting_.high_open else f"at most {high:g}"
    opening, closing = "(" if setting_.low_open else "[", ")" if setting_.high_open else "]"
    return f"in {opening}{low:g}, {high:g}{closing}"


# -- values read from YAML ----------------------------------------------------------------


def coerce(key: str, value: Any, hint: Any, source: str) -> Any:
    """Check ``value`` against the field's type hint, allowing int for float and list for
    tuple; ``InvalidArgumentError`` names ``source`` and ``key``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    bad = InvalidArgumentError(f"{source}: {key} must be {type_name(hint)}; received {value!r}")
    if hint in (bool, int, float, str):
        exact = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}[hint]
        if not isinstance(value, exact) or (hint is not bool and isinstance(value, bool)):
            raise bad
        return float(value) if hint is float else value
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise bad
        if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise bad
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise bad
        return [coerce(key, v, args[0], source) for v in value]
    raise TypeError(f"unsupported setting type {hint}")


def type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return f"a list of {len(typing.get_args(hint))} integers"
    if origin is dict:
        return "a mapping"
    if origin is list:
        return "a list of numbers"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]
