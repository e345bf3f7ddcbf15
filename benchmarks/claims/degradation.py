"""The degradation problem (He et al. 2015, Figures 1 and 6): a deeper plain network trains
worse than a shallower one, while the residual networks of the same depths do not. Plain-20,
plain-56, ResNet-20 and ResNet-56 (the registrations, option-A shortcuts) trained under one
recipe on the same data; training and test error per epoch, one figure.

    python benchmarks/claims/degradation.py --epochs 5 --out benchmarks/claims/figures
    # the paper's setting, for a user who has CIFAR-10 (see README "Data"):
    python benchmarks/claims/degradation.py --dataset cifar10 --epochs 160 --batch-size 128

Recipe: SGD with momentum 0.9, learning rate 0.1 (divided by 10 at 50% and 75% of the
epochs), weight decay 1e-4 as an L2 term, batch 128, no augmentation, He initialisation (the
registrations'); the same seed for every network.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kerascnn.data import load_dataset, split_arrays  # noqa: E402
from kerascnn.models import create_model  # noqa: E402
from kerascnn.training.batchnorm import recompute_statistics  # noqa: E402

NETWORKS = ("plain20", "plain56", "resnet20", "resnet56")


class TestError(keras.callbacks.Callback):
    """Test error after each epoch, in inference mode, with the batch-norm statistics first
    recomputed over (part of) the training set: after a few dozen steps the moving averages
    (momentum 0.99) still describe the initial weights, and inference with them is at chance
    whatever the network learnt (README "Batch-norm statistics")."""

    def __init__(self, train_images, test, batch_size):
        super().__init__()
        self.train_images, self.test, self.batch_size = train_images, test, batch_size
        self.errors = []

    def on_epoch_end(self, epoch, logs=None):
        images = self.train_images
        batches = [images[i : i + self.batch_size] for i in range(0, len(images), self.batch_size)]
        recompute_statistics(self.model, batches)
        _, accuracy = self.model.evaluate(*self.test, batch_size=256, verbose=0)
        self.errors.append(1 - accuracy)


def train(name: str, data, a) -> dict:
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(a.seed)
    model = create_model(name, input_shape=x_train.shape[1:], num_classes=10)
    steps = -(-len(x_train) // a.batch_size) * a.epochs
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(0.5 * steps), int(0.75 * steps)], [a.lr, a.lr / 10, a.lr / 100]
    )
    model.compile(
        keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=a.weight_decay),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    test_error = TestError(x_train[: a.statistics_images], (x_test, y_test), a.batch_size)
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=a.batch_size,
        epochs=a.epochs,
        callbacks=[test_error],
        shuffle=True,
        verbose=0,
    ).history
    return {
        # As He et al. plot it: the error of the training batches, in training mode.
        "train_error": [1 - v for v in history["accuracy"]],
        "test_error": test_error.errors,
        "seconds": time.perf_counter() - start,
    }


def figure(results: dict, path: Path, title: str) -> None:
    fig, panels = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100, sharey=True)
    for panel, family in zip(panels, ("plain", "resnet"), strict=True):
        for name, colour in zip(
            [n for n in NETWORKS if n.startswith(family)], ("tab:orange", "tab:red"), strict=True
        ):
            if name not in results:  # a run stopped before this network
                continue
            curve = results[name]
            epochs = range(1, len(curve["test_error"]) + 1)
            panel.plot(
                epochs,
                [100 * e for e in curve["train_error"]],
                "--",
                color=colour,
                label=f"{name} train",
            )
            panel.plot(
                epochs,
                [100 * e for e in curve["test_error"]],
                "-",
                color=colour,
                linewidth=2,
                label=f"{name} test",
            )
        panel.set_title("plain networks" if family == "plain" else "residual networks")
        panel.set_xlabel("epoch")
        panel.grid(True, alpha=0.3)
        panel.legend()
    panels[0].set_ylabel("error (%)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--statistics-images", type=int, default=512, help="Training images for batch norm."
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/claims/figures"))
    parser.add_argument(
        "--replot", action="store_true", help="Only draw the figure from the recorded JSON."
    )
    a = parser.parse_args()
    title = f"{a.dataset}, {a.epochs} epochs, one recipe (He et al. 2015, Figures 1 and 6)"
    if a.replot:
        results = json.loads((a.out / f"degradation_{a.dataset}.json").read_text())
        figure(results, a.out / f"degradation_{a.dataset}.png", title)
        return
    dataset = load_dataset(a.dataset)
    channels = 1 if a.dataset == "digits" else 3
    data = [
        split_arrays(s, image_size=(32, 32), channels=channels)
        for s in (dataset.train, dataset.test)
    ]
    results = {}
    a.out.mkdir(parents=True, exist_ok=True)
    for name in NETWORKS:
        results[name] = train(name, data, a)
        # Written after each network, so that a long run's finished part is kept.
        (a.out / f"degradation_{a.dataset}.json").write_text(json.dumps(results, indent=1))
        final = results[name]
        print(
            f"{name}: train error {100 * final['train_error'][-1]:.1f}%, test error "
            f"{100 * final['test_error'][-1]:.1f}% after {a.epochs} epochs "
            f"({final['seconds']:.0f} s)",
            flush=True,
        )
    figure(results, a.out / f"degradation_{a.dataset}.png", title)


if __name__ == "__main__":
    main()
