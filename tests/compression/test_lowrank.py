"""Low-rank factorisation of Dense layers by truncated SVD: at full rank the factored network
computes what the original did; at a lower rank each layer is the best approximation of that
rank, with fewer parameters."""

import keras
import numpy as np
import pytest

from kerascnn.compression.lowrank import factored_dense, low_rank_model
from kerascnn.errors import InvalidArgumentError


def mlp():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,))
    x = keras.layers.Dense(10, activation="relu", name="fc1")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="fc2")(x)
    return keras.Model(inputs, outputs)


def test_full_rank_reproduces_the_outputs_and_a_lower_rank_is_the_svd_truncation():
    model = mlp()
    x = np.random.default_rng(0).normal(size=(6, 12)).astype("float32")
    full = low_rank_model(model, 1.0)
    np.testing.assert_allclose(full.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)

    layer = model.get_layer("fc1")
    factored = factored_dense(layer, 0.3)  # ceil(0.3 * 10) = 3 units
    first, second = factored.layers
    assert first.kernel.shape == (12, 3) and second.kernel.shape == (3, 10)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    u, s, vt = np.linalg.svd(kernel, full_matrices=False)
    product = keras.ops.convert_to_numpy(first.kernel) @ keras.ops.convert_to_numpy(second.kernel)
    np.testing.assert_allclose(product, (u[:, :3] * s[:3]) @ vt[:3], atol=1e-5)
    assert low_rank_model(model, 0.3).count_params() < model.count_params()


def test_bad_fractions_and_models_without_dense_layers_are_refused():
    for fraction in (0.0, 1.5, -1):
        with pytest.raises(InvalidArgumentError, match="--low-rank must be in"):
            low_rank_model(mlp(), fraction)
    convolutional = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(InvalidArgumentError, match="no Dense layer"):
        low_rank_model(convolutional, 0.5)
