"""How well a model classifies, as the papers' tables report it: top-1 and top-5 accuracy and
error, the cross-entropy, per-class accuracy and the confusion matrix, on arrays or on a
dataset split under the test-time views of ``kerascnn.data.views``.

One module for ``kerascnn evaluate``, the end of a training run, the run report and
TensorBoard's pictures, so every figure they print is computed the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kerascnn.data import ops
from kerascnn.data.sources import Split
from kerascnn.data.views import predict_views
from kerascnn.errors import InvalidArgumentError


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """The papers' table: top-1 and top-5 accuracy and error, and the cross-entropy."""
    probabilities = np.asarray(probabilities, dtype="float64")
    labels = np.asarray(labels, dtype="int64")
    classes = probabilities.shape[-1]
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= classes:
        raise InvalidArgumentError(
            f"the dataset has labels from {labels.min()} to {labels.max()} but the model has "
            f"{classes} classes"
        )
    picked = probabilities[np.arange(len(labels)), labels]
    # The label's rank, ties going to the lower index as argmax does; a non-finite output
    # never counts as correct.
    ranks = (probabilities > picked[:, None]).sum(-1) + (
        (probabilities == picked[:, None]) & (np.arange(classes) < labels[:, None])
    ).sum(-1)
    ranks[~np.isfinite(picked)] = classes
    metrics = {
        "images": int(len(labels)),
        "cross_entropy": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
        "accuracy": float(np.mean(ranks == 0)),
        "top1_error": float(np.mean(ranks != 0)),
    }
    if classes > 5:
        metrics["top5_accuracy"] = float(np.mean(ranks < 5))
        metrics["top5_error"] = float(np.mean(ranks >= 5))
    return metrics


def top1_accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a Keras model on in-memory images (batches of 256)."""
    predictions = np.asarray(model.predict(images, batch_size=256, verbose=0))
    return float(np.mean(predictions.argmax(-1) == labels))


# A result this close to chance (1 / classes), in accuracy, is reported as a warning, as is a
# held-out accuracy this far below the training accuracy of the last epoch.
CHANCE_MARGIN = 0.05
TRAINING_GAP = 0.30


def result_warnings(
    accuracy: float, classes: int, train_accuracy: float | None = None, what: str = "test"
) -> list[str]:
    """What is wrong with a held-out ``accuracy`` that a user should not take as a result:
    within ``CHANCE_MARGIN`` of chance, or ``TRAINING_GAP`` below ``train_accuracy``."""
    chance = 1.0 / classes
    warnings = []
    if accuracy < chance + CHANCE_MARGIN:
        warnings.append(
            f"{what} accuracy {100 * accuracy:.2f}% is within {100 * CHANCE_MARGIN:g} points "
            f"of chance ({100 * chance:.2f}% for {classes} classes): the model has not learned "
            f"to classify"
        )
    if train_accuracy is not None and train_accuracy - accuracy > TRAINING_GAP:
        warnings.append(
            f"{what} accuracy {100 * accuracy:.2f}% is far below the last epoch's training "
            f"accuracy {100 * train_accuracy:.2f}%"
        )
    return warnings


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts of (true class, predicted class): rows true, columns predicted."""
    matrix = np.zeros((classes, classes), "int64")
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def per_class(matrix: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class of a confusion matrix: its images, how many are right, accuracy."""
    totals = matrix.sum(axis=1)
    return [
        {
            "class": str(name),
            "images": int(total),
            "correct": int(matrix[c, c]),
            "accuracy": float(matrix[c, c] / total) if total else None,
        }
        for c, (name, total) in enumerate(zip(class_names, totals, strict=True))
    ]


def evaluate_artifact(artifact, images: np.ndarray, labels: np.ndarray) -> dict:
    """``classification_metrics`` of a loaded artifact (``kerascnn.runtime``) on raw-pixel
    ``images``."""
    probabilities = artifact.predict(images)
    _check_outputs(artifact, probabilities)
    return classification_metrics(probabilities, labels)


def evaluate_model(
    predict: Callable[[np.ndarray], np.ndarray],
    input_shape: Sequence[int],
    split: Split,
    tta: str = "none",
    crop_fraction: float | None = None,
) -> dict:
    """``classification_metrics`` of ``predict`` (raw pixels at ``input_shape`` -> class
    probabilities) on a split under the ``tta`` views."""
    height, width, channels = input_shape
    probabilities, labels = predict_views(
        predict,
        split,
        image_size=(height, width),
        channels=channels,
        tta=tta,
        crop_fraction=crop_fraction,
    )
    return classification_metrics(probabilities, labels)


def evaluate_artifact_views(
    artifact, split: Split, tta: str = "none", crop_fraction: float | None = None
) -> dict:
    """``classification_metrics`` of a loaded artifact on a split, with per-class accuracy
    and the confusion matrix. Without a crop fraction, the one of the recipe the model was
    trained with (from its metadata), so a run is evaluated as it was at the end of training.
    """
    height, width, channels = artifact.input_shape
    if crop_fraction is None:
        trained_with = (artifact.metadata.get("preprocessing") or {}).get("augmentation")
        if trained_with in ops.RECIPES.names():
            crop_fraction = ops.RECIPES.get(trained_with).crop_fraction
    probabilities, labels = predict_views(
        artifact.predict,
        split,
        image_size=(height, width),
        channels=channels,
        tta=tta,
        crop_fraction=crop_fraction,
    )
    _check_outputs(artifact, probabilities)
    metrics = classification_metrics(probabilities, labels)
    matrix = confusion_matrix(labels, probabilities.argmax(-1), artifact.num_classes)
    metrics["per_class"] = per_class(matrix, artifact.class_names)
    metrics["confusion_matrix"] = matrix.tolist()
    return metrics


def _check_outputs(artifact, probabilities: np.ndarray) -> None:
    if probabilities.shape[-1] != artifact.num_classes:
        raise InvalidArgumentError("the artifact's outputs do not match its class names")
