"""Every registered model on the Keras backend this process runs: the logits of two images
under the same synthetic weights on every backend, and one training step.

Imported by ``test_backends.py`` (the TensorFlow side, in the test process) and run as a
script for the other backends, one process for all the models:

    KERAS_BACKEND=jax python tests/models/backend_parity.py OUT.json [NAME ...]

writes ``{name: {"logits": ..., "loss": ..., "finite": ..., "updated": ..., "seconds": ...}}``
(every registered model but the two 1,000-layer ones when no name is given; a model that
fails gets ``{"error": ...}`` and the others still run).

The weights are not the initialisers' (each backend draws its own random numbers) but drawn
here from numpy with the same seed on every backend, He-scaled so that deep networks neither
blow up nor vanish; the preprocessing statistics keep the values the builder gives them.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

import keras
import numpy as np

import kerascnn
from kerascnn.models import MODELS

NUM_CLASSES = 3
BATCH = 2
# Builds of 20-40 s each; their blocks are those of resnet110 and preact_resnet164.
THOUSAND_LAYER_MODELS = {"resnet1202", "preact_resnet1001"}


def small_shape(name: str) -> tuple[int, int, int]:
    spec = MODELS.get(name)
    return (*spec.min_size, spec.input_shape[-1])


def images_and_labels(name: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, size=(BATCH, *small_shape(name))).astype("float32")
    return images, np.arange(BATCH) % NUM_CLASSES


def synthetic_value(variable, rng: np.random.Generator) -> np.ndarray:
    """A value for one variable, from its name and shape alone."""
    shape, path = tuple(variable.shape), variable.path
    if "preprocessing" in path or not shape:
        return keras.ops.convert_to_numpy(variable)
    if "variance" in path:
        return rng.uniform(0.5, 1.5, shape).astype("float32")
    if "gamma" in path or path.endswith("scale"):
        return (1 + 0.1 * rng.standard_normal(shape)).astype("float32")
    if len(shape) == 1:  # biases, beta, moving means
        return (0.01 * rng.standard_normal(shape)).astype("float32")
    fan_in = int(np.prod(shape[:-1])) if "depthwise" not in path else int(np.prod(shape[:2]))
    return (np.sqrt(2.0 / max(fan_in, 1)) * rng.standard_normal(shape)).astype("float32")


def build(name: str) -> keras.Model:
    """The logits model at the minimum size, with the synthetic weights."""
    model = kerascnn.create_model(
        name, input_shape=small_shape(name), num_classes=NUM_CLASSES, classifier_activation=None
    )
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(synthetic_value(variable, rng))
    return model


def logits(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(model(images, training=False)), "float64")


def check(name: str) -> dict:
    """The inference logits, then one SGD step on logits (the model's regularisation losses
    included, as ``fit`` takes it): its loss, and whether the weights changed and stayed
    finite."""
    started = time.perf_counter()
    model = build(name)
    images, labels = images_and_labels(name)
    found = {"logits": logits(model, images).tolist()}
    before = [np.array(w) for w in model.get_weights()]
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    loss = float(model.train_on_batch(images, labels))
    after = model.get_weights()
    found["loss"] = loss
    found["finite"] = bool(np.isfinite(loss) and all(np.isfinite(w).all() for w in after))
    found["updated"] = any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    found["seconds"] = round(time.perf_counter() - started, 1)
    keras.backend.clear_session()
    return found


def all_names() -> list[str]:
    return [n for n in kerascnn.list_models() if n not in THOUSAND_LAYER_MODELS]


def main(argv: list[str]) -> int:
    out, names = argv[0], argv[1:] or all_names()
    results = {}
    for name in names:
        try:
            results[name] = check(name)
        except Exception as error:  # noqa: BLE001  one model's failure is that model's result
            results[name] = {"error": traceback.format_exception_only(error)[-1].strip()}
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "logits"}))
        with open(out, "w") as file:  # after each model, so a timeout keeps what was done
            json.dump({"backend": keras.backend.backend(), "models": results}, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
