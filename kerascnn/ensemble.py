"""Model ensembles: one Keras model averaging its members' class probabilities (AlexNet's
seven CNNs, Krizhevsky et al. 2012, took top-5 error from 18.2% to 15.4%; CS231n "training
neural networks": a few percent from averaging independently trained models).

Members are trained runs (or ``.keras`` files with a ``metadata.json`` beside them) that agree
on their class names. Each keeps its own preprocessing (it is inside the model); a member
whose input size differs from the ensemble's (the largest member's) gets a ``Resizing`` layer
in front. The ensemble is saved as a run directory (``model.keras``, ``metadata.json`` naming
its members, ``metrics.json`` with the ensemble's and each member's test figures) that
``kerascnn evaluate`` and ``kerascnn export`` take like any other.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascnn.data import load_dataset
from kerascnn.data.sources import Split
from kerascnn.data.views import predict_views
from kerascnn.errors import InvalidArgumentError
from kerascnn.evaluation import classification_metrics
from kerascnn.files import write_text_atomically
from kerascnn.runtime import Artifact, load_artifact
from kerascnn.training.callbacks import save_atomically

AVERAGE = "ensemble_average"


@dataclass
class Ensemble:
    model: keras.Model
    metadata: dict[str, Any]
    members: list[Artifact]


def load_members(sources: Sequence[str | Path]) -> list[Artifact]:
    """The members as Keras artifacts, checked: at least two, Keras models, the same class
    names in the same order, the same channels."""
    if len(sources) < 2:
        raise InvalidArgumentError("an ensemble needs at least two members")
    members = [load_artifact(source) for source in sources]
    for member in members:
        if member.kind != "keras":
            raise InvalidArgumentError(
                f"ensemble members are run directories or .keras files; {member.path} is a "
                f"{member.kind}"
            )
    first = members[0]
    for member in members[1:]:
        if member.num_classes != first.num_classes:
            raise InvalidArgumentError(
                f"ensemble members differ in class count: {first.path} has "
                f"{first.num_classes}, {member.path} has {member.num_classes}"
            )
        if member.class_names != first.class_names:
            raise InvalidArgumentError(
                f"ensemble members differ in class names: {first.path} and {member.path}"
            )
        if member.input_shape[-1] != first.input_shape[-1]:
            raise InvalidArgumentError(
                f"ensemble members differ in channels: {first.path} takes "
                f"{first.input_shape[-1]}, {member.path} takes {member.input_shape[-1]}"
            )
    return members


def build_ensemble(members: Sequence[Artifact], name: str) -> Ensemble:
    """One model: the image resized to each member's input where it differs, each member's
    probabilities, their mean."""
    input_shape = max((m.input_shape for m in members), key=lambda s: (s[0] * s[1], s))
    image = keras.Input(input_shape, name="image")
    outputs = []
    for index, member in enumerate(members):
        x = image
        height, width, _ = member.input_shape
        if (height, width) != tuple(input_shape[:2]):
            x = keras.layers.Resizing(height, width, name=f"member{index}_resize")(x)
        network = member.keras_model
        renamed = keras.Model(network.input, network.output, name=f"member{index}_{network.name}")
        outputs.append(renamed(x))
    model = keras.Model(image, keras.layers.Average(name=AVERAGE)(outputs), name=name)
    first = members[0].metadata
    metadata = {
        "model": "ensemble",
        "model_title": f"Ensemble of {len(members)} ({', '.join(_title(m) for m in members)})",
        "paper": "Krizhevsky et al. 2012 (averaged predictions)",
        "dataset": first.get("dataset"),
        "class_names": members[0].class_names,
        "input_shape": list(input_shape),
        "preprocessing": {
            "input": "raw pixels 0-255, float32, (batch, height, width, channels)",
            "inside_model": "each member's own, after resizing to its input",
        },
        "output": "class probabilities (softmax), the mean of the members'",
        "members": [
            {"source": str(m.path), "model": m.metadata.get("model", m.keras_model.name)}
            for m in members
        ],
        "parameters": model.count_params(),
        "trainable_parameters": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
    }
    return Ensemble(model, metadata, list(members))


def _title(member: Artifact) -> str:
    return str(member.metadata.get("model", member.keras_model.name))


def member_models(model: keras.Model) -> list[keras.Model]:
    """Each member of an ensemble model as a model of the ensemble's input (its resizing
    included), from the inputs of the averaging layer."""
    average = model.get_layer(AVERAGE)
    return [keras.Model(model.inputs, branch) for branch in average.input]


def split_metrics(model: keras.Model, split: Split, input_shape: Sequence[int]) -> dict:
    """The ensemble's and each member's figures on a split."""

    def metrics_of(network):
        probabilities, labels = predict_views(
            lambda x: network.predict(x, batch_size=256, verbose=0),
            split,
            image_size=tuple(input_shape[:2]),
            channels=input_shape[-1],
            tta="none",
        )
        return {
            k: round(float(v), 6) for k, v in classification_metrics(probabilities, labels).items()
        }

    members = [metrics_of(network) for network in member_models(model)]
    accuracies = [m["accuracy"] for m in members]
    return {
        **metrics_of(model),
        "members": members,
        "member_accuracy_mean": round(float(np.mean(accuracies)), 6),
        "member_accuracy_std": round(float(np.std(accuracies)), 6),
    }


def check_ensemble_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse an existing directory unless ``overwrite`` (checked before anything is written;
    the directory is made when the model is saved)."""
    if run_dir.exists() and not overwrite:
        raise InvalidArgumentError(
            f"{run_dir} already exists; choose another --name or pass --overwrite"
        )


def save_ensemble(ensemble: Ensemble, run_dir: Path, overwrite: bool) -> dict:
    """``model.keras``, ``metadata.json`` and ``metrics.json`` (test split of the members'
    dataset, when it is known) in ``run_dir``; returns the metrics."""
    if run_dir.exists() and overwrite:
        shutil.rmtree(run_dir)
    dataset = ensemble.metadata.get("dataset")
    metrics = {}
    if dataset:
        test = load_dataset(dataset).test
        metrics["test"] = split_metrics(ensemble.model, test, ensemble.metadata["input_shape"])
    run_dir.mkdir(parents=True)
    save_atomically(ensemble.model, run_dir / "model.keras")
    write_text_atomically(run_dir / "metadata.json", json.dumps(ensemble.metadata, indent=2) + "\n")
    write_text_atomically(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics
