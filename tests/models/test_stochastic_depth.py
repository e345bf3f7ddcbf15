"""``StochasticDepth`` skips a dropped residual branch for real (Huang, Sun, Liu, Sedra,
Weinberger 2016, "Deep Networks with Stochastic Depth", arXiv:1603.09382, section 3: in
training a block is bypassed for the whole mini-batch with probability 1 - p_l; at test time
every block is active).

A dropped branch is not computed, so its batch normalisation keeps its moving statistics and
its convolution gets no update; a branch multiplied by zero after being computed (what the
layer did before) would move them in every step. That is checked in Keras's compiled training
step (TensorFlow's tf.function here; JAX's jit in a child process), and the network's table
(parameters, multiply-accumulates, activations, receptive fields, feature maps) is checked to
be the plain network's.
"""

import os
import textwrap

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models.features import stage_ends
from kerascnn.models.layers import StochasticDepth
from kerascnn.models.summary import summarize_model

SHAPE = (4, 4, 2)


def tiny_block(survival, seed=0):
    """A StochasticDepth layer around a one-convolution branch (conv, BN), alone in a model
    trained by SGD on the mean squared error."""
    inputs = keras.Input(SHAPE)
    y = keras.layers.Conv2D(3, 3, padding="same", use_bias=False, name="conv")(inputs)
    branch = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(y), name="branch")
    layer = StochasticDepth(branch, survival, seed=seed)
    x = keras.Input(SHAPE)
    model = keras.Model(x, layer(x))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model, layer


def images(seed=0, channels=SHAPE[-1]):
    return np.random.default_rng(seed).normal(size=(8, *SHAPE[:2], channels)).astype("float32")


def test_a_dropped_branch_is_not_run_in_the_compiled_training_step():
    model, layer = tiny_block(0.5)
    conv, bn = layer.branch.get_layer("conv"), layer.branch.get_layer("bn")
    x, target = images(1), images(2, channels=3)
    outcomes = []
    for _ in range(12):
        kernel, mean = np.array(conv.kernel), np.array(bn.moving_mean)
        model.train_on_batch(x, target)
        moved = (not np.array_equal(kernel, conv.kernel), not np.array_equal(mean, bn.moving_mean))
        assert moved in {(True, True), (False, False)}, moved
        outcomes.append("kept" if moved[0] else "dropped")
    assert set(outcomes) == {"kept", "dropped"}, outcomes


def test_kept_is_the_branch_scaled_dropped_is_zeros_inference_is_the_branch():
    _, layer = tiny_block(0.25, seed=3)
    x = images(4)
    full = np.asarray(layer.branch(x, training=True))
    kept = 0
    draws = 200
    for _ in range(draws):
        out = np.asarray(layer(x, training=True))
        if out.any():
            np.testing.assert_allclose(out, full / 0.25, rtol=1e-5, atol=1e-6)
            kept += 1
        else:
            assert out.shape == full.shape
    # Kept with probability 0.25: the expected output is the full branch's. Within 5 standard
    # deviations of the binomial's mean.
    assert abs(kept - 0.25 * draws) < 5 * np.sqrt(draws * 0.25 * 0.75), kept
    # Inference runs the full branch, unscaled (the expectation, folded into training).
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(layer.branch(x)))


def test_survival_one_is_the_plain_branch():
    _, layer = tiny_block(1.0)
    x = images(5)
    for _ in range(3):
        np.testing.assert_array_equal(
            np.asarray(layer(x, training=True)), np.asarray(layer.branch(x, training=True))
        )


def test_saved_and_loaded_it_keeps_its_branch_probability_and_weights(tmp_path):
    """The layer's own round trip (test_all_models saves and loads ``resnet110_sd`` whole)."""
    model, layer = tiny_block(0.3, seed=7)
    model.save(tmp_path / "block.keras")
    loaded = keras.saving.load_model(tmp_path / "block.keras")
    twin = loaded.layers[-1]
    assert isinstance(twin, StochasticDepth)
    assert (twin.survival_probability, twin.seed) == (0.3, 7)
    assert [v.path.split("/", 1)[1] for v in twin.branch.weights] == [
        v.path.split("/", 1)[1] for v in layer.branch.weights
    ]
    x = images(6)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_the_network_table_is_the_plain_networks():
    """kerascnn summary, the MAC count, the receptive fields and the feature maps of ResNet-20
    with stochastic depth: the plain ResNet-20's, the branches listed as their layers."""
    dropping = kerascnn.create_model("resnet20", input_shape=(16, 16, 3), stochastic_depth=0.5)
    plain = kerascnn.create_model("resnet20", input_shape=(16, 16, 3))
    ours, theirs = summarize_model(dropping), summarize_model(plain)
    # The same rows (a block's shortcut is listed before its branch instead of after it).
    rows = {row.name: row for row in ours.rows if row.kind != "StochasticDepth"}
    assert rows == {row.name: row for row in theirs.rows}
    assert len(ours.rows) - len(rows) == 9  # one per block, with nothing of its own
    for key in ("parameters", "multiply_accumulates", "activations", "depth"):
        assert getattr(ours, key) == getattr(theirs, key), key
    assert ours.depth == 20
    assert stage_ends(dropping) == stage_ends(plain)


JAX_CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import keras, numpy as np
    from test_stochastic_depth import images, tiny_block
    assert keras.backend.backend() == "jax"
    model, layer = tiny_block(0.5)
    bn = layer.branch.get_layer("bn")
    outcomes = set()
    for _ in range(12):
        mean = np.array(bn.moving_mean)
        model.train_on_batch(images(1), images(2, channels=3))
        outcomes.add(not np.array_equal(mean, bn.moving_mean))
    assert model.jit_compile, "the step was not jit-compiled"
    assert outcomes == {{True, False}}, outcomes
    print("ok")
    """
)


@pytest.mark.slow
def test_a_dropped_branch_is_not_run_under_jax(run_under_jax):
    """Under JAX (lax.cond inside the jit-compiled step) the same: a dropped branch leaves its
    batch-norm statistics alone, a kept one moves them."""
    run_under_jax(JAX_CHILD.format(tests=os.path.dirname(__file__)))


@pytest.mark.slow
def test_published_weights_load_into_a_network_with_stochastic_depth(tmp_path):
    """keras.applications' ResNet-50 weights (random here), read layer by layer into the
    network without stochastic depth and copied by name into the nested branches: at
    inference (every branch run) the network computes what it computes without them."""
    application = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    application.save_weights(tmp_path / "resnet50.weights.h5")
    built = {
        survival: kerascnn.create_model(
            "resnet50",
            weights=tmp_path / "resnet50.weights.h5",
            include_top=False,
            input_shape=(32, 32, 3),
            stochastic_depth=survival,
        )
        for survival in (None, 0.5)
    }
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(built[0.5](pixels)), np.asarray(built[None](pixels)))
