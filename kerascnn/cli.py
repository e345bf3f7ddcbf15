"""The command line: parse, resolve the configuration, call the library, print.

``kerascnn-train`` is ``kerascnn train``. A user mistake prints one ``Error: ...`` line and
exits with status 2. TensorFlow's start-up chatter is kept off the terminal (kerascnn/quiet.py).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import click
import yaml

from kerascnn import application, compression, settings
from kerascnn import benchmark as bench
from kerascnn import demo as demo_page
from kerascnn.adversarial.attacks import ATTACKS, LOSSES, Attack, check_attack, parse_epsilons
from kerascnn.adversarial.robustness import table as robustness_table
from kerascnn.data import SPLITS
from kerascnn.data.config import DataConfig
from kerascnn.data.views import TTA_NAMES
from kerascnn.errors import KerasCNNError, MissingFileError
from kerascnn.evaluation import result_warnings
from kerascnn.export import FORMATS, QUANTIZE_MODES, export_trained
from kerascnn.export.saved_model import DEFAULT_TOP_K
from kerascnn.inspection.report import write_report
from kerascnn.models import list_models, model_info
from kerascnn.training import lr_find as lr_find_module
from kerascnn.training.config import OutputConfig, TrainConfig, flat_fields, flat_hints
from kerascnn.training.distribute import resolve_cluster
from kerascnn.training.recipes import list_recipes, resolve_config
from kerascnn.training.tensorboard import serve, tensorboard_hint
from kerascnn.tuning import METHODS, plan_refined, plan_search, run_search

USER_ERROR = 2
# Raised for a group invoked without a command (click 8.2+).
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class OneLineErrors:
    """Click mixin: usage errors and ``KerasCNNError`` become one ``Error:`` line, exit 2."""

    def main(self, args=None, prog_name=None, **extra):
        try:
            result = super().main(args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except NO_ARGS_IS_HELP as error:  # `kerascnn` alone: show the help, as click would
            click.echo(error.ctx.get_help())
            sys.exit(0)
        except (click.ClickException, KerasCNNError) as error:
            message = error.format_message() if isinstance(error, click.ClickException) else error
            message = " ".join(str(message).split())
            click.echo(f"Error: {message}", err=True)
            sys.exit(USER_ERROR)
        sys.exit(result if isinstance(result, int) else 0)


class Group(OneLineErrors, click.Group):
    pass


class Command(OneLineErrors, click.Command):
    pass


class Parsed(click.ParamType):
    """A setting's own parser (``Setting.parse``) as a click type: its ``ValueError`` becomes
    click's one-line usage error naming the option."""

    def __init__(self, parse, name: str):
        self.parse, self.name = parse, name

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def parse_options(values: tuple[str, ...]) -> dict:
    """``--model-option variant=modern`` -> ``{"variant": "modern"}`` (values parsed as YAML
    scalars, so numbers and booleans keep their types; nothing is evaluated)."""
    options = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"expected KEY=VALUE, got {item!r}", param_hint="--model-option"
            )
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            options[key.strip()] = raw
    return options


def setting_option(field: dataclasses.Field):
    """The click option of a configuration field, everything taken from the field: flag,
    type, choices, bounds, help and the default it shows. Its default is None ("not given"),
    so a config file or recipe fills what the flags leave."""
    about = settings.about(field)
    flag = about.option or "--" + field.name.replace("_", "-")
    declarations = [f"{flag}/--no-{flag[2:]}" if about.flag == "switch" else flag, field.name]
    kwargs: dict[str, Any] = {"help": settings.help_text(field), "default": None}
    hint = flat_hints()[field.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: X
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if about.flag == "on":
        kwargs["is_flag"] = True
    elif about.parse is not None:
        kwargs["type"] = Parsed(about.parse, about.metavar or field.name.upper())
    elif typing.get_origin(hint) is dict:
        kwargs.update(multiple=True, default=())
    elif about.allowed() is not None:
        kwargs["type"] = click.Choice([str(c) for c in about.allowed() if c is not None])
    elif about.directory:
        kwargs["type"] = click.Path(file_okay=False)
    elif hint in (int, float) and (about.low is not None or about.high is not None):
        kwargs["type"] = (click.IntRange if hint is int else click.FloatRange)(
            about.low, about.high, min_open=about.low_open, max_open=about.high_open
        )
    elif hint in (int, float):
        kwargs["type"] = hint
    if about.metavar and about.parse is None:
        kwargs["metavar"] = about.metavar
    return click.option(*declarations, **kwargs)


def config_options(command):
    """One option per configuration field the command line sets (``TrainConfig``, in the
    order of its fields and sections)."""
    for field in reversed([f for f in flat_fields() if settings.about(f).cli]):
        command = setting_option(field)(command)
    return command


def data_option(name: str):
    """A data setting (``DataConfig``) as an option of another command."""
    return setting_option(next(f for f in dataclasses.fields(DataConfig) if f.name == name))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kerascnn")
def main():
    """kerascnn: the classic convolutional networks, trained, inspected and exported."""


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


def config_from_flags(config_file: str | None, flags: dict) -> TrainConfig:
    """Defaults < recipe < ``--config FILE`` < flags."""
    config = resolve_config(flags.pop("recipe"), config_file)
    model_options = flags.pop("model_options")
    if model_options:
        flags["model_options"] = {**config.model_options, **parse_options(model_options)}
    return config.updated(**flags)


def print_summary(outcome) -> None:
    result, metrics = outcome.result, outcome.result.metrics
    meta = result.metadata
    rows = [
        (
            "model",
            f"{meta['model_title']} ({meta['model']}), {meta['parameters']:,} parameters "
            f"({meta['trainable_parameters']:,} trainable)",
        ),
        ("dataset", f"{meta['dataset']}, input {'x'.join(map(str, meta['input_shape']))}"),
        *split_rows(metrics),
    ]
    if metrics.get("resumed_from_epoch"):
        rows.append(("resumed", f"after epoch {metrics['resumed_from_epoch']}"))
    statistics = metrics.get("batchnorm_statistics")
    if statistics and statistics["recomputed"]:
        rows.append(
            (
                "batch norm",
                f"statistics recomputed over {statistics['images']:,} training images "
                f"({statistics['mode']}: best checkpoint after {statistics['steps']:,} steps, "
                f"averaging window {statistics['window']:g})",
            )
        )
    rows += [
        (
            "time",
            f"{metrics['train_seconds']:.1f} s for {plural(metrics['epochs_completed'], 'epoch')} "
            f"(best {metrics['best_epoch']}), {metrics['train_images_per_second']:,.0f} images/s",
        ),
        ("logs", f"{result.run_dir / 'logs'}   ({tensorboard_hint(result.run_dir.parent)})"),
        ("run", f"{result.run_dir}   (model.keras, checkpoints/, metrics.json)"),
    ]
    if outcome.export is not None:
        rows.append(("export", f"{outcome.export.directory}   (model.keras, 1/, model.tflite)"))
        rows += [(f"parity {k}", parity_line(v)) for k, v in outcome.export.parity.items()]
    rows += [("note", note) for note in outcome.notes]
    click.echo("")
    for key, value in rows:
        click.echo(f"  {key:<20} {value}")
    for warning in metrics.get("warnings", []):
        click.echo(f"Warning: {warning}", err=True)


def split_rows(metrics: dict) -> list[tuple[str, str]]:
    """One summary row per split: accuracies, robust accuracy, cross-entropy and the named
    training criterion."""

    def percent(split, key="accuracy"):
        value = metrics[split].get(key)
        return "-" if value is None else f"{100 * value:.2f}%"

    penalties = " + weight decay" if metrics.get("loss_includes_regularization") else ""
    rows = []
    for split in SPLITS:
        figures = metrics[split]
        top5 = f"  top-5 {percent(split, 'top5_accuracy')}" if "top5_accuracy" in figures else ""
        robust = ""
        if figures.get("robust_accuracy") is not None:
            robust = f"  robust (PGD) {percent(split, 'robust_accuracy')}"
        loss = (
            f"cross-entropy {figures['cross_entropy']:.4f}  "
            f"{metrics['loss_function']} loss{penalties} {figures['loss']:.4f}"
        )
        rows.append((split, f"accuracy {percent(split)}{top5}{robust}  {loss}"))
    return rows


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def parity_line(parity: dict) -> str:
    line = (
        f"max |p - p_keras| {parity['max_abs_diff']:.1e}, top-1 agreement "
        f"{100 * parity['top1_agreement']:.1f}% on {parity['images']} test images"
    )
    if "accuracy_loss" in parity:
        change = 0.0 - 100 * parity["accuracy_loss"]  # 0.0 - 0.0 prints as +0.00
        line += f", accuracy {100 * parity['accuracy']:.2f}% ({change:+.2f} points)"
    if parity.get("warning"):
        line += f"; WARNING: {parity['warning']}"
    return line


@main.command(cls=Command)
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print everything model_info knows, as JSON.")
def models(pattern, as_json):
    """List the registered models (optionally those matching a shell PATTERN).

    Parameters and multiply-accumulates are for one image at the default input and the
    paper's class count, without auxiliary heads."""
    names = list_models(pattern)
    if not names:
        raise click.BadParameter(f"no model matches {pattern!r}", param_hint="PATTERN")
    infos = [model_info(name) for name in names]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    rows = [("name", "parameters", "MACs", "input", "min", "network")]
    for info in infos:
        rows.append(
            (
                info["name"],
                f"{info['parameters']:,}",
                _si(info["multiply_accumulates"]),
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


def _si(count: int) -> str:
    """1234567890 -> '1.23G'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g}{unit}"
    return str(count)


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


@main.command(cls=Command)
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


@main.command(cls=Command)
def recipes():
    """List the papers' training recipes (kerascnn/configs/*.yaml), one line each."""
    rows = list_recipes()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        click.echo(f"{name:<{width}}  {description}")


@main.command(cls=Command)
@click.argument("source", metavar="RUN_DIR_OR_MODEL", type=click.Path())
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False),
    default=OutputConfig().export_dir,
    show_default=True,
)
@click.option("--name", help="Export name. [the run directory's name or the file's stem]")
@click.option("--dataset", help="Dataset whose test split checks parity. [the run's]")
@click.option(
    "--format",
    "formats",
    default="saved_model,tflite",
    show_default=True,
    help=f"Comma-separated: {', '.join(FORMATS)}.",
)
@click.option(
    "--quantize",
    default="none",
    show_default=True,
    help=f"TFLite modes, comma-separated ({', '.join(QUANTIZE_MODES)}; none: float32).",
)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=DEFAULT_TOP_K,
    show_default=True,
    help="SavedModel top-k.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
def export(source, export_dir, name, dataset, formats, quantize, top_k, overwrite):
    """Export a run directory or .keras file: model.keras, a SavedModel (1/), TFLite files
    (model.tflite, model_<mode>.tflite), model.onnx, labels.txt and metadata.json with each
    artifact's measured parity against the Keras model."""
    result = export_trained(
        source,
        export_dir,
        name=name,
        dataset=dataset,
        formats=_comma_list(formats),
        quantize=_comma_list(quantize),
        top_k=top_k,
        overwrite=overwrite,
    )
    written = sorted(p.name + ("/" if p.is_dir() else "") for p in result.directory.iterdir())
    click.echo(f"exported to {result.directory}   ({', '.join(written)})")
    if result.kept:
        click.echo(f"  kept {', '.join(result.kept)} (already there; --overwrite rewrites them)")
    for kind, parity in result.parity.items():
        click.echo(f"  parity {kind:<16} {parity_line(parity)}")


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@main.command(cls=Command)
@click.argument("artifact", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the predictions as JSON.")
def predict(artifact, images, top_k, as_json):
    """Classify IMAGES (JPEG, PNG, BMP, GIF) with a .keras, SavedModel, .tflite or .onnx ARTIFACT
    (or a run or export directory)."""
    predictions = application.predict(artifact, images, top_k)
    if as_json:
        click.echo(json.dumps(predictions, indent=2))
        return
    for prediction in predictions:
        click.echo(f"{prediction['image']}:")
        for p in prediction["top_k"]:
            click.echo(f"  {p['class']:<16} {p['probability']:.4f}")


@main.command(cls=Command)
@click.argument("artifact", type=click.Path())
@click.option("--host", default=demo_page.LOCAL_HOST, show_default=True, help="Address to bind.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=demo_page.DEFAULT_PORT, show_default=True
)
@click.option("--share", is_flag=True, help="Also serve through a public gradio.live link.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
def demo(artifact, host, port, share, top_k):
    """A web page to try ARTIFACT (a run or export directory, .keras, .tflite, .onnx or
    SavedModel): upload or draw an image, see the top classes and, for Keras models, Grad-CAM
    and saliency. Needs the [demo] extra (gradio). Ctrl-C stops it."""
    demo_page.require_gradio()
    demo_page.check_port(host, port)
    page = demo_page.build(artifact, top_k=top_k)
    if host != demo_page.LOCAL_HOST or share:
        click.echo(
            "Warning: the page has no authentication; anyone who can reach it can use the model",
            err=True,
        )
    local, public = demo_page.launch(page, host=host, port=port, share=share)
    click.echo(f"Running on {local}" + (f" and {public}" if public else "") + " (Ctrl-C to stop)")
    stopped_by = demo_page.wait_until_stopped(page)
    click.echo(f"Stopped ({stopped_by}).")


@main.command(cls=Command)
@click.argument("artifacts", nargs=-1, required=True, type=click.Path())
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Batch of the throughput runs.",
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="TFLite and ONNX Runtime threads. [all cores]"
)
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the timings as JSON.")
def benchmark(artifacts, batch_size, threads, warmup, repeats, as_json):
    """Latency at batch 1 and throughput at --batch-size of each ARTIFACT (an export
    directory stands for every artifact in it), the median of --repeats runs after --warmup,
    with ratios against the Keras model."""
    timings = bench.benchmark(
        artifacts, batch_size=batch_size, threads=threads, warmup=warmup, repeats=repeats
    )
    host = bench.machine()
    if as_json:
        payload = {"machine": host, "threads": threads, "timings": bench.as_json(timings)}
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(bench.table(timings))
    click.echo(
        f"{host['cpu']}, {host['cores']} cores; median of {repeats} runs after {warmup} "
        f"warm-up runs; TFLite/ONNX threads: {threads or 'all'}"
    )


@main.group(cls=Group)
def inspect():
    """See what a trained network learned, as PNG files (and TensorBoard images under
    RUN_DIR/logs/inspect when the source is a run directory).

    Each command takes a run directory, an export directory or a .keras file, and optional
    IMAGES (JPEG, PNG, BMP, GIF); without IMAGES, the first test images of the run's dataset.
    """


def _source_and_out(command):
    command = click.argument("source", metavar="RUN_DIR_OR_ARTIFACT", type=click.Path())(command)
    return click.option(
        "--out",
        type=click.Path(file_okay=False),
        help="Write here. [RUN_DIR/inspect/<command>, or inspect/<command> beside the model]",
    )(command)


def _images(command):
    return click.argument("images", nargs=-1, type=click.Path())(command)


def _layer(help_text):
    return click.option("--layer", metavar="NAME", help=help_text)


_class = click.option(
    "--class", "class_index", type=int, metavar="N", help="Class index to explain. [the label]"
)


def _inspect(what: str, source: str, images, out: str | None, **options) -> None:
    done = application.inspect(what, source, images, out, **options)
    for note in done.notes:
        click.echo(f"  {note}")
    names = ", ".join(p.name for p in done.written)
    click.echo(f"wrote {plural(len(done.written), 'file')} to {done.out_dir}: {names}")
    if done.log_dir is not None:
        run_dir = done.log_dir.parent.parent
        click.echo(f"TensorBoard images in {done.log_dir}   ({tensorboard_hint(run_dir)})")


@inspect.command(cls=Command)
@_source_and_out
def filters(source, out):
    """The first convolutional layer's kernels, as a normalised grid."""
    _inspect("filters", source, (), out)


@inspect.command(cls=Command)
@_source_and_out
@_images
@_layer("Layer whose feature maps to draw. [the first convolution]")
def activations(source, images, out, layer):
    """The feature maps of a layer for each image, as a grid."""
    _inspect("activations", source, images, out, layer=layer)


@inspect.command(cls=Command)
@_source_and_out
@_images
@_class
def saliency(source, images, out, class_index):
    """|d class score / d pixel| (max over channels) and guided backpropagation."""
    _inspect("saliency", source, images, out, class_index=class_index)


@inspect.command(cls=Command)
@_source_and_out
@_images
@_layer("Feature-map layer. [the last one larger than 1x1, before global pooling]")
@_class
def gradcam(source, images, out, layer, class_index):
    """Grad-CAM heat maps over the images."""
    _inspect("gradcam", source, images, out, layer=layer, class_index=class_index)


@inspect.command(cls=Command)
@_source_and_out
@_images
@_class
@click.option("--patch", type=click.IntRange(min=1), help="Patch side in pixels. [side / 4]")
@click.option("--stride", type=click.IntRange(min=1), help="Patch step in pixels. [patch / 2]")
def occlusion(source, images, out, class_index, patch, stride):
    """The class probability as a grey patch slides over the image."""
    _inspect("occlusion", source, images, out, class_index=class_index, patch=patch, stride=stride)


@inspect.command(cls=Command)
@_source_and_out
@_images
@click.option("--k", type=click.IntRange(min=1), default=6, show_default=True)
def neighbours(source, images, out, k):
    """The nearest training images in the penultimate layer's feature space."""
    _inspect("neighbours", source, images, out, k=k)


@inspect.command(cls=Command)
@_source_and_out
@click.option("--method", type=click.Choice(["tsne", "pca"]), default="tsne", show_default=True)
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="validation",
    show_default=True,
)
def embeddings(source, out, method, split):
    """Penultimate features for TensorBoard's Projector, and a 2-D scatter by class."""
    _inspect("embeddings", source, (), out, method=method, split=split)


@inspect.command("class-model", cls=Command)
@_source_and_out
@_class
@click.option("--steps", type=click.IntRange(min=1), default=200, show_default=True)
def class_model(source, out, class_index, steps):
    """An input maximising each class score (or --class), one PNG per class."""
    _inspect("class-model", source, (), out, class_index=class_index, steps=steps)


@inspect.command(cls=Command)
@_source_and_out
@_images
@click.option(
    "--epsilon",
    type=click.FloatRange(min=0, min_open=True),
    default=64.0,
    show_default=True,
    help="Largest change of a pixel, in pixel units (0-255).",
)
@click.option(
    "--step",
    "step_size",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="Pixel units per gradient-sign step.",
)
@click.option("--max-steps", type=click.IntRange(min=1), default=64, show_default=True)
def fooling(source, images, out, epsilon, step_size, max_steps):
    """Fast gradient sign, iterated until the predicted class changes."""
    _inspect(
        "fooling", source, images, out, epsilon=epsilon, step_size=step_size, max_steps=max_steps
    )


@main.command(cls=Command)
@click.argument("source", metavar="RUN_DIR_OR_KERAS", type=click.Path())
@click.option("--prune", type=float, metavar="SPARSITY", help="Final sparsity, in [0, 1).")
@click.option(
    "--initial-sparsity",
    type=float,
    default=0.0,
    show_default=True,
    help="Where the schedule starts.",
)
@click.option(
    "--global", "global_scope", is_flag=True, help="One magnitude threshold for all layers."
)
@click.option("--structured", is_flag=True, help="Prune whole filters (L1 norm).")
@click.option(
    "--cluster", type=int, metavar="BITS", help="Weight sharing: 2^BITS values a layer (1-8)."
)
@click.option(
    "--low-rank",
    type=float,
    metavar="FRACTION",
    help="Factor Dense layers by truncated SVD to this rank fraction, in (0, 1].",
)
@click.option(
    "--quantize", default="", help="TFLite modes to export beside float32 (int8, float16, dynamic)."
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), help="[the run's]")
@click.option("--run-name", help="[<source run>-compressed]")
@click.option("--output-dir", type=click.Path(file_okay=False), help="[the run's]")
@click.option("--export-dir", type=click.Path(file_okay=False), help="[the run's]")
@click.option("--overwrite", is_flag=True, help="Replace an existing run and export.")
def compress(
    source,
    prune,
    initial_sparsity,
    global_scope,
    structured,
    cluster,
    low_rank,
    quantize,
    epochs,
    **options,
):
    """Prune (Zhu & Gupta's gradual schedule), share weights (Deep Compression's k-means)
    and/or factor Dense layers (truncated SVD) of a trained model while fine-tuning it with
    its run's recipe: a new run directory and export, with the size of each TFLite file raw
    and gzip-compressed against the source's float32 TFLite, sparsity and unique values per
    layer, and accuracy before and after."""
    recipe = compression.Recipe(
        prune=prune,
        initial_sparsity=initial_sparsity,
        scope="global" if global_scope else "layer",
        structured=structured,
        cluster_bits=cluster,
        low_rank=low_rank,
        quantize=tuple(_comma_list(quantize)),
    )
    done = application.compress(source, recipe, epochs=epochs, notify=click.echo, **options)
    print_summary(application.RunOutcome(result=done.result, export=done.export))
    click.echo("")
    click.echo(compression_table(done.report))


def compression_table(report: dict) -> str:
    """The report of ``kerascnn compress`` as the terminal shows it."""
    accuracy = report["accuracy"]
    lines = [
        f"  {'artifact':<28} {'bytes':>10} {'gzip':>10} {'x raw':>7} {'x gzip':>7} {'accuracy':>9}"
    ]
    for row in report["files"]:
        lines.append(
            f"  {row['artifact']:<28} {row['bytes']:>10,} {row['gzip_bytes']:>10,} "
            f"{row['ratio']:>6.1f}x {row['gzip_ratio']:>6.1f}x {100 * row['accuracy']:>8.2f}%"
        )
    estimate = report["deep_compression"]
    lines.append(
        f"  Deep Compression storage estimate (paper's sparse format, not a file): "
        f"{estimate['bytes'] / 1024:,.1f} KB ({estimate['ratio']:.1f}x), with Huffman coding "
        f"{estimate['huffman_bytes'] / 1024:,.1f} KB ({estimate['huffman_ratio']:.1f}x) of "
        f"{estimate['dense_bytes'] / 1024:,.1f} KB in float32"
    )
    lines.append(
        f"\n  {'layer':<20} {'kind':<5} {'params':>9} {'nonzero':>9} {'sparsity':>9} {'unique':>7}"
    )
    for row in report["layers"]:
        lines.append(
            f"  {row['layer']:<20} {row['kind']:<5} {row['parameters']:>9,} {row['nonzero']:>9,} "
            f"{100 * row['sparsity']:>8.1f}% {row['unique_values']:>7,}"
        )
    params = report["parameters"]
    lines.append(
        f"\n  parameters {params['source_total']:,} -> {params['total']:,}; "
        f"prunable {params['prunable']:,}, "
        f"{params['nonzero_prunable']:,} nonzero ({100 * params['sparsity']:.1f}% sparse)"
    )
    lines.append(
        f"  test accuracy {100 * accuracy['source']:.2f}% -> {100 * accuracy['compressed']:.2f}% "
        f"({accuracy['change_points']:+.2f} points) on {report['test_images']} images; "
        f"batch-1 latency: kerascnn benchmark on both export directories"
    )
    return "\n".join(lines)


@main.command(cls=Command)
@click.argument("run_dir", type=click.Path())
def report(run_dir):
    """Write RUN_DIR/report.html: configuration, training curves, confusion matrix,
    per-class accuracy, misclassified images, saliency and Grad-CAM examples (self-contained)."""
    click.echo(f"report in {write_report(run_dir)}")


@main.command(cls=Command)
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


# -- training science: search, range test, ensembles -------------------------------------


@main.command(cls=Command)
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


@main.command("lr-find", cls=Command)
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


@main.command(cls=Command)
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


train = main.command(cls=Command)(train)
# `kerascnn-train` is the same command on its own.
train_main = Command(
    name="kerascnn-train",
    params=train.params,
    callback=train.callback,
    help=train.help,
    context_settings={"help_option_names": ["-h", "--help"]},
)

if __name__ == "__main__":
    main()
