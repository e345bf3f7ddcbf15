"""timm's republication of torchvision's weights (``weights="timm"``): timm's own module with
random weights and batch-norm statistics, saved as safetensors in timm's names, served from a
local folder laid out as the hub's resolve URLs (no network), converted, and ours on raw pixels
must give what timm's module gives on ``(x / 255 - mean) / std`` (relative 1e-4).

ResNet-18 by default (timm names it as torchvision does); VGG-11 (timm's convolutional fc1 and
fc2, renamed and flattened) is slow: its 0.5 GB checkpoint and 224x224 classifier.
"""

import sys

import numpy as np
import pytest
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main, train_main
from kerascnn.errors import InvalidArgumentError
from kerascnn.models.convert import timm as timm_weights
from kerascnn.models.convert import torchvision as tv

sys.modules.setdefault("triton", None)  # see test_torchvision_weights
torch = pytest.importorskip("torch", reason="timm's modules are the reference")
timm = pytest.importorskip("timm")
save_file = pytest.importorskip("safetensors.torch").save_file

# The torchvision tests' reference call and comparison (timm's modules take the same input).
from test_torchvision_weights import assert_close  # noqa: E402
from test_torchvision_weights import torchvision_outputs as outputs  # noqa: E402


def timm_module(name):
    """timm's network of ``name`` with random weights and batch-norm statistics, eval mode."""
    torch.manual_seed(0)
    architecture = timm_weights.REPUBLISHED[name].repo.removeprefix("timm/").split(".")[0]
    module = timm.create_model(architecture, pretrained=False).eval()
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
                layer.weight.uniform_(0.5, 1.5)
    return module


def serve(module, name, tmp_path, monkeypatch):
    """``module``'s state dict as the hub's ``<repo>/resolve/main/model.safetensors`` in a
    local folder; Keras's cache in ``tmp_path``. Returns the cached download's path."""
    entry = timm_weights.REPUBLISHED[name]
    hub = tmp_path / "hub"
    served = hub / entry.repo / "resolve" / entry.revision / timm_weights.FILE
    served.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(served))
    monkeypatch.setattr(timm_weights, "HUB_ROOT", hub.as_uri() + "/")
    monkeypatch.setattr(tv, "CACHE_DIR", str(tmp_path / "keras"))
    return served, tmp_path / "keras" / "models" / entry.cached_name


def test_weights_timm_downloads_once_converts_and_caches(tmp_path, monkeypatch, random_pixels):
    module = timm_module("resnet18")
    served, cached = serve(module, "resnet18", tmp_path, monkeypatch)
    ours = kerascnn.create_model(
        "resnet18", weights="timm", input_shape=(64, 64, 3), classifier_activation=None
    )
    converted = cached.with_name("timm_resnet18.tv_in1k.weights.h5")
    assert cached.is_file() and converted.is_file()
    pixels = random_pixels((1, 64, 64, 3), seed=7)
    assert_close(np.asarray(ours(pixels)), outputs(module, pixels))
    served.unlink()  # the second build reads the converted file
    features = kerascnn.create_model(
        "resnet18", weights="timm", include_top=False, input_shape=(64, 64, 3)
    )
    assert_close(np.asarray(features(pixels)), outputs(module.forward_features, pixels))
    with pytest.raises(InvalidArgumentError, match="weights='timm' with include_top=True"):
        kerascnn.create_model("resnet18", weights="timm", num_classes=10)


def test_a_network_timm_does_not_republish_is_refused_naming_those_it_does(tmp_path):
    with pytest.raises(InvalidArgumentError, match="no timm weights; networks with them: res"):
        kerascnn.create_model("squeezenet1_0", weights="timm")
    arguments = ["--model", "googlenet_bn", "--weights", "timm", "--dataset", "digits"]
    arguments += ["--output-dir", str(tmp_path / "runs"), "--no-export"]
    result = CliRunner().invoke(train_main, arguments)
    assert result.exit_code == 2, result.output
    assert result.output.count("Error:") == 1 and "no timm weights" in result.output
    assert not (tmp_path / "runs").exists()


def test_models_lists_the_networks_timm_republishes():
    result = CliRunner().invoke(main, ["models", "--weights", "timm"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:-1]}
    assert set(rows) == set(timm_weights.REPUBLISHED)
    assert "squeezenet1_0" not in rows and "alexnet_owt" not in rows
    # torchvision's table, ResNet18_Weights.IMAGENET1K_V1 (which timm's tv_in1k republishes).
    assert "69.76%" in rows["resnet18"]
    info = kerascnn.model_info("resnet50_v1_5")["weights"]["timm"]
    assert info["repo"] == "timm/resnet50.tv2_in1k"  # torchvision's V2, as its default
    assert info["url"].endswith("timm/resnet50.tv2_in1k/resolve/main/model.safetensors")


@pytest.mark.slow
def test_timms_vgg_classifier_converts(tmp_path, monkeypatch, random_pixels):
    """timm's VGG holds fc1 as a 7x7 convolution and fc2 as a 1x1 one (``pre_logits``)."""
    module = timm_module("vgg11")
    served, _ = serve(module, "vgg11", tmp_path, monkeypatch)
    ours = kerascnn.create_model(
        "vgg11", input_shape=(224, 224, 3), classifier_activation=None, **tv.STATISTICS
    )
    tv.load_checkpoint(kerascnn.models.MODELS.get("vgg11"), ours, served)
    pixels = random_pixels((1, 224, 224, 3), seed=8)
    assert_close(np.asarray(ours(pixels)), outputs(module, pixels))
