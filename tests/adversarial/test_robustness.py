"""Robust accuracy on a small trained model, the gradient-masking checks, and
``kerascnn evaluate --attack`` end to end with its one-line errors."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.adversarial import Attack, Attacker, evaluate_robustness
from kerascnn.adversarial.attacks import logits_model
from kerascnn.adversarial.robustness import random_targets, table
from kerascnn.cli import main
from kerascnn.data import load_dataset, split_arrays
from kerascnn.export.saved_model import export_saved_model

EPSILONS = [16.0, 32.0]


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    train = split_arrays(data.train, image_size=(8, 8), channels=1)
    test = split_arrays(data.test, image_size=(8, 8), channels=1, limit=120)
    return train, test


@pytest.fixture(scope="module")
def model(digits):
    """A small ReLU network on raw 8x8 digit pixels, trained to about 95%."""
    (images, labels), _ = digits
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.Dense(64, activation="relu")(x)
    logits = keras.layers.Dense(10)(x)
    network = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    network.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    network.fit(images, labels, epochs=30, batch_size=64, verbose=0)
    return network


def saturated(model):
    """The same network with its logits multiplied by 10^4: the softmax saturates at exactly
    1.0 in float32, so the cross-entropy has no gradient on a confident image (the faithful
    LeNet-5's RBF output does much the same), while the margin of the logits still has."""
    scaled = keras.layers.Rescaling(1e4)(model.layers[-1].input)
    return keras.Model(model.input, keras.layers.Activation("softmax")(scaled))


def test_pgd_with_restarts_leaves_no_more_correct_than_fgsm(model, digits):
    _, (images, labels) = digits
    result = evaluate_robustness(
        model, images, labels, Attack("pgd", 32.0, 10, restarts=2), EPSILONS
    )
    assert result.clean_accuracy > 0.85
    fgsm, pgd = result.accuracy["fgsm"], result.accuracy["pgd-10x2"]
    assert all(p <= f for p, f in zip(pgd, fgsm, strict=True))
    assert pgd[-1] < result.clean_accuracy - 0.3  # an undefended model falls
    assert not result.masked, result.masking
    assert result.robust_accuracy == result.worst_case
    assert result.unbounded["accuracy"] == 0.0
    assert set(result.pictures) == {"robust_accuracy.png", "adversarial_examples.png"}


def test_a_gradient_masked_model_is_flagged_not_reported(model, digits):
    _, (images, labels) = digits
    masked = saturated(model)
    result = evaluate_robustness(masked, images, labels, Attack("pgd", 32.0, 10), EPSILONS)
    # The cross-entropy attacks barely move it; the margin attack breaks it.
    assert result.accuracy["pgd-10"][-1] > result.accuracy["pgd-10 margin"][-1] + 0.2
    assert result.masked
    assert any("margin loss beats the cross-entropy" in s for s in result.masking)
    assert result.robust_accuracy == [None, None]
    printed = table(result)
    assert "MASKED" in printed and "GRADIENT MASKING SUSPECTED" in printed


def test_a_targeted_attack_reaches_its_targets(model, digits):
    """Targeted PGD (the cross-entropy of the target descended) sends images to a random wrong
    class, which the clean images almost never are; the untargeted label is broken as a
    consequence, so the targeted row is a stronger claim than the untargeted one."""
    _, (images, labels) = digits
    attack = Attack("pgd", 32.0, 10, targeted=True)
    targets = random_targets(labels, 10, seed=0)
    assert not np.any(targets == labels)
    attacker = Attacker(logits_model(model), attack)
    clean_hits = np.mean(attacker.predict(images) == targets)
    adversarial = attacker(images, labels, 32.0, targets)
    assert np.abs(adversarial - images).max() <= 32.0 + 1e-3
    hits = np.mean(attacker.predict(adversarial) == targets)
    assert clean_hits < 0.05 and hits > clean_hits + 0.25, (clean_hits, hits)
    result = evaluate_robustness(model, images, labels, attack, EPSILONS)
    assert list(result.accuracy)[0] == "pgd-10 targeted"
    assert result.accuracy["pgd-10 targeted"][-1] < result.clean_accuracy - 0.2


def test_a_transfer_attack_is_weaker_than_white_box_and_unmasks_a_saturated_model(model, digits):
    """``--surrogate``: images crafted on another model. Against the model itself a transfer
    attack does no better than the white-box one; against the saturated copy of the same
    network, whose cross-entropy has no gradient, the images crafted on the unsaturated
    original break it while the white-box cross-entropy attack does not: flagged as masking."""
    _, (images, labels) = digits
    attack = Attack("pgd", 32.0, 10)
    direct = evaluate_robustness(model, images, labels, attack, EPSILONS, surrogate=model)
    tolerance = 3 / len(labels)
    for transfer, white_box in zip(
        direct.accuracy["transfer"], direct.accuracy["pgd-10"], strict=True
    ):
        assert transfer >= white_box - tolerance
    assert not any("transfer" in symptom for symptom in direct.masking)
    masked = evaluate_robustness(
        saturated(model), images, labels, attack, EPSILONS, surrogate=model
    )
    assert masked.accuracy["transfer"][-1] < masked.accuracy["pgd-10"][-1] - 0.2
    assert any("transfer attack from the surrogate beats" in s for s in masked.masking)


@pytest.fixture(scope="module")
def artifacts(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("attack")
    model.save(root / "model.keras")
    (root / "metadata.json").write_text(json.dumps({"dataset": "digits"}))
    export_saved_model(model, root / "saved_model")
    return root


@pytest.mark.slow
def test_evaluate_attack_prints_the_table_and_writes_the_pictures(artifacts):
    out = artifacts / "out"
    args = [
        "evaluate",
        str(artifacts / "model.keras"),
        "--attack",
        "pgd",
        "--epsilon",
        "8,24",
        "--limit",
        "40",
        "--steps",
        "3",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "fgsm" in result.output and "pgd-3 margin" in result.output
    assert {p.name for p in out.iterdir()} == {
        "robust_accuracy.png",
        "adversarial_examples.png",
        "robustness.json",
    }
    report = json.loads((out / "robustness.json").read_text())
    assert report["epsilons"] == [8.0, 24.0] and report["images"] == 40
    as_json = CliRunner().invoke(main, [*args, "--json"])
    assert json.loads(as_json.output)["accuracy"].keys() == report["accuracy"].keys()
    source = str(artifacts / "model.keras")
    both = [*args[:-2], "--targeted", "--surrogate", source, "--out", str(artifacts / "out2")]
    result = CliRunner().invoke(main, both)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0] for line in result.output.splitlines() if line.strip()}
    assert "transfer" in rows and "pgd-3 targeted" in result.output
    report = json.loads((artifacts / "out2" / "robustness.json").read_text())
    assert {"pgd-3 targeted", "transfer"} <= report["accuracy"].keys()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epsilon", "-8"], "epsilons from 0 to 255"),
        (["--epsilon", "eight"], "comma-separated numbers"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--epsilon", "8", "--step-size", "12"], "--allow-large-step"),
        (["--attack", "deepfool"], "deepfool"),
        (["--saved-model"], "no gradients to attack"),
    ],
)
def test_bad_attack_input_is_one_error_line_and_writes_nothing(artifacts, extra, message):
    source = artifacts / "model.keras"
    if extra == ["--saved-model"]:  # TFLite and ONNX go the same way: no gradients
        source, extra = artifacts / "saved_model", []
    out = artifacts / "never"
    args = ["evaluate", str(source), "--attack", "pgd", "--out", str(out), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], lines
    assert not out.exists()
