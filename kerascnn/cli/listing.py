"""``kerascnn models`` and ``kerascnn recipes``: what the package records, listed without
importing TensorFlow (``kerascnn.recorded``); ``models --json`` asks the registry itself."""

from __future__ import annotations

import json

import click

import kerascnn
from kerascnn.cli.base import Command
from kerascnn.recorded import TORCHVISION_TABLE_URL, list_recipes, model_names, models_table


@click.command(cls=Command)
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print everything model_info knows, as JSON.")
@click.option(
    "--weights",
    type=click.Choice(["imagenet", "torchvision", "timm"]),
    help="Only the models with these published weights, with their ImageNet accuracy.",
)
def models(pattern, as_json, weights):
    """List the registered models (optionally those matching a shell PATTERN).

    Parameters and multiply-accumulates are for one image at the default input and the
    paper's class count, without auxiliary heads. With --weights torchvision: the ImageNet-1K
    validation top-1/top-5 torchvision publishes for the weights create_model(NAME,
    weights="torchvision") converts (torchvision's model table); with --weights timm, the
    same for timm's republication of those weights on the Hugging Face hub."""
    names = model_names(pattern)
    if as_json or weights:  # what only the registry knows
        infos = [kerascnn.model_info(name) for name in names]
        infos = [info for info in infos if weights is None or weights in info["weights"]]
    else:
        infos = [{"name": name, **models_table()[name]} for name in names]
    if not infos:
        raise click.BadParameter(f"no model matches {pattern!r}", param_hint="PATTERN")
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    accuracy = weights in ("torchvision", "timm")
    rows = [("name", "parameters", "MACs", "input", "min", *(("top-1", "top-5") * accuracy))]
    for info in infos:
        row = (
            info["name"],
            f"{info['parameters']:,}",
            si(info["multiply_accumulates"]),
            "x".join(map(str, info["input_shape"])),
            "x".join(map(str, info["min_size"])),
        )
        if accuracy:
            published = info["weights"][weights]
            row += (f"{published['top1']:.2f}%", f"{published['top5']:.2f}%")
        rows.append((*row, f"{info['title']} ({info['paper']})"))
    rows[0] += ("network",)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [
            f"{cell:<{width}}" if i == 0 or i in (3, 4) else f"{cell:>{width}}"
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        click.echo("  ".join(cells) + "  " + row[-1])
    if accuracy:
        republished = " (torchvision's weights, which timm republishes)" * (weights == "timm")
        click.echo(
            f"ImageNet-1K validation accuracy as published in {TORCHVISION_TABLE_URL}{republished}"
        )


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
