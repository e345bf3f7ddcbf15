"""The networks as case studies and as pretrained backbones: ``kerascnn summary`` (one row per
layer, CS231n's VGG-16 table), ``kerascnn compare`` (side by side, Canziani et al.'s chart) and
``kerascnn convert`` (torchvision's weights into our networks)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kerascnn import comparison
from kerascnn.cli.base import Command
from kerascnn.errors import MissingFileError
from kerascnn.models import summary as model_summary
from kerascnn.models.convert.conversion import convert_checkpoint


def _input_size(ctx, param, value):
    """``--input 224`` or ``--input 227x227`` -> (height, width)."""
    if value is None:
        return None
    try:
        sides = tuple(int(side) for side in value.lower().split("x"))
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2 or min(sides) < 1:
        raise click.BadParameter(f"expected HxW or N, e.g. 227x227; received {value!r}")
    return sides


@click.command(cls=Command)
@click.argument("name")
@click.option("--input", "input_size", metavar="HxW", callback=_input_size, help="Input size.")
@click.option("--depth", type=click.IntRange(min=1), help="One row per block of this depth.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def summary(name, input_size, depth, as_json):
    """Per-layer table of model NAME: output shape, parameters, multiply-accumulates,
    activation memory (float32, forward) and receptive field, with the totals for one image
    (the paper's input unless --input). --depth 1 groups layers into blocks by their names
    (conv2, inception_3a), --depth 2 into smaller ones (conv2_block1)."""
    table = model_summary.summarize(name, input_size=input_size, depth=depth)
    if as_json:
        click.echo(json.dumps(table.to_json(), indent=2))
        return
    for line in model_summary.table_lines(table):
        click.echo(line)


@click.command(cls=Command)
@click.argument("names", nargs=-1, required=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write the chart (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(names, plot_path, as_json):
    """Registered networks side by side: parameters, multiply-accumulates, activation memory,
    depth and the published ImageNet top-1/top-5 with its source; --plot draws top-1 against
    operations with marker area by parameters (Canziani et al. 2016)."""
    if plot_path and not Path(plot_path).resolve().parent.is_dir():
        raise MissingFileError(f"no directory for --plot: {Path(plot_path).parent}")
    entries = comparison.compare(list(names))
    if plot_path:
        Path(plot_path).write_bytes(comparison.plot(entries))
    if as_json:
        click.echo(json.dumps(comparison.to_json(entries), indent=2))
    else:
        for line in comparison.table_lines(entries):
            click.echo(line)
    if plot_path:
        click.echo(f"chart: {plot_path}", err=as_json)


@click.command(cls=Command)
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--model", "model_name", required=True, help="Registered name of the network.")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="X.weights.h5 to write."
)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def convert(checkpoint, model_name, out, overwrite):
    """Convert a torchvision checkpoint (FILE.pth or FILE.safetensors, a state_dict) into
    our network's .weights.h5 (with its 1000-class classifier and torchvision's input
    normalisation): create_model(NAME, weights=OUT) loads it. The .pth is read without
    running any of its code."""
    result = convert_checkpoint(checkpoint, model_name, out, overwrite=overwrite)
    click.echo(
        f"wrote {result.out}: {result.model}, {result.parameters:,} parameters, converted in "
        f"{result.seconds:.1f} s"
    )
