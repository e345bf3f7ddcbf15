"""Commands on run directories: ``report`` and ``tensorboard``."""

from __future__ import annotations

from pathlib import Path

import click

from kerascnn.cli.base import Command
from kerascnn.errors import MissingFileError
from kerascnn.inspection.report import write_report
from kerascnn.training.config import OutputConfig
from kerascnn.training.tensorboard import serve


@click.command(cls=Command)
@click.argument("run_dir", type=click.Path())
def report(run_dir):
    """Write RUN_DIR/report.html: configuration, training curves, confusion matrix,
    per-class accuracy, misclassified images, saliency and Grad-CAM examples (self-contained)."""
    click.echo(f"report in {write_report(run_dir)}")


@click.command(cls=Command)
@click.argument(
    "runs_dir",
    metavar="RUN_OR_RUNS_DIR",
    required=False,
    default=OutputConfig().output_dir,
    type=click.Path(),
)
@click.option("--port", type=click.IntRange(1, 65535), default=6006, show_default=True)
def tensorboard(runs_dir, port):
    """Start TensorBoard on RUN_OR_RUNS_DIR [runs] (a runs directory, or one run), on
    127.0.0.1 only. TensorBoard takes this process's place, so Ctrl-C or a SIGTERM to its PID
    stops it."""
    if not Path(runs_dir).is_dir():
        raise MissingFileError(f"no run or runs directory {runs_dir}")
    click.echo(f"TensorBoard on http://127.0.0.1:{port}/ for {runs_dir}")
    serve(runs_dir, port)
