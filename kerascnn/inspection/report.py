"""``report.html`` for a run directory: one self-contained page (images as base64 PNG data
URIs, no scripts, no network) with the configuration, training curves, the confusion matrix,
per-class accuracy, misclassified test images, and saliency and Grad-CAM examples."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from kerascnn import plotting
from kerascnn.data import SPLITS, load_dataset, split_arrays
from kerascnn.errors import MissingFileError
from kerascnn.evaluation import confusion_matrix, per_class
from kerascnn.files import write_text_atomically
from kerascnn.inspection import commands
from kerascnn.inspection.model import load_inspectable

# Training curves, in this order when metrics.json's history has them.
CURVES = (
    ("loss", "loss"),
    ("accuracy", "top-1 accuracy"),
    ("top5_accuracy", "top-5 accuracy"),
    ("learning_rate", "learning rate"),
)
EXAMPLES = 3
MISCLASSIFIED = 24

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; }
th { background: #eee; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
img { image-rendering: pixelated; display: block; margin: 0.5em 0; }
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


def curves(history: dict[str, list[float]]) -> np.ndarray | None:
    """One panel per curve in ``curve_titles``, train and (when logged) validation."""
    present = curve_titles(history)
    if not present:
        return None
    figure, axes = plt.subplots(
        1, len(present), figsize=(3.6 * len(present), 3), dpi=90, squeeze=False
    )
    for ax, (key, title) in zip(axes[0], present, strict=True):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label="validation")
            ax.legend(fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("epoch")
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
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += results_section(metrics)
    parts.append(f"<h2>Configuration</h2><pre>{html.escape(config)}</pre>")
    parts += curves_section(metrics.get("history", {}))
    parts += test_split_sections(images, labels, probabilities, target.class_names)
    parts += explanation_sections(target, images, labels)
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(run_dir.name)} report</title><style>{STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def results_section(metrics: dict) -> list[str]:
    """Loss, top-1 and top-5 of each split, and the run's length."""
    parts = ["<h2>Results</h2><table><tr><th></th><th>loss</th><th>top-1</th><th>top-5</th></tr>"]
    for split in SPLITS:
        row = metrics.get(split, {})
        cells = [f"{row['loss']:.4f}" if "loss" in row else "-"] + [
            f"{100 * row[key]:.2f}%" if key in row else "-" for key in ("accuracy", "top5_accuracy")
        ]
        parts.append(f"<tr><th>{split}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append(
        f"</table><p>{metrics.get('epochs_completed')} epochs (best "
        f"{metrics.get('best_epoch')}), {metrics.get('train_seconds')} s; loss function "
        f"{html.escape(str(metrics.get('loss_function')))}.</p>"
    )
    return parts


def curves_section(history: dict[str, list[float]]) -> list[str]:
    picture = curves(history)
    if picture is None:
        return []
    titles = ", ".join(title for _, title in curve_titles(history))
    return ["<h2>Training curves</h2>" + image_tag(picture, f"training curves: {titles}")]


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
        picture = plotting.panels(
            [plotting.to_rgb(images[i]) for i in shown],
            [
                f"{names[labels[i]]} -> {names[predictions[i]]} "
                f"({probabilities[i, predictions[i]]:.2f})"
                for i in shown
            ],
            columns=min(8, len(shown)),
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
