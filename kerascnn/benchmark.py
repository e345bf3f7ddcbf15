"""Inference speed of every artifact kind side by side: latency at batch 1 and throughput at
batch N, each the median of repeated timed runs after untimed warm-up runs, with ratios
against the Keras model.

The runtimes are used as a deployment would use them: the Keras model through
``predict_on_batch`` (its compiled function), the SavedModel through its ``serving_default``
signature, TFLite through the LiteRT interpreter (XNNPACK delegate, ``threads`` threads) and
ONNX through ONNX Runtime's CPU provider (``threads`` intra-op threads).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kerascnn.errors import InvalidArgumentError
from kerascnn.runtime import load_artifact

# The artifacts of an export directory, in the order the table lists them.
EXPORT_FILES = (
    "model.keras",
    "1",
    "model.tflite",
    "model_float16.tflite",
    "model_dynamic.tflite",
    "model_int8.tflite",
    "model.onnx",
)


@dataclass
class Timing:
    artifact: str
    kind: str
    latency_ms: float  # median time of one batch-1 call
    throughput: float  # images per second at batch_size, from the median call time
    batch_size: int
    latency_vs_keras: float | None = None  # Keras latency / this latency (>1 is faster)
    throughput_vs_keras: float | None = None  # this throughput / Keras throughput


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """Each path as it is, except an export directory (``model.keras`` with siblings such as
    ``1/`` or ``model.tflite``), which stands for each artifact in it."""
    expanded = []
    for path in map(Path, paths):
        inside = [path / name for name in EXPORT_FILES if (path / name).exists()]
        expanded += inside if path.is_dir() and len(inside) > 1 else [path]
    return expanded


def runner_for(path: Path, threads: int | None) -> tuple[str, tuple[int, ...], Callable]:
    """(kind, input shape, function of raw-pixel images) for ``path``, with the thread count
    given to the runtimes that take one; a Keras model runs through ``predict_on_batch``, its
    compiled function, as a server would call it."""
    artifact = load_artifact(path, threads=threads)
    run = artifact.keras_model.predict_on_batch if artifact.kind == "keras" else artifact.run
    return artifact.kind, artifact.input_shape, run


def median_seconds(run: Callable, images: np.ndarray, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(images)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark(
    paths: Sequence[str | Path],
    *,
    batch_size: int = 32,
    threads: int | None = None,
    warmup: int = 3,
    repeats: int = 10,
    seed: int = 0,
) -> list[Timing]:
    """Time each artifact (export directories expand to their artifacts) on random raw
    pixels at its input size.

    Raises:
        InvalidArgumentError: no artifacts, or artifacts with different input sizes.
    """
    paths = expand(paths)
    if not paths:
        raise InvalidArgumentError("nothing to benchmark")
    rng = np.random.default_rng(seed)
    timings, shape = [], None
    for path in paths:
        kind, input_shape, run = runner_for(path, threads)
        if shape is not None and tuple(input_shape) != shape:
            raise InvalidArgumentError(
                f"{path} takes {input_shape} images but {paths[0]} takes {shape}: benchmark "
                f"one model's artifacts together"
            )
        shape = tuple(input_shape)
        images = rng.integers(0, 256, (batch_size, *shape)).astype("float32")
        latency = median_seconds(run, images[:1], warmup, repeats)
        batch = median_seconds(run, images, warmup, repeats)
        timings.append(
            Timing(
                artifact=str(path),
                kind=kind,
                latency_ms=1000 * latency,
                throughput=batch_size / batch,
                batch_size=batch_size,
            )
        )
    keras_timing = next((t for t in timings if t.kind == "keras"), None)
    if keras_timing is not None:
        for timing in timings:
            timing.latency_vs_keras = keras_timing.latency_ms / timing.latency_ms
            timing.throughput_vs_keras = timing.throughput / keras_timing.throughput
    return timings


def machine() -> dict[str, str | int]:
    """The CPU model (``/proc/cpuinfo``), core count and platform the timings come from."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cores": os.cpu_count() or 0, "platform": platform.platform()}


def table(timings: Sequence[Timing]) -> str:
    """The timings as an aligned text table (also valid Markdown)."""
    batch = timings[0].batch_size if timings else 0

    def ratio(value):
        return "-" if value is None else f"{value:.2f}x"

    rows = [
        (
            "artifact",
            "kind",
            "batch-1 latency (ms)",
            "vs keras",
            f"batch-{batch} throughput (images/s)",
            "vs keras",
        )
    ]
    for t in timings:
        rows.append(
            (
                t.artifact,
                t.kind,
                f"{t.latency_ms:.2f}",
                ratio(t.latency_vs_keras),
                f"{t.throughput:,.1f}",
                ratio(t.throughput_vs_keras),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            f"{cell:<{w}}" if i < 2 else f"{cell:>{w}}"
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append(
                "|"
                + "|".join(
                    ("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":") for i, w in enumerate(widths)
                )
                + "|"
            )
    return "\n".join(lines)


def as_json(timings: Sequence[Timing]) -> list[dict]:
    return [asdict(t) for t in timings]
