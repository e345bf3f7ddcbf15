"""Structured pruning deletes filters for real: the smaller network gives the same outputs
with the parameter count computed by hand, through batch normalisation, pooling, flattening
and a residual block (whose addition keeps its filters), and never across a channel that a
zero does not survive."""

import keras
import numpy as np

from kerascnn.compression import pruning, shrink

L = keras.layers


def randomised(model, seed=0):
    """Random weights and batch-norm statistics that are not the defaults."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, L.BatchNormalization):
            weights = [
                rng.uniform(0.5, 1.5, w.shape).astype("float32")
                if i in (0, 3)
                else rng.normal(0, 0.3, w.shape).astype("float32")
                for i, w in enumerate(weights)
            ]
        else:
            weights = [rng.normal(0, 0.3, w.shape).astype("float32") for w in weights]
        layer.set_weights(weights)
    return model


def pruned(model, sparsity=0.5):
    targets = pruning.prunable_targets(model, structured=True)
    pruning.apply_masks(targets, pruning.magnitude_masks(targets, sparsity, structured=True))
    return model


def images(shape, count=4):
    return np.random.default_rng(1).uniform(0, 255, (count, *shape)).astype("float32")


def same_outputs(a, b, x):
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), atol=1e-4)


def test_a_plain_network_loses_its_pruned_filters_and_keeps_its_outputs():
    inputs = keras.Input((10, 10, 3))
    x = L.Conv2D(8, 3, name="conv1")(L.Rescaling(1 / 255)(inputs))
    x = L.MaxPooling2D()(L.ReLU()(L.BatchNormalization(name="bn1")(x)))
    x = L.Conv2D(6, 3, use_bias=False, name="conv2")(x)
    x = L.Flatten()(L.Activation("relu")(L.BatchNormalization(name="bn2")(x)))
    x = L.Dense(10, activation="relu", name="fc")(x)
    model = keras.Model(inputs, L.Dense(4, name="logits")(x))
    pruned(randomised(model))

    smaller, cuts = shrink.shrink(model)

    assert [(c.producer, c.channels, len(c.keep), c.consumer) for c in cuts] == [
        ("conv1", 8, 4, "conv2"),
        ("conv2", 6, 3, "fc"),
        ("fc", 10, 5, "logits"),
    ]
    # By hand: conv1 3x3x3x4 + 4, bn1 4x4, conv2 3x3x4x3 (no bias), bn2 3x4, fc (2*2*3)x5 + 5,
    # logits 5x4 + 4.
    expected = (27 * 4 + 4) + 16 + 36 * 3 + 12 + (12 * 5 + 5) + (5 * 4 + 4)
    assert smaller.count_params() == expected < model.count_params()
    same_outputs(model, smaller, images((10, 10, 3)))


def test_a_residual_block_shrinks_its_first_convolution_not_the_one_before_the_addition():
    inputs = keras.Input((8, 8, 4))
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="a")(inputs)
    x = L.ReLU()(L.BatchNormalization(name="bn_a")(x))
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="b")(x)
    x = L.BatchNormalization(name="bn_b")(x)
    x = L.ReLU()(L.Add()([x, inputs]))
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, L.Dense(3, name="logits")(x))
    pruned(randomised(model))
    dead_b = shrink.dead_filters(model.get_layer("b"))
    assert dead_b.sum() == 2  # pruned, but its channels meet the shortcut

    smaller, cuts = shrink.shrink(model)

    assert [(c.producer, len(c.keep)) for c in cuts] == [("a", 4)]
    assert smaller.get_layer("b").kernel.shape == (3, 3, 4, 4)
    same_outputs(model, smaller, images((8, 8, 4)))


def test_a_channel_that_a_zero_does_not_survive_is_not_cut():
    """sigmoid(0) = 0.5, inside the layer or after it: the pruned filters still feed the next
    layer a constant."""
    inputs = keras.Input((6, 6, 2))
    x = L.Conv2D(4, 3, activation="sigmoid", name="conv")(inputs)
    x = L.Activation("sigmoid")(L.Conv2D(4, 1, name="mix")(x))
    model = keras.Model(inputs, L.Dense(2, name="logits")(L.Flatten()(x)))
    pruned(randomised(model))
    for name in ("conv", "mix"):
        kernel = keras.ops.convert_to_numpy(model.get_layer(name).kernel)
        assert (kernel == 0).reshape(-1, kernel.shape[-1]).all(axis=0).any()
    smaller, cuts = shrink.shrink(model)
    assert smaller is model and cuts == []
