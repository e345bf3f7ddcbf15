"""The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks",
WACV 2017; fastai's ``lr_find``).

A freshly built network (or one started from ``init_from``, read and never written) trains for
up to ``steps`` batches while the learning rate grows exponentially from ``start`` to ``end``.
The loss of each batch is recorded and smoothed (an exponential moving average with bias
correction); the test stops early once the smoothed loss exceeds ``EXPLOSION`` times its
minimum or is no longer finite. Two suggestions are read from the curve: the rate where the
smoothed loss falls fastest (the most across half a decade of learning rate, before the
minimum)
and the rate at the minimum divided by 10.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np

from kerascnn.files import write_text_atomically
from kerascnn.plotting import figure_to_array, png_bytes
from kerascnn.training.config import TrainConfig
from kerascnn.training.losses import create_loss
from kerascnn.training.optimizers import apply_weight_decay
from kerascnn.training.run import Run, build, plan_training, precision_policy, prepare_data

SMOOTHING = 0.98  # fastai's
EXPLOSION = 4.0  # stop once the smoothed loss is 4x its minimum (fastai's)
# The descent is measured as the fall of the smoothed loss across this many decades of
# learning rate: a per-point slope picks a wobble of the first, barely smoothed batches
# (ResNet-20 on digits: a 0.1 dip within 0.1 decade at 1e-7 outweighed a fall of 2 over
# three decades around 1e-3).
WINDOW_DECADES = 0.5


@dataclass
class RangeTest:
    learning_rates: list[float]
    losses: list[float]  # each batch's
    smoothed: list[float]
    steepest: float | None  # the suggestion: where the smoothed loss falls fastest
    minimum_over_10: float | None
    stopped_early: bool  # the loss exploded before ``end``
    loss_fell: bool  # False: the curve never went down, the suggestions mean nothing


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """Exponential moving average with bias correction (fastai's)."""
    average, smoothed = 0.0, []
    for step, loss in enumerate(losses, 1):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta**step))
    return smoothed


def suggest(learning_rates: list[float], smoothed: list[float]) -> tuple[float, float, bool]:
    """(steepest descent, minimum / 10, whether the loss fell at all) from the curve.

    Steepest descent: the middle (in log scale) of the ``WINDOW_DECADES``-wide span of
    learning rates, before the minimum, across which the smoothed loss falls the most."""
    values = np.asarray(smoothed)
    lowest = int(np.nanargmin(values))
    fell = bool(values[lowest] < 0.98 * values[0])
    decades = np.log10(learning_rates[: lowest + 1])
    ends = np.searchsorted(decades, decades + WINDOW_DECADES)
    starts = np.flatnonzero(ends <= lowest)
    if len(starts) == 0:
        return learning_rates[lowest], learning_rates[lowest] / 10, fell
    drops = values[starts] - values[ends[starts]]
    best = int(starts[np.argmax(drops)])
    middle = 10 ** ((decades[best] + decades[ends[best]]) / 2)
    return float(middle), learning_rates[lowest] / 10, fell


def range_test(
    config: TrainConfig,
    *,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 200,
) -> RangeTest:
    """Run the range test on ``config``'s model, data, optimiser and batch size."""
    plan = plan_training(config)
    run = Run(plan, Path("."), verbose=0)
    with precision_policy(config.mixed_precision):
        keras.utils.set_random_seed(config.seed)
        prepare_data(run)
        build(run)
        optimizer = config.optimization.create(start)
        optimization = config.optimization
        apply_weight_decay(
            run.model,
            optimizer,
            optimization.weight_decay,
            optimization.decay_mode,
            bias_and_norm=optimization.decay_bias_and_norm,
        )
        loss, _ = run.data.loss_and_metrics(
            plan.loss_name,
            create_loss(plan.loss_name, config.label_smoothing),
            [],
            label_smoothing=config.label_smoothing,
        )
        run.model.compile(optimizer=optimizer, loss=loss)
        return _sweep(run, start, end, steps)


def _sweep(run: Run, start: float, end: float, steps: int) -> RangeTest:
    factor = (end / start) ** (1 / max(steps - 1, 1))
    rates, losses, smoothed = [], [], []
    batches = iter(run.pipeline("train", training=True).repeat())
    stopped = False
    for step in range(steps):
        rate = start * factor**step
        run.model.optimizer.learning_rate = rate
        x, y = next(batches)
        loss = float(run.model.train_on_batch(x, y))
        rates.append(rate)
        losses.append(loss)
        smoothed = smooth(losses)
        if not math.isfinite(smoothed[-1]) or smoothed[-1] > EXPLOSION * min(smoothed):
            stopped = True
            break
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    rates_, smoothed_ = [rates[i] for i in finite], [smoothed[i] for i in finite]
    steepest, minimum, fell = suggest(rates_, smoothed_)
    return RangeTest(rates, losses, smoothed, steepest, minimum, stopped, bool(fell))


def plot(test: RangeTest, title: str) -> np.ndarray:
    """The smoothed loss (and each batch's, faint) against the learning rate, log scale,
    with the two suggestions marked."""
    figure, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    ax.plot(test.learning_rates, test.losses, color="0.8", linewidth=0.8, label="batch loss")
    ax.plot(test.learning_rates, test.smoothed, color="C0", label="smoothed loss")
    ax.axvline(test.steepest, color="C3", linestyle="--", label=f"steepest {test.steepest:.1e}")
    ax.axvline(
        test.minimum_over_10,
        color="C2",
        linestyle=":",
        label=f"minimum / 10 {test.minimum_over_10:.1e}",
    )
    ax.set_xscale("log")
    finite = [v for v in test.smoothed if math.isfinite(v)]
    ax.set_ylim(min(finite) * 0.9, min(max(finite), 2 * finite[0]) * 1.1)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure_to_array(figure)


def write(test: RangeTest, directory: str | Path, title: str) -> tuple[Path, Path]:
    """``lr_find.png`` and ``lr_find.json`` (the curve and the suggestions) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    picture = directory / "lr_find.png"
    temporary = picture.with_name(".lr_find.png.partial")
    temporary.write_bytes(png_bytes(plot(test, title)))
    temporary.replace(picture)
    record = directory / "lr_find.json"
    finite = {
        key: [v if math.isfinite(v) else None for v in value] if isinstance(value, list) else value
        for key, value in asdict(test).items()
    }
    write_text_atomically(record, json.dumps(finite, indent=2) + "\n")
    return picture, record
