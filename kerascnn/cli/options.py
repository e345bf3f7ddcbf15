"""Options of the command line generated from the configuration's fields (``kerascnn.settings``),
and the configuration they resolve to."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import click
import yaml

from kerascnn import settings
from kerascnn.data.config import DataConfig
from kerascnn.training.config import TrainConfig, flat_fields, flat_hints
from kerascnn.training.recipes import resolve_config


class Parsed(click.ParamType):
    """A setting's own parser (``Setting.parse``) as a click type: its ``ValueError`` becomes
    click's one-line usage error naming the option."""

    def __init__(self, parse, name: str):
        self.parse, self.name = parse, name

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def parse_options(values: tuple[str, ...]) -> dict:
    """``--model-option variant=modern`` -> ``{"variant": "modern"}`` (values parsed as YAML
    scalars, so numbers and booleans keep their types; nothing is evaluated)."""
    options = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"expected KEY=VALUE, got {item!r}", param_hint="--model-option"
            )
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            options[key.strip()] = raw
    return options


def setting_option(field: dataclasses.Field):
    """The click option of a configuration field, everything taken from the field: flag,
    type, choices, bounds, help and the default it shows. Its default is None ("not given"),
    so a config file or recipe fills what the flags leave."""
    about = settings.about(field)
    flag = about.option or "--" + field.name.replace("_", "-")
    declarations = [f"{flag}/--no-{flag[2:]}" if about.flag == "switch" else flag, field.name]
    kwargs: dict[str, Any] = {"help": settings.help_text(field), "default": None}
    hint = flat_hints()[field.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: X
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if about.flag == "on":
        kwargs["is_flag"] = True
    elif about.parse is not None:
        kwargs["type"] = Parsed(about.parse, about.metavar or field.name.upper())
    elif typing.get_origin(hint) is dict:
        kwargs.update(multiple=True, default=())
    elif about.allowed() is not None:
        kwargs["type"] = click.Choice([str(c) for c in about.allowed() if c is not None])
    elif about.directory:
        kwargs["type"] = click.Path(file_okay=False)
    elif hint in (int, float) and (about.low is not None or about.high is not None):
        kwargs["type"] = (click.IntRange if hint is int else click.FloatRange)(
            about.low, about.high, min_open=about.low_open, max_open=about.high_open
        )
    elif hint in (int, float):
        kwargs["type"] = hint
    if about.metavar and about.parse is None:
        kwargs["metavar"] = about.metavar
    return click.option(*declarations, **kwargs)


def config_options(command):
    """One option per configuration field the command line sets (``TrainConfig``, in the
    order of its fields and sections), except where the command's own options (declared
    below this decorator) use the flag: ``lr-find --steps`` is its batches, not the
    adversarial training's PGD steps."""
    taken = {flag for param in getattr(command, "__click_params__", ()) for flag in param.opts}
    for field in reversed([f for f in flat_fields() if settings.about(f).cli]):
        about = settings.about(field)
        if (about.option or "--" + field.name.replace("_", "-")) not in taken:
            command = setting_option(field)(command)
    return command


def data_option(name: str):
    """A data setting (``DataConfig``) as an option of another command."""
    return setting_option(next(f for f in dataclasses.fields(DataConfig) if f.name == name))


def config_from_flags(config_file: str | None, flags: dict) -> TrainConfig:
    """Defaults < recipe < ``--config FILE`` < flags."""
    config = resolve_config(flags.pop("recipe"), config_file)
    model_options = flags.pop("model_options")
    if model_options:
        flags["model_options"] = {**config.model_options, **parse_options(model_options)}
    return config.updated(**flags)


def comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]
