"""LeNet-5 against LeCun, Bottou, Bengio, Haffner 1998, "Gradient-Based Learning Applied to
Document Recognition": section II.B (the architecture, layer by layer), Table I (the C3
connection table) and Appendix A (squashing function and initialisation).

Every expected number is derived here from the paper's description, not read from the
package."""

import re

import keras
import numpy as np
import pytest

import kerascnn
from kerascnn.models.counting import layer_multiply_accumulates
from kerascnn.models.lenet import ConnectionTableConv2D, EuclideanRBF, ScaledTanh

# Table I, transcribed from the paper: row i is S2 map i, column j is C3 map j, "X" marks
# that C3 map j takes input from S2 map i.
PAPER_TABLE_I = (
    "X...XXX..XXXX.XX",
    "XX...XXX..XXXX.X",
    "XXX...XXX..X.XXX",
    ".XXX..XXXX..X.XX",
    "..XXX..XXXX.XX.X",
    "...XXX..XXXX.XXX",
)
C3_INPUTS = [{row for row in range(6) if PAPER_TABLE_I[row][column] == "X"} for column in range(16)]
KERNEL_AREA = 5 * 5  # section II.B: every convolution in LeNet-5 is 5x5


@pytest.fixture(scope="module")
def lenet():
    return kerascnn.create_model("lenet5", num_classes=10)


@pytest.fixture(scope="module")
def modern():
    return kerascnn.create_model("lenet5", num_classes=10, variant="modern")


def trainable_count(weights_holder):
    return sum(int(np.prod(w.shape)) for w in weights_holder.trainable_weights)


# --- Table I -------------------------------------------------------------------------------


def test_table_i_has_60_connections_in_the_papers_groups():
    assert sum(len(inputs) for inputs in C3_INPUTS) == 60
    # Section II.B: "The first six C3 feature maps take inputs from every contiguous subsets
    # of three feature maps in S2. The next six take input from every contiguous subset of
    # four. The next three take input from some discontinuous subsets of four. Finally, the
    # last one takes input from all S2 feature maps."
    contiguous = [{(start + k) % 6 for k in range(size)} for size in (3, 4) for start in range(6)]
    assert C3_INPUTS[:12] == contiguous
    assert [len(inputs) for inputs in C3_INPUTS[12:15]] == [4, 4, 4]
    assert all(inputs not in contiguous for inputs in C3_INPUTS[12:15])
    assert C3_INPUTS[15] == set(range(6))


def test_c3_uses_table_i(lenet):
    c3 = lenet.get_layer("c3")
    assert isinstance(c3, ConnectionTableConv2D)
    connections = c3.get_config()["connections"]
    assert len(connections) == 16
    for c3_map, inputs in enumerate(connections):
        assert len(inputs) == len(set(inputs)), f"C3 map {c3_map} lists an input twice"
        assert set(inputs) == C3_INPUTS[c3_map], f"C3 map {c3_map}"


def test_c3_map_ignores_s2_maps_it_is_not_connected_to(lenet, random_pixels):
    """Table I: changing S2 map i changes exactly the C3 maps whose column lists i."""
    c3 = lenet.get_layer("c3")
    s2_output = random_pixels((2, 14, 14, 6), seed=3) / 255.0
    baseline = keras.ops.convert_to_numpy(c3(s2_output))
    for s2_map in range(6):
        changed = s2_output.copy()
        changed[..., s2_map] += np.random.default_rng(s2_map).normal(size=(2, 14, 14))
        output = keras.ops.convert_to_numpy(c3(changed))
        for c3_map in range(16):
            if s2_map in C3_INPUTS[c3_map]:
                assert np.abs(output[..., c3_map] - baseline[..., c3_map]).max() > 1e-4
            else:
                np.testing.assert_array_equal(output[..., c3_map], baseline[..., c3_map])


# --- parameters and shapes (section II.B) --------------------------------------------------


def test_per_layer_trainable_parameters_follow_section_ii_b(lenet):
    # C1: 6 maps, one 5x5 kernel and a bias each (paper: "156 trainable parameters").
    c1 = 6 * (KERNEL_AREA + 1)
    # S2: a trainable coefficient and a trainable bias per map (paper: "12").
    s2 = 6 * 2
    # C3: one 5x5 kernel per Table I connection, one bias per map (paper: "1,516").
    c3 = sum(KERNEL_AREA * len(inputs) for inputs in C3_INPUTS) + 16
    # S4: as S2 on 16 maps (paper: "32").
    s4 = 16 * 2
    # C5: 120 maps, each fully connected to the 16 5x5 S4 maps (paper: "48,120").
    c5 = 120 * (16 * KERNEL_AREA + 1)
    # F6: 84 units fully connected to C5 (paper: "10,164").
    f6 = 84 * (120 + 1)
    expected = {"c1": c1, "s2": s2, "c3": c3, "s4": s4, "c5": c5, "f6": f6}
    assert expected == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
    actual = {name: trainable_count(lenet.get_layer(name)) for name in expected}
    assert actual == expected
    # Every other layer (squashing, normalisation, flatten, RBF output) trains nothing.
    assert trainable_count(lenet) == sum(expected.values())


def test_multiply_accumulates_follow_the_papers_connection_counts(lenet):
    """Section II.B gives each layer's connections, bias connections included (C1 "122,304
    connections", C3 "151,600", C5 "48,120", F6 "10,164"); a multiply-accumulate is a
    connection without its bias, one bias per output value."""
    outputs = {"c1": 28 * 28 * 6, "c3": 10 * 10 * 16, "c5": 120, "f6": 84}
    paper_connections = {"c1": 122_304, "c3": 151_600, "c5": 48_120, "f6": 10_164}
    for name, connections in paper_connections.items():
        assert layer_multiply_accumulates(lenet.get_layer(name)) == connections - outputs[name]


def test_total_is_the_papers_60000_trainable_parameters(lenet):
    # Section II.B: "The network ... contains ... 60,000 trainable parameters."
    assert trainable_count(lenet) == 60_000


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_layer_output_shapes_follow_section_ii_b(variant, lenet, modern):
    model = lenet if variant == "paper" else modern
    expected = {
        "c1": (None, 28, 28, 6),  # 32 - 5 + 1 = 28
        "s2": (None, 14, 14, 6),  # 2x2 non-overlapping windows
        "c3": (None, 10, 10, 16),
        "s4": (None, 5, 5, 16),
        "c5": (None, 1, 1, 120),  # 5x5 kernel on a 5x5 map
        "f6": (None, 84),
        "predictions": (None, 10),
    }
    for name, shape in expected.items():
        assert tuple(model.get_layer(name).output.shape) == shape, name
    assert tuple(model.output.shape) == (None, 10)


# --- squashing, normalisation, initialisation (section II.B, Appendix A) -------------------


def test_scaled_tanh_maps_plus_minus_one_to_themselves():
    # Appendix A: f(a) = A tanh(S a), A = 1.7159, S = 2/3, chosen so that f(1) = 1, f(-1) = -1.
    assert 1.7159 * np.tanh(2 / 3) == pytest.approx(1.0, abs=1e-4)
    values = keras.ops.convert_to_numpy(ScaledTanh()(np.array([1.0, -1.0, 0.0, 50.0])))
    np.testing.assert_allclose(values[:3], [1.0, -1.0, 0.0], atol=1e-4)
    assert values[3] == pytest.approx(1.7159, abs=1e-4)  # the asymptote is A


def test_squashing_follows_every_layer_up_to_f6(lenet):
    for name in ("c1", "s2", "c3", "s4", "c5", "f6"):
        assert isinstance(lenet.get_layer(f"{name}_tanh"), ScaledTanh), name


def test_raw_pixels_are_normalised_to_the_papers_range(lenet):
    # Section II.B: "the value of the input pixels are normalized so that the background
    # level (white) corresponds to a value of -0.1 and the foreground (black) corresponds
    # to 1.175."
    preprocessing = lenet.get_layer("preprocessing")
    pixels = np.array([0.0, 255.0], "float32").reshape(1, 1, 2, 1)
    normalised = keras.ops.convert_to_numpy(preprocessing(pixels)).ravel()
    np.testing.assert_allclose(normalised, [-0.1, 1.175], atol=1e-6)


def test_initial_weights_are_within_appendix_a_bounds():
    # Appendix A: weights drawn uniformly in [-2.4/F, 2.4/F], F the fan-in of the unit.
    model = kerascnn.create_model("lenet5", num_classes=10)
    for name, fan_in in (("c1", KERNEL_AREA * 1), ("c5", KERNEL_AREA * 16), ("f6", 120)):
        kernel = model.get_layer(name).get_weights()[0]
        limit = 2.4 / fan_in
        assert np.abs(kernel).max() <= limit, name
        assert np.abs(kernel).max() > limit / 2, f"{name} uses far less than its range"
    # C3's units have different fan-ins (3, 4 or 6 input maps): the kernel of a connection
    # into C3 map j is bounded by 2.4 / (25 * len(inputs of j)).
    c3_kernel = model.get_layer("c3").get_weights()[0]  # (5, 5, connections)
    limits = [2.4 / (KERNEL_AREA * len(C3_INPUTS[j])) for j in range(16) for _ in C3_INPUTS[j]]
    assert (np.abs(c3_kernel).max(axis=(0, 1)) <= np.array(limits)).all()


# --- the RBF output layer (section II.B, equation 7) ---------------------------------------


def test_rbf_codes_are_fixed_plus_minus_one_and_not_trainable(lenet):
    rbf = lenet.get_layer("predictions")
    assert isinstance(rbf, EuclideanRBF)
    assert rbf.trainable_weights == []
    (codes,) = rbf.get_weights()
    assert codes.shape == (10, 84)
    assert set(np.unique(codes)) == {-1.0, 1.0}
    trainable_ids = {id(w) for w in lenet.trainable_weights}
    assert all(id(w) not in trainable_ids for w in rbf.weights)


def test_rbf_outputs_are_negative_squared_distances_to_the_codes(random_pixels):
    # Equation 7: y_i = sum_j (x_j - w_ij)^2; the model returns -y_i as the logit.
    model = kerascnn.create_model("lenet5", num_classes=10, classifier_activation=None)
    images = random_pixels((4, 32, 32, 1))
    f6 = keras.Model(model.input, model.get_layer("f6_tanh").output).predict(images, verbose=0)
    (codes,) = model.get_layer("predictions").get_weights()
    expected = -((f6[:, None, :] - codes[None, :, :]) ** 2).sum(axis=-1)
    logits = model.predict(images, verbose=0)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-3)
    assert (logits <= 0).all()
    assert (logits < 0).any()


def test_training_changes_f6_but_not_the_rbf_codes(random_pixels):
    model = kerascnn.create_model("lenet5", num_classes=10)
    codes_before = model.get_layer("predictions").get_weights()[0].copy()
    f6_before = model.get_layer("f6").get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    labels = np.arange(8) % 10
    model.fit(random_pixels((8, 32, 32, 1)), labels, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[0], codes_before)
    assert not np.array_equal(model.get_layer("f6").get_weights()[0], f6_before)


# --- the modern variant --------------------------------------------------------------------


def test_modern_variant_parameter_count(modern):
    # C1 as the paper; full C3 (16 maps on all 6 S2 maps, 5x5): 16 * (6*25 + 1); no trainable
    # pooling; C5 and F6 as the paper; a Dense 10-way classifier on F6: 84*10 + 10.
    expected = (
        6 * (KERNEL_AREA + 1)
        + 16 * (6 * KERNEL_AREA + 1)
        + 120 * (16 * KERNEL_AREA + 1)
        + 84 * (120 + 1)
        + (84 * 10 + 10)
    )
    assert expected == 61_706
    assert trainable_count(modern) == expected
    assert modern.count_params() == expected  # nothing non-trainable either


def test_modern_variant_uses_relu_max_pooling_full_c3_and_dense_output(modern, random_pixels):
    assert isinstance(modern.get_layer("c1_relu"), keras.layers.ReLU)
    assert isinstance(modern.get_layer("s2"), keras.layers.MaxPooling2D)
    assert isinstance(modern.get_layer("s4"), keras.layers.MaxPooling2D)
    c3 = modern.get_layer("c3")
    assert isinstance(c3, keras.layers.Conv2D)
    assert c3.get_weights()[0].shape == (5, 5, 6, 16)
    assert isinstance(modern.get_layer("predictions"), keras.layers.Dense)
    assert not any(isinstance(layer, ScaledTanh | EuclideanRBF) for layer in modern.layers)
    probabilities = modern.predict(random_pixels((3, 32, 32, 1)), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("width", [1, 3])
def test_width_scales_c1_c3_c5_and_f6(width):
    # Madry et al. 2018, section 4: the capacity scale k multiplies every layer's filters and
    # fully connected units; here C1 6k, C3 16k, C5 120k maps and F6 84k units, each 5x5
    # convolution seeing all maps below it (the modern variant), a Dense 10-way classifier.
    k = width
    expected = (
        (KERNEL_AREA * 1 + 1) * 6 * k
        + (KERNEL_AREA * 6 * k + 1) * 16 * k
        + (KERNEL_AREA * 16 * k + 1) * 120 * k
        + (120 * k + 1) * 84 * k
        + (84 * k + 1) * 10
    )
    model = kerascnn.create_model("lenet5", num_classes=10, variant="modern", width=width)
    assert model.count_params() == trainable_count(model) == expected
    assert model.get_layer("c3").get_weights()[0].shape == (5, 5, 6 * k, 16 * k)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"width": 2}, "width=2 needs variant=modern"),
        ({"variant": "modern", "width": 0}, "positive integer; received 0"),
        ({"variant": "modern", "width": 1.5}, "positive integer; received 1.5"),
        ({"variant": "modern", "width": "2"}, "positive integer; received '2'"),
        ({"variant": "modern", "width": True}, "positive integer; received True"),
    ],
)
def test_bad_width_is_rejected(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        kerascnn.create_model("lenet5", **options)


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="variant must be one of paper, modern; received 'lenet1'"):
        kerascnn.create_model("lenet5", variant="lenet1")


# --- feature extraction and channel counts -------------------------------------------------


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_without_top_the_model_ends_at_c5(variant):
    model = kerascnn.create_model("lenet5", include_top=False, variant=variant)
    assert tuple(model.output.shape) == (None, 1, 1, 120)
    assert model.layers[-1].name.startswith("c5")
    assert "f6" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_without_top_pooling_gives_a_120_vector(pooling, random_pixels):
    model = kerascnn.create_model("lenet5", include_top=False, pooling=pooling)
    assert tuple(model.output.shape) == (None, 120)
    features = model.predict(random_pixels((2, 32, 32, 1)), verbose=0)
    assert features.shape == (2, 120)


def test_grayscale_and_rgb_inputs_both_build_with_collapsed_statistics(random_pixels):
    for channels in (1, 3):
        model = kerascnn.create_model("lenet5", input_shape=(32, 32, channels), num_classes=10)
        assert model.get_layer("c1").get_weights()[0].shape == (5, 5, channels, 6)
        # The single registered mean/std applies to every channel: 0 -> -0.1, 255 -> 1.175.
        pixels = np.stack([np.zeros((1, 1, channels)), np.full((1, 1, channels), 255.0)], axis=1)
        pixels = pixels.astype("float32")
        normalised = keras.ops.convert_to_numpy(model.get_layer("preprocessing")(pixels))
        np.testing.assert_allclose(normalised[0, 0, 0], [-0.1] * channels, atol=1e-6)
        np.testing.assert_allclose(normalised[0, 1, 0], [1.175] * channels, atol=1e-6)
        assert model.predict(random_pixels((2, 32, 32, channels)), verbose=0).shape == (2, 10)
