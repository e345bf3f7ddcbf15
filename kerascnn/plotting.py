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
from matplotlib import font_manager  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402  (a matplotlib dependency)

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


# Pictures TensorBoard shows are scaled down to its image card (about 500 px wide by
# default): text is drawn at TEXT_POINTS at DPI (about 17 px) on pictures of at most about
# 800 px, so it stays legible there.
DPI = 100
TEXT_POINTS = 12


def panels(
    images: list[np.ndarray],
    titles: list[str],
    columns: int | None = None,
    *,
    tile_inches: float = 2.2,
    fontsize: float = 9,
    dpi: int = 80,
    colour_scale: str | None = None,
) -> np.ndarray:
    """uint8 images side by side (a grid of ``columns``), each with a title, as one array.
    ``colour_scale`` adds a colour bar of ``heat``'s colormap from 0 to 1, with that label."""
    columns = columns or len(images)
    rows = int(np.ceil(len(images) / columns))
    extra = 1.0 if colour_scale else 0.0
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(tile_inches * columns + extra, (tile_inches + 0.2 * fontsize / 9) * rows),
        dpi=dpi,
        squeeze=False,
        # Constrained layout makes room for the colour bar and its label; tight_layout does not.
        layout="constrained" if colour_scale else None,
    )
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles, strict=False):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=fontsize)
    if colour_scale:
        bar = figure.colorbar(plt.cm.ScalarMappable(cmap="jet"), ax=axes, fraction=0.05)
        bar.set_label(colour_scale, fontsize=fontsize)
        bar.ax.tick_params(labelsize=fontsize - 1)
    else:
        figure.tight_layout()
    return figure_to_array(figure)


def labelled_grid(images: list[np.ndarray], titles: list[str], columns: int = 4) -> np.ndarray:
    """Images in ``columns`` columns, each titled in ``TEXT_POINTS`` text: legible at
    TensorBoard's default size (four columns of 1.6 inches at ``DPI``: 640 px wide).

    Drawn with PIL in matplotlib's font, not as a matplotlib figure: a run draws two such
    grids, and sixteen matplotlib axes take seconds to lay out and render on a CPU."""
    columns = min(columns, len(images))
    tile = round(1.6 * DPI)
    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), round(TEXT_POINTS * DPI / 72))
    ascent, descent = font.getmetrics()
    lines = max(title.count("\n") + 1 for title in titles)
    title_height = lines * (ascent + descent) + 6
    rows = -(-len(images) // columns)
    canvas = Image.new("RGB", (columns * tile, rows * (tile + title_height)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, title) in enumerate(zip(images, titles, strict=True)):
        row, column = divmod(i, columns)
        left, top = column * tile, row * (tile + title_height)
        title = "\n".join(fitted(line, font, tile - 4) for line in title.split("\n"))
        draw.multiline_text(
            (left + tile / 2, top + 3), title, fill="black", font=font, anchor="ma", align="center"
        )
        picture = Image.fromarray(np.asarray(image, "uint8"))
        scale = (tile - 8) / max(picture.size)
        picture = picture.resize(
            (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
            Image.Resampling.NEAREST,
        )
        canvas.paste(
            picture,
            (left + (tile - picture.width) // 2, top + title_height + (tile - picture.height) // 2),
        )
    return np.asarray(canvas)


def fitted(text: str, font, width: int) -> str:
    """``text``, cut and ended with an ellipsis where it is wider than ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def misclassified_picture(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    columns: int = 4,
) -> np.ndarray:
    """The images (raw pixels) in ``labelled_grid``, each titled ``true`` over ``-> predicted
    (probability)``."""
    predictions = probabilities.argmax(-1)
    titles = [
        f"{class_names[t]}\n-> {class_names[p]} ({probabilities[i, p]:.2f})"
        for i, (t, p) in enumerate(zip(labels, predictions, strict=True))
    ]
    return labelled_grid([to_rgb(image) for image in images], titles, columns)


def confusion_picture(
    matrix: np.ndarray, class_names: list[str], title: str = "confusion matrix (test)"
) -> np.ndarray:
    """Counts of (true, predicted) as a blue heat map with its colour bar, class names on the
    axes and counts written in up to 30 classes, in ``TEXT_POINTS`` text up to 15 classes."""
    count = len(class_names)
    side = min(12.0, max(5.0, 0.5 * count + 2.5))
    text = TEXT_POINTS if count <= 15 else 8
    figure, ax = plt.subplots(figsize=(side + 1.0, side), dpi=DPI)
    shown = ax.imshow(matrix, cmap="Blues")
    bar = figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("images", fontsize=text)
    bar.ax.tick_params(labelsize=text - 1)
    if count <= 30:
        ticks = np.arange(count)
        ax.set_xticks(ticks, class_names, rotation=90, fontsize=text)
        ax.set_yticks(ticks, class_names, fontsize=text)
        for (i, j), value in np.ndenumerate(matrix):
            if value:
                colour = "white" if value > matrix.max() / 2 else "black"
                ax.text(j, i, str(value), ha="center", va="center", fontsize=text - 1, color=colour)
    ax.set_xlabel("predicted", fontsize=text)
    ax.set_ylabel("true", fontsize=text)
    ax.set_title(title, fontsize=text + 1)
    figure.tight_layout()
    return figure_to_array(figure)


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W, 3) -> PNG file contents."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, "uint8")).save(buffer, format="PNG")
    return buffer.getvalue()
