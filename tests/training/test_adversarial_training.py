"""Adversarial training: a tiny run with it is more robust than the same run without it, its
curves carry clean and robust accuracy, and bad settings are refused before anything is
written."""

import re

import numpy as np
import pytest
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from kerascnn.adversarial.attacks import Attacker, logits_model
from kerascnn.cli import train_main
from kerascnn.data import load_dataset, split_arrays
from kerascnn.training.adversarial import AdversarialConfig
from kerascnn.training.config import TrainConfig
from kerascnn.training.run import train_and_evaluate

EPSILON = 32.0
EPOCHS = 2


@pytest.mark.slow
def test_adversarial_training_raises_robust_accuracy(tmp_path):
    common = {"model_options": {"variant": "modern"}, "epochs": EPOCHS, "seed": 0}
    (tmp_path / "plain").mkdir()
    (tmp_path / "robust").mkdir()
    plain = train_and_evaluate(TrainConfig(**common), tmp_path / "plain", verbose=0)
    trained = train_and_evaluate(
        TrainConfig(**common, adversarial="fgsm-rs", adversarial_epsilon=EPSILON),
        tmp_path / "robust",
        verbose=0,
    )
    # The same attack (PGD-10 at the same epsilon) measures both, on the same test images.
    attack = AdversarialConfig(adversarial="pgd", adversarial_epsilon=EPSILON).evaluation_attack()
    images, labels = split_arrays(load_dataset("digits").test, image_size=(32, 32), channels=1)
    attacker = Attacker(logits_model(plain.model), attack)
    before = np.mean(attacker.predict(attacker(images, labels, EPSILON)) == labels)
    after = trained.metrics["test"]["robust_accuracy"]
    assert after > before + 0.05, (before, after)
    history = trained.metrics["history"]
    for key in ("accuracy", "robust_accuracy", "val_accuracy", "val_robust_accuracy"):
        assert len(history[key]) == EPOCHS
    assert "robust_accuracy" not in plain.metrics["test"]
    # TensorBoard's Graphs tab draws the network inside the adversarial wrapper.
    logs = EventAccumulator(str(tmp_path / "robust" / "logs" / "train"))
    logs.Reload()
    nodes = [node.name for node in logs.Graph().node]
    assert any(re.search(r"(^|/)c1(_\d+)?/", name) for name in nodes), nodes[:20]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epsilon", "8", "--step-size", "12"], "--allow-large-step"),
        (["--epsilon", "-8"], "--epsilon"),
        (["--steps", "0"], "--steps"),
        (["--epsilon", "eight"], "--epsilon"),
    ],
)
def test_bad_adversarial_settings_are_one_error_line_and_write_nothing(tmp_path, flags, message):
    runs = tmp_path / "runs"
    args = ["--adversarial", "pgd", "--output-dir", str(runs), "--no-export", *flags]
    result = CliRunner().invoke(train_main, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], lines
    assert not runs.exists()
