"""What the package records in files, read without importing TensorFlow: the table of models
(``models/complexity.json``: each registered model's title, paper, default and minimum input,
parameters and multiply-accumulates) and the training recipes (``configs/*.yaml``). So
``kerascnn models`` and ``kerascnn recipes`` answer at once, where importing TensorFlow takes
seconds and 800 MB. ``kerascnn.models.catalogue.write_table`` writes the table; a test checks
it against the registry and the built models.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import json
from pathlib import Path
from typing import Any

from kerascnn.errors import InvalidArgumentError, UnknownNameError
from kerascnn.files import read_yaml

PACKAGE = Path(__file__).resolve().parent
MODELS_TABLE = PACKAGE / "models" / "complexity.json"
RECIPES = PACKAGE / "configs"
# torchvision's table of its pretrained models and their ImageNet accuracies.
TORCHVISION_TABLE_URL = "https://docs.pytorch.org/vision/stable/models.html"


@functools.cache
def models_table() -> dict[str, dict[str, Any]]:
    """The recorded table, by model name (empty if missing)."""
    if not MODELS_TABLE.is_file():
        return {}
    return json.loads(MODELS_TABLE.read_text())


def model_names(pattern: str | None = None) -> list[str]:
    """Recorded model names, sorted, optionally filtered by a shell pattern (``"resnet*"``)."""
    names = sorted(models_table())
    return names if pattern is None else fnmatch.filter(names, pattern)


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPES.glob("*.yaml"))


def read_recipe(name: str) -> dict[str, Any]:
    """The recipe's own keys, ``description`` and ``base`` included."""
    path = RECIPES / f"{name}.yaml"
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


def list_recipes() -> list[tuple[str, str]]:
    """``(name, description)`` of every recipe."""
    return [(name, str(read_recipe(name).get("description", ""))) for name in recipe_names()]
