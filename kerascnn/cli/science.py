"""Training science: ``tune`` (hyperparameter search), ``lr-find`` (the range test) and
``ensemble``."""

from __future__ import annotations

from pathlib import Path

import click

from kerascnn import application
from kerascnn.cli.base import Command
from kerascnn.cli.options import (
    config_from_flags,
    config_options,
)
from kerascnn.cli.output import parity_line
from kerascnn.training import lr_find as lr_find_module
from kerascnn.training.config import OutputConfig
from kerascnn.tuning import METHODS, plan_refined, plan_search, run_search


@click.command(cls=Command)
@config_options
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="YAML file of the base settings; flags override it.",
)
@click.option(
    "--search",
    "space",
    multiple=True,
    metavar="FIELD=KIND:ARGS",
    help="A searched field: log:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH or choice:A,B,C "
    "(repeatable).",
)
@click.option("--method", type=click.Choice(METHODS), default="random", show_default=True)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Trials (hyperband: set by --epochs).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Trials at once, each in its own process (KerasTuner's distributed mode).",
)
@click.option("--name", help="The search: OUTPUT_DIR/tune/NAME. [required unless --refine]")
@click.option("--refine", metavar="NAME", help="Search again around NAME's best trials.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="--refine: how many of the best trials the narrowed ranges span.",
)
def tune(config_file, space, method, trials, workers, name, refine, top, **flags):
    """Search hyperparameters: each trial an ordinary run under runs/tune/NAME/trial-NN,
    chosen by KerasTuner (random, grid, Bayesian or Hyperband), best first by validation
    accuracy; writes best.yaml for `kerascnn-train --config`. Running the same command again
    continues a killed search."""
    if refine:
        given = [k for k, v in flags.items() if v not in (None, ()) and k not in REFINE_FLAGS]
        if space or config_file or given:
            raise click.UsageError(
                "--refine takes the base settings and the space from the search it refines; "
                "give only --top, --trials, --epochs, --method, --name or --output-dir"
            )
        plan = plan_refined(
            refine,
            top=top,
            name=name,
            output_dir=flags["output_dir"] or OutputConfig().output_dir,
            method=method,
            trials=trials,
            epochs=flags["epochs"],
            overwrite=bool(flags["overwrite"]),
        )
    else:
        if not name:
            raise click.UsageError("give the search a --name (its directory under tune/)")
        plan = plan_search(
            config_from_flags(config_file, flags),
            space,
            name=name,
            method=method,
            trials=trials,
            overwrite=bool(flags["overwrite"]),
        )
    click.echo(f"search {plan.name} ({plan.method}) in {plan.directory}")
    for dimension in plan.space:
        click.echo(f"  {dimension.spec()}")
    result = run_search(plan, notify=click.echo, workers=workers)
    print_search(result)


REFINE_FLAGS = ("epochs", "output_dir", "overwrite")


@click.command("lr-find", cls=Command)
@config_options
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML settings.")
@click.option("--steps", type=click.IntRange(min=10), default=200, show_default=True)
@click.option(
    "--start", type=click.FloatRange(min=0, min_open=True), default=1e-7, show_default=True
)
@click.option("--end", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True)
def lr_find(config_file, steps, start, end, **flags):
    """The learning-rate range test (Smith 2017): the rate grows exponentially over --steps
    batches from --start to --end while the loss is recorded; writes lr_find.png and
    lr_find.json under OUTPUT_DIR/lr-find/RUN_NAME and suggests a rate. Nothing is trained
    for keeps: no weights are written."""
    if start >= end:
        raise click.BadParameter(f"--start {start:g} must be below --end {end:g}")
    config = config_from_flags(config_file, flags)
    name = config.output.run_name or config.model
    click.echo(
        f"range test: {config.model} on {config.dataset}, {start:g} to {end:g} over {steps} batches"
    )
    test = lr_find_module.range_test(config, start=start, end=end, steps=steps)
    picture, _ = lr_find_module.write(
        test,
        Path(config.output.output_dir) / "lr-find" / name,
        f"{config.model} on {config.dataset}",
    )
    if test.stopped_early:
        click.echo(
            f"  stopped after {len(test.losses)} batches: the loss exploded at "
            f"{test.learning_rates[-1]:.1e}"
        )
    click.echo(f"  suggested learning rate {test.steepest:.1e}   (steepest descent of the loss)")
    click.echo(f"  minimum / 10            {test.minimum_over_10:.1e}")
    if not test.loss_fell:
        click.echo(
            "  warning: the loss never fell; the suggestions mean nothing (widen --start/--end)"
        )
    click.echo(f"  plot                    {picture}")


def print_search(result) -> None:
    fields = [d.field for d in result.space]
    rows = [("", "trial", *fields, "validation", "test", "epochs")]
    for rank, row in enumerate(result.rows, 1):
        done = row.status == "completed"
        rows.append(
            (
                str(rank) if done else "-",
                row.trial_id,
                *(_cell(row.values.get(f)) for f in fields),
                f"{100 * row.validation_accuracy:.2f}%" if done else row.status,
                f"{100 * row.test_accuracy:.2f}%" if done else "",
                str(row.epochs) if done else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    click.echo("")
    for r in rows:
        click.echo("  ".join(f"{c:>{w}}" for c, w in zip(r, widths, strict=True)).rstrip())
    click.echo("")
    if result.best_config:
        click.echo(f"  best        {result.best_config}   (kerascnn-train --config ...)")
    click.echo(f"  trials      {result.directory}   (tensorboard --logdir {result.directory})")


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@click.command(cls=Command)
@click.argument("members", nargs=-1, required=True, type=click.Path())
@click.option("--name", required=True, help="The ensemble's run and export name.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=OutputConfig().output_dir,
    show_default=True,
)
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False),
    default=OutputConfig().export_dir,
    show_default=True,
)
@click.option("--export/--no-export", default=True, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing run and export.")
def ensemble(members, name, output_dir, export_dir, export, overwrite):
    """Average the class probabilities of MEMBERS (run directories or .keras files with the
    same class names; architectures and input sizes may differ) into one model, saved as
    the run OUTPUT_DIR/NAME and exported like a trained one."""
    outcome = application.make_ensemble(
        members,
        name=name,
        output_dir=output_dir,
        export_dir=export_dir,
        export=export,
        overwrite=overwrite,
    )
    test = outcome.metrics.get("test")
    if test:
        for index, member in enumerate(test["members"]):
            source = outcome.metadata["members"][index]["source"]
            click.echo(f"  member {index}  test accuracy {100 * member['accuracy']:.2f}%  {source}")
        click.echo(
            f"  members  mean {100 * test['member_accuracy_mean']:.2f}%  "
            f"std {100 * test['member_accuracy_std']:.2f}%"
        )
        click.echo(f"  ensemble test accuracy {100 * test['accuracy']:.2f}%")
    click.echo(f"  run      {outcome.run_dir}   (model.keras, metrics.json)")
    if outcome.export is not None:
        click.echo(f"  export   {outcome.export.directory}")
        for kind, parity in outcome.export.parity.items():
            click.echo(f"  parity {kind:<16} {parity_line(parity)}")
