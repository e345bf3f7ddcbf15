"""Optimisers, weight decay, label smoothing and learning-rate schedules: each schedule's rate
at chosen steps against its formula, written out here from the papers' descriptions."""

import math

import keras
import numpy as np
import pytest

from kerascnn.training.config import TrainConfig
from kerascnn.training.losses import SmoothedCrossentropy, create_loss
from kerascnn.training.optimizers import apply_weight_decay, create_optimizer
from kerascnn.training.schedules import (
    LinearWarmup,
    learning_rate_for,
    schedule_callbacks,
)

SPE = 10  # steps per epoch


def rate(config, step):
    schedule = learning_rate_for(config.lr_schedule, SPE, config.epochs)
    return float(keras.ops.convert_to_numpy(schedule(step)))


def config(**fields):
    return TrainConfig(learning_rate=0.1, epochs=20, **fields)


STEPS = [0, 1, 9, 10, 29, 30, 55, 99, 150, 199]

FORMULAS = {
    "constant": ({}, lambda s: 0.1),
    # "divide by 10 every 5 epochs"
    "step": (
        {"lr_decay_factor": 0.1, "lr_decay_epochs": 5},
        lambda s: 0.1 * 0.1 ** (s // (5 * SPE)),
    ),
    # "divide by 10 at epochs 3 and 10"
    "multistep": (
        {"lr_milestones": [3, 10]},
        lambda s: 0.1 * 0.1 ** ((s >= 30) + (s >= 100)),
    ),
    # GoogLeNet: 4% less every 8 epochs
    "exponential": (
        {"lr_decay_factor": 0.96, "lr_decay_epochs": 8, "lr_staircase": True},
        lambda s: 0.1 * 0.96 ** (s // (8 * SPE)),
    ),
    "inverse_time": (
        {"lr_decay_factor": 0.5, "lr_decay_epochs": 2},
        lambda s: 0.1 / (1 + 0.5 * s / (2 * SPE)),
    ),
    "cosine": (
        {"min_learning_rate": 0.001},
        lambda s: 0.001 + (0.1 - 0.001) * 0.5 * (1 + math.cos(math.pi * s / (20 * SPE))),
    ),
    "polynomial": (
        {"lr_power": 2.0},
        lambda s: 0.1 * (1 - s / (20 * SPE)) ** 2,
    ),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_schedule_matches_its_formula(name):
    fields, formula = FORMULAS[name]
    c = config(schedule=name, **fields)
    for step in STEPS:
        assert rate(c, step) == pytest.approx(formula(step), rel=1e-5), step


def test_continuous_exponential_decays_between_periods():
    c = config(schedule="exponential", lr_decay_factor=0.5, lr_decay_epochs=2)
    assert rate(c, 10) == pytest.approx(0.1 * 0.5 ** (10 / 20), rel=1e-5)


@pytest.mark.parametrize("name", ["constant", "multistep", "cosine"])
def test_warmup_scales_the_first_epochs_linearly(name):
    fields, formula = FORMULAS[name]
    c = config(schedule=name, warmup_epochs=2, **fields)
    warmup_steps = 2 * SPE
    for step in STEPS:
        expected = formula(step) * min(1.0, (step + 1) / warmup_steps)
        assert rate(c, step) == pytest.approx(expected, rel=1e-5), step
    assert isinstance(learning_rate_for(c.lr_schedule, SPE, c.epochs), LinearWarmup)


def test_schedules_survive_serialisation():
    c = config(schedule="multistep", lr_milestones=[3, 10], warmup_epochs=1)
    schedule = learning_rate_for(c.lr_schedule, SPE, c.epochs)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    for step in STEPS:
        assert float(restored(step)) == pytest.approx(float(schedule(step)))


def test_plateau_is_a_plain_rate_with_a_reduce_callback():
    c = config(schedule="plateau", lr_decay_factor=0.1, plateau_patience=3)
    assert learning_rate_for(c.lr_schedule, SPE, c.epochs) == 0.1
    (callback,) = schedule_callbacks(c.lr_schedule, SPE)
    assert isinstance(callback, keras.callbacks.ReduceLROnPlateau)
    assert (callback.monitor, callback.factor, callback.patience) == ("val_accuracy", 0.1, 3)


def test_unknown_schedule_names_close_matches():
    with pytest.raises(ValueError, match="cosine"):
        learning_rate_for(config(schedule="cosin").lr_schedule, SPE, 20)


def test_sgd_momentum_and_nesterov():
    sgd = create_optimizer("sgd", 0.1, momentum=0.8, nesterov=True)
    assert (sgd.momentum, sgd.nesterov) == (0.8, True)


def test_optimizer_options_reach_the_optimizer_and_bad_ones_are_one_line():
    rms = create_optimizer("rmsprop", 0.045, options={"rho": 0.9, "epsilon": 1.0})
    assert (rms.rho, rms.epsilon) == (0.9, 1.0)
    with pytest.raises(ValueError, match="optimizer_options"):
        create_optimizer("adam", 0.1, options={"nonsense": 1})


def small_model():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="dense")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x))


def sgd_step(model, optimizer):
    """One SGD step on a zero loss plus the model's regularisation losses."""
    model.compile(optimizer=optimizer, loss=lambda y, p: 0.0 * keras.ops.sum(p))
    x, y = np.ones((2, 4), "float32"), np.zeros((2, 2), "float32")
    model.train_on_batch(x, y)


@pytest.mark.parametrize("mode", ["l2", "decoupled"])
@pytest.mark.parametrize("bias_and_norm", [True, False])
def test_weight_decay_shrinks_each_weight_by_lr_times_lambda(mode, bias_and_norm):
    # With zero data loss and plain SGD, both senses give w <- w - lr * lambda * w (the
    # papers' L2 term is lambda / 2 * |w|^2, whose gradient is lambda * w).
    model = small_model()
    for variable in model.trainable_variables:
        variable.assign(np.full(variable.shape, 2.0, "float32"))
    optimizer = keras.optimizers.SGD(0.5)
    lr, decay = 0.5, 0.1
    apply_weight_decay(model, optimizer, decay, mode, bias_and_norm=bias_and_norm)
    sgd_step(model, optimizer)
    for variable in model.trainable_variables:
        decayed = bias_and_norm or len(variable.shape) > 1
        expected = 2.0 * (1 - lr * decay) if decayed else 2.0
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, err_msg=variable.path)


def test_label_smoothing_is_the_formula():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], "float32")
    labels = np.array([0, 2])
    eps = 0.1
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    target = np.full_like(log_p, eps / 3)
    target[np.arange(2), labels] += 1 - eps
    expected = float(np.mean(-(target * log_p).sum(axis=1)))
    loss = create_loss("crossentropy", label_smoothing=eps)
    assert isinstance(loss, SmoothedCrossentropy)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
