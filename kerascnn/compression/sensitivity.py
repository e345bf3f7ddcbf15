"""Pruning sensitivity (Han et al. 2015, "Learning both Weights and Connections for Efficient
Neural Networks", section 4 and Figure 5): each prunable layer pruned alone, by weight
magnitude, to each of a range of sparsities, without fine-tuning, and the accuracy left. The
layers whose accuracy falls first are the ones to prune least; Han et al. chose each layer's
threshold from these curves before pruning the network with retraining.

``scan`` measures; ``suggested`` turns the curves into ``--prune-layer`` sparsities: per
layer, the largest scanned sparsity up to which the accuracy stays within a tolerance of the
unpruned model's. The layers are scanned one at a time, so the suggestion is a starting point:
pruned together their losses add up, and fine-tuning (``kerascnn compress``) wins some back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from kerascnn import plotting
from kerascnn.compression import pruning
from kerascnn.errors import InvalidArgumentError
from kerascnn.evaluation import top1_accuracy

DEFAULT_SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
DEFAULT_TOLERANCE = 0.5  # accuracy points
LEGEND_LAYERS = 16  # more layers than this are coloured by depth, without a legend


@dataclass
class LayerCurve:
    layer: str
    kind: str  # "conv" or "fc"
    parameters: int
    accuracy: list[float] = field(default_factory=list)  # one per scanned sparsity


@dataclass
class Sensitivity:
    baseline: float  # accuracy of the unpruned model on the same images
    sparsities: tuple[float, ...]
    layers: list[LayerCurve]
    images: int

    def suggested(self, tolerance: float = DEFAULT_TOLERANCE) -> dict[str, float]:
        """Per layer, the largest scanned sparsity up to which (every smaller one included)
        the accuracy stays within ``tolerance`` points of ``baseline``; 0.0 where none does."""
        floor = self.baseline - tolerance / 100.0
        chosen = {}
        for curve in self.layers:
            chosen[curve.layer] = 0.0
            for sparsity, accuracy in zip(self.sparsities, curve.accuracy, strict=True):
                if accuracy < floor - 1e-9:
                    break
                chosen[curve.layer] = sparsity
        return chosen

    def overall(self, chosen: dict[str, float]) -> float:
        """The fraction of all scanned kernel weights that ``chosen`` prunes."""
        total = sum(c.parameters for c in self.layers)
        pruned = sum(math.floor(chosen[c.layer] * c.parameters) for c in self.layers)
        return pruned / total if total else 0.0

    def to_dict(self, tolerance: float = DEFAULT_TOLERANCE) -> dict:
        chosen = self.suggested(tolerance)
        return {
            "baseline_accuracy": self.baseline,
            "images": self.images,
            "sparsities": list(self.sparsities),
            "layers": [vars(curve) for curve in self.layers],
            "tolerance_points": tolerance,
            "suggested": chosen,
            "suggested_overall_sparsity": self.overall(chosen),
        }


def parse_sparsities(text: str) -> tuple[float, ...]:
    """``0.5,0.9`` -> (0.5, 0.9), each in [0, 1), increasing.

    Raises:
        ValueError: not comma-separated numbers, or one outside [0, 1).
    """
    try:
        values = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"expected comma-separated sparsities, e.g. 0.5,0.9; got {text!r}"
        ) from None
    if not values or any(not 0 <= v < 1 for v in values):
        raise ValueError(f"expected sparsities in [0, 1), e.g. 0.5,0.9; got {text!r}")
    return tuple(sorted(set(values)))


def check_sparsities(sparsities: Sequence[float]) -> tuple[float, ...]:
    """The sparsities in increasing order, each checked to lie in [0, 1)."""
    checked = sorted({pruning.check_sparsity(s, "each sparsity") for s in sparsities})
    if not checked:
        raise InvalidArgumentError("give at least one sparsity to scan")
    return tuple(checked)


def scan(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    notify: Callable[[str], None] | None = None,
) -> Sensitivity:
    """Prune each layer of ``model`` alone to each sparsity (smallest magnitudes first),
    measure top-1 accuracy on ``images``, and put its kernel back: ``model`` is unchanged
    when this returns (or raises)."""
    sparsities = check_sparsities(sparsities)
    targets = pruning.prunable_targets(model)
    baseline = top1_accuracy(model, images, labels)
    curves = []
    for index, target in enumerate(targets, 1):
        original = keras.ops.convert_to_numpy(target.kernel)
        curve = LayerCurve(target.name, target.kind, int(original.size))
        try:
            for sparsity in sparsities:
                masks = pruning.magnitude_masks([target], sparsity)
                pruning.apply_masks([target], masks)
                curve.accuracy.append(top1_accuracy(model, images, labels))
                target.kernel.assign(original)
        finally:
            target.kernel.assign(original)
        curves.append(curve)
        if notify:
            shown = " ".join(f"{100 * a:.1f}" for a in curve.accuracy)
            notify(f"  [{index}/{len(targets)}] {target.name}: {shown}")
    return Sensitivity(baseline, sparsities, curves, len(labels))


def table(result: Sensitivity, tolerance: float = DEFAULT_TOLERANCE) -> list[str]:
    """The curves as the terminal shows them, with the suggested sparsities."""
    chosen = result.suggested(tolerance)
    head = " ".join(f"{100 * s:>6.0f}%" for s in result.sparsities)
    lines = [f"{'layer':<20} {'kind':<4} {'params':>9} {head}  {'within':>7}"]
    for curve in result.layers:
        cells = " ".join(f"{100 * a:>6.1f}%" for a in curve.accuracy)
        pick = chosen[curve.layer]
        lines.append(
            f"{curve.layer:<20} {curve.kind:<4} {curve.parameters:>9,} {cells}  {100 * pick:>6.0f}%"
        )
    flags = " ".join(f"--prune-layer {name}={s:g}" for name, s in chosen.items() if s > 0)
    one_image = 100 / max(result.images, 1)
    lines += [
        "",
        f"unpruned accuracy {100 * result.baseline:.2f}% on {result.images} images (one image "
        f"is {one_image:.2f} points); each layer pruned alone, no fine-tuning (Han et al. "
        f"2015, Figure 5)",
        f"within {tolerance:g} points, each alone: {flags or '(no layer)'}",
        f"({100 * result.overall(chosen):.1f}% of the prunable weights; pruned together the "
        f"losses add up, and kerascnn compress fine-tunes some of them back)",
    ]
    if tolerance < one_image:
        lines.append(
            f"Warning: --tolerance {tolerance:g} is less than one image here, so a layer "
            f"keeps every image it had; --split train has more images"
        )
    return lines


def picture(result: Sensitivity, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Accuracy against sparsity, one line per layer, the unpruned accuracy and the
    tolerance as dashed lines."""
    figure = plotting.plt.figure(figsize=(7, 4.5), dpi=100)
    axis = figure.gca()
    xs = [100 * s for s in result.sparsities]
    many = len(result.layers) > LEGEND_LAYERS  # then colour by depth instead of a legend
    colours = plotting.plt.get_cmap("viridis")(np.linspace(0, 1, len(result.layers)))
    for curve, colour in zip(result.layers, colours, strict=True):
        label = None if many else f"{curve.layer} ({curve.parameters:,})"
        axis.plot(
            xs,
            [100 * a for a in curve.accuracy],
            marker="o",
            label=label,
            **({"color": colour, "ms": 3} if many else {}),
        )
    axis.axhline(100 * result.baseline, color="k", ls="--", lw=1, label="unpruned")
    axis.axhline(
        100 * result.baseline - tolerance, color="grey", ls=":", lw=1, label=f"-{tolerance:g} pt"
    )
    axis.set_xlabel("weights pruned in the layer, alone (%)")
    axis.set_ylabel(f"accuracy on {result.images} images (%)")
    title = "Pruning sensitivity, no fine-tuning"
    if many:
        title += f" ({len(result.layers)} layers, first purple to last yellow)"
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2 if len(result.layers) > 8 else 1)
    figure.tight_layout()
    return plotting.figure_to_array(figure)
