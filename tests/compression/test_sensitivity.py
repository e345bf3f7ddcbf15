"""``kerascnn sensitivity``: each layer pruned alone (Han et al. 2015, Figure 5), measured
against a forward pass computed here, the model left as it was, the suggested sparsities,
and the one-line errors of bad input with nothing written."""

import json
import math

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.compression import sensitivity
from kerascnn.data import load_dataset, split_arrays
from kerascnn.models import create_model

SPARSITIES = (0.3, 0.6, 0.9)


@pytest.fixture
def dense_model():
    """Two Dense layers on 8 features, with random weights (no ties between magnitudes)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(6, activation="relu", name="a")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="b")(hidden)
    return keras.Model(inputs, outputs)


def forward(weights: dict, images: np.ndarray) -> np.ndarray:
    hidden = np.maximum(images @ weights["a"][0] + weights["a"][1], 0)
    return hidden @ weights["b"][0] + weights["b"][1]


def pruned(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """``kernel`` with its floor(sparsity * size) smallest magnitudes set to zero."""
    flat = kernel.ravel().copy()
    flat[np.argsort(np.abs(flat))[: math.floor(sparsity * flat.size)]] = 0
    return flat.reshape(kernel.shape)


def test_each_layer_is_pruned_alone_and_put_back(dense_model):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(200, 8)).astype("float32")
    labels = rng.integers(0, 3, 200)
    weights = {name: [w.copy() for w in dense_model.get_layer(name).get_weights()] for name in "ab"}

    found = sensitivity.scan(dense_model, images, labels, SPARSITIES[::-1])

    assert found.sparsities == SPARSITIES  # sorted
    assert found.baseline == pytest.approx(np.mean(forward(weights, images).argmax(-1) == labels))
    assert [c.layer for c in found.layers] == ["a", "b"]
    assert [c.parameters for c in found.layers] == [48, 18]
    for curve in found.layers:
        for sparsity, accuracy in zip(SPARSITIES, curve.accuracy, strict=True):
            changed = dict(weights)
            kernel, bias = weights[curve.layer]
            changed[curve.layer] = [pruned(kernel, sparsity), bias]
            expected = np.mean(forward(changed, images).argmax(-1) == labels)
            assert accuracy == pytest.approx(expected), (curve.layer, sparsity)
    for name in "ab":  # the model is as it was
        for now, before in zip(
            dense_model.get_layer(name).get_weights(), weights[name], strict=True
        ):
            np.testing.assert_array_equal(now, before)


def test_the_suggestion_stops_at_the_first_sparsity_outside_the_tolerance():
    curves = [
        sensitivity.LayerCurve("flat", "conv", 100, [0.90, 0.90, 0.899]),
        sensitivity.LayerCurve("dips", "conv", 300, [0.90, 0.80, 0.90]),  # 0.9 after a dip
        sensitivity.LayerCurve("fragile", "fc", 600, [0.85, 0.80, 0.10]),
    ]
    found = sensitivity.Sensitivity(0.90, SPARSITIES, curves, images=1000)
    assert found.suggested(tolerance=0.5) == {"flat": 0.9, "dips": 0.3, "fragile": 0.0}
    assert found.suggested(tolerance=6) == {"flat": 0.9, "dips": 0.3, "fragile": 0.3}
    chosen = found.suggested(tolerance=0.5)
    assert found.overall(chosen) == pytest.approx((90 + 90) / 1000)
    lines = "\n".join(sensitivity.table(found, tolerance=0.5))
    assert "--prune-layer flat=0.9 --prune-layer dips=0.3" in lines
    assert "fragile=" not in lines


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A LeNet-5 .keras file with an export's metadata (its dataset: digits)."""
    directory = tmp_path_factory.mktemp("untrained")
    keras.utils.set_random_seed(0)
    create_model("lenet5", num_classes=10).save(directory / "model.keras")
    (directory / "metadata.json").write_text(json.dumps({"model": "lenet5", "dataset": "digits"}))
    return directory


def test_the_command_writes_the_plot_and_the_curves(untrained, tmp_path):
    out = tmp_path / "scan"
    args = ["sensitivity", str(untrained), "--sparsities", "0.9,0.5", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    written = json.loads((out / "sensitivity.json").read_text())
    assert (out / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written["sparsities"] == [0.5, 0.9]
    assert [row["layer"] for row in written["layers"]] == ["c1", "c3", "c5", "f6"]
    assert all(len(row["accuracy"]) == 2 for row in written["layers"])
    images, labels = split_arrays(
        load_dataset("digits").split("validation"), image_size=(32, 32), channels=1
    )
    model = keras.saving.load_model(untrained / "model.keras")
    expected = np.mean(model.predict(images, verbose=0).argmax(-1) == labels)
    assert written["baseline_accuracy"] == pytest.approx(expected)
    assert written["images"] == len(labels)
    assert "c5" in result.output and "within 0.5 points, each alone" in result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--sparsities", "0.5,1.0"], "expected sparsities in [0, 1)"),
        (["--sparsities", "half"], "expected comma-separated sparsities"),
        (["--tolerance", "-1"], "--tolerance"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(untrained, tmp_path, args, expected):
    result = CliRunner().invoke(
        main, ["sensitivity", str(untrained), *args, "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: ")
    assert expected in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_model_with_nothing_prunable_is_refused(tmp_path):
    model = keras.Sequential(
        [keras.Input((32, 32, 1)), keras.layers.GlobalAveragePooling2D(), keras.layers.Softmax()]
    )
    model.save(tmp_path / "pool.keras")
    out = tmp_path / "o"
    result = CliRunner().invoke(
        main, ["sensitivity", str(tmp_path / "pool.keras"), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "nothing to prune" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
