"""What the demo page shows, without the page: an artifact loaded as ``kerascnn predict``
loads it, its top-k for an encoded image (the same decoding, preprocessing and ranking), the
Grad-CAM and saliency overlays of Keras models, example images from the test split, and a
line about the model from its metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from kerascnn import plotting
from kerascnn.data import load_dataset, split_arrays
from kerascnn.data.pipeline import image_converter
from kerascnn.errors import KerasCNNError
from kerascnn.inspection import Explainer
from kerascnn.inspection.attribution import upsample
from kerascnn.runtime import Artifact, decode_image, load_artifact, top_k

# Overlays are drawn at least this many pixels a side (an 8x8 digit would be a speck).
PICTURE_SIDE = 224
# Examples: the first test image of each class among this many, at most MAX_EXAMPLES.
EXAMPLE_SEARCH = 1000
MAX_EXAMPLES = 20
# The sketchpad is offered for grayscale models with inputs at most this large (digits).
SKETCH_MAX_SIDE = 64


@dataclass
class Example:
    path: Path
    label: str  # the true class name


@dataclass
class Answer:
    """One image's answer: the top-k (as ``kerascnn predict`` prints them) and the overlays
    (None for artifacts without gradients)."""

    ranked: list[dict[str, Any]]
    gradcam: np.ndarray | None = None  # uint8 (H, W, 3)
    saliency: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class DemoModel:
    artifact: Artifact
    top_k: int = 5
    explainer: Explainer | None = None  # for Keras models: Grad-CAM and saliency

    def __post_init__(self) -> None:
        if self.explainer is None and self.artifact.keras_model is not None:
            self.explainer = Explainer(self.artifact.keras_model)

    def warm_up(self) -> None:
        """Answer a black image once, so that the first visitor does not wait for the
        one-time work (tracing the explanation, the runtime's first call)."""
        self.answer_pixels(np.zeros(self.artifact.input_shape, "float32"))

    @property
    def explains(self) -> bool:
        """Grad-CAM and saliency need the layers and gradients of a Keras model."""
        return self.explainer is not None

    @property
    def sketchable(self) -> bool:
        height, width, channels = self.artifact.input_shape
        return channels == 1 and max(height, width) <= SKETCH_MAX_SIDE

    def answer(self, data: bytes, name: str = "image") -> Answer:
        """The top-k of the encoded image ``data`` (decoded, converted and resized as
        ``kerascnn predict`` does) and, for Keras models, its Grad-CAM and saliency overlays
        for the top class.

        Raises:
            ValueError: ``data`` is not a JPEG, PNG, BMP or GIF image (named ``name``).
        """
        return self.answer_pixels(decode_image(data, self.artifact.input_shape, name=name))

    def answer_drawing(self, data: bytes) -> Answer:
        """A drawing (a PNG of dark ink, on a transparent or white canvas) as the digits
        datasets hold them: bright ink on black. The ink is the drawing's opacity where it
        has transparency, else its darkness."""
        rgba = tf.io.decode_png(data, channels=4)
        alpha = rgba[..., 3:]
        if bool(tf.reduce_all(alpha == 255)):
            ink = 255 - tf.image.rgb_to_grayscale(rgba[..., :3])
        else:
            ink = alpha
        height, width, channels = self.artifact.input_shape
        return self.answer_pixels(image_converter((height, width), channels)(ink).numpy())

    def answer_pixels(self, image: np.ndarray) -> Answer:
        """The answer for one image of raw pixels at the model's input shape."""
        pixels = np.asarray(image, "float32")[None]
        ranked = top_k(self.artifact.predict(pixels), self.artifact.class_names, self.top_k)[0]
        if not self.explains:
            return Answer(ranked)
        best = np.array([ranked[0]["index"]])
        cams, saliencies = self.explainer(pixels, best)
        scale = float(cams[0].max())
        cam = upsample(cams, pixels.shape[1:3])[0] / (scale or 1.0)
        gradients = plotting.normalise(saliencies[0])
        answer = Answer(ranked, picture(pixels[0], cam), picture(pixels[0], gradients))
        answer.notes.append(f"Grad-CAM on layer {self.explainer.layer}")
        if scale == 0.0:
            answer.notes.append(
                "Grad-CAM is zero everywhere: no positive evidence for the class in that layer"
            )
        if not gradients.any():
            answer.notes.append("the saliency map is zero: the score does not depend on pixels")
        return answer

    def summary(self) -> str:
        """One line: model, dataset, input size, preprocessing and test accuracy."""
        meta = self.artifact.metadata
        height, width, channels = self.artifact.input_shape
        model = meta.get("model_title") or meta.get("model") or self.artifact.path.stem
        parts = [f"**{model}**"]
        if meta.get("dataset"):
            parts.append(f"trained on {meta['dataset']}")
        parts.append(f"input {height}x{width}x{channels} raw pixels 0-255")
        preprocessing = meta.get("preprocessing") or {}
        if preprocessing.get("inside_model"):
            steps = preprocessing["inside_model"]
            if "mean" in preprocessing:
                steps += f", mean {preprocessing['mean']}, std {preprocessing.get('std')}"
            parts.append(f"preprocessing inside the model: {steps}")
        accuracy = measured_accuracy(self.artifact)
        if accuracy is not None:
            parts.append(accuracy)
        parts.append(f"{self.artifact.kind} artifact `{self.artifact.path.name}`")
        return " · ".join(parts)

    def examples(self, directory: Path) -> list[Example]:
        """PNGs of the first test image of each class (at the model's input size), written
        into ``directory``; none when the dataset is unknown or cannot be read here."""
        name = self.artifact.metadata.get("dataset")
        if not name:
            return []
        try:
            test = load_dataset(name).split("test")
        except KerasCNNError:
            return []
        height, width, channels = self.artifact.input_shape
        images, labels = split_arrays(
            test, image_size=(height, width), channels=channels, limit=EXAMPLE_SEARCH
        )
        directory.mkdir(parents=True, exist_ok=True)
        found: dict[int, Example] = {}
        for image, label in zip(images, labels, strict=True):
            if int(label) in found or len(found) == MAX_EXAMPLES:
                continue
            class_name = self.artifact.class_names[int(label)]
            path = directory / f"test_{len(found)}_{class_name}.png"
            path.write_bytes(tf.io.encode_png(np.round(image).astype("uint8")).numpy())
            found[int(label)] = Example(path, class_name)
        return [found[label] for label in sorted(found)]


def picture(image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A [0, 1] map over raw pixels, enlarged for the page."""
    return plotting.enlarge(plotting.overlay(image, values), PICTURE_SIDE)


def measured_accuracy(artifact: Artifact) -> str | None:
    """The test accuracy measured for this artifact, said with where it comes from: the
    run's (an export after training carries the run's metrics, a run directory has
    ``metrics.json``), else the export's parity check of this kind on the test split."""
    metrics = artifact.metadata.get("metrics")
    for directory in (artifact.path.parent, artifact.path.parent.parent):
        if metrics is None and (directory / "metrics.json").is_file():
            try:
                metrics = json.loads((directory / "metrics.json").read_text())
            except json.JSONDecodeError:
                return None
    accuracy = ((metrics or {}).get("test") or {}).get("accuracy")
    if accuracy is not None:
        return f"test accuracy {float(accuracy):.2%}"
    parity = artifact.metadata.get("parity") or {}
    checks = [parity[artifact.kind]] if artifact.kind in parity else list(parity.values())
    for check in checks:
        key = "accuracy" if artifact.kind in parity else "keras_accuracy"
        if check.get(key) is not None:
            return f"test accuracy {check[key]:.2%} ({check['images']} test images, at export)"
    return None


def load_demo_model(source: str | Path | Artifact, top_k: int = 5) -> DemoModel:
    """``source`` as ``kerascnn predict`` loads it (``runtime.load_artifact``), or an
    ``Artifact`` already loaded."""
    artifact = source if isinstance(source, Artifact) else load_artifact(source)
    return DemoModel(artifact, top_k)
