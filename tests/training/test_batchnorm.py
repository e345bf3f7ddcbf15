"""Batch-norm statistics recomputed after training (README "Batch-norm statistics"): exact
averages over the training split, the ``auto`` rule, and networks of every batch-norm family
that evaluate above chance after 2 epochs only because of it."""

import json

import keras
import numpy as np
import pytest

from kerascnn.evaluation import CHANCE_MARGIN
from kerascnn.training import batchnorm
from kerascnn.training.config import TrainConfig
from kerascnn.training.run import train_and_evaluate


def batchnorm_model(momentum=0.99):
    inputs = keras.Input((4,))
    outputs = keras.layers.BatchNormalization(momentum=momentum)(inputs)
    return keras.Model(inputs, outputs)


def test_recomputed_statistics_are_the_training_data_mean_and_variance():
    data = np.random.default_rng(0).normal(3.0, 2.0, (100, 4)).astype("float32")
    model = batchnorm_model()
    kernel = [np.array(w) for w in model.get_weights()[:2]]  # gamma, beta
    assert batchnorm.recompute_statistics(model, [(data[:64], None), (data[64:], None)]) == 100
    layer = model.layers[-1]
    np.testing.assert_allclose(layer.moving_mean, data.mean(0), rtol=1e-5)
    # Keras's batch variance is the biased one; batches are weighted by their size.
    expected = (64 * data[:64].var(0) + 36 * data[64:].var(0)) / 100
    np.testing.assert_allclose(layer.moving_variance, expected, rtol=1e-5)
    assert layer.momentum == 0.99  # restored
    for before, after in zip(kernel, model.get_weights()[:2], strict=True):
        np.testing.assert_array_equal(before, after)


def test_a_frozen_batch_norm_keeps_its_statistics():
    model = batchnorm_model()
    model.layers[-1].trainable = False
    assert batchnorm.recompute_statistics(model, [np.ones((8, 4), "float32")]) == 0
    np.testing.assert_array_equal(model.layers[-1].moving_mean, np.zeros(4))


def test_auto_recomputes_runs_shorter_than_five_averaging_windows():
    model = batchnorm_model(momentum=0.99)  # a window of 100 steps
    assert batchnorm.should_recompute("auto", model, 499)
    assert not batchnorm.should_recompute("auto", model, 500)
    assert batchnorm.should_recompute("always", model, 10**6)
    assert not batchnorm.should_recompute("never", model, 1)
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert not batchnorm.should_recompute("always", plain, 1)  # nothing to recompute


# A network of each batch-norm family, sized to train 2 epochs on digits in seconds.
FAMILIES = {
    "resnet": ("resnet20", None, {}),
    "densenet": ("densenet_bc_100_12", (16, 16), {"blocks": (4, 4, 4)}),  # 3 dense blocks of 4
    "inception": ("bn_inception", (32, 32), {}),
    "mobilenet": ("mobilenet", (32, 32), {"alpha": 0.25}),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_two_epochs_of_every_batch_norm_family_evaluate_above_chance(tmp_path, family):
    model, size, options = FAMILIES[family]
    config = TrainConfig(
        model=model, epochs=2, image_size=size, model_options=options, batch_size=32
    )
    (tmp_path / "run").mkdir()
    result = train_and_evaluate(config, tmp_path / "run", verbose=0)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["batchnorm_statistics"]["recomputed"]
    # Above chance (10 classes) by more than the warning's margin, and not far below its own
    # training accuracy: what inference-mode statistics of the initial 0 and 1 break.
    assert result.metrics["test"]["accuracy"] > 0.1 + CHANCE_MARGIN, result.metrics["test"]
    assert "warnings" not in metrics


@pytest.mark.slow
def test_without_recomputing_a_short_run_is_at_chance_and_says_so(tmp_path):
    config = TrainConfig(model="resnet20", epochs=2, recompute_bn_stats="never")
    (tmp_path / "run").mkdir()
    result = train_and_evaluate(config, tmp_path / "run", verbose=0)
    assert result.metrics["test"]["accuracy"] < 0.5
    assert any("chance" in w or "far below" in w for w in result.metrics["warnings"])
