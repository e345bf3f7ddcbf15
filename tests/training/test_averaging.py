"""Weight averaging (README "Weight averaging"): `--ema` evaluates and saves the averaged
weights, `--swa-epochs` averages the last epochs' weights and recomputes the batch-norm
statistics, and bad values are one error line."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from kerascnn import cli
from kerascnn.training import averaging
from kerascnn.training.averaging import StochasticWeightAveraging
from kerascnn.training.batchnorm import recompute_statistics
from kerascnn.training.config import TrainConfig
from kerascnn.training.optimizers import OptimizationConfig
from kerascnn.training.run import train_and_evaluate


def test_batchnorm_statistics_become_the_mean_of_the_batch_statistics():
    rng = np.random.default_rng(0)
    batches = [rng.normal(i, 1 + i, size=(16, 3)).astype("float32") for i in range(4)]
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    dataset = tf.data.Dataset.from_tensor_slices((np.stack(batches), np.zeros((4, 16))))
    assert recompute_statistics(model, dataset.take(4)) == 64  # images
    layer = model.layers[-1]
    np.testing.assert_allclose(
        layer.moving_mean, np.mean([b.mean(0) for b in batches], 0), rtol=1e-5
    )
    np.testing.assert_allclose(
        layer.moving_variance, np.mean([b.var(0) for b in batches], 0), rtol=1e-4
    )
    assert layer.momentum == 0.99  # restored


def test_swa_averages_the_last_epochs_weights_and_saves_them(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(size=(64, 4)).astype("float32")
    y = (x.sum(1) > 0).astype("int32")
    inputs = keras.Input((4,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(
            [np.asarray(v) for v in model.trainable_variables]
        )
    )
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    swa = StochasticWeightAveraging(1, tmp_path / "swa.keras", data, steps=4)
    model.fit(data, epochs=3, callbacks=[record, swa], verbose=0)
    for variable, *epochs in zip(model.trainable_variables, *seen, strict=True):
        np.testing.assert_allclose(variable, (epochs[1] + epochs[2]) / 2, rtol=1e-6)
    saved = keras.saving.load_model(tmp_path / "swa.keras")
    for a, b in zip(saved.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(seen[2][0], seen[1][0])  # the epochs moved: the mean is not one


def test_ema_weights_differ_from_the_raw_ones_and_are_the_ones_checkpointed(tmp_path):
    """A callback before the averaging sees the raw weights at the end of an epoch; the
    checkpoint after it saves the averaged ones, which differ."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(size=(64, 4)).astype("float32")
    y = (x.sum(1) > 0).astype("int32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8, "relu")(inputs)))
    optimizer = OptimizationConfig(optimizer="sgd", ema=0.9).create(0.1)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    raw = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: raw.append([np.asarray(v) for v in model.weights])
    )
    checkpoint = keras.callbacks.ModelCheckpoint(tmp_path / "last.keras")
    averaged = averaging.callbacks(0.9, None, 2, tmp_path, None, 0)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[record, *averaged, checkpoint], verbose=0)
    saved = keras.saving.load_model(tmp_path / "last.keras")
    ema = [np.asarray(v) for v in saved.weights]
    assert max(float(np.abs(a - b).max()) for a, b in zip(ema, raw[-1], strict=True)) > 1e-3
    for a, b in zip(ema, model.weights, strict=True):  # the model ends with the averages
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.slow
def test_a_run_with_ema_saves_the_checkpointed_averages_as_its_model(tmp_path):
    (tmp_path / "ema").mkdir()
    config = TrainConfig(model="lenet5", epochs=1, export=False, ema=0.9)
    train_and_evaluate(config, tmp_path / "ema", verbose=0)
    checkpoint = keras.saving.load_model(tmp_path / "ema" / "checkpoints" / "best.keras")
    assert checkpoint.optimizer.use_ema and checkpoint.optimizer.ema_momentum == 0.9
    saved = keras.saving.load_model(tmp_path / "ema" / "model.keras")
    for a, b in zip(saved.trainable_variables, checkpoint.trainable_variables, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "args",
    [
        ["--ema", "1.5"],
        ["--ema", "0"],
        ["--ema", "0.9", "--swa-epochs", "1"],
        ["--epochs", "2", "--swa-epochs", "3"],
    ],
)
def test_bad_averaging_options_are_one_error_line(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["train", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:")
    assert list(tmp_path.iterdir()) == []
