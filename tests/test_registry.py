"""The Registry, and the public API built on it: list_models, model_info, create_model's
argument checks and its ``weights`` loading (STYLE 1, 4, 5)."""

import re

import numpy as np
import pytest

import kerascnn
from kerascnn.errors import KerasCNNError, UnknownNameError
from kerascnn.registry import Registry


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def save(model, path):
    """Write a whole model (``.keras``) or its weights (``.weights.h5``), by suffix."""
    if str(path).endswith(".keras"):
        model.save(path)
    else:
        model.save_weights(path)


# --- Registry ------------------------------------------------------------------------------


@pytest.fixture
def registry():
    registry = Registry("thing")
    for name in ("vgg16", "resnet50", "lenet5", "resnet20"):
        registry.add(name, name.upper())
    return registry


def test_register_decorator_registers_and_returns_the_entry():
    registry = Registry("model")

    @registry.register("tiny_net")
    def tiny_net():
        return "built"

    assert registry.get("tiny_net") is tiny_net
    assert tiny_net() == "built"
    assert "tiny_net" in registry
    assert len(registry) == 1


def test_duplicate_name_raises_and_keeps_the_first_entry(registry):
    with pytest.raises(ValueError, match="'lenet5' is already registered"):
        registry.add("lenet5", "SECOND")
    assert registry.get("lenet5") == "LENET5"
    assert len(registry) == 4


@pytest.mark.parametrize("bad", ["", "ResNet50", "res-net", "res net", "vgg.16", "_", "lenet5 "])
def test_bad_names_raise(bad):
    registry = Registry("thing")
    with pytest.raises(ValueError, match="lowercase letters, digits and '_'"):
        registry.add(bad, object())
    assert len(registry) == 0


@pytest.mark.parametrize("good", ["vgg16_bn", "resnet_20", "a", "densenet121"])
def test_lowercase_digits_and_underscores_are_accepted(good):
    registry = Registry("thing")
    registry.add(good, 1)
    assert registry.names() == [good]


def test_unknown_name_is_a_value_error_listing_close_matches(registry):
    with pytest.raises(UnknownNameError) as excinfo:
        registry.get("resnet21")
    error = excinfo.value
    assert isinstance(error, ValueError)
    assert isinstance(error, KerasCNNError)
    message = str(error)
    assert message.startswith("unknown thing 'resnet21'; closest: ")
    closest = message.split("closest: ", 1)[1].split(", ")
    # Best match first; the unrelated name is not offered.
    assert closest[:2] == ["resnet20", "resnet50"]
    assert "vgg16" not in closest


def test_unknown_name_matches_case_insensitively(registry):
    with pytest.raises(ValueError, match=r"closest: resnet20\b"):
        registry.get("ResNet20")


def test_unknown_name_without_close_matches_lists_everything(registry):
    with pytest.raises(ValueError, match=re.escape("known: lenet5, resnet20, resnet50, vgg16")):
        registry.get("xyz")


def test_unhashable_name_is_an_unknown_name_not_a_type_error(registry):
    with pytest.raises(UnknownNameError):
        registry.get(["resnet20"])


def test_names_are_sorted_and_filtered_by_shell_pattern(registry):
    assert registry.names() == ["lenet5", "resnet20", "resnet50", "vgg16"]
    assert list(registry) == registry.names()
    assert registry.names("resnet*") == ["resnet20", "resnet50"]
    assert registry.names("*5?") == ["resnet50"]
    assert registry.names("*[56]") == ["lenet5", "vgg16"]
    assert registry.names("alexnet*") == []


# --- list_models / model_info --------------------------------------------------------------


def test_list_models_is_sorted_and_unique():
    names = kerascnn.list_models()
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert {"lenet5", "resnet20"} <= set(names)


def test_list_models_with_pattern():
    resnets = kerascnn.list_models("resnet*")
    assert "resnet20" in resnets
    assert "lenet5" not in resnets
    assert resnets == sorted(resnets)
    assert all(name.startswith("resnet") for name in resnets)
    assert kerascnn.list_models("no_such_family*") == []


def test_model_info_lenet5_reports_the_papers_defaults():
    info = kerascnn.model_info("lenet5")
    assert info["name"] == "lenet5"
    assert info["title"] == "LeNet-5"
    assert "LeCun" in info["paper"] and "1998" in info["paper"]
    assert info["input_shape"] == (32, 32, 1)  # section II.B: "32x32 pixel image"
    assert info["min_size"] == (32, 32)
    assert info["num_classes"] == 10
    # Section II.B: "60,000 trainable parameters"; the RBF codes (10 classes x 84 F6 units)
    # are fixed, so they count only in the total.
    assert info["trainable_parameters"] == 60_000
    assert info["parameters"] == 60_000 + 10 * 84
    # Section II.B: background -0.1, foreground 1.175 -> (x - mean) / std on raw 0..255 pixels.
    mean, std = info["preprocessing"]["mean"], info["preprocessing"]["std"]
    assert len(mean) == len(std) == 1
    assert (0 - mean[0]) / std[0] == pytest.approx(-0.1)
    assert (255 - mean[0]) / std[0] == pytest.approx(1.175)
    assert info["options"]["variant"] == "paper"
    assert "mean" not in info["options"] and "std" not in info["options"]


def test_model_info_resnet20_reports_the_papers_defaults():
    info = kerascnn.model_info("resnet20")
    assert info["title"] == "ResNet-20"
    assert "He" in info["paper"]
    assert info["input_shape"] == (32, 32, 3)
    # Two stride-2 stages divide the input by 4; 8x8 leaves a 2x2 map for the last stage.
    assert info["min_size"] == (8, 8)
    assert info["num_classes"] == 10
    # He et al. 2015, Table 6: ResNet-20 has 0.27M parameters.
    assert round(info["trainable_parameters"] / 1e6, 2) == 0.27
    # The rest are BatchNorm moving mean/variance: 2 per channel of each of the 19 BNs
    # (stem 16, then 6 BNs per stage at 16, 32 and 64 channels).
    bn_channels = 16 + 6 * (16 + 32 + 64)
    assert info["parameters"] - info["trainable_parameters"] == 2 * bn_channels
    assert len(info["preprocessing"]["mean"]) == len(info["preprocessing"]["std"]) == 3
    # Section 4.2: option A shortcuts, weight decay 0.0001, depth 6n + 2 with n = 3.
    assert info["options"]["depth"] == 20
    assert info["options"]["shortcut"] == "A"
    assert info["options"]["weight_decay"] == pytest.approx(1e-4)


@pytest.mark.parametrize("name", kerascnn.list_models())
def test_model_info_fields_are_consistent(name):
    info = kerascnn.model_info(name)
    assert info["name"] == name
    assert info["title"] and info["paper"] and info["description"]
    height, width, channels = info["input_shape"]
    min_h, min_w = info["min_size"]
    assert 0 < min_h <= height and 0 < min_w <= width and channels in (1, 3)
    assert 0 < info["trainable_parameters"] <= info["parameters"]
    assert len(info["preprocessing"]["mean"]) == len(info["preprocessing"]["std"])
    assert all(s > 0 for s in info["preprocessing"]["std"])
    assert isinstance(info["options"], dict)


def test_model_info_unknown_name_mentions_the_closest_name():
    with pytest.raises(ValueError, match="unknown model 'lenet'; closest: lenet5"):
        kerascnn.model_info("lenet")


@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
def test_every_option_model_info_advertises_is_accepted(name):
    options = kerascnn.model_info(name)["options"]
    model = kerascnn.create_model(name, input_shape=(32, 32, 3), num_classes=2, **options)
    assert model.output.shape == (None, 2)


# --- create_model argument checks ----------------------------------------------------------


def test_unknown_model_name_mentions_the_closest_name():
    with pytest.raises(ValueError, match=r"unknown model 'resnt20'; closest: resnet20\b"):
        kerascnn.create_model("resnt20")


def test_unknown_option_lists_the_valid_options():
    with pytest.raises(ValueError) as excinfo:
        kerascnn.create_model("lenet5", dept=20)
    message = str(excinfo.value)
    assert message.startswith("LeNet-5 has no option 'dept'; valid options: ")
    listed = message.split("valid options: ", 1)[1].split(", ")
    assert listed == sorted(listed)
    assert {"variant", "mean", "std"} <= set(listed)


def test_option_of_another_family_is_rejected():
    with pytest.raises(ValueError, match="ResNet-20 has no option 'variant'"):
        kerascnn.create_model("resnet20", variant="modern")


def test_input_below_min_size_echoes_the_input_shape():
    expected = "LeNet-5 needs inputs of at least 32x32; received input_shape=(28, 28, 1)"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        kerascnn.create_model("lenet5", input_shape=(28, 28, 1))


def test_input_below_min_width_alone_is_rejected():
    with pytest.raises(ValueError, match=re.escape("received input_shape=(32, 31, 1)")):
        kerascnn.create_model("lenet5", input_shape=[32, 31, 1])


@pytest.mark.parametrize("bad", [(32, 32), (32, 32, 1, 1), (0, 32, 1), (32, 32, -1), "32x32x1"])
def test_malformed_input_shape_is_rejected(bad):
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, channels\)"):
        kerascnn.create_model("lenet5", input_shape=bad)


@pytest.mark.parametrize("include_top", [True, False])
def test_bad_pooling_is_rejected(include_top):
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max'; received 'mean'"):
        kerascnn.create_model("lenet5", include_top=include_top, pooling="mean")


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", None])
def test_bad_num_classes_is_rejected(bad):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        kerascnn.create_model("lenet5", num_classes=bad)


# --- weights -------------------------------------------------------------------------------


@pytest.fixture
def trained_lenet():
    """A LeNet-5 whose every variable (RBF codes included) is moved off its initial value,
    so that loading can only reproduce its outputs by loading every variable."""
    model = kerascnn.create_model("lenet5", num_classes=10)
    rng = np.random.default_rng(1)
    model.set_weights(
        [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    return model


@pytest.mark.parametrize("filename", ["lenet.weights.h5", "lenet.keras"])
def test_saved_weights_load_and_reproduce_outputs_exactly(
    trained_lenet, tmp_path, filename, random_pixels
):
    path = tmp_path / filename
    save(trained_lenet, path)
    images = random_pixels((4, 32, 32, 1))
    expected = trained_lenet.predict(images, verbose=0)

    fresh = kerascnn.create_model("lenet5", num_classes=10)
    assert not np.allclose(fresh.predict(images, verbose=0), expected)  # loading must matter
    loaded = kerascnn.create_model("lenet5", num_classes=10, weights=str(path))
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), expected)
    # A pathlib.Path works as well as a string.
    again = kerascnn.create_model("lenet5", num_classes=10, weights=path)
    np.testing.assert_array_equal(again.predict(images, verbose=0), expected)


def test_missing_weights_file_raises_file_not_found(tmp_path):
    missing = tmp_path / "nowhere.weights.h5"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))) as excinfo:
        kerascnn.create_model("lenet5", weights=missing)
    assert isinstance(excinfo.value, KerasCNNError)


def test_imagenet_weights_are_rejected_for_a_model_keras_does_not_publish():
    with pytest.raises(ValueError, match="LeNet-5 has no published ImageNet weights"):
        kerascnn.create_model("lenet5", weights="imagenet")


def test_other_named_weight_sets_are_rejected():
    with pytest.raises(ValueError, match="no named weights 'cifar10'"):
        kerascnn.create_model("lenet5", weights="cifar10")


def test_weights_file_with_another_suffix_is_rejected(tmp_path):
    path = tmp_path / "lenet.h5"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="a .weights.h5 or .keras file"):
        kerascnn.create_model("lenet5", weights=path)


# Keras warns about every layer it cannot match before it raises; the raise is what matters.
@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_weights_of_another_architecture_raise_value_error(tmp_path):
    path = tmp_path / "resnet.weights.h5"
    kerascnn.create_model("resnet20", input_shape=(8, 8, 3), num_classes=10).save_weights(path)
    with pytest.raises(ValueError, match=f"weights in {re.escape(str(path))} do not fit lenet5"):
        kerascnn.create_model("lenet5", num_classes=10, weights=path)


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
@pytest.mark.parametrize("filename", ["lenet.weights.h5", "lenet.keras"])
def test_weights_for_another_class_count_raise_value_error(trained_lenet, tmp_path, filename):
    path = tmp_path / filename
    save(trained_lenet, path)
    with pytest.raises(ValueError, match="do not fit lenet5"):
        kerascnn.create_model("lenet5", num_classes=5, weights=path)
