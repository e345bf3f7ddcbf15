"""The command line: parse, resolve the configuration, call the library, print.

``kerascnn-train`` is ``kerascnn train``. A user mistake prints one ``Error: ...`` line and
exits with status 2. TensorFlow's start-up chatter is kept off the terminal (kerascnn/quiet.py).
Each command lives in a module of this package, imported when it runs, so that ``--help``,
``--version``, ``models`` and ``recipes`` answer without importing TensorFlow.
"""

from __future__ import annotations

import importlib

import click

import kerascnn
from kerascnn.cli.base import LazyGroup

# name -> (module of kerascnn.cli, the line `kerascnn --help` shows), in that listing's order.
COMMANDS = {
    "train": ("train", "Train a model, evaluate it and export it (= kerascnn-train)."),
    "evaluate": ("evaluate", "Top-1/top-5 accuracy of a run or artifact, or its robustness."),
    "export": ("artifacts", "Export a run or .keras file to SavedModel, TFLite and ONNX."),
    "predict": ("artifacts", "Classify images with a run or an exported artifact."),
    "benchmark": ("artifacts", "Latency and throughput of exported artifacts."),
    "demo": ("artifacts", "A web page to try a model on uploaded or drawn images."),
    "inspect": ("inspect", "See what a network learned: filters, saliency, Grad-CAM, ..."),
    "report": ("runs", "Write a run's self-contained report.html."),
    "tensorboard": ("runs", "Start TensorBoard on a run or a runs directory."),
    "compress": ("compress", "Prune, share weights or factor a trained model, fine-tuned."),
    "sensitivity": ("compress", "Accuracy as each layer alone is pruned: where to prune."),
    "tune": ("science", "Search hyperparameters with KerasTuner."),
    "lr-find": ("science", "The learning-rate range test."),
    "ensemble": ("science", "Average the predictions of several trained models."),
    "summary": ("networks", "One network layer by layer: shapes, parameters, MACs, memory."),
    "compare": ("networks", "Networks side by side, with published accuracy and a chart."),
    "convert": ("networks", "Convert a torchvision checkpoint into a network's weights."),
    "models": ("listing", "List the registered models with their sizes and papers."),
    "recipes": ("listing", "List the papers' training recipes."),
}


@click.group(
    cls=LazyGroup,
    commands=COMMANDS,
    light=("listing",),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="kerascnn")
def main():
    """kerascnn: the classic convolutional networks, trained, inspected and exported."""


def __getattr__(name: str):
    # `kerascnn-train` (the entry point kerascnn.cli:train_main) loads the train command.
    if name == "train_main":
        kerascnn.load()
        return importlib.import_module("kerascnn.cli.train").train_main
    raise AttributeError(f"module 'kerascnn.cli' has no attribute {name!r}")
