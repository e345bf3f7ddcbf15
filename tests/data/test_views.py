"""Evaluation views: ten-crop and multi-scale really average the views they claim (checked
against crops cut by hand in numpy), and the papers' top-1/top-5 figures; then the data
options end to end through `kerascnn train` and `kerascnn evaluate`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from kerascnn.cli import main
from kerascnn.data import load_dataset
from kerascnn.data.sources import Split
from kerascnn.data.views import predict_views, view_op
from kerascnn.evaluation import classification_metrics

SIZE = 8


@pytest.fixture(scope="module")
def tiny_model():
    """Softmax over a random linear map of the pixels: every pixel and position matters,
    so a wrong crop or a missing flip changes the output."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def images(count=3, shape=(10, 13, 3)):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, *shape), dtype=np.uint8)


def resized_shorter(image, side):
    h, w = image.shape[:2]
    scale = side / min(h, w)
    size = (side, round(w * scale)) if h <= w else (round(h * scale), side)
    return tf.image.resize(image.astype("float32"), size, antialias=True).numpy()


def manual_ten_crop(model, image, side):
    big = resized_shorter(image, side)
    h, w = big.shape[:2]
    tops_lefts = [(0, 0), (0, w - SIZE), (h - SIZE, 0), (h - SIZE, w - SIZE)]
    tops_lefts.append(((h - SIZE) // 2, (w - SIZE) // 2))
    crops = [big[t : t + SIZE, s : s + SIZE] for t, s in tops_lefts]
    crops += [c[:, ::-1] for c in crops]
    assert len(crops) == 10
    return np.asarray(model(np.stack(crops))).mean(axis=0)


def test_ten_crop_averages_the_ten_views(tiny_model):
    x = images()
    split = Split(x, np.arange(3))
    predict = lambda v: np.asarray(tiny_model(v))  # noqa: E731
    got, labels = predict_views(
        predict, split, image_size=(SIZE, SIZE), channels=3, tta="ten-crop", crop_fraction=0.5
    )
    np.testing.assert_array_equal(labels, [0, 1, 2])
    for image, probabilities in zip(x, got, strict=True):
        expected = manual_ten_crop(tiny_model, image, side=2 * SIZE)
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    # ... and that differs from a single centre view.
    single, _ = predict_views(
        predict, split, image_size=(SIZE, SIZE), channels=3, tta="none", crop_fraction=0.5
    )
    assert not np.allclose(single, got, atol=1e-4)


def test_multi_scale_averages_centre_crops_and_flips_at_three_scales(tiny_model):
    x = images(2)
    got, _ = predict_views(
        lambda v: np.asarray(tiny_model(v)),
        Split(x, np.arange(2)),
        image_size=(SIZE, SIZE),
        channels=3,
        tta="multi-scale",
    )
    for image, probabilities in zip(x, got, strict=True):
        views = []
        for side in (256, 384, 512):
            big = resized_shorter(image, max(round(side * SIZE / 224), SIZE))
            h, w = big.shape[:2]
            crop = big[(h - SIZE) // 2 :][:SIZE, (w - SIZE) // 2 :][:, :SIZE]
            views += [crop, crop[:, ::-1]]
        expected = np.asarray(tiny_model(np.stack(views))).mean(axis=0)
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_view_shapes_eagerly_and_inside_tf_data():
    x = images(1)[0].astype("float32")
    for tta, count in (("none", 1), ("ten-crop", 10), ("multi-scale", 6)):
        op = view_op(tta, SIZE, SIZE)
        eager = op(tf.constant(x)).numpy()
        graph = tf.data.Dataset.from_tensors(x).map(op).get_single_element().numpy()
        assert eager.shape == (count, SIZE, SIZE, 3)
        np.testing.assert_allclose(eager, graph, atol=1e-3)


def test_top1_top5_accuracy_and_error_by_hand():
    probabilities = np.array(
        [
            [0.5, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05],  # label 0: top-1
            [0.4, 0.3, 0.1, 0.1, 0.05, 0.03, 0.02],  # label 1: 2nd, so top-5 only
            [0.3, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05],  # label 6: 6th, wrong both ways
        ]
    )
    metrics = classification_metrics(probabilities, np.array([0, 1, 6]))
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["top1_error"] == pytest.approx(2 / 3)
    assert metrics["top5_accuracy"] == pytest.approx(2 / 3)
    assert metrics["top5_error"] == pytest.approx(1 / 3)
    assert metrics["cross_entropy"] == pytest.approx(-np.mean(np.log([0.5, 0.3, 0.05])))


# -- end to end through the command line --------------------------------------------------

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 40, 220)]


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("views") / "colours"
    rng = np.random.default_rng(0)
    for c, colour in enumerate(COLOURS):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(12):
            noisy = np.clip(np.array(colour) + rng.normal(0, 15, (20, 24, 3)), 0, 255)
            Image.fromarray(noisy.astype(np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.mark.slow
def test_train_with_recipe_mixing_and_tta_then_evaluate(colour_folder, tmp_path):
    runs = tmp_path / "runs"
    args = ["train", "--dataset", str(colour_folder), "--model", "lenet5", "--image-size", "32"]
    args += ["--model-option", "variant=modern", "--loss", "crossentropy", "--epochs", "2"]
    args += ["--augmentation", "alexnet", "--mixup", "0.2", "--tta", "ten-crop"]
    args += ["--normalization", "channel-mean", "--no-export", "--run-name", "r"]
    args += ["--output-dir", str(runs)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((runs / "r" / "metrics.json").read_text())
    assert metrics["test_tta"]["tta"] == "ten-crop"
    assert metrics["test_tta"]["images"] == len(load_dataset(str(colour_folder)).test)
    metadata = json.loads((runs / "r" / "metadata.json").read_text())
    assert metadata["preprocessing"]["augmentation"] == "alexnet"
    assert metadata["preprocessing"]["std"] == [1.0]  # channel-mean subtracts, never divides
    # The model's mean is the training split's mean grey level (LeNet-5 is grayscale).
    assert 40 < metadata["preprocessing"]["mean"][0] < 200

    out = CliRunner().invoke(main, ["evaluate", str(runs / "r"), "--tta", "ten-crop", "--json"])
    assert out.exit_code == 0, out.output
    evaluated = json.loads(out.stdout)
    assert evaluated["accuracy"] == pytest.approx(metrics["test_tta"]["accuracy"], abs=1e-6)
    assert evaluated["top1_error"] == pytest.approx(1 - evaluated["accuracy"])
    # Without --tta, the recipe's centre crop, as the run's own test evaluation used.
    out = CliRunner().invoke(main, ["evaluate", str(runs / "r"), "--json"])
    plain = json.loads(out.stdout)
    assert plain["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--augmentation", "alexnett"], "unknown augmentation 'alexnett'"),
        (["--mixup", "0.2"], "mixup and cutmix train with cross-entropy"),
        (["--crop-fraction", "1.5"], "1.5 is not in the range"),
    ],
)
def test_bad_data_options_are_one_line_errors(flags, message, tmp_path):
    result = CliRunner().invoke(
        main, ["train", "--epochs", "1", "--output-dir", str(tmp_path / "runs"), *flags]
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error:") and message in result.output
