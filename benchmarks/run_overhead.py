"""What a `kerascnn-train` run costs beyond its `model.fit`: images/s of the run's training
(``train``: every callback, checkpoint, backup, TensorBoard picture) against a plain
``model.fit`` of the same model, data pipeline, batch, optimiser, loss and validation data,
measured side by side in one process, interleaved (plain, run, run, plain, ...) so that a
shared machine's load, and the warm-up paid by whichever goes first, weigh on both alike;
prints each pair and the ratio of the medians, and where the run's extra time went: the
seconds each callback's hooks took inside ``fit``, once per run (``on_train_begin``/``end``)
and per epoch.

    python benchmarks/run_overhead.py                       # resnet20, digits, 5 epochs, x3
    python benchmarks/run_overhead.py --model lenet5 --epochs 3 --repeats 2

Goal (issue "Every Keras backend, and fast on each"): run / plain >= 0.95. Results are
recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from kerascnn.models import create_model  # noqa: E402
from kerascnn.training import run as run_steps  # noqa: E402
from kerascnn.training.config import TrainConfig  # noqa: E402
from kerascnn.training.losses import create_loss  # noqa: E402
from kerascnn.training.run import Run, plan_training, prepare_data, train  # noqa: E402
from kerascnn.training.schedules import learning_rate_for  # noqa: E402


def plain_fit(plan, epochs: int) -> float:
    """Images/s of ``model.fit`` alone on the run's own pipelines, model and optimiser."""
    run = Run(plan, run_dir=None)
    prepare_data(run)
    config = plan.config
    keras.utils.set_random_seed(config.seed)
    model = create_model(
        config.model,
        input_shape=plan.input_shape,
        num_classes=plan.dataset.num_classes,
        classifier_activation=None,  # on logits, as the run trains
        **{**run.data.model_options, **config.model_options},
    )
    optimizer = config.optimization.create(
        learning_rate_for(config.lr_schedule, run.steps_per_epoch, config.epochs)
    )
    model.compile(
        optimizer=optimizer,
        loss=create_loss(plan.loss_name, config.label_smoothing),
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    model.fit(
        run.pipeline("train", training=True),
        validation_data=run.pipeline("validation"),
        epochs=epochs,
        shuffle=False,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    keras.backend.clear_session()
    return epochs * len(plan.dataset.train) / seconds


HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end")
HOOKS += ("on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_end")


def timed(seconds: collections.Counter):
    """The run's ``make_callbacks`` step, with each callback's hooks timed into
    ``seconds[(callback class, hook)]``."""

    def make_callbacks(run):
        run_steps.make_callbacks(run)
        for callback in run.callbacks:
            name = type(callback).__name__
            for hook in HOOKS:
                method = getattr(callback, hook)

                def timing(*args, _method=method, _key=(name, hook), **kwargs):
                    started = time.perf_counter()
                    try:
                        return _method(*args, **kwargs)
                    finally:
                        seconds[_key] += time.perf_counter() - started

                setattr(callback, hook, timing)

    return make_callbacks


def ours(plan, directory: str, seconds: collections.Counter) -> float:
    os.makedirs(directory)
    steps = run_steps.STEPS
    make = timed(seconds)
    run_steps.STEPS = tuple(make if s is run_steps.make_callbacks else s for s in steps)
    try:
        result = train(plan, directory, verbose=0)
    finally:
        run_steps.STEPS = steps
    keras.backend.clear_session()
    return result.metrics["train_images_per_second"]


def print_callbacks(seconds: collections.Counter, runs: int, epochs: int) -> None:
    """Seconds per run of each callback hook that took at least 10 ms, the largest first."""
    print(f"where the run's callbacks spent their time (mean of {runs} runs of {epochs} epochs):")
    for (name, hook), total in seconds.most_common():
        if total / runs >= 0.01:
            print(f"  {name}.{hook}: {total / runs:.2f} s per run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = TrainConfig(
        model=args.model, dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size
    )
    plan = plan_training(config)
    pairs, seconds = [], collections.Counter()
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            # Each side goes first in every other pair: a process's first fit pays for
            # warming up (caches, thread pools) that the second one finds done.
            directory = os.path.join(scratch, f"run{repeat}")
            if repeat % 2:
                run = ours(plan, directory, seconds)
                plain = plain_fit(plan, args.epochs)
            else:
                plain = plain_fit(plan, args.epochs)
                run = ours(plan, directory, seconds)
            pairs.append((plain, run))
            first = "run" if repeat % 2 else "plain fit"
            print(
                f"repeat {repeat + 1} ({first} first): plain fit {plain:.1f} images/s, "
                f"run {run:.1f} images/s, ratio {run / plain:.3f}",
                flush=True,
            )
    print_callbacks(seconds, args.repeats, args.epochs)
    plain = statistics.median(p for p, _ in pairs)
    run = statistics.median(r for _, r in pairs)
    print(
        json.dumps(
            {
                "model": args.model,
                "dataset": args.dataset,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "backend": keras.backend.backend(),
                "keras": keras.__version__,
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "plain_fit_images_per_second": round(plain, 1),
                "run_images_per_second": round(run, 1),
                "ratio": round(run / plain, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
