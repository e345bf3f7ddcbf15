"""``kerascnn evaluate``: accuracy of an artifact on a split, or its robustness to an attack."""

from __future__ import annotations

import json

import click

from kerascnn import application
from kerascnn.adversarial.attacks import ATTACKS, LOSSES, Attack, check_attack, parse_epsilons
from kerascnn.adversarial.robustness import table as robustness_table
from kerascnn.cli.base import Command
from kerascnn.cli.options import (
    Parsed,
    data_option,
)
from kerascnn.data import SPLITS
from kerascnn.data.config import DataConfig
from kerascnn.data.views import TTA_NAMES
from kerascnn.evaluation import result_warnings


def attack_options(command):
    """``kerascnn evaluate``'s options of an adversarial attack (``kerascnn.adversarial``)."""
    options = [
        click.option("--attack", type=click.Choice(ATTACKS), help="Attack the model (L-inf)."),
        click.option(
            "--epsilon",
            "epsilons",
            type=Parsed(parse_epsilons, "EPSILONS"),
            default="8,16,32",
            show_default=True,
            help="Largest pixel change, pixel units (0-255), comma-separated.",
        ),
        click.option("--steps", type=int, default=20, show_default=True, help="PGD steps."),
        click.option("--restarts", type=int, default=1, show_default=True, help="PGD runs."),
        click.option("--step-size", type=float, help="Pixel units a step. [2.5 eps / steps]"),
        click.option("--allow-large-step", is_flag=True, help="Allow a step above epsilon."),
        click.option(
            "--attack-loss",
            type=click.Choice(LOSSES),
            default="crossentropy",
            show_default=True,
            help="What the attack climbs (margin: Carlini-Wagner's logit margin).",
        ),
        click.option("--targeted", is_flag=True, help="Aim at a random wrong class."),
        click.option("--surrogate", type=click.Path(), help="Transfer attack from this model."),
        click.option(
            "--limit",
            type=click.IntRange(min=1),
            default=1000,
            show_default=True,
            help="Attack the first N images of the split.",
        ),
        click.option("--out", type=click.Path(file_okay=False), help="[RUN_DIR/attack]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def evaluate_attack(source, dataset, split, data, as_json, **options) -> None:
    """``evaluate --attack``: check everything, attack, print the table."""
    epsilons = options.pop("epsilons")
    name = options.pop("attack") or "pgd"
    check_attack(
        name,
        epsilons,
        options["steps"],
        options["step_size"],
        options["restarts"],
        allow_large_step=options.pop("allow_large_step"),
    )
    attack = Attack(
        name,
        max(epsilons),
        options.pop("steps"),
        options.pop("step_size"),
        options.pop("restarts"),
        options.pop("attack_loss"),
        options.pop("targeted"),
    )
    notify = (lambda line: None) if as_json else (lambda line: click.echo(f"  {line}", err=True))
    done = application.attack(
        source, attack, epsilons, dataset=dataset, split=split, data=data, notify=notify, **options
    )
    if as_json:
        click.echo(json.dumps(json.loads(done.written[-1].read_text()), indent=2))
        return
    result = done.robustness
    click.echo(
        f"{done.artifact} on {done.dataset}/{split}, {result.images} images: accuracy under "
        f"{attack.label()} (step {attack.step_for(max(epsilons)):g} at epsilon "
        f"{max(epsilons):g}) and its cross-checks"
    )
    click.echo(robustness_table(result))
    click.echo(f"wrote {', '.join(p.name for p in done.written)} to {done.out_dir}")
    if done.log_dir is not None:
        click.echo(f"TensorBoard in {done.log_dir}")


@click.command(cls=Command)
@click.argument("source", metavar="RUN_DIR_OR_ARTIFACT", type=click.Path())
@click.option("--dataset", help="Dataset to evaluate on. [the run's, else digits]")
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option(
    "--tta",
    type=click.Choice(TTA_NAMES),
    default="none",
    show_default=True,
    help="Test-time views: one, AlexNet's 10 crops, or VGG's 3 scales, averaged.",
)
@data_option("crop_fraction")
@data_option("strict")
@data_option("label_offset")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@attack_options
def evaluate(source, dataset, split, tta, crop_fraction, strict, label_offset, as_json, **attack):
    """Evaluate a run directory, .keras, SavedModel, .tflite or .onnx file on a dataset split,
    reporting top-1 and top-5 accuracy and error as the papers' tables do.

    With --attack (a run, export or .keras file): robust accuracy per --epsilon under the
    attack and its cross-checks, with the gradient-masking checks (README: Adversarial
    examples)."""
    given = {"strict": strict, "label_offset": label_offset}
    data = DataConfig(**{k: v for k, v in given.items() if v is not None})
    if attack["attack"] is not None or attack["surrogate"] is not None:
        if tta != "none":
            raise click.UsageError("--tta does not apply with --attack")
        return evaluate_attack(source, dataset, split, data, as_json, **attack)
    metrics = application.evaluate(
        source, dataset=dataset, split=split, tta=tta, crop_fraction=crop_fraction, data=data
    )
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    top5 = (
        f"  top-5 {100 * metrics['top5_accuracy']:.2f}% (error {100 * metrics['top5_error']:.2f}%)"
        if "top5_accuracy" in metrics
        else ""
    )
    views = "" if tta == "none" else f", {tta}"
    click.echo(
        f"{metrics['artifact']} ({metrics['kind']}) on {metrics['dataset']}/{split}{views}, "
        f"{metrics['images']} "
        f"images: accuracy {100 * metrics['accuracy']:.2f}% (top-1 error "
        f"{100 * metrics['top1_error']:.2f}%){top5}  cross-entropy {metrics['cross_entropy']:.4f}"
    )
    for index, member in enumerate(metrics.get("members", ())):
        click.echo(f"  member {index}: accuracy {100 * member['accuracy']:.2f}%")
    for warning in result_warnings(metrics["accuracy"], len(metrics["per_class"]), what=split):
        click.echo(f"Warning: {warning}", err=True)
    print_per_class(metrics["per_class"], metrics["confusion_matrix"])


# Classes up to which `evaluate` prints the confusion matrix (--json always has it).
PRINTED_CONFUSION_CLASSES = 20


def print_per_class(per_class: list[dict], matrix: list[list[int]]) -> None:
    width = max(5, *(len(row["class"]) for row in per_class))
    click.echo(f"\n  {'class':<{width}}  images  correct  accuracy")
    for row in per_class:
        accuracy = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f}%"
        click.echo(
            f"  {row['class']:<{width}}  {row['images']:>6}  {row['correct']:>7}  {accuracy:>8}"
        )
    if len(matrix) > PRINTED_CONFUSION_CLASSES:
        click.echo(f"\n  confusion matrix: {len(matrix)} classes, see --json")
        return
    cell = max(4, len(str(max(max(row) for row in matrix))) + 1)
    click.echo("\n  confusion matrix (rows: true class, columns: predicted)")
    click.echo(f"  {'':<{width}}" + "".join(f"{c:>{cell}}" for c in range(len(matrix))))
    for row, counts in zip(per_class, matrix, strict=True):
        click.echo(f"  {row['class']:<{width}}" + "".join(f"{n:>{cell}}" for n in counts))
