"""``kerascnn models`` and ``kerascnn recipes``: what the package records, listed without
importing TensorFlow (``kerascnn.recorded``); ``models --json`` asks the registry itself."""

from __future__ import annotations

import json

import click

import kerascnn
from kerascnn.cli.base import Command
from kerascnn.recorded import list_recipes, model_names, models_table


@click.command(cls=Command)
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print everything model_info knows, as JSON.")
def models(pattern, as_json):
    """List the registered models (optionally those matching a shell PATTERN).

    Parameters and multiply-accumulates are for one image at the default input and the
    paper's class count, without auxiliary heads."""
    names = model_names(pattern)
    if not names:
        raise click.BadParameter(f"no model matches {pattern!r}", param_hint="PATTERN")
    if as_json:
        click.echo(json.dumps([kerascnn.model_info(name) for name in names], indent=2))
        return
    rows = [("name", "parameters", "MACs", "input", "min", "network")]
    for name in names:
        info = models_table()[name]
        rows.append(
            (
                name,
                f"{info['parameters']:,}",
                si(info["multiply_accumulates"]),
                "x".join(map(str, info["input_shape"])),
                "x".join(map(str, info["min_size"])),
                f"{info['title']} ({info['paper']})",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [
            f"{cell:>{width}}" if 1 <= i <= 2 else f"{cell:<{width}}"
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        click.echo("  ".join(cells) + "  " + row[-1])


def si(count: int) -> str:
    """1234567890 -> '1.23G'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g}{unit}"
    return str(count)


@click.command(cls=Command)
def recipes():
    """List the papers' training recipes (kerascnn/configs/*.yaml), one line each."""
    rows = list_recipes()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        click.echo(f"{name:<{width}}  {description}")
