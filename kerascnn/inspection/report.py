"""``report.html`` for a run directory: one self-contained page (images as base64 PNG data
URIs, no scripts, no network). A header (the model's parameters and multiply-accumulates, the
versions, the machine, the dates), then the results, the training curves with the best epoch
marked, the confusion matrix, per-class accuracy, misclassified test images, saliency and
Grad-CAM examples, and the configuration in a collapsed block. Every picture scales to the
page's column, so the page has no horizontal scroll in a 1280-pixel window."""

from __future__ import annotations

import base64
import html
import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from matplotlib.ticker import MaxNLocator

from kerascnn import plotting
from kerascnn.data import SPLITS, load_dataset, split_arrays
from kerascnn.errors import MissingFileError
from kerascnn.evaluation import confusion_matrix, per_class
from kerascnn.files import write_text_atomically
from kerascnn.inspection import commands
from kerascnn.inspection.model import load_inspectable
from kerascnn.models.counting import multiply_accumulates

# Training curves, in this order when metrics.json's history has them.
CURVES = (
    ("loss", "loss"),
    ("accuracy", "top-1 accuracy"),
    ("top5_accuracy", "top-5 accuracy"),
    ("learning_rate", "learning rate"),
)
EXAMPLES = 3
MISCLASSIFIED = 24
# Curves side by side at most this many (then a second row); 5.4 inches at 100 dpi each.
CURVE_COLUMNS = 2

# Pictures never wider than the column (max-width), so no horizontal scroll.
STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; }
.warning { background: #fde8e8; border-left: 4px solid #c0392b; padding: 6px 10px; }
th { background: #eee; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
img { display: block; margin: 0.5em 0; max-width: 100%; height: auto; }
.header { color: #555; } .header td, .header th { text-align: left; background: none; }
summary { cursor: pointer; }
"""


def image_tag(picture: np.ndarray, alt: str) -> str:
    """An <img> holding ``picture`` as a PNG data URI, with its pixel size."""
    data = base64.b64encode(plotting.png_bytes(picture)).decode("ascii")
    height, width = picture.shape[:2]
    return (
        f'<img src="data:image/png;base64,{data}" width="{width}" height="{height}" '
        f'alt="{html.escape(alt)}">'
    )


def curve_titles(history: dict[str, list[float]]) -> list[tuple[str, str]]:
    """The (history key, title) of each curve the history can draw, in CURVES order."""
    return [(key, title) for key, title in CURVES if key in history]


def curves(history: dict[str, list[float]], best_epoch: int | None = None) -> np.ndarray | None:
    """One panel per curve in ``curve_titles``, train and (when logged) validation, with the
    best epoch (whose checkpoint is the run's model) marked; two panels a row."""
    present = curve_titles(history)
    if not present:
        return None
    columns = min(CURVE_COLUMNS, len(present))
    rows = -(-len(present) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(5.4 * columns, 3.2 * rows), dpi=100, squeeze=False
    )
    for ax in axes.ravel()[len(present) :]:
        ax.axis("off")
    for ax, (key, title) in zip(axes.ravel(), present, strict=False):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="tab:red", ls="--", lw=1, label=f"best ({best_epoch})")
        ax.legend(fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return plotting.figure_to_array(figure)


def build_report(run_dir: str | Path) -> str:
    """The report of ``run_dir`` as an HTML string.

    Raises:
        FileNotFoundError: ``run_dir`` is not a finished run (no metrics.json or model.keras).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise MissingFileError(f"{run_dir} is not a finished run directory (no metrics.json)")
    target = load_inspectable(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    data = load_dataset(target.metadata.get("dataset") or "digits")
    height, width, channels = target.input_shape
    images, labels = split_arrays(data.test, image_size=(height, width), channels=channels)
    probabilities = np.concatenate(
        [
            np.asarray(target.model(images[i : i + 256], training=False))
            for i in range(0, len(images), 256)
        ]
    )
    title = f"{run_dir.name}: {target.metadata.get('model_title')} on {data.name}"
    parts = [f"<h1>{html.escape(title)}</h1>", header(run_dir, target)]
    parts += results_section(metrics)
    parts += curves_section(metrics.get("history", {}), metrics.get("best_epoch"))
    parts += test_split_sections(images, labels, probabilities, target.class_names)
    parts += explanation_sections(target, images, labels)
    parts.append(
        "<h2>Configuration</h2><details><summary>config.yaml (the resolved configuration)"
        f"</summary><pre>{html.escape(config)}</pre></details>"
    )
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(run_dir.name)} report</title><style>{STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def header(run_dir: Path, target) -> str:
    """The model's size and cost, the versions and machine of this report, and the dates."""
    model, meta = target.model, target.metadata
    parameters = meta.get("parameters") or model.count_params()
    try:
        macs = f"{multiply_accumulates(model) / 1e6:,.2f} M multiply-accumulates per image"
    except ValueError:  # a custom layer without a count
        macs = "multiply-accumulates unknown"
    devices = ", ".join(meta.get("distribution", {}).get("devices", [])) or "-"
    finished = datetime.fromtimestamp((run_dir / "metrics.json").stat().st_mtime, timezone.utc)
    written = datetime.now(timezone.utc)
    rows = [
        ("model", f"{meta.get('model', '-')}: {parameters:,} parameters, {macs}"),
        (
            "versions",
            f"kerascnn {kerascnn_version()}, TensorFlow {tf.__version__}, "
            f"Keras {keras.__version__}, Python {platform.python_version()}",
        ),
        (
            "machine",
            f"{platform.platform()}, {os.cpu_count()} cores; trained on {devices}",
        ),
        (
            "date",
            f"trained {finished:%Y-%m-%d %H:%M} UTC; report {written:%Y-%m-%d %H:%M} UTC",
        ),
    ]
    cells = "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="header">{cells}</table>'


def kerascnn_version() -> str:
    """The installed package's version (``unknown`` when run from a source tree)."""
    try:
        return package_metadata.version("kerascnn")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def results_section(metrics: dict) -> list[str]:
    """The run's warnings first, then top-1, top-5, cross-entropy and the training loss of
    each split, and the run's length."""
    parts = [
        f'<p class="warning"><b>Warning:</b> {html.escape(w)}</p>'
        for w in metrics.get("warnings", [])
    ]
    loss = html.escape(f"{metrics.get('loss_function')} loss")
    parts.append(
        "<h2>Results</h2><table><tr><th></th><th>top-1</th><th>top-5</th>"
        f"<th>cross-entropy</th><th>{loss}</th></tr>"
    )
    for split in SPLITS:
        row = metrics.get(split, {})
        cells = [
            f"{100 * row[key]:.2f}%" if key in row else "-" for key in ("accuracy", "top5_accuracy")
        ] + [f"{row[key]:.4f}" if key in row else "-" for key in ("cross_entropy", "loss")]
        parts.append(f"<tr><th>{split}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append(
        f"</table><p>{metrics.get('epochs_completed')} epochs (best "
        f"{metrics.get('best_epoch')}), {metrics.get('train_seconds')} s; loss function "
        f"{html.escape(str(metrics.get('loss_function')))}.</p>"
    )
    return parts


def curves_section(history: dict[str, list[float]], best_epoch: int | None) -> list[str]:
    picture = curves(history, best_epoch)
    if picture is None:
        return []
    titles = ", ".join(title for _, title in curve_titles(history))
    marked = f"; dashed: the best epoch, {best_epoch}" if best_epoch else ""
    return ["<h2>Training curves</h2>" + image_tag(picture, f"training curves: {titles}{marked}")]


def test_split_sections(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, names: list[str]
) -> list[str]:
    """The confusion matrix, per-class accuracy and the misclassified test images."""
    predictions = probabilities.argmax(-1)
    matrix = confusion_matrix(labels, predictions, len(names))
    picture = plotting.confusion_picture(matrix, names)
    parts = ["<h2>Confusion matrix</h2>" + image_tag(picture, "cm")]
    parts.append("<h2>Per-class accuracy (test)</h2><table>")
    parts.append("<tr><th>class</th><th>images</th><th>correct</th><th>accuracy</th></tr>")
    for row in per_class(matrix, names):
        accuracy = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f}%"
        parts.append(
            f"<tr><th>{html.escape(row['class'])}</th><td>{row['images']}</td>"
            f"<td>{row['correct']}</td><td>{accuracy}</td></tr>"
        )
    parts.append("</table>")
    wrong = np.flatnonzero(predictions != labels)
    parts.append(f"<h2>Misclassified test images ({len(wrong)} of {len(labels)})</h2>")
    if len(wrong):
        shown = wrong[:MISCLASSIFIED]
        picture = plotting.misclassified_picture(
            images[shown], labels[shown], probabilities[shown], names, columns=6
        )
        parts.append(image_tag(picture, "misclassified"))
    return parts


def explanation_sections(target, images: np.ndarray, labels: np.ndarray) -> list[str]:
    """Saliency and Grad-CAM of the first test images."""
    examples = commands.Inputs(
        images[:EXAMPLES],
        labels[:EXAMPLES].astype("int64"),
        [f"test{i}" for i in range(EXAMPLES)],
        labelled=True,
    )
    parts = []
    for what, title in (("saliency", "Saliency"), ("gradcam", "Grad-CAM")):
        found = commands.inspect(what, target, examples)
        parts.append(f"<h2>{title}</h2>" + "".join(f"<p>{html.escape(n)}</p>" for n in found.notes))
        parts += [image_tag(p, name) for name, p in found.pictures.items()]
    return parts


def write_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` and return its path."""
    return write_text_atomically(Path(run_dir) / "report.html", build_report(run_dir))
