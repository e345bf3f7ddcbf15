"""`kerascnn ensemble` (README "Ensembles"): one model whose output is the mean of its members'
(of different input sizes), saved as a run, evaluated member by member, exported; members that
disagree on their classes are refused before anything is written."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from kerascnn import cli
from kerascnn.data import load_dataset
from kerascnn.ensemble import build_ensemble, load_members
from kerascnn.models import create_model
from kerascnn.runtime import load_artifact

DIGITS = [str(name) for name in load_dataset("digits").class_names]


def fake_run(directory, size, seed, class_names=DIGITS):
    """A run directory as training leaves it, with an untrained LeNet-5 of input ``size``."""
    directory.mkdir(parents=True)
    keras.utils.set_random_seed(seed)
    model = create_model("lenet5", input_shape=(size, size, 1), num_classes=len(class_names))
    model.save(directory / "model.keras")
    metadata = {"model": "lenet5", "dataset": "digits", "class_names": class_names}
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    return [fake_run(root / "a", 32, 0), fake_run(root / "b", 40, 1)]


def test_the_ensemble_outputs_the_mean_of_its_members(members, random_pixels):
    built = build_ensemble(load_members(members), "pair")
    images = random_pixels((4, 40, 40, 1))
    resized = tf.image.resize(images, (32, 32)).numpy()
    first = load_artifact(members[0]).predict(resized)
    second = load_artifact(members[1]).predict(images)
    np.testing.assert_allclose(
        built.model.predict(images, verbose=0), (first + second) / 2, atol=1e-6
    )
    assert built.metadata["input_shape"] == [40, 40, 1]  # the larger member's


@pytest.mark.slow
def test_the_ensemble_is_a_run_that_evaluate_and_export_take(members, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["ensemble", *map(str, members), "--name", "pair"]
    result = CliRunner().invoke(cli.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "pair" / "metrics.json").read_text())["test"]
    accuracies = [m["accuracy"] for m in metrics["members"]]
    assert metrics["member_accuracy_mean"] == pytest.approx(np.mean(accuracies), abs=1e-6)
    exported = tmp_path / "saved_models" / "pair"
    assert (exported / "model.tflite").is_file() and (exported / "1").is_dir()
    parity = json.loads((exported / "metadata.json").read_text())["parity"]
    assert all(p["max_abs_diff"] < 1e-4 for p in parity.values())
    shown = CliRunner().invoke(cli.main, ["evaluate", "runs/pair", "--json"])
    evaluated = json.loads(shown.output)
    assert evaluated["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    assert [m["accuracy"] for m in evaluated["members"]] == pytest.approx(accuracies, abs=1e-6)


def test_members_with_other_classes_are_refused_before_anything_is_written(
    members, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    other = fake_run(tmp_path / "other", 32, 2, class_names=[f"c{i}" for i in range(10)])
    fewer = fake_run(tmp_path / "fewer", 32, 3, class_names=DIGITS[:5])
    for odd in (other, fewer):
        result = CliRunner().invoke(
            cli.main, ["ensemble", str(members[0]), str(odd), "--name", "x"]
        )
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ensemble members differ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fewer", "other"]
