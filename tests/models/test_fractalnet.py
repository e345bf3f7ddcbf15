"""FractalNet against Larsson, Maire, Shakhnarovich 2016, "FractalNet: Ultra-Deep Neural
Networks without Residuals" (arXiv:1605.07648): section 2 (the expansion rule, Figure 1, the
join), section 3.1 (local and global drop-path) and section 4 (the CIFAR network: B = 5
blocks, C = 4 columns for 40 layers, filters 64, 128, 256, 512, 512, dropout 0-40% per block,
local drop rate 15%, half the mini-batches global).

Expected counts are derived here from the expansion rule. The paper's Table 1 gives 38.6M
parameters for its 20-layer (C = 3) network and 22.9M for the 40-layer one, whose footnote
says its columns have different widths that the paper does not list in full; the uniform
widths of section 4 give 33.8M for C = 3 (CIFAR-100) and 76.1M for C = 4, so no published
figure is within 1% and the counts are tested against the derivation only (an independent
reimplementation, github.com/khanrc/pt.fractalnet, reports the same 33.7-33.8M against the
paper's 38.6M)."""

import itertools
import textwrap

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models.fractalnet import DropPathSampler, FractalJoin

# Section 4.
BLOCKS = (64, 128, 256, 512, 512)
COLUMNS = 4
DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)
LOCAL_DROP_RATE = 0.15
# Narrow blocks for structure and behaviour tests: the wiring does not depend on the width.
NARROW = (4, 4, 4, 4, 4)


@pytest.fixture(scope="module")
def narrow():
    """The default network (C = 4, B = 5, paper dropout) with 4 filters per block."""
    return kerascnn.create_model("fractalnet", num_classes=10, blocks=NARROW)


@pytest.fixture(scope="module")
def tiny():
    """Two blocks of four columns without dropout: drop-path is the only randomness."""
    return kerascnn.create_model("fractalnet", num_classes=10, blocks=(4, 4), dropout=0.0, seed=3)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def fractal_parameters(columns, blocks, num_classes, channels=3):
    """Trainable parameters from the expansion rule: column c of a block has 2^(c-1) 3x3
    convolutions, the first of each column reading the block's input (``columns`` of them),
    the other 2^C - 1 - C reading the block's width; each convolution is followed by batch
    normalisation (a scale and an offset per channel, so no convolution bias). After the
    5 poolings the map is 1x1, so the classifier reads ``blocks[-1]`` values."""

    def conv_bn(channels_in, channels_out):
        return 3 * 3 * channels_in * channels_out + 2 * channels_out

    total = 0
    for filters in blocks:
        inner = 2**columns - 1 - columns
        total += columns * conv_bn(channels, filters) + inner * conv_bn(filters, filters)
        channels = filters
    return total + channels * num_classes + num_classes


def conv_path_lengths(model):
    """Fewest and most convolutions on a path from the input to each layer's output. The
    drop-path state is not a data path: it carries no feature map."""
    fewest, most = {}, {}
    for layer in model.layers:
        parents = (
            [
                tensor._keras_history.operation
                for tensor in keras.tree.flatten(layer.input)
                if not isinstance(tensor._keras_history.operation, DropPathSampler)
            ]
            if not isinstance(layer, keras.layers.InputLayer)
            else []
        )
        own = int(isinstance(layer, keras.layers.Conv2D))
        fewest[layer.name] = own + min((fewest[p.name] for p in parents), default=0)
        most[layer.name] = own + max((most[p.name] for p in parents), default=0)
    return fewest, most


# --- the expansion rule (section 2, Figure 1) ----------------------------------------------


def test_each_block_has_2_to_the_c_minus_1_convolutions(narrow):
    convs = [layer.name for layer in narrow.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == len(BLOCKS) * (2**COLUMNS - 1)
    for block in range(1, 6):
        in_block = [name for name in convs if name.startswith(f"block{block}_")]
        assert len(in_block) == 2**COLUMNS - 1 == 15
        # Column c has 2^(c-1) convolutions: 1, 2, 4, 8.
        for column in range(1, COLUMNS + 1):
            mine = [n for n in in_block if n.startswith(f"block{block}_column{column}_")]
            assert len(mine) == 2 ** (column - 1)


def test_longest_path_is_2_to_the_c_minus_1_per_block_40_in_all(narrow):
    fewest, most = conv_path_lengths(narrow)
    for block in range(1, 6):
        # Each block adds 2^(C-1) = 8 on the deepest column and 1 on the shallowest.
        assert most[f"block{block}_pool"] == 8 * block
        assert fewest[f"block{block}_pool"] == block
    # The classifier adds no convolution: 40 on the longest path, as the paper counts depth.
    assert most["predictions"] == 40
    assert narrow.name == "fractalnet40"


def test_joins_follow_the_expansion_rule(narrow):
    # f_4 = join(f_3(f_3(z)), conv(z)): joins after depths 2, 4, 6, 8 of the deepest column,
    # of columns {3, 4}, {2, 3, 4}, {3, 4} and all four (Figure 1).
    for block in range(1, 6):
        joins = {
            layer.name: layer.columns
            for layer in narrow.layers
            if isinstance(layer, FractalJoin) and layer.name.startswith(f"block{block}_")
        }
        assert joins == {
            f"block{block}_join2": [3, 4],
            f"block{block}_join4": [2, 3, 4],
            f"block{block}_join6": [3, 4],
            f"block{block}_join8": [1, 2, 3, 4],
        }
    # The recursion for other C: 2^(C-1) / 2 joins a block, the last of all C columns.
    for columns in (1, 2, 3):
        model = kerascnn.create_model(
            "fractalnet", num_classes=10, blocks=(4,), columns=columns, dropout=0.0
        )
        joins = [layer for layer in model.layers if isinstance(layer, FractalJoin)]
        assert len(joins) == 2 ** (columns - 1) // 2
        if joins:
            assert joins[-1].columns == list(range(1, columns + 1))
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        assert len(convs) == 2**columns - 1


def test_one_drop_path_state_feeds_every_join(narrow):
    samplers = [layer for layer in narrow.layers if isinstance(layer, DropPathSampler)]
    assert len(samplers) == 1
    state = samplers[0].output
    joins = [layer for layer in narrow.layers if isinstance(layer, FractalJoin)]
    assert len(joins) == 5 * 4
    assert all(join.input[-1] is state for join in joins)


def test_convolutions_are_3x3_with_batch_norm_relu_and_block_dropout(narrow):
    for block, (rate, filters) in enumerate(zip(DROPOUT, NARROW, strict=True), start=1):
        conv = narrow.get_layer(f"block{block}_column4_8_conv")
        assert conv.kernel_size == (3, 3) and conv.padding == "same" and conv.filters == filters
        assert isinstance(
            narrow.get_layer(f"block{block}_column4_8_bn"), keras.layers.BatchNormalization
        )
        assert isinstance(narrow.get_layer(f"block{block}_column4_8_relu"), keras.layers.ReLU)
        dropouts = [
            layer.rate
            for layer in narrow.layers
            if isinstance(layer, keras.layers.Dropout) and layer.name.startswith(f"block{block}_")
        ]
        # Section 4: "(0%, 10%, 20%, 30%, 40%)"; the authors' generator puts it in every conv.
        assert dropouts == ([rate] * 15 if rate else [])


def test_block_outputs_halve_to_1x1():
    # Each block ends with 2x2 max pooling: 32 -> 16 -> 8 -> 4 -> 2 -> 1.
    widths = (8, 16, 24, 32, 40)
    model = kerascnn.create_model("fractalnet", num_classes=10, blocks=widths)
    for block, (size, filters) in enumerate(zip((16, 8, 4, 2, 1), widths, strict=True), 1):
        assert tuple(model.get_layer(f"block{block}_pool").output.shape) == (
            None,
            size,
            size,
            filters,
        )
    assert tuple(model.get_layer("flatten").output.shape) == (None, 40)


# --- parameters ----------------------------------------------------------------------------


def test_parameters_follow_the_expansion_rule():
    model = kerascnn.create_model("fractalnet", num_classes=10)
    expected = fractal_parameters(COLUMNS, BLOCKS, 10)
    assert trainable_count(model) == expected
    assert f"{expected / 1e6:.1f}" == "76.1"
    # Batch normalisation's moving mean and variance: 2 per channel of every convolution.
    moving = sum(2 * f * (2**COLUMNS - 1) for f in BLOCKS)
    assert model.count_params() == expected + moving


def test_twenty_layer_variant_parameters():
    # Table 1's 20-layer network is C = 3 (2^(3-1) x 5 = 20), trained on CIFAR-100 too.
    model = kerascnn.create_model("fractalnet", num_classes=100, columns=3, blocks=NARROW)
    assert model.name == "fractalnet20"
    assert trainable_count(model) == fractal_parameters(3, NARROW, 100)
    assert f"{fractal_parameters(3, BLOCKS, 100) / 1e6:.1f}" == "33.8"


# --- the join ------------------------------------------------------------------------------


def constant_paths(values, shape=(2, 3, 3, 2)):
    return [np.full(shape, v, dtype="float32") for v in values]


def test_join_averages_its_inputs_at_inference():
    a, b, c = (
        np.random.default_rng(seed).normal(size=(2, 3, 3, 2)).astype("float32") for seed in range(3)
    )
    join = FractalJoin([2, 3, 4])
    expected = (a + b + c) / 3.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(join([a, b, c])), expected, rtol=1e-6)
    # With the network's state (local mode) and training=False, still the plain mean.
    state = np.zeros((2, 2), "float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(join([a, b, c, state], training=False)), expected, rtol=1e-6
    )


def subset_means(values):
    """Mean of every non-empty subset of ``values``, keyed by the subset."""
    return {
        subset: float(np.mean([values[i] for i in subset]))
        for size in range(1, len(values) + 1)
        for subset in itertools.combinations(range(len(values)), size)
    }


def test_local_drop_path_drops_inputs_and_keeps_at_least_one():
    values = (1.0, 10.0, 100.0, 1000.0)
    means = subset_means(values)
    assert len(set(means.values())) == len(means)  # every kept set has its own mean
    join = FractalJoin([1, 2, 3, 4], local_drop_rate=LOCAL_DROP_RATE, seed=11)
    paths = constant_paths(values)
    state = np.zeros((2, 2), "float32")  # local mode
    kept = []
    for _ in range(300):
        out = keras.ops.convert_to_numpy(join(paths + [state], training=True))
        assert np.all(out == out.flat[0])  # one draw for the whole mini-batch
        [subset] = [s for s, m in means.items() if np.isclose(out.flat[0], m, rtol=1e-6)]
        kept.append(subset)
    dropped = [4 - len(subset) for subset in kept]
    assert min(len(subset) for subset in kept) >= 1
    assert any(dropped) and len(set(kept)) > 3
    # Each input dropped with probability 0.15 (slightly less: an all-dropped draw keeps
    # one): about 0.6 of 4 inputs per call; 300 calls put the mean well within 0.45..0.75.
    assert 0.45 < np.mean(dropped) < 0.75


def test_global_state_keeps_only_that_column():
    paths = constant_paths((1.0, 10.0, 100.0))
    join = FractalJoin([2, 3, 4], local_drop_rate=LOCAL_DROP_RATE, seed=5)
    for column, value in ((2, 1.0), (3, 10.0), (4, 100.0)):
        state = np.tile(np.array([[1.0, column]], "float32"), (2, 1))
        for training in (True, False):
            out = keras.ops.convert_to_numpy(join(paths + [state], training=training))
            np.testing.assert_array_equal(out, value)
    # A join the selected column does not pass through averages all its inputs.
    state = np.tile(np.array([[1.0, 1.0]], "float32"), (2, 1))
    out = keras.ops.convert_to_numpy(join(paths + [state], training=True))
    np.testing.assert_allclose(out, 37.0, rtol=1e-6)


def test_custom_layers_round_trip_their_config():
    join = FractalJoin([2, 3, 4], local_drop_rate=0.2, seed=9, name="j")
    again = FractalJoin.from_config(join.get_config())
    assert (again.columns, again.local_drop_rate, again.seed) == ([2, 3, 4], 0.2, 9)
    sampler = DropPathSampler(4, global_drop_fraction=0.3, only_column=2, seed=1)
    again = DropPathSampler.from_config(sampler.get_config())
    assert (again.columns, again.global_drop_fraction, again.only_column) == (4, 0.3, 2)


# --- the network in training and at inference ---------------------------------------------


def test_inference_is_deterministic_and_joins_average_all_columns(tiny, random_pixels):
    join = tiny.get_layer("block1_join8")
    probe = keras.Model(tiny.input, [*join.input[:-1], join.output, tiny.output])
    images = random_pixels((4, 32, 32, 3), seed=1)
    first = probe.predict(images, verbose=0)
    second = probe.predict(images, verbose=0)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    *columns, joined, _ = first
    assert len(columns) == COLUMNS
    np.testing.assert_allclose(joined, np.mean(columns, axis=0), rtol=1e-5, atol=1e-6)


def test_training_drop_path_changes_outputs_between_calls(tiny, random_pixels):
    images = random_pixels((4, 32, 32, 3), seed=2)
    outputs = [keras.ops.convert_to_numpy(tiny(images, training=True)) for _ in range(6)]
    assert any(not np.allclose(outputs[0], other, atol=1e-7) for other in outputs[1:])
    # Without drop-path (and without dropout) training-mode outputs repeat.
    plain = kerascnn.create_model(
        "fractalnet",
        num_classes=10,
        blocks=(4, 4),
        dropout=0.0,
        local_drop_rate=0.0,
        global_drop_fraction=0.0,
    )
    plain.set_weights(tiny.get_weights())
    repeated = [keras.ops.convert_to_numpy(plain(images, training=True)) for _ in range(3)]
    for other in repeated[1:]:
        np.testing.assert_allclose(repeated[0], other, rtol=1e-6)


def test_global_drop_path_uses_one_column_in_the_whole_network(tiny, random_pixels):
    """With every mini-batch global, each training output is exactly the output of one
    column alone (``only_column``, the same weights), and different calls pick different
    columns."""
    images = random_pixels((4, 32, 32, 3), seed=3)
    every_batch_global = kerascnn.create_model(
        "fractalnet", num_classes=10, blocks=(4, 4), dropout=0.0, global_drop_fraction=1.0, seed=4
    )
    every_batch_global.set_weights(tiny.get_weights())
    references = {}
    for column in range(1, COLUMNS + 1):
        single = kerascnn.create_model(
            "fractalnet", num_classes=10, blocks=(4, 4), dropout=0.0, only_column=column
        )
        single.set_weights(tiny.get_weights())
        references[column] = keras.ops.convert_to_numpy(single(images, training=True))
    # The columns' outputs differ, so each training output names its column.
    for a, b in itertools.combinations(references.values(), 2):
        assert not np.allclose(a, b, atol=1e-6)
    chosen = []
    for _ in range(12):
        out = keras.ops.convert_to_numpy(every_batch_global(images, training=True))
        matches = [c for c, ref in references.items() if np.allclose(out, ref, atol=1e-6)]
        assert len(matches) == 1
        chosen.append(matches[0])
    assert len(set(chosen)) > 1


def test_only_column_is_that_plain_column_network(tiny, random_pixels):
    """The shallowest column alone: per block one convolution, batch norm, ReLU and the
    pooling, then the classifier, with nothing from the other columns."""
    single = kerascnn.create_model(
        "fractalnet", num_classes=10, blocks=(4, 4), dropout=0.0, only_column=1
    )
    single.set_weights(tiny.get_weights())
    images = random_pixels((2, 32, 32, 3), seed=4)
    x = tiny.get_layer("preprocessing")(images)
    for block in (1, 2):
        for suffix in ("conv", "bn", "relu"):
            x = tiny.get_layer(f"block{block}_column1_1_{suffix}")(x, training=False)
        x = tiny.get_layer(f"block{block}_pool")(x)
    x = tiny.get_layer("flatten")(x)
    x = tiny.get_layer("classifier_activation")(tiny.get_layer("predictions")(x))
    np.testing.assert_allclose(
        single.predict(images, verbose=0), keras.ops.convert_to_numpy(x), rtol=1e-4, atol=1e-6
    )
    # And at inference the all-columns network is something else.
    assert not np.allclose(tiny.predict(images, verbose=0), keras.ops.convert_to_numpy(x))


def test_drop_path_is_drawn_anew_in_every_step_of_model_fit(tiny, random_pixels):
    """Under model.fit's compiled step (a TensorFlow graph), drop-path is sampled per step,
    not once at tracing: with a zero learning rate the weights stay put, batch norm uses the
    batch's statistics and there is no dropout, so only drop-path changes the loss of the
    one-step epochs."""
    model = kerascnn.create_model(
        "fractalnet",
        num_classes=10,
        blocks=(4, 4),
        dropout=0.0,
        seed=21,
        classifier_activation=None,
    )
    model.set_weights(tiny.get_weights())
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    images = random_pixels((8, 32, 32, 3), seed=5)
    labels = np.arange(8) % 10
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    history = model.fit(images, labels, epochs=8, batch_size=8, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert len({round(loss, 6) for loss in losses}) > 1
    for variable, value in zip(model.trainable_weights, before, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)


@pytest.mark.slow
def test_trains_and_predicts_on_the_jax_backend(tmp_path, run_under_jax):
    script = textwrap.dedent(
        """
        import numpy as np, keras, kerascnn
        assert keras.backend.backend() == "jax"
        model = kerascnn.create_model(
            "fractalnet", num_classes=10, blocks=(4, 4), dropout=0.0, seed=1,
            classifier_activation=None,
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
        y = np.arange(8) % 10
        losses = [float(model.train_on_batch(x, y)) for _ in range(8)]
        assert np.isfinite(losses).all() and len({round(v, 6) for v in losses}) > 1, losses
        first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
        np.testing.assert_array_equal(first, second)
        model.save("MODEL_PATH")
        loaded = keras.models.load_model("MODEL_PATH")
        np.testing.assert_allclose(loaded.predict(x, verbose=0), first, rtol=1e-6)
        print("ok")
        """
    ).replace("MODEL_PATH", str(tmp_path / "m.keras"))
    run_under_jax(script, timeout=600)


# --- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": 0}, "columns must be a positive integer"),
        ({"blocks": ()}, "blocks must list"),
        ({"blocks": (64, 0)}, "blocks must list"),
        ({"dropout": (0.1, 0.2)}, r"dropout must be a rate in \[0, 1\) or one per block \(5\)"),
        ({"local_drop_rate": 1.0}, r"local_drop_rate must be in \[0, 1\)"),
        ({"global_drop_fraction": 1.5}, r"global_drop_fraction must be in \[0, 1\]"),
        ({"only_column": 5}, r"only_column must be None or a column 1..4"),
    ],
)
def test_invalid_options_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        kerascnn.create_model("fractalnet", **options)


def test_more_blocks_need_larger_inputs():
    with pytest.raises(ValueError, match=r"6 blocks needs inputs of at least 64x64"):
        kerascnn.create_model("fractalnet", blocks=(4,) * 6, dropout=0.1)
    model = kerascnn.create_model(
        "fractalnet", blocks=(4,) * 6, dropout=0.1, input_shape=(64, 64, 3)
    )
    assert tuple(model.get_layer("block6_pool").output.shape) == (None, 1, 1, 4)
