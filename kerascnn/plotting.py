"""Pictures as uint8 arrays (H, W, 3): grids, heat-map overlays, labelled panels, the
confusion matrix and matplotlib figures, plus PNG encoding. Matplotlib runs headless (Agg).

Shared by TensorBoard's pictures during training and by inspection and the run report, so
both draw the same things."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402  (a matplotlib dependency)

# Small inputs (8x8 digits upsampled to 32x32) are drawn at least this many pixels a side.
MIN_SIDE = 96


def normalise(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant array becomes zeros."""
    values = np.asarray(values, "float32")
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Raw pixels (H, W, C) in 0-255, or a [0, 1] map (H, W), as uint8 (H, W, 3)."""
    image = np.asarray(image, "float32")
    if image.ndim == 2:
        image = image[..., None] * 255.0
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.clip(np.round(image[..., :3]), 0, 255).astype("uint8")


def enlarge(image: np.ndarray, side: int = MIN_SIDE) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor so the short side is >= ``side``."""
    factor = max(1, -(-side // min(image.shape[:2])))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def heat(values: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """A [0, 1] map (H, W) through a colormap, uint8 (H, W, 3)."""
    colours = plt.get_cmap(cmap)(np.clip(values, 0, 1))[..., :3]
    return np.round(colours * 255).astype("uint8")


def overlay(image: np.ndarray, values: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Raw pixels (H, W, C) with a [0, 1] heat map (H, W) blended on top."""
    base = to_rgb(image).astype("float32")
    blended = (1 - alpha) * base + alpha * heat(values).astype("float32")
    return np.round(blended).astype("uint8")


def grid(tiles: list[np.ndarray], columns: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 (h, w, 3) tiles in rows, on white, ``pad`` pixels apart, each in a cell the
    size of the largest."""
    count = len(tiles)
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    h = max(tile.shape[0] for tile in tiles)
    w = max(tile.shape[1] for tile in tiles)
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, "uint8")
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return canvas


def figure_to_array(figure) -> np.ndarray:
    """Render a matplotlib figure to uint8 (H, W, 3) and close it."""
    figure.canvas.draw()
    array = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return array


def panels(images: list[np.ndarray], titles: list[str], columns: int | None = None) -> np.ndarray:
    """uint8 images side by side (a grid of ``columns``), each with a title, as one array."""
    columns = columns or len(images)
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(2.2 * columns, 2.4 * rows), dpi=80, squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles, strict=False):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure_to_array(figure)


def confusion_picture(
    matrix: np.ndarray, class_names: list[str], title: str = "confusion matrix (test)"
) -> np.ndarray:
    """Counts of (true, predicted) as a blue heat map, counts written in up to 30 classes."""
    size = max(4.0, 0.45 * len(class_names) + 1.5)
    figure, ax = plt.subplots(figsize=(size, size), dpi=90)
    ax.imshow(matrix, cmap="Blues")
    if len(class_names) <= 30:
        ticks = np.arange(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=90, fontsize=8)
        ax.set_yticks(ticks, class_names, fontsize=8)
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                colour = "white" if count > matrix.max() / 2 else "black"
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    figure.tight_layout()
    return figure_to_array(figure)


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W, 3) -> PNG file contents."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, "uint8")).save(buffer, format="PNG")
    return buffer.getvalue()
