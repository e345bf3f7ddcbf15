"""``kerascnn inspect ...``: what a trained network learned, as pictures."""

from __future__ import annotations

import click

from kerascnn import application
from kerascnn.cli.base import Command, Group
from kerascnn.cli.output import print_inspected
from kerascnn.data import SPLITS


@click.group(cls=Group)
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
    print_inspected(application.inspect(what, source, images, out, **options))


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
