"""What adversarial training costs: seconds per epoch of standard training and of training
on FGSM, FGSM-RS and PGD-k examples, measured side by side in one run (same model, data,
batch and seed), with the ratio to standard training.

    python benchmarks/adversarial_training.py                       # modern LeNet-5, digits
    python benchmarks/adversarial_training.py --model resnet20 --epochs 2 --steps 7

The first epoch (tracing, compilation) is left out: each mode trains ``--epochs`` + 1 epochs
and the median of the later epochs is reported. An adversarial epoch also runs the
validation split under PGD (robust accuracy), so its figure includes that. Results are
recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerascnn.training.config import TrainConfig  # noqa: E402
from kerascnn.training.run import STEPS, Run, fit, plan_training  # noqa: E402


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def seconds_per_epoch(args, adversarial: str | None) -> float:
    timer = EpochTimes()
    options = {"variant": "modern"} if args.model == "lenet5" else {}
    config = TrainConfig(
        model=args.model,
        model_options=options,
        epochs=args.epochs + 1,
        adversarial=adversarial,
        adversarial_epsilon=args.epsilon,
        adversarial_steps=args.steps,
    )
    plan = plan_training(config)
    plan.distribution.activate()
    keras.utils.set_random_seed(config.seed)
    with tempfile.TemporaryDirectory() as run_dir:
        run = Run(plan, Path(run_dir), verbose=0)
        for step in STEPS:  # the run's own steps, with the timer beside its callbacks
            if step is fit:
                run.callbacks.append(timer)
            step(run)
    keras.backend.clear_session()
    return float(np.median(timer.seconds[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one more)")
    parser.add_argument("--epsilon", type=float, default=32.0)
    parser.add_argument("--steps", type=int, default=7)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    )
    standard = seconds_per_epoch(args, None)
    print(f"{'training':<14} {'s/epoch':>8} {'x standard':>11}")
    print(f"{'standard':<14} {standard:>8.2f} {1.0:>11.2f}")
    for mode in ("fgsm", "fgsm-rs", "pgd"):
        seconds = seconds_per_epoch(args, mode)
        label = f"pgd-{args.steps}" if mode == "pgd" else mode
        print(f"{label:<14} {seconds:>8.2f} {seconds / standard:>11.2f}")


if __name__ == "__main__":
    main()
