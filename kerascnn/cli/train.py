"""``kerascnn train`` and ``kerascnn-train``: a training run from the flags, a config file or a
recipe."""

from __future__ import annotations

import sys

import click

from kerascnn import application
from kerascnn.cli.base import Command
from kerascnn.cli.options import (
    config_from_flags,
    config_options,
)
from kerascnn.cli.output import print_summary
from kerascnn.inspection.report import write_report
from kerascnn.training.distribute import resolve_cluster


@config_options
@click.option("--report", is_flag=True, default=False, help="Write RUN_DIR/report.html at the end.")
@click.option(
    "--verbose",
    type=click.Choice(["auto", "0", "1", "2"]),
    default="auto",
    show_default=True,
    help="Progress: 1 a progress bar, 2 one line per epoch, 0 none (auto: 1 on a terminal, "
    "2 otherwise).",
)
@click.option("--coordinator", "coordinator", metavar="HOST:PORT", help="Multi-worker: worker 0.")
@click.option("--num-workers", type=click.IntRange(min=1), help="Multi-worker: processes.")
@click.option("--worker-index", type=click.IntRange(min=0), help="Multi-worker: this one's.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="YAML file of training settings; flags override it.",
)
def train(config_file, report, verbose, coordinator, num_workers, worker_index, **flags):
    """Train a model, evaluate it on held-out data and export it.

    With no arguments: LeNet-5 on the embedded digits dataset. Writes TensorBoard logs,
    checkpoints, config.yaml and metrics.json under runs/<run-name>/, and model.keras, a
    SavedModel (1/) and model.tflite under saved_models/<run-name>/.
    """
    config = config_from_flags(config_file, flags)
    cluster = None
    if config.distribution.strategy == "multi-worker":
        cluster = resolve_cluster(coordinator, num_workers, worker_index)
    for warning in application.speed_warnings(config):
        click.echo(f"Warning: {warning}", err=True)
    if verbose == "auto":  # a progress bar only where someone watches it redraw
        verbose = "1" if sys.stdout.isatty() else "2"
    outcome = application.run_training(
        config, verbose=int(verbose), cluster=cluster, notify=click.echo
    )
    print_summary(outcome)
    if report:
        click.echo(f"  {'report':<20} {write_report(outcome.result.run_dir)}")


train = click.command(cls=Command)(train)
# `kerascnn-train` is the same command on its own.
train_main = Command(
    name="kerascnn-train",
    params=train.params,
    callback=train.callback,
    help=train.help,
    context_settings={"help_option_names": ["-h", "--help"]},
)
