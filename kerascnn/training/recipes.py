"""Named training recipes (kerascnn/configs/<name>.yaml) and resolving a configuration.

A recipe is a partial ``TrainConfig`` in YAML with two extra keys: ``description`` (one line
for ``kerascnn recipes``) and ``base`` (another recipe it derives from; its values are
overridden). Precedence: defaults < recipe < ``--config FILE`` < flags.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from kerascnn.errors import InvalidArgumentError, UnknownNameError
from kerascnn.training.config import TrainConfig, read_yaml

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
RECIPE_KEYS = ("description", "base")


def recipe_names() -> list[str]:
    return sorted(path.stem for path in CONFIGS.glob("*.yaml"))


def read_recipe(name: str) -> dict[str, Any]:
    """The recipe's own keys, ``description`` and ``base`` included."""
    path = CONFIGS / f"{name}.yaml"
    if "/" in name or not path.is_file():
        close = difflib.get_close_matches(str(name), recipe_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown recipe {name!r}{hint} (recipes: {', '.join(recipe_names())})"
        )
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{path} must be a mapping of field: value")
    return data


def load_recipe(name: str) -> dict[str, Any]:
    """The recipe's training fields, its bases resolved (the base's values first)."""
    chain: list[str] = []
    values: dict[str, Any] = {}
    while name is not None:
        if name in chain:
            raise InvalidArgumentError(f"recipe bases form a cycle: {' -> '.join(chain + [name])}")
        chain.append(name)
        data = read_recipe(name)
        values = {**{k: v for k, v in data.items() if k not in RECIPE_KEYS}, **values}
        name = data.get("base")
    return values


def list_recipes() -> list[tuple[str, str]]:
    """``(name, description)`` of every recipe."""
    return [(name, str(read_recipe(name).get("description", ""))) for name in recipe_names()]


def resolve_config(
    recipe: str | None = None, config_file: str | Path | None = None, **overrides: Any
) -> TrainConfig:
    """Defaults < recipe < ``config_file`` < ``overrides`` (None means not given). A config
    file may name its own recipe (``recipe: NAME``); ``recipe`` given here wins."""
    file_values = read_yaml(config_file) if config_file else {}
    if not isinstance(file_values, dict):
        raise InvalidArgumentError(f"{config_file} must be a mapping of field: value")
    recipe = recipe or file_values.get("recipe")
    values = {**load_recipe(recipe), "recipe": recipe} if recipe else {}
    values.update(file_values)
    if recipe:
        values["recipe"] = recipe
    config = TrainConfig.from_dict(values, source=str(config_file or f"recipe {recipe}"))
    return config.updated(**overrides)
