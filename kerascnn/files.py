"""Reading and writing the package's files: YAML read safely (nothing in a file is ever
constructed or evaluated), and files written so that a run killed at any moment leaves the old
file or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from kerascnn.errors import InvalidArgumentError, MissingFileError


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def link_atomically(source: str | Path, path: str | Path) -> Path:
    """Make ``path`` the file ``source`` is now, replacing ``path`` atomically: a hard link
    (nothing copied), or a copy where the file system has none. Safe because every file
    written here is replaced by a rename, never rewritten in place, so the link keeps the
    contents it was made with."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    try:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


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
