"""Magnitude pruning and weight sharing on tiny models: the masks stay zero through optimiser
steps, the sparsity follows Zhu & Gupta's schedule at the steps it names, a shared layer holds
at most 2**bits values, and the storage arithmetic of Deep Compression."""

import math
import textwrap

import keras
import numpy as np
import pytest

from kerascnn.compression import pruning, sharing, storage
from kerascnn.compression.recipe import Compress, Phases, Recipe
from kerascnn.errors import InvalidArgumentError
from kerascnn.models import create_model

SPE = 8  # steps per epoch of the tiny data below


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs)
    # Momentum keeps moving a pruned weight after its gradient is gone: the masks must undo it.
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.losses.MeanSquaredError())
    return model


def tiny_data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(8 * SPE, 6, 6, 2)).astype("float32"), rng.normal(
        size=(8 * SPE, 3)
    ).astype("float32")


def fit(model, callback, epochs):
    x, y = tiny_data()
    model.fit(x, y, batch_size=8, epochs=epochs, callbacks=[callback], verbose=0, shuffle=False)


def test_schedule_matches_zhu_and_gupta_equation_1():
    initial, final, begin, end = 0.1, 0.9, 10, 50
    for step in (10, 20, 30, 40):
        expected = final + (initial - final) * (1 - (step - begin) / (end - begin)) ** 3
        assert pruning.polynomial_sparsity(step, initial, final, begin, end) == pytest.approx(
            expected
        )
    assert pruning.polynomial_sparsity(5, initial, final, begin, end) == 0.0
    assert pruning.polynomial_sparsity(99, initial, final, begin, end) == final
    # With a pruning frequency of 10 steps, step 27 holds the sparsity of step 20.
    assert pruning.polynomial_sparsity(27, initial, final, begin, end, 10) == pytest.approx(
        pruning.polynomial_sparsity(20, initial, final, begin, end)
    )


def test_masks_stay_zero_after_optimiser_steps_and_follow_the_schedule():
    model = tiny_model()
    targets = pruning.prunable_targets(model)
    phases = Phases(0, 2 * SPE, 4, None, 3)
    callback = Compress(Recipe(prune=0.75), phases, targets)
    fit(model, callback, epochs=2)
    # The schedule reached its end at step 2 * SPE; the recorded sparsities are eq. 1's.
    # Step 0 schedules sparsity 0 (s_i): nothing is masked until step 4.
    assert sorted(callback.sparsity_at) == [4, 8, 12, 16]
    for step, value in callback.sparsity_at.items():
        assert value == pytest.approx(pruning.polynomial_sparsity(step, 0.0, 0.75, 0, 16, 4))
    zeros = {t.name: keras.ops.convert_to_numpy(t.kernel) == 0 for t in targets}
    fit(model, callback, epochs=1)  # more optimiser steps at the final sparsity
    for target in targets:
        kernel = keras.ops.convert_to_numpy(target.kernel)
        assert (kernel[zeros[target.name]] == 0).all()
        assert (kernel == 0).sum() == math.floor(0.75 * kernel.size)


def test_global_scope_uses_one_threshold_and_structured_drops_whole_filters():
    model = tiny_model()
    targets = pruning.prunable_targets(model)
    pruning.apply_masks(targets, pruning.magnitude_masks(targets, 0.6, scope="global"))
    kernels = [keras.ops.convert_to_numpy(t.kernel).ravel() for t in targets]
    everything = np.concatenate(kernels)
    assert (everything == 0).sum() == math.floor(0.6 * everything.size)
    kept = np.abs(everything[everything != 0])
    # A global threshold: layers end at different sparsities, every survivor above it.
    assert len({float((k == 0).mean()) for k in kernels}) > 1
    assert kept.min() > 0

    model = tiny_model(seed=1)
    targets = pruning.prunable_targets(model, structured=True)
    before = keras.ops.convert_to_numpy(targets[-1].kernel).copy()
    pruning.apply_masks(targets, pruning.magnitude_masks(targets, 0.5, structured=True))
    conv = keras.ops.convert_to_numpy(targets[0].kernel)
    dead = (conv == 0).all(axis=(0, 1, 2))
    assert dead.sum() == 2  # half of the 4 filters, whole
    assert (keras.ops.convert_to_numpy(targets[0].bias)[dead] == 0).all()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(targets[-1].kernel), before)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_a_layer_given_its_own_sparsity_ends_there_and_the_others_follow_prune(scope):
    model = tiny_model()
    targets = pruning.prunable_targets(model)
    recipe = Recipe(prune=0.5, prune_layers=(("hidden", 0.9),), scope=scope)
    callback = Compress(recipe.check(2), Phases(0, SPE, 2, None, 2), targets)
    fit(model, callback, epochs=2)
    kernels = {t.name: keras.ops.convert_to_numpy(t.kernel) for t in targets}
    hidden = kernels.pop("hidden")
    assert (hidden == 0).sum() == math.floor(0.9 * hidden.size)
    # The rest: each at 50%, or 50% of the rest together under one global threshold.
    if scope == "layer":
        for kernel in kernels.values():
            assert (kernel == 0).sum() == math.floor(0.5 * kernel.size)
    else:
        rest = np.concatenate([k.ravel() for k in kernels.values()])
        assert (rest == 0).sum() == math.floor(0.5 * rest.size)
    # A layer's own schedule is eq. 1 to its own final sparsity.
    assert callback.scheduled(SPE // 2, 0.9) == pytest.approx(
        pruning.polynomial_sparsity(SPE // 2, 0.0, 0.9, 0, SPE, 2)
    )


def test_prune_layers_alone_leave_the_other_layers_whole():
    model = tiny_model()
    targets = pruning.prunable_targets(model)
    callback = Compress(Recipe(prune_layers=(("conv", 0.75),)), Phases(0, SPE, 2, None, 2), targets)
    fit(model, callback, epochs=1)
    for target in targets:
        kernel = keras.ops.convert_to_numpy(target.kernel)
        expected = math.floor(0.75 * kernel.size) if target.name == "conv" else 0
        assert (kernel == 0).sum() == expected


def test_shared_layers_hold_at_most_2_to_the_bits_values_after_fine_tuning():
    model = tiny_model()
    targets = pruning.prunable_targets(model)
    bits = 2
    callback = Compress(Recipe(prune=0.5, cluster_bits=bits), Phases(0, SPE, 2, 1, 2), targets)
    fit(model, callback, epochs=3)
    for target in targets:
        kernel = keras.ops.convert_to_numpy(target.kernel)
        assert np.unique(kernel).size <= 2**bits
        assert (kernel == 0).sum() == math.floor(0.5 * kernel.size)  # zero is a pinned code
    # Every weight is its centroid: the kernel is the codebook looked up by the indices.
    for entry in callback.shared:
        tied = keras.ops.take(entry.codebook, entry.index)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(tied), keras.ops.convert_to_numpy(entry.target.kernel)
        )


def test_linear_kmeans_starts_at_the_extremes():
    values = np.array([-1.0, -0.9, 0.0, 0.1, 5.0])
    centroids, index = sharing.linear_kmeans(values, 2)
    # Linear initialisation keeps the rare large weight as its own centroid.
    assert sorted(centroids.tolist()) == pytest.approx([-0.45, 5.0])
    assert index.tolist() == [0, 0, 0, 0, 1]


def test_deep_compression_storage_by_hand():
    # Gaps 3 and 40 with 5-bit indices (largest gap 31): 40 needs one filler entry.
    kernel = np.zeros(43)
    kernel[[2, 42]] = 1.0
    assert storage.relative_indices(kernel, 5) == [3, 31, 9]
    # Huffman: counts 1, 1, 2 give codes of 2, 2 and 1 bits.
    assert storage.huffman_bits(["a", "b", "c", "c"]) == 2 + 2 + 2
    layer = storage.layer_storage(kernel, "fc", bits=2)
    assert layer["bits"] == 3 * (2 + 5) + 4 * 32


def test_the_storage_estimate_is_against_the_source_parameters():
    """A compression that changes the parameter count (low rank, deleted filters) is measured
    against the source's 32-bit weights, not its own."""
    model = keras.Sequential([keras.Input((43,)), keras.layers.Dense(1, use_bias=False)])
    kernel = np.zeros((43, 1))
    kernel[[2, 42]] = 1.0
    model.layers[0].kernel.assign(kernel)
    kernels = {"dense": (kernel, "fc")}
    own = storage.deep_compression_bytes(model, kernels, bits=2)
    stored = 3 * (2 + 5) + 4 * 32  # bits, as by hand above
    assert own["bytes"] == stored / 8 and own["ratio"] == 43 * 32 / stored
    source = storage.deep_compression_bytes(model, kernels, bits=2, dense_parameters=1000)
    assert source["dense_bytes"] == 1000 * 4 and source["ratio"] == 1000 * 32 / stored


def test_bad_recipes_are_refused():
    for recipe, epochs in (
        (Recipe(prune=1.0), 5),
        (Recipe(prune=-0.1), 5),
        (Recipe(cluster_bits=9), 5),
        (Recipe(cluster_bits=0), 5),
        (Recipe(), 5),
        (Recipe(structured=True), 5),
        (Recipe(prune=0.5, cluster_bits=4), 1),
        (Recipe(prune=0.5, quantize=("int4",)), 5),
        (Recipe(prune_layers=(("conv", 1.0),)), 5),
        (Recipe(prune_layers=(("conv", 0.5), ("conv", 0.6))), 5),
        (Recipe(prune=0.5, prune_layers=(("conv", 0.2),), initial_sparsity=0.3), 5),
    ):
        with pytest.raises(InvalidArgumentError):
            recipe.check(epochs)
    with pytest.raises(InvalidArgumentError, match="nothing to prune"):
        pruning.prunable_targets(keras.Sequential([keras.Input((4, 4, 1)), keras.layers.ReLU()]))


def test_pruning_and_sharing_run_under_jax(run_under_jax):
    script = textwrap.dedent(
        """
        import keras, numpy as np
        from kerascnn.compression import pruning
        from kerascnn.compression.recipe import Compress, Phases, Recipe
        assert keras.backend.backend() == "jax"
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.Dense(2)])
        model.compile("sgd", "mse")
        targets = pruning.prunable_targets(model)
        callback = Compress(Recipe(prune=0.5, cluster_bits=2), Phases(0, 4, 1, 1, 2), targets)
        x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
        model.fit(x, x[:, :2], batch_size=8, epochs=2, callbacks=[callback], verbose=0)
        for t in targets:
            k = np.asarray(t.kernel)
            assert (k == 0).sum() == k.size // 2 and np.unique(k).size <= 4, k
        print("ok")
        """
    )
    run_under_jax(script)


def test_depthwise_and_stochastic_depth_branch_kernels_are_pruned():
    # A depthwise kernel (Keras 3 names it `kernel`) is pruned element by element but keeps
    # its multiplier axis whole under structured pruning; layers inside a stochastic-depth
    # branch (a nested model) are reached too.
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(inputs)
    x = keras.layers.Conv2D(4, 1, name="pointwise")(x)
    model = keras.Model(inputs, x)
    names = [t.name for t in pruning.prunable_targets(model)]
    assert names == ["depthwise", "pointwise"]
    assert [t.name for t in pruning.prunable_targets(model, structured=True)] == ["pointwise"]

    network = create_model("resnet20", input_shape=(32, 32, 3), stochastic_depth=0.5)
    plain = create_model("resnet20", input_shape=(32, 32, 3))
    pruned = {t.name for t in pruning.prunable_targets(network)}
    assert pruned == {t.name for t in pruning.prunable_targets(plain)}
