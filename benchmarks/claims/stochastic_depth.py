"""Stochastic depth (Huang et al. 2016): does dropping residual branches shorten training?
ResNet-110 and ResNet-110 with stochastic depth (survival decaying linearly to 0.5, the
registration ``resnet110_sd``) trained side by side under one recipe; the time of each epoch
after the first (which traces and compiles), and the final errors.

At survival 0.5 with linear decay, a branch survives with probability 0.75 on average, so a
layer that skips dropped branches saves about 25% of the branches' compute. kerascnn's
``StochasticDepth`` layer multiplies the branch by a 0/1 draw per example after computing it,
so it saves nothing; this script measures that.

    python benchmarks/claims/stochastic_depth.py --epochs 3 --limit 512
    python benchmarks/claims/stochastic_depth.py --dataset cifar10 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import time

import keras

from kerascnn.data import load_dataset, split_arrays
from kerascnn.models import create_model

NETWORKS = ("resnet110", "resnet110_sd")


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def train(name: str, data, a) -> dict:
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(a.seed)
    model = create_model(name, input_shape=x_train.shape[1:], num_classes=10)
    model.compile(
        keras.optimizers.SGD(a.lr, momentum=0.9),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    times = EpochTimes()
    history = model.fit(
        x_train, y_train, batch_size=a.batch_size, epochs=a.epochs, callbacks=[times], verbose=0
    ).history
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    steady = times.seconds[1:] or times.seconds
    return {
        "epoch_seconds": times.seconds,
        "seconds_per_epoch_after_the_first": sum(steady) / len(steady),
        "train_error": 1 - history["accuracy"][-1],
        "test_error": 1 - test_accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="Training images to use.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    dataset = load_dataset(a.dataset)
    channels = 1 if a.dataset == "digits" else 3
    train_split = split_arrays(dataset.train, image_size=(32, 32), channels=channels, limit=a.limit)
    test_split = split_arrays(dataset.test, image_size=(32, 32), channels=channels)
    results = {name: train(name, (train_split, test_split), a) for name in NETWORKS}
    base, dropped = (results[n]["seconds_per_epoch_after_the_first"] for n in NETWORKS)
    results["time_saved"] = 1 - dropped / base
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
