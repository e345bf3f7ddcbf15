"""``kerascnn compress``: pruning, weight sharing and low rank, fine-tuned, with the size report."""

from __future__ import annotations

import click

from kerascnn import application, compression
from kerascnn.cli.base import Command
from kerascnn.cli.options import Parsed, comma_list
from kerascnn.cli.output import print_inspected, print_summary
from kerascnn.compression import sensitivity as scan
from kerascnn.data import SPLITS


@click.command(cls=Command)
@click.argument("source", metavar="RUN_DIR_OR_KERAS", type=click.Path())
@click.option(
    "--prune",
    type=float,
    metavar="SPARSITY",
    help="Final sparsity, in [0, 1), of every prunable layer without its own --prune-layer.",
)
@click.option(
    "--prune-layer",
    "prune_layers",
    multiple=True,
    callback=lambda ctx, param, values: tuple(map(layer_sparsity, values)),
    metavar="NAME=SPARSITY",
    help="A layer's own final sparsity, overriding --prune (repeatable; without --prune the "
    "other layers are not pruned).",
)
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
    "--qat",
    is_flag=True,
    help="Quantisation-aware training: fine-tune with int8 fake-quantised weights and "
    "activations; the int8 TFLite uses the trained ranges.",
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
    prune_layers,
    initial_sparsity,
    global_scope,
    structured,
    cluster,
    low_rank,
    qat,
    quantize,
    epochs,
    **options,
):
    """Prune (Zhu & Gupta's gradual schedule), share weights (Deep Compression's k-means)
    and/or factor Dense layers (truncated SVD) of a trained model, or train it aware of int8
    quantisation (--qat), while fine-tuning it with its run's recipe: a new run directory and
    export, with the size of each TFLite file raw and gzip-compressed against the source's
    float32 TFLite, sparsity and unique values per layer, and accuracy before and after
    (with --qat, against the source's post-training int8 TFLite)."""
    recipe = compression.Recipe(
        prune=prune,
        prune_layers=prune_layers,
        initial_sparsity=initial_sparsity,
        scope="global" if global_scope else "layer",
        structured=structured,
        cluster_bits=cluster,
        low_rank=low_rank,
        quantize=tuple(comma_list(quantize)),
        qat=qat,
    )
    done = application.compress(source, recipe, epochs=epochs, notify=click.echo, **options)
    print_summary(application.RunOutcome(result=done.result, export=done.export))
    click.echo("")
    click.echo(compression_table(done.report))


@click.command(cls=Command)
@click.argument("source", metavar="RUN_DIR_OR_KERAS", type=click.Path())
@click.option(
    "--sparsities",
    type=Parsed(scan.parse_sparsities, "SPARSITIES"),
    default=",".join(f"{s:g}" for s in scan.DEFAULT_SPARSITIES),
    show_default=True,
    help="Comma-separated sparsities, each in [0, 1), to prune every layer to, alone.",
)
@click.option("--split", type=click.Choice(SPLITS), default="validation", show_default=True)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=scan.DEFAULT_TOLERANCE,
    show_default=True,
    help="Accuracy points a layer may lose for its suggested --prune-layer sparsity.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Write here. [RUN_DIR/inspect/sensitivity, or inspect/sensitivity beside the model]",
)
def sensitivity(source, sparsities, split, tolerance, out):
    """Prune each layer alone to each sparsity, without fine-tuning, and measure the accuracy
    left (Han et al. 2015's sensitivity scan): a table, a plot, and the --prune-layer
    sparsities for kerascnn compress that keep each layer within --tolerance points."""
    done = application.sensitivity(
        source, sparsities=sparsities, split=split, tolerance=tolerance, out=out, notify=click.echo
    )
    click.echo("")
    print_inspected(done)


def layer_sparsity(value: str) -> tuple[str, float]:
    """``NAME=SPARSITY`` as ``(name, sparsity)`` (its range is the recipe's to check)."""
    name, equals, number = value.partition("=")
    try:
        if not equals or not name.strip():
            raise ValueError
        return name.strip(), float(number)
    except ValueError:
        raise click.BadParameter(
            f"expected NAME=SPARSITY, e.g. c5=0.95; received {value!r}", param_hint="--prune-layer"
        ) from None


def estimate_text(estimate: dict | None) -> str:
    if estimate is None:
        return (
            "not applicable (nothing pruned or shared: the paper's sparse format would store "
            "an index beside every weight)"
        )
    return (
        f"(paper's sparse format, not a file) {estimate['bytes'] / 1024:,.1f} KB "
        f"({estimate['ratio']:.1f}x), with Huffman coding {estimate['huffman_bytes'] / 1024:,.1f}"
        f" KB ({estimate['huffman_ratio']:.1f}x) of the source's "
        f"{estimate['dense_bytes'] / 1024:,.1f} KB in float32"
    )


def compression_table(report: dict) -> str:
    """The report of ``kerascnn compress`` as the terminal shows it."""
    accuracy = report["accuracy"]
    lines = [
        f"  {'artifact':<34} {'bytes':>10} {'gzip':>10} {'x raw':>7} {'x gzip':>7} {'accuracy':>9}"
    ]
    for row in report["files"]:
        lines.append(
            f"  {row['artifact']:<34} {row['bytes']:>10,} {row['gzip_bytes']:>10,} "
            f"{row['ratio']:>6.1f}x {row['gzip_ratio']:>6.1f}x {100 * row['accuracy']:>8.2f}%"
        )
    estimate = estimate_text(report["deep_compression"])
    lines.append(f"  Deep Compression storage estimate: {estimate}")
    lines.append(
        f"\n  {'layer':<20} {'kind':<5} {'params':>9} {'nonzero':>9} {'sparsity':>9} "
        f"{'asked':>7} {'unique':>7}"
    )
    for row in report["layers"]:
        asked = row.get("chosen_sparsity")
        asked = "-" if asked is None else f"{100 * asked:.1f}%"
        lines.append(
            f"  {row['layer']:<20} {row['kind']:<5} {row['parameters']:>9,} {row['nonzero']:>9,} "
            f"{100 * row['sparsity']:>8.1f}% {asked:>7} {row['unique_values']:>7,}"
        )
    if report.get("qat"):
        q = report["qat"]
        verdict = "better than" if q["change_points"] > 0 else "NO better than"
        lines.append(
            f"\n  QAT int8 TFLite {100 * q['qat_accuracy']:.2f}% against the source's "
            f"post-training int8 {100 * q['post_training_accuracy']:.2f}% "
            f"({q['change_points']:+.2f} points: {verdict} post-training quantisation here; "
            f"gzip bytes {q['qat_gzip_bytes']:,} against {q['post_training_gzip_bytes']:,}).\n"
            f"  QAT also fine-tuned {report['epochs']} more epochs: `--prune 0 --quantize int8` "
            f"with the same epochs separates the training from the quantisation"
        )
    if report.get("shrunk"):
        cuts = ", ".join(f"{r['layer']} {r['filters']}->{r['kept']}" for r in report["shrunk"])
        lines.append(f"\n  filters deleted from the network: {cuts}")
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
