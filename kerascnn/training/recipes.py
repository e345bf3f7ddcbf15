"""Named training recipes (kerascnn/configs/<name>.yaml) and resolving a configuration.

A recipe is a partial ``TrainConfig`` in YAML with two extra keys: ``description`` (one line
for ``kerascnn recipes``) and ``base`` (another recipe it derives from; its values are
overridden). Precedence: defaults < recipe < ``--config FILE`` < flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kerascnn.errors import InvalidArgumentError
from kerascnn.recorded import read_recipe
from kerascnn.training.config import TrainConfig, read_yaml

RECIPE_KEYS = ("description", "base")


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
