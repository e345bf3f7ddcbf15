"""`kerascnn inspect`: each picture means what it claims, on a network trained in the test
(conftest.py), and every command works from the command line."""

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from google.protobuf import text_format
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import projector

from kerascnn import create_model
from kerascnn.cli import main
from kerascnn.data import load_dataset, split_arrays
from kerascnn.inspection import (
    embeddings,
    fooling,
    gradcam,
    guided_saliency,
    load_inspectable,
    occlusion,
    saliency,
)
from kerascnn.inspection.commands import dataset_inputs
from kerascnn.inspection.model import feature_map_layer, features, first_conv, penultimate_tensor

pytestmark = pytest.mark.slow
IMAGES = 16
STROKE = 128  # raw pixel value above which a pixel is ink


@pytest.fixture(scope="module")
def target(run_dir):
    return load_inspectable(run_dir)


@pytest.fixture(scope="module")
def inputs(target):
    return dataset_inputs(target, count=IMAGES)


def probabilities(model, images):
    return np.asarray(model(np.asarray(images, "float32"), training=False))


@pytest.mark.parametrize("method", [saliency, guided_saliency])
def test_saliency_mass_is_on_the_strokes(target, inputs, method):
    maps = method(target.model, inputs.images, inputs.classes)
    assert maps.shape == inputs.images.shape[:3] and (maps >= 0).all()
    stroke = inputs.images[..., 0] > STROKE
    on = np.array([m[s].mean() for m, s in zip(maps, stroke, strict=True)])
    off = np.array([m[~s].mean() for m, s in zip(maps, stroke, strict=True)])
    assert on.mean() > off.mean()
    assert (on > off).mean() > 0.75


def test_occluding_the_stroke_costs_more_than_an_empty_corner(target, inputs):
    patch = 8
    found = occlusion(target.model, inputs.images, inputs.classes, patch=patch, stride=4)
    rows, cols = found.probabilities.shape[1:]
    assert len(found.positions) == rows * cols
    assert found.fill.tolist() == pytest.approx(
        np.ravel(target.model.get_layer("preprocessing").mean).tolist()
    )
    compared = 0
    stroke_drops, corner_drops = [], []
    for n, image in enumerate(inputs.images[..., 0]):
        ink = np.array(
            [(image[y : y + patch, x : x + patch] > STROKE).sum() for y, x in found.positions]
        )
        corners = [0, cols - 1, (rows - 1) * cols, rows * cols - 1]
        empty = [c for c in corners if ink[c] == 0]
        if not empty:
            continue
        drops = found.baseline[n] - found.probabilities[n].ravel()
        stroke_drops.append(drops[np.argmax(ink)])
        corner_drops.append(max(drops[c] for c in empty))
        compared += 1
    assert compared >= IMAGES // 2
    stroke_drops, corner_drops = np.array(stroke_drops), np.array(corner_drops)
    assert stroke_drops.mean() > corner_drops.mean()
    assert (stroke_drops > corner_drops).mean() > 0.5


def test_gradcam_has_the_layers_shape_and_is_non_negative(target, inputs):
    cams, name = gradcam(target.model, inputs.images, inputs.classes)
    layer = target.model.get_layer(name)
    assert cams.shape == (IMAGES, *layer.output.shape[1:3])
    assert min(cams.shape[1:]) > 1 and (cams >= 0).all() and cams.max() > 0
    chosen = first_conv(target.model).name
    cams, name = gradcam(target.model, inputs.images, inputs.classes, layer=chosen)
    assert name == chosen
    assert cams.shape[1:] == tuple(target.model.get_layer(chosen).output.shape[1:3])


def test_fooling_changes_the_class_within_epsilon(target, inputs):
    epsilon, step, budget = 64.0, 2.0, 64
    for image in inputs.images[:4]:
        before = int(np.argmax(probabilities(target.model, image[None])))
        found = fooling(target.model, image, epsilon=epsilon, step_size=step, max_steps=budget)
        after = int(np.argmax(probabilities(target.model, found.adversarial[None])))
        assert found.fooled and found.steps <= budget
        assert found.original_class == before and found.adversarial_class == after != before
        assert np.abs(found.adversarial - image).max() <= epsilon + 1e-3
        assert found.adversarial.min() >= 0 and found.adversarial.max() <= 255


@pytest.mark.parametrize("name", ["resnet20", "nin_cifar"])
def test_layers_are_found_in_other_architectures(name):
    model = create_model(name, input_shape=(32, 32, 3), num_classes=10)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    classes = np.array([0, 1])
    layer = feature_map_layer(model)
    cams, found = gradcam(model, images, classes)
    assert found == layer.name and cams.shape == (2, *layer.output.shape[1:3])
    assert saliency(model, images, classes).shape == (2, 32, 32)
    assert guided_saliency(model, images, classes).shape == (2, 32, 32)
    width = penultimate_tensor(model).shape[-1]
    assert features(model, images).shape == (2, width)


def invoke(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


COMMANDS = {
    "filters": [],
    "activations": ["--layer", "c3"],
    "saliency": [],
    "gradcam": ["--class", "3"],
    "occlusion": ["--patch", "6", "--stride", "3"],
    "neighbours": ["--k", "3"],
    "embeddings": [],  # t-SNE, the default; the projector test below uses PCA
    "class-model": ["--class", "7", "--steps", "20"],
    "fooling": [],
}


@pytest.mark.parametrize("what", COMMANDS)
def test_each_command_writes_pngs_and_tensorboard_images(run_dir, tmp_path, what):
    out = tmp_path / what
    result = invoke(what, run_dir, "--out", out, *COMMANDS[what])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    pngs = [name for name in written if name.endswith(".png")]
    assert pngs and str(out) in result.output
    assert f"(kerascnn tensorboard {run_dir})" in result.output  # the one TensorBoard hint
    for name in pngs:
        image = tf.io.decode_png((out / name).read_bytes())
        assert image.shape[-1] == 3 and min(image.shape[:2]) >= 8
    accumulator = EventAccumulator(str(run_dir / "logs" / "inspect"), size_guidance={"tensors": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["tensors"])
    assert {f"{what}/{name[:-4]}" for name in pngs if name != "sprite.png"} <= tags


def test_image_files_are_classified_and_inspected(run_dir, inputs, tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"digit{i}.png")
        pixels = np.round(inputs.images[i]).astype("uint8")
        paths[-1].write_bytes(tf.io.encode_png(pixels).numpy())
    out = tmp_path / "out"
    result = invoke("saliency", run_dir, *paths, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["saliency_digit0.png", "saliency_digit1.png"]


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_projection_keeps_separate_classes_apart(method):
    # Three well-separated Gaussian clusters in 20-D: in the 2-D projection every point's
    # nearest neighbour is still from its own cluster.
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10.0, size=(3, 20))
    labels = np.repeat(np.arange(3), 30)
    vectors = centres[labels] + rng.normal(size=(len(labels), 20))
    points = embeddings.project(vectors, method)
    assert points.shape == (len(labels), 2)
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert np.array_equal(labels[distances.argmin(axis=1)], labels)


def test_projector_files_load_with_tensorboards_reader(run_dir, tmp_path):
    out = tmp_path / "projector"
    assert invoke("embeddings", run_dir, "--out", out, "--method", "pca").exit_code == 0
    config = text_format.Parse(
        (out / "projector_config.pbtxt").read_text(), projector.ProjectorConfig()
    )
    (embedding,) = config.embeddings
    vectors = np.loadtxt(out / embedding.tensor_path, delimiter="\t", ndmin=2)
    rows = [row.split("\t") for row in (out / embedding.metadata_path).read_text().splitlines()]
    assert rows[0] == ["label", "predicted", "correct"]
    assert len(rows) - 1 == len(vectors) == embedding.tensor_shape[0]
    check_projector_labels_and_colours_by_class(run_dir, rows)
    assert vectors.shape[1] == embedding.tensor_shape[1]
    width, height = embedding.sprite.single_image_dim
    sprite = tf.io.decode_png((out / embedding.sprite.image_path).read_bytes())
    side = int(np.ceil(np.sqrt(len(vectors))))
    assert sprite.shape[:2] == (side * height, side * width)
    # The run directory's TensorBoard logdir gets the same projector files.
    assert (run_dir / "logs" / "inspect" / "projector_config.pbtxt").is_file()


def check_projector_labels_and_colours_by_class(run_dir, rows):
    """The projector labels points by the first column that is not all numbers and colours
    by any column of few values: ``label`` is first, holds the split's class names (digits'
    "3" written "class 3") and has one value a class."""
    target = load_inspectable(run_dir)
    _, labels = split_arrays(load_dataset("digits").validation, image_size=(32, 32), channels=1)
    names = [embeddings.metadata_name(n) for n in target.class_names]
    column = [row[0] for row in rows[1:]]
    assert column == [names[i] for i in labels]
    for c in range(len(rows[0])):
        values = [row[c] for row in rows[1:]]
        assert not all(v.replace(".", "", 1).isdigit() for v in values), rows[0][c]
    assert len(set(column)) <= len(names)
    assert {row[2] for row in rows[1:]} <= {"yes", "no"}
    assert all((row[0] == row[1]) == (row[2] == "yes") for row in rows[1:])


def test_metadata_names_never_read_as_numbers():
    assert embeddings.metadata_name("cat") == "cat"
    assert embeddings.metadata_name("3") == "class 3"
    assert embeddings.metadata_name("0.5") == "class 0.5"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["gradcam", "{run}", "--layer", "no_such_layer"], "no layer 'no_such_layer'"),
        (["activations", "{run}", "--layer", "flatten"], "feature map"),
        (["saliency", "{missing}"], "no such file"),
        (["occlusion", "{run}", "--patch", "99"], "--patch"),
        (["saliency", "{run}", "{missing}"], "image not found"),
    ],
)
def test_bad_input_is_one_error_line(run_dir, tmp_path, args, expected):
    missing = tmp_path / "nowhere"
    args = [a.format(run=run_dir, missing=missing) for a in args]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: ") and expected in result.stderr
