"""Does the input pipeline keep up with training? Measures, side by side in one run, the
images/s the tf.data pipeline delivers from a folder of JPEGs (decode, the augmentation
recipe, batching; no cache, so every image is decoded every time) and the images/s one
training step of the model consumes for the same batch size, and prints their ratio.

    python benchmarks/input_pipeline.py                      # writes 512 JPEGs to a temp dir
    python benchmarks/input_pipeline.py --images DIR --model resnet50 --batch-size 32

Results are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def write_jpeg_folder(root: Path, count: int, size=(375, 500), classes: int = 10, seed=0) -> Path:
    """``count`` JPEGs of ImageNet's typical size (375x500), smooth random colour fields with
    noise (so they compress like photographs, not like flat colour), in ``classes`` folders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / f"class{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        image = np.asarray(coarse.resize(size[::-1], Image.BICUBIC), dtype="float32")
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def measure_pipeline(
    folder: Path, *, image_size: int, batch_size: int, augmentation: str, batches: int
) -> dict:
    """Images/s of the training pipeline (files decoded every epoch: no cache)."""
    from kerascnn.data import build_dataset, load_dataset

    dataset = load_dataset(str(folder))
    split = dataset.train
    pipeline = build_dataset(
        split,
        image_size=(image_size, image_size),
        channels=3,
        batch_size=batch_size,
        training=True,
        augmentation=augmentation,
        cache=False,
    ).repeat()
    iterator = iter(pipeline)
    next(iterator)  # start-up: threads, tracing
    started = time.perf_counter()
    images = 0
    for _ in range(batches):
        x, _ = next(iterator)
        images += int(x.shape[0])
    seconds = time.perf_counter() - started
    return {"images": images, "seconds": round(seconds, 3), "images_per_second": images / seconds}


def measure_training_step(
    model_name: str, *, image_size: int, batch_size: int, steps: int, num_classes: int
) -> dict:
    """Images/s of ``model.train_on_batch`` (SGD, cross-entropy) on one fixed batch."""
    import keras

    from kerascnn import create_model

    model = create_model(
        model_name,
        input_shape=(image_size, image_size, 3),
        num_classes=num_classes,
        classifier_activation=None,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, image_size, image_size, 3)).astype("float32")
    y = rng.integers(0, num_classes, batch_size)
    model.train_on_batch(x, y)  # compile the step
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    seconds = time.perf_counter() - started
    return {
        "images": steps * batch_size,
        "seconds": round(seconds, 3),
        "images_per_second": steps * batch_size / seconds,
    }


def machine() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, help="Folder of class folders of JPEGs.")
    parser.add_argument("--count", type=int, default=512, help="JPEGs to write without --images.")
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--augmentation", default="resnet")
    parser.add_argument("--batches", type=int, default=20, help="Pipeline batches timed.")
    parser.add_argument("--steps", type=int, default=3, help="Training steps timed.")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.images or write_jpeg_folder(Path(scratch) / "jpegs", args.count)
        pipeline = measure_pipeline(
            folder,
            image_size=args.image_size,
            batch_size=args.batch_size,
            augmentation=args.augmentation,
            batches=args.batches,
        )
        num_classes = len([p for p in Path(folder).iterdir() if p.is_dir()])
    step = measure_training_step(
        args.model,
        image_size=args.image_size,
        batch_size=args.batch_size,
        steps=args.steps,
        num_classes=num_classes,
    )
    result = {
        "model": args.model,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "augmentation": args.augmentation,
        "pipeline": pipeline,
        "training_step": step,
        "ratio": pipeline["images_per_second"] / step["images_per_second"],
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"machine          {result['machine']}")
        print(
            f"pipeline         {pipeline['images_per_second']:8.1f} images/s "
            f"({args.augmentation} recipe, JPEG decode, batch {args.batch_size}, no cache)"
        )
        print(
            f"training step    {step['images_per_second']:8.1f} images/s "
            f"({args.model}, {args.image_size}x{args.image_size}, batch {args.batch_size})"
        )
        print(f"ratio            {result['ratio']:8.1f}x (the aim: at least 3x)")
    return result


if __name__ == "__main__":
    main()
