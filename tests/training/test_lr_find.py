"""`kerascnn lr-find` (README "Learning-rate range test"): the suggestions read from a curve,
the early stop on explosion, and the command end to end without touching the weights it
starts from."""

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn import cli
from kerascnn.models import create_model
from kerascnn.training.config import TrainConfig
from kerascnn.training.lr_find import range_test, smooth, suggest


def test_the_suggestion_is_where_the_loss_falls_fastest():
    """A loss that falls as 1 - tanh(log10(lr) + 3) (fastest at 1e-3) and rises after 1e-1."""
    rates = list(np.logspace(-6, 0, 121))
    x = np.log10(rates)
    losses = 2 - np.tanh(x + 3) + np.where(x > -1, 50 * (x + 1) ** 2, 0)
    steepest, minimum_over_10, fell = suggest(rates, list(losses))
    assert steepest == pytest.approx(1e-3, rel=0.13)  # one grid step is a factor 1.12
    lowest = rates[int(np.argmin(losses))]
    assert minimum_over_10 == pytest.approx(lowest / 10)
    assert fell


def test_a_wobble_in_the_first_batches_is_not_the_steepest_descent():
    """ResNet-20's curve on digits began 3.56, 3.40, 3.45 (a dip of the barely smoothed loss
    at 1e-7) before its real descent around 1e-3."""
    rates = list(np.logspace(-7, 0, 141))
    x = np.log10(rates)
    losses = 3.5 - np.tanh(x + 3) + np.where(x > -1, 50 * (x + 1) ** 2, 0)
    losses[1] -= 0.2  # the wobble: a steeper per-point slope than anywhere in the descent
    assert np.argmin(np.gradient(losses[:100], x[:100])) < 3  # a per-point slope picks it
    steepest, _, _ = suggest(rates, list(losses))
    assert 3e-4 < steepest < 3e-3


def test_smoothing_is_bias_corrected():
    assert smooth([3.0, 3.0, 3.0]) == pytest.approx([3.0, 3.0, 3.0])


def test_a_flat_curve_says_the_loss_did_not_fall():
    assert not suggest([1e-3, 1e-2, 1e-1], [1.0, 1.0, 1.0])[2]


@pytest.mark.slow
def test_the_test_stops_early_when_the_loss_explodes():
    config = TrainConfig(model="lenet5", optimizer="sgd", loss="crossentropy")
    test = range_test(config, start=1.0, end=1e6, steps=60)
    assert test.stopped_early and len(test.losses) < 60
    assert test.smoothed[-1] > 4 * min(test.smoothed) or not np.isfinite(test.smoothed[-1])


@pytest.mark.slow
def test_lr_find_writes_its_plot_and_leaves_the_weights_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "start.weights.h5"
    create_model("lenet5", num_classes=10).save_weights(weights)
    before = hashlib.sha256(weights.read_bytes()).hexdigest()
    args = ["lr-find", "--steps", "30", "--init-from", str(weights), "--run-name", "w"]
    result = CliRunner().invoke(cli.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == before
    out = tmp_path / "runs" / "lr-find" / "w"
    assert (out / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "lr_find.json").read_text())
    assert len(record["learning_rates"]) == len(record["losses"]) <= 30
    assert f"{record['steepest']:.1e}" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["lr_find.json", "lr_find.png"]


def test_start_above_end_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["lr-find", "--start", "1", "--end", "0.1"])
    assert result.exit_code == 2 and result.output.startswith("Error:")
    assert list(tmp_path.iterdir()) == []
