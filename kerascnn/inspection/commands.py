"""One function per ``kerascnn inspect`` command: model and images in, pictures (uint8
arrays) and files out. The CLI parses, calls ``inspect`` and writes with ``save``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerascnn import plotting
from kerascnn.data import load_dataset, split_arrays
from kerascnn.errors import InvalidArgumentError
from kerascnn.inspection import attribution, embeddings, synthesis
from kerascnn.inspection.model import Inspectable, feature_map_layer, features, first_conv
from kerascnn.registry import Registry
from kerascnn.runtime import read_images

DEFAULT_IMAGES = 4


@dataclass
class Inputs:
    """The images to inspect: raw pixels at the model's size, their class (the label for
    dataset images, else the prediction) and a name for each."""

    images: np.ndarray
    classes: np.ndarray
    names: list[str]
    labelled: bool  # classes are true labels


@dataclass
class Inspection:
    pictures: dict[str, np.ndarray] = field(default_factory=dict)  # file name -> uint8 image
    files: dict[str, bytes | str] = field(default_factory=dict)  # other files to write
    notes: list[str] = field(default_factory=list)  # lines to print


COMMANDS: Registry[Callable[..., Inspection]] = Registry("inspection")


def dataset_inputs(target: Inspectable, split: str = "test", count: int | None = DEFAULT_IMAGES):
    """The first ``count`` images of the run's dataset split (all with None), with labels."""
    data = load_dataset(target.metadata.get("dataset") or "digits")
    height, width, channels = target.input_shape
    images, labels = split_arrays(
        data.split(split), image_size=(height, width), channels=channels, limit=count
    )
    names = [f"{split}{i}" for i in range(len(labels))]
    return Inputs(images, labels.astype("int64"), names, labelled=True)


def file_inputs(target: Inspectable, paths: Sequence[str | Path]) -> Inputs:
    """Image files, classed by the model's prediction."""
    images = read_images(paths, target.input_shape)
    classes = np.argmax(np.asarray(target.model(images, training=False)), axis=-1)
    return Inputs(images, classes.astype("int64"), [Path(p).stem for p in paths], labelled=False)


def inspect(what: str, target: Inspectable, inputs: Inputs | None, **options: Any) -> Inspection:
    """Run the inspection ``what`` (``kerascnn inspect --help`` lists them)."""
    command = COMMANDS.get(what.replace("-", "_"))
    return command(target, inputs or dataset_inputs(target), **options)


def _class_override(inputs: Inputs, class_index: int | None, target: Inspectable) -> np.ndarray:
    if class_index is None:
        return inputs.classes
    if not 0 <= class_index < len(target.class_names):
        raise InvalidArgumentError(
            f"--class must be between 0 and {len(target.class_names) - 1}; received {class_index}"
        )
    return np.full(len(inputs.classes), class_index, "int64")


def _title(target: Inspectable, inputs: Inputs, i: int) -> str:
    kind = "label" if inputs.labelled else "predicted"
    return f"{inputs.names[i]} ({kind} {target.class_names[inputs.classes[i]]})"


@COMMANDS.register("filters")
def filters(target: Inspectable, inputs: Inputs, **_: Any) -> Inspection:
    """The first convolution's kernels, each normalised to [0, 1], as a grid (RGB kernels in
    colour, other inputs one channel at a time)."""
    layer = first_conv(target.model)
    kernel = np.asarray(layer.kernel)  # (kh, kw, in, out)
    tiles = []
    for k in range(kernel.shape[-1]):
        weights = kernel[..., k]
        # RGB kernels in colour; any other input depth as the mean over its channels.
        plane = weights if weights.shape[-1] == 3 else weights.mean(axis=-1)
        image = plotting.normalise(plane) * (255.0 if plane.ndim == 3 else 1.0)
        tiles.append(plotting.enlarge(plotting.to_rgb(image), 32))
    picture = plotting.grid(tiles)
    return Inspection(
        pictures={"filters.png": picture},
        notes=[f"{kernel.shape[-1]} kernels of {layer.name} {kernel.shape[:3]}"],
    )


@COMMANDS.register("activations")
def activations(
    target: Inspectable, inputs: Inputs, layer: str | None = None, **_: Any
) -> Inspection:
    """Each feature map of ``layer`` (default: the first convolution) for each image."""
    chosen = feature_map_layer(target.model, layer or first_conv(target.model).name)
    maps = np.asarray(keras.Model(target.model.input, chosen.output)(inputs.images, training=False))
    result = Inspection(notes=[f"layer {chosen.name}, maps {maps.shape[1:]}"])
    for i, name in enumerate(inputs.names):
        tiles = [
            plotting.enlarge(plotting.to_rgb(plotting.normalise(inputs.images[i][..., 0])), 48)
        ]
        tiles += [
            plotting.enlarge(plotting.to_rgb(plotting.normalise(maps[i, ..., c])), 48)
            for c in range(maps.shape[-1])
        ]
        result.pictures[f"activations_{chosen.name}_{name}.png"] = plotting.grid(tiles)
    return result


@COMMANDS.register("saliency")
def saliency(
    target: Inspectable, inputs: Inputs, class_index: int | None = None, **_: Any
) -> Inspection:
    """Gradient saliency and guided backpropagation, each alone and over the image."""
    classes = _class_override(inputs, class_index, target)
    plain = attribution.saliency(target.model, inputs.images, classes)
    guided = attribution.guided_saliency(target.model, inputs.images, classes)
    result = Inspection()
    for i, name in enumerate(inputs.names):
        s, g = plotting.normalise(plain[i]), plotting.normalise(guided[i])
        pictures = [
            plotting.to_rgb(inputs.images[i]),
            plotting.heat(s, "gray"),
            plotting.overlay(inputs.images[i], s),
            plotting.heat(g, "gray"),
            plotting.overlay(inputs.images[i], g),
        ]
        titles = [
            _title(target, inputs, i),
            f"saliency ({target.class_names[classes[i]]})",
            "overlay",
            "guided backprop",
            "overlay",
        ]
        result.pictures[f"saliency_{name}.png"] = plotting.panels(
            pictures, titles, colour_scale="overlay: |gradient| / max"
        )
    return result


@COMMANDS.register("gradcam")
def gradcam(
    target: Inspectable,
    inputs: Inputs,
    layer: str | None = None,
    class_index: int | None = None,
    **_: Any,
) -> Inspection:
    """Grad-CAM on ``layer`` (default: the last feature map before global pooling)."""
    classes = _class_override(inputs, class_index, target)
    cams, layer_name = attribution.gradcam(target.model, inputs.images, classes, layer)
    large = attribution.upsample(cams, inputs.images.shape[1:3])
    result = Inspection(notes=[f"layer {layer_name}, map {cams.shape[1]}x{cams.shape[2]}"])
    for i, name in enumerate(inputs.names):
        scale = float(cams[i].max()) or 1.0
        pictures = [
            plotting.to_rgb(inputs.images[i]),
            plotting.heat(cams[i] / scale),
            plotting.overlay(inputs.images[i], large[i] / scale),
        ]
        titles = [
            _title(target, inputs, i),
            f"Grad-CAM {layer_name} ({target.class_names[classes[i]]})",
            "overlay",
        ]
        result.pictures[f"gradcam_{name}.png"] = plotting.panels(
            pictures, titles, colour_scale="Grad-CAM / max"
        )
    return result


@COMMANDS.register("occlusion")
def occlusion(
    target: Inspectable,
    inputs: Inputs,
    class_index: int | None = None,
    patch: int | None = None,
    stride: int | None = None,
    **_: Any,
) -> Inspection:
    """The class probability with a grey patch at each position, as a heat map."""
    classes = _class_override(inputs, class_index, target)
    side = min(inputs.images.shape[1:3])
    patch = patch or max(1, side // 4)
    stride = stride or max(1, patch // 2)
    found = attribution.occlusion(target.model, inputs.images, classes, patch, stride)
    large = attribution.upsample(found.probabilities, inputs.images.shape[1:3])
    result = Inspection(notes=[f"patch {patch}, stride {stride}, grey {found.fill.tolist()}"])
    for i, name in enumerate(inputs.names):
        pictures = [
            plotting.to_rgb(inputs.images[i]),
            plotting.heat(found.probabilities[i]),
            plotting.overlay(inputs.images[i], large[i]),
        ]
        titles = [
            _title(target, inputs, i),
            f"p({target.class_names[classes[i]]}) occluded, 0-1",
            f"overlay (unoccluded {found.baseline[i]:.2f})",
        ]
        result.pictures[f"occlusion_{name}.png"] = plotting.panels(
            pictures, titles, colour_scale="class probability"
        )
    return result


@COMMANDS.register("neighbours")
def neighbours(target: Inspectable, inputs: Inputs, k: int = 6, **_: Any) -> Inspection:
    """Per query image, the ``k`` nearest training images in penultimate feature space."""
    data = load_dataset(target.metadata.get("dataset") or "digits")
    height, width, channels = target.input_shape
    train, labels = split_arrays(data.train, image_size=(height, width), channels=channels)
    index, distance = embeddings.nearest(
        features(target.model, inputs.images), features(target.model, train), k
    )
    pictures, titles = [], []
    for i in range(len(inputs.names)):
        pictures.append(plotting.to_rgb(inputs.images[i]))
        titles.append(_title(target, inputs, i))
        for j, d in zip(index[i], distance[i], strict=True):
            pictures.append(plotting.to_rgb(train[j]))
            titles.append(f"{data.class_names[labels[j]]}  d={d:.2f}")
    return Inspection(
        pictures={"neighbours.png": plotting.panels(pictures, titles, columns=k + 1)},
        notes=[f"{k} nearest of {len(train)} training images"],
    )


@COMMANDS.register("embeddings")
def embedding_files(
    target: Inspectable,
    inputs: Inputs,
    method: str = "tsne",
    split: str = "validation",
    **_: Any,
) -> Inspection:
    """Penultimate features of a dataset split for TensorBoard's projector, and a 2-D map."""
    data = load_dataset(target.metadata.get("dataset") or "digits")
    height, width, channels = target.input_shape
    images, labels = split_arrays(data.split(split), image_size=(height, width), channels=channels)
    vectors = features(target.model, images)
    predictions = np.concatenate(
        [
            np.asarray(target.model(images[i : i + 256], training=False)).argmax(-1)
            for i in range(0, len(images), 256)
        ]
    )
    names = target.class_names
    files = embeddings.projector_files(
        vectors, [names[i] for i in labels], images, [names[i] for i in predictions]
    )
    points = embeddings.project(vectors, method)
    scatter = embeddings.scatter(points, labels, target.class_names, method)
    return Inspection(
        pictures={f"embeddings_{method}.png": scatter},
        files=files,
        notes=[f"{len(vectors)} {split} vectors of {vectors.shape[1]} dimensions"],
    )


@COMMANDS.register("class_model")
def class_models(
    target: Inspectable, inputs: Inputs, class_index: int | None = None, steps: int = 200, **_
) -> Inspection:
    """Per class (or ``class_index``), an input maximising its score from zeros."""
    count = len(target.class_names)
    classes = list(range(count)) if class_index is None else [class_index]
    if not all(0 <= c < count for c in classes):
        raise InvalidArgumentError(f"--class must be between 0 and {count - 1}")
    made = synthesis.class_model(target.model, classes, steps=steps)
    probabilities = np.asarray(target.model(made, training=False))
    result = Inspection()
    for image, c, p in zip(made, classes, probabilities, strict=True):
        name = target.class_names[c]
        result.pictures[f"class_model_{name}.png"] = plotting.enlarge(plotting.to_rgb(image))
        result.notes.append(f"class {name}: p={p[c]:.3f}")
    return result


@COMMANDS.register("fooling")
def fooling(
    target: Inspectable,
    inputs: Inputs,
    epsilon: float = 64.0,
    step_size: float = 2.0,
    max_steps: int = 64,
    **_: Any,
) -> Inspection:
    """Iterated fast gradient sign until the class changes: original, perturbation, result."""
    result = Inspection()
    names = target.class_names
    for i, name in enumerate(inputs.names):
        found = synthesis.fooling(
            target.model,
            inputs.images[i],
            None,  # the predicted class is the one to change
            epsilon=epsilon,
            step_size=step_size,
            max_steps=max_steps,
        )
        # Amplified so that +-max |perturbation| spans 0-255, zero at mid-grey.
        peak = max(1e-6, float(np.abs(found.perturbation).max()))
        amplified = 127.5 + 127.5 * found.perturbation / peak
        pictures = [
            plotting.to_rgb(found.original),
            plotting.to_rgb(amplified),
            plotting.to_rgb(found.adversarial),
        ]
        outcome = "fooled" if found.fooled else "not fooled"
        titles = [
            f"{names[found.original_class]} p={found.original_probability:.2f}",
            f"perturbation x{127.5 / peak:.0f} ({found.steps} steps)",
            f"{names[found.adversarial_class]} p={found.adversarial_probability:.2f}",
        ]
        result.pictures[f"fooling_{name}.png"] = plotting.panels(pictures, titles)
        result.notes.append(
            f"{name}: {outcome} after {found.steps} steps, max |perturbation| "
            f"{np.abs(found.perturbation).max():.1f} <= epsilon {epsilon:g}"
        )
    return result


def default_out_dir(target: Inspectable, what: str) -> Path:
    """RUN_DIR/inspect/<what>, or inspect/<what> beside the .keras file."""
    base = target.run_dir if target.run_dir is not None else target.path.parent
    return base / "inspect" / what.replace("_", "-")


def save(inspection: Inspection, out_dir: str | Path) -> list[Path]:
    """Write the pictures as PNG files and the other files into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, picture in inspection.pictures.items():
        (out_dir / name).write_bytes(plotting.png_bytes(picture))
        written.append(out_dir / name)
    for name, contents in inspection.files.items():
        path = out_dir / name
        if isinstance(contents, bytes):
            path.write_bytes(contents)
        else:
            path.write_text(contents)
        written.append(path)
    return written


def log_to_tensorboard(inspection: Inspection, log_dir: str | Path, what: str) -> None:
    """The pictures as ``tf.summary.image`` under ``log_dir`` (tag ``what/file stem``); the
    projector files too, so TensorBoard's Projector tab finds them there."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for name, picture in inspection.pictures.items():
            tf.summary.image(f"{what}/{Path(name).stem}", picture[None], step=0)
    writer.close()
    if inspection.files:
        save(Inspection(files=inspection.files), log_dir)
