"""Commands on exported artifacts: ``export``, ``predict``, ``demo`` and ``benchmark``."""

from __future__ import annotations

import json

import click

from kerascnn import application
from kerascnn import benchmark as bench
from kerascnn import demo as demo_page
from kerascnn.cli.base import Command
from kerascnn.cli.options import (
    comma_list,
)
from kerascnn.cli.output import parity_line
from kerascnn.export import FORMATS, QUANTIZE_MODES
from kerascnn.export.saved_model import DEFAULT_TOP_K
from kerascnn.run_export import export_anywhere
from kerascnn.training.config import OutputConfig


@click.command(cls=Command)
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
    result = export_anywhere(
        source,
        export_dir,
        name=name,
        dataset=dataset,
        formats=comma_list(formats),
        quantize=comma_list(quantize),
        top_k=top_k,
        overwrite=overwrite,
    )
    written = sorted(p.name + ("/" if p.is_dir() else "") for p in result.directory.iterdir())
    click.echo(f"exported to {result.directory}   ({', '.join(written)})")
    if result.kept:
        click.echo(f"  kept {', '.join(result.kept)} (already there; --overwrite rewrites them)")
    for kind, parity in result.parity.items():
        click.echo(f"  parity {kind:<16} {parity_line(parity)}")


@click.command(cls=Command)
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


@click.command(cls=Command)
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


@click.command(cls=Command)
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
