"""Which networks have torchvision's weights, and what ``kerascnn models`` says of them (no
torch, no network)."""

import numpy as np
import pytest
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main
from kerascnn.errors import InvalidArgumentError
from kerascnn.models import model_info
from kerascnn.models.convert import PUBLISHED
from kerascnn.models.convert.assign import _flattened_dense_kernel


def test_a_network_without_torchvision_weights_says_which_have_them():
    with pytest.raises(InvalidArgumentError, match="no torchvision weights; .*resnet18"):
        kerascnn.create_model("lenet5", weights="torchvision")


def test_models_lists_torchvision_weights_with_the_published_accuracy():
    result = CliRunner().invoke(main, ["models", "--weights", "torchvision"])
    assert result.exit_code == 0
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:-1]}
    assert set(rows) == set(PUBLISHED)
    # torchvision's model table: ResNet18_Weights.IMAGENET1K_V1, acc@1 69.758, acc@5 89.078.
    assert "69.76%" in rows["resnet18"] and "89.08%" in rows["resnet18"]
    assert "lenet5" not in result.output


def test_model_info_lists_the_weights_each_network_takes():
    assert set(model_info("vgg16")["weights"]) == {"imagenet", "torchvision", "timm"}
    assert set(model_info("resnet18")["weights"]) == {"torchvision", "timm"}
    assert model_info("lenet5")["weights"] == {}
    resnet50 = model_info("resnet50_v1_5")
    assert resnet50["trainable_parameters"] == 25_557_032  # torchvision's resnet50 num_params
    assert resnet50["weights"]["torchvision"]["top1"] == PUBLISHED["resnet50_v1_5"].top1


def test_torchvisions_alexnet_and_googlenet_are_variants_with_their_own_counts():
    """torchvision's ``num_params``: AlexNet_Weights 61,100,840 and GoogLeNet_Weights
    6,624,904 (PyTorch counts batch-norm statistics as buffers: our trainable weights)."""
    with pytest.raises(InvalidArgumentError, match="no torchvision weights; .*alexnet_owt"):
        kerascnn.create_model("alexnet", weights="torchvision")
    alexnet = model_info("alexnet_owt")
    assert alexnet["parameters"] == alexnet["trainable_parameters"] == 61_100_840
    assert alexnet["weights"]["torchvision"]["top1"] == PUBLISHED["alexnet_owt"].top1
    googlenet = model_info("googlenet_bn")
    assert googlenet["trainable_parameters"] == 6_624_904
    # transform_input: torchvision's normalisation, then x * std / 0.5 + (mean - 0.5) / 0.5.
    assert googlenet["preprocessing"] == {"mean": [127.5] * 3, "std": [127.5] * 3}
    assert model_info("alexnet")["weights"] == {}


def test_converting_torchvisions_alexnet_into_the_faithful_one_is_refused(tmp_path):
    from safetensors.numpy import save_file

    checkpoint = tmp_path / "alexnet.safetensors"
    save_file({"features.0.weight": np.zeros((64, 3, 11, 11), "float32")}, str(checkpoint))
    out = tmp_path / "alexnet.weights.h5"
    arguments = ["convert", str(checkpoint), "--model", "alexnet", "--out", str(out)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2
    assert result.output.count("Error:") == 1 and "alexnet_owt" in result.output
    assert not out.exists()


@pytest.mark.parametrize("name", ["vgg11_lrn", "vgg16_c"])
def test_a_vgg_torchvision_does_not_build_is_refused_in_one_line(name, tmp_path):
    from safetensors.numpy import save_file

    checkpoint = tmp_path / "vgg.safetensors"
    save_file({"features.0.weight": np.zeros((64, 3, 3, 3), "float32")}, str(checkpoint))
    out = tmp_path / "vgg.weights.h5"
    result = CliRunner().invoke(
        main, ["convert", str(checkpoint), "--model", name, "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("Error:") == 1 and "no torchvision layout" in result.output
    assert not out.exists()


def test_a_flattened_map_reaches_fc1_in_the_same_order():
    """PyTorch flattens (C, H, W), Keras (H, W, C): the converted fc1 must give the same
    outputs on the same feature map."""
    rng = np.random.default_rng(0)
    height, width, channels, out = 3, 2, 4, 5
    feature_map = rng.normal(size=(channels, height, width))
    kernel = rng.normal(size=(out, channels * height * width))  # torch's (out, in)
    theirs = kernel @ feature_map.reshape(-1)
    converted = _flattened_dense_kernel((height, width, channels))(kernel)
    ours = feature_map.transpose(1, 2, 0).reshape(-1) @ converted
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
