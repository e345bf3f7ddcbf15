"""What a training run prints when it ends: the summary, one row per split, and parity lines."""

from __future__ import annotations

import click

from kerascnn.data import SPLITS
from kerascnn.training.tensorboard import tensorboard_hint


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
        directory = outcome.export.directory
        shipped = ["model.keras", *(["1/"] if (directory / "1").is_dir() else [])]
        shipped += sorted(p.name for p in directory.glob("model*.*") if p.suffix != ".keras")
        rows.append(("export", f"{directory}   ({', '.join(shipped)})"))
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


def print_inspected(done) -> None:
    """What an inspection wrote (``application.Inspected``): its notes, files and the run's
    TensorBoard directory its pictures went to."""
    for note in done.notes:
        click.echo(f"  {note}")
    names = ", ".join(p.name for p in done.written)
    click.echo(f"wrote {plural(len(done.written), 'file')} to {done.out_dir}: {names}")
    if done.log_dir is not None:
        run_dir = done.log_dir.parent.parent
        click.echo(f"TensorBoard images in {done.log_dir}   ({tensorboard_hint(run_dir)})")
