"""Networks side by side (``kerascnn compare``): parameters, multiply-accumulates, activation
memory, depth and the published ImageNet accuracy with its source, and the chart of Canziani,
Paszke & Culurciello 2016 ("An Analysis of Deep Neural Network Models for Practical
Applications", Figure 2): top-1 accuracy against operations, marker area by parameters.

Accuracies are the registrations' ``imagenet_accuracy`` (each with its source); a network
without one is listed and drawn without it, never given an estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import matplotlib.pyplot as plt

from kerascnn import plotting
from kerascnn.models import MODELS, model_info
from kerascnn.models.summary import summarize


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    parameters: int
    multiply_accumulates: int
    forward_bytes: int
    depth: int
    input_shape: tuple[int, int, int]
    top1: float | None
    top5: float | None
    source: str | None


def compare(names: list[str]) -> list[Entry]:
    """One entry per name, at each network's default input and the paper's class count.

    Raises:
        UnknownNameError: a name is not registered (checked for all before anything is built).
    """
    specs = [MODELS.get(name) for name in names]
    entries = []
    for spec in specs:
        info = model_info(spec.name)
        table = summarize(spec.name)
        accuracy = spec.imagenet_accuracy
        entries.append(
            Entry(
                name=spec.name,
                title=spec.title,
                parameters=info["parameters"],
                multiply_accumulates=info["multiply_accumulates"],
                forward_bytes=table.forward_bytes,
                depth=table.depth,
                input_shape=tuple(spec.input_shape),
                top1=accuracy and accuracy.top1,
                top5=accuracy and accuracy.top5,
                source=accuracy and accuracy.source,
            )
        )
    return entries


def to_json(entries: list[Entry]) -> list[dict]:
    return [asdict(entry) for entry in entries]


def table_lines(entries: list[Entry]) -> list[str]:
    """The comparison as text: one line per network, the sources numbered below."""
    sources = sorted({e.source for e in entries if e.source})
    header = ("name", "params", "MACs", "memory", "depth", "input", "top-1", "top-5", "src")
    rows = [header]
    for e in entries:
        rows.append(
            (
                e.name,
                f"{e.parameters / 1e6:.1f}M",
                f"{e.multiply_accumulates / 1e9:.2f}G",
                f"{e.forward_bytes / 1e6:.1f} MB",
                str(e.depth),
                "x".join(map(str, e.input_shape[:2])),
                _percent(e.top1),
                _percent(e.top5),
                f"[{sources.index(e.source) + 1}]" if e.source else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.append("")
    lines.append("MACs and memory (forward activations, float32) for one image at the input shown;")
    lines.append("top-1/top-5: published single-model ImageNet validation accuracy, '-' if none.")
    lines += [f"[{i + 1}] {source}" for i, source in enumerate(sources)]
    return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def plot(entries: list[Entry]) -> bytes:
    """The Canziani et al. chart as PNG bytes: top-1 against G-MACs (log scale), marker area
    proportional to parameters, each labelled; networks without a published top-1 on a strip
    below, at their operations."""
    figure, (top, strip) = plt.subplots(
        2,
        1,
        figsize=(10, 7),
        dpi=plotting.DPI,
        sharex=True,
        gridspec_kw={"height_ratios": [6, 1]},
    )
    largest = max(e.parameters for e in entries)
    colours = plt.get_cmap("tab10")
    points = []
    for index, e in enumerate(entries):
        x = e.multiply_accumulates / 1e9
        area = 30 + 1500 * e.parameters / largest
        axes, y = (top, e.top1) if e.top1 is not None else (strip, 0.0)
        axes.scatter(x, y, s=area, color=colours(index % 10), alpha=0.55, edgecolors="black")
        points.append((axes, x, y, area, f"{e.title} ({e.parameters / 1e6:.1f}M)"))
    _axes_decor(top, strip, entries)
    figure.tight_layout()
    _place_labels(figure, points)
    return plotting.png_bytes(plotting.figure_to_array(figure))


def _axes_decor(top, strip, entries: list[Entry]) -> None:
    top.set_ylabel("ImageNet top-1 accuracy (%)")
    top.set_title("Top-1 accuracy against operations; marker area proportional to parameters")
    top.grid(True, alpha=0.3)
    values = [e.top1 for e in entries if e.top1 is not None]
    if values:
        top.set_ylim(min(values) - 3, max(values) + 3)
    else:
        top.text(0.5, 0.5, "no network here has a published top-1", transform=top.transAxes)
    strip.set_yticks([])
    strip.set_ylabel("no published\ntop-1", rotation=0, ha="right", va="center")
    strip.set_xscale("log")
    strip.set_xlabel("multiply-accumulates per image (G-MACs, log scale)")
    strip.grid(True, axis="x", alpha=0.3)
    xs = [e.multiply_accumulates / 1e9 for e in entries]
    strip.set_xlim(min(xs) / 1.5, max(xs) * 2.5)


def _place_labels(figure, points, font=8) -> None:
    """Each label beside its marker, at the first of a few offsets (right, right above and
    below, left) where it overlaps no label placed before it: a greedy layout that keeps
    the dense middle of the chart readable."""
    char, line = 0.62 * font * figure.dpi / 72, 1.3 * font * figure.dpi / 72
    placed = []  # markers' and labels' boxes in display pixels: (x0, y0, x1, y1)
    for axes, x, y, area, _ in points:
        px, py = axes.transData.transform((x, y))
        radius = _radius(area, figure.dpi)
        placed.append((px - radius, py - radius, px + radius, py + radius))
    for axes, x, y, area, text in sorted(points, key=lambda p: -p[3]):
        px, py = axes.transData.transform((x, y))
        radius = _radius(area, figure.dpi) + 2
        width = char * len(text)
        shifts = (0, line, -line, 2 * line, -2 * line, 3 * line, -3 * line)
        options = [(radius, dy) for dy in shifts] + [(-radius - width, dy) for dy in shifts]
        for dx, dy in options:
            box = (px + dx, py + dy - line / 2, px + dx + width, py + dy + line / 2)
            if not any(_overlap(box, other) for other in placed):
                break
        placed.append(box)
        axes.annotate(
            text,
            (x, y),
            xytext=(box[0] - px, dy),
            textcoords="offset pixels",
            fontsize=font,
            va="center",
            # A label moved off its marker's line points back at it.
            arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "0.4"} if dy else None,
        )


def _radius(area: float, dpi: float) -> float:
    """A scatter marker's radius in pixels (its area is in points squared)."""
    return (area**0.5) / 2 * dpi / 72


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
