"""Stochastic depth (Huang et al. 2016): does dropping residual branches shorten training?

Two measurements, side by side in one process:

1. One residual block (ResNet-110's middle stage: 16x16x32 maps, two 3x3 convolutions) trained
   with ``model.fit`` (TensorFlow's compiled train step, or JAX's jit) with its branch almost
   never dropped (survival 0.999999) and almost always dropped (survival 1e-6), and the same
   block without stochastic depth: the time per step shows whether a dropped branch's
   convolutions run at all.
2. ResNet-110 and ResNet-110 with stochastic depth (survival decaying linearly to 0.5, the
   registration ``resnet110_sd``) trained under one recipe, their epochs interleaved (one
   epoch of each in turn, so that a change in the machine's load falls on both); the time of
   each epoch after the first (which traces and compiles), and the final errors.

At survival 0.5 with linear decay a branch survives with probability 0.75 on average (0.745
for ResNet-110's 54 blocks), so skipping the dropped branches saves about 25% of the
branches' compute; the script prints the saving expected from the layers' multiply-accumulates
(the stem, the classifier and the optimizer's update of every weight are not skipped).

    python benchmarks/claims/stochastic_depth.py --limit 512 --epochs 4 --batch-size 128
    python benchmarks/claims/stochastic_depth.py --dataset cifar10 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np

from kerascnn.data import load_dataset, split_arrays
from kerascnn.models import create_model
from kerascnn.models.counting import multiply_accumulates
from kerascnn.models.layers import StochasticDepth

NETWORKS = ("resnet110", "resnet110_sd")


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def block_model(survival: float | None, shape=(16, 16, 32)) -> keras.Model:
    """Input -> v1 basic block (identity shortcut) -> pooled logits; ``survival`` None: no
    stochastic depth."""
    inputs = keras.Input(shape)
    branch_input = keras.Input(shape)
    y = branch_input
    for number in (1, 2):
        y = keras.layers.Conv2D(shape[-1], 3, padding="same", use_bias=False)(y)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.Activation("relu")(y) if number == 1 else y
    branch = keras.Model(branch_input, y)
    y = branch(inputs) if survival is None else StochasticDepth(branch, survival, seed=0)(inputs)
    y = keras.layers.Activation("relu")(keras.layers.Add()([inputs, y]))
    y = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(y))
    model = keras.Model(inputs, y)
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(True))
    return model


def block_step_seconds(a) -> dict:
    """Seconds per training step of one block, best of ``a.repeats`` timed fits (after one
    untimed fit that compiles), the three variants in turn."""
    rng = np.random.default_rng(a.seed)
    x = rng.normal(size=(a.batch_size * a.block_steps, 16, 16, 32)).astype("float32")
    y = rng.integers(0, 10, len(x))
    variants = {"plain": None, "kept (p=0.999999)": 0.999999, "dropped (p=1e-6)": 1e-6}
    models = {name: block_model(p) for name, p in variants.items()}
    best = {name: float("inf") for name in variants}
    for model in models.values():
        model.fit(x, y, batch_size=a.batch_size, epochs=1, verbose=0)
    for _ in range(a.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=a.batch_size, epochs=1, verbose=0)
            best[name] = min(best[name], (time.perf_counter() - start) / a.block_steps)
    return {**best, "dropped / kept": best["dropped (p=1e-6)"] / best["kept (p=0.999999)"]}


def expected_saving(model: keras.Model) -> float:
    """The fraction of the forward multiply-accumulates the dropped branches would skip on
    average: sum over blocks of (1 - p_l) * branch MACs / total MACs."""
    skipped = sum(
        (1 - layer.survival_probability) * multiply_accumulates(layer.branch)
        for layer in model.layers
        if isinstance(layer, StochasticDepth)
    )
    return skipped / multiply_accumulates(model)


def networks(data, a) -> dict:
    """Both networks trained, epochs interleaved; per-epoch seconds and final errors."""
    (x_train, y_train), (x_test, y_test) = data
    models, histories = {}, {}
    for name in NETWORKS:
        keras.utils.set_random_seed(a.seed)
        models[name] = create_model(name, input_shape=x_train.shape[1:], num_classes=10)
        models[name].compile(
            keras.optimizers.SGD(a.lr, momentum=0.9),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        histories[name] = {"epoch_seconds": [], "train_error": []}
    for epoch in range(a.epochs):
        for name, model in models.items():
            times = EpochTimes()
            history = model.fit(
                x_train,
                y_train,
                batch_size=a.batch_size,
                initial_epoch=epoch,
                epochs=epoch + 1,
                callbacks=[times],
                verbose=0,
            ).history
            histories[name]["epoch_seconds"].append(round(times.seconds, 2))
            histories[name]["train_error"].append(round(1 - history["accuracy"][-1], 4))
            print(f"epoch {epoch + 1} {name}: {times.seconds:.1f} s", flush=True)
    for name, model in models.items():
        steady = histories[name]["epoch_seconds"][1:] or histories[name]["epoch_seconds"]
        histories[name]["seconds_per_epoch_after_the_first"] = sum(steady) / len(steady)
        histories[name]["test_error"] = 1 - model.evaluate(x_test, y_test, verbose=0)[1]
    histories["expected_saving_of_forward_macs"] = expected_saving(models["resnet110_sd"])
    return histories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="Training images to use.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block-steps", type=int, default=20, help="Steps per block timing.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed fits per block variant.")
    parser.add_argument("--block-only", action="store_true", help="Skip the ResNet-110 runs.")
    a = parser.parse_args()
    results = {"backend": keras.backend.backend(), "block_seconds_per_step": block_step_seconds(a)}
    print(json.dumps(results, indent=1), flush=True)
    if a.block_only:
        return
    dataset = load_dataset(a.dataset)
    channels = 1 if a.dataset == "digits" else 3
    train_split = split_arrays(dataset.train, image_size=(32, 32), channels=channels, limit=a.limit)
    test_split = split_arrays(dataset.test, image_size=(32, 32), channels=channels)
    results.update(networks((train_split, test_split), a))
    base, dropped = (results[n]["seconds_per_epoch_after_the_first"] for n in NETWORKS)
    results["epoch_time_ratio_sd_over_plain"] = dropped / base
    results["time_saved"] = 1 - dropped / base
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
