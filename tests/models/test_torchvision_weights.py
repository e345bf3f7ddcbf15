"""torchvision's weights in our networks: for every network with published torchvision weights,
torchvision's model with random weights and batch-norm statistics that are not the defaults is
saved as .pth and as .safetensors, converted, and ours on raw pixels must give what torchvision
gives on ``(x / 255 - mean) / std`` (relative 1e-4): with the classifier (from the .pth) and
without it (from the .safetensors). No network: downloads are served from a local file.

Each network is built at the smallest input it accepts (VGG's classifier needs its 7x7 map:
224x224). Keras takes 5-20 s to build each of these graphs, and a VGG checkpoint is 0.5 GB
written twice, so by default one check per name map runs (ResNet-18 both ways, ResNeXt's
grouped bottlenecks and DenseNet-121 with their classifiers, both SqueezeNets and torchvision's
AlexNet both ways, torchvision's GoogLeNet without its classifier here and with it, through
``weights="torchvision"``, further down), and the slow tests add one network of every other
shape of map: VGG-11 with and without batch norm and VGG-19 with it (the deepest config),
ResNet-34, the v1.5 bottleneck (ResNet-50), Wide ResNet-50-2, DenseNet-161 (k=48) and
GoogLeNet's classifier, each both ways. The deeper siblings (VGG-13/16/19, ResNet-101/152
v1.5, DenseNet-169/201) take the same maps with more blocks:
``benchmarks/torchvision_weights.py`` measures all 23 networks (benchmarks/RESULTS.md), and
``KERASCNN_TORCHVISION_ALL=1`` runs them here too.
"""

import dataclasses
import hashlib
import os
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main
from kerascnn.errors import InvalidArgumentError
from kerascnn.models import MODELS
from kerascnn.models.convert import torchvision as tv
from kerascnn.weights import read_checkpoint

# triton (torch's GPU kernel compiler, unused here) crashes the process when its library loads
# beside TensorFlow's; torch runs on the CPU without it.
sys.modules.setdefault("triton", None)
torch = pytest.importorskip("torch", reason="torch and torchvision make the reference models")
torchvision = pytest.importorskip("torchvision")
save_safetensors = pytest.importorskip("safetensors.torch").save_file

RELATIVE_TOLERANCE = 1e-4
# (network, way) checked by default; the rest are slow.
DEFAULT = {
    *[
        (name, way)
        for name in ("resnet18", "squeezenet1_0", "squeezenet1_1")
        for way in ("classifier", "features")
    ],
    ("resnext50_32x4d", "classifier"),
    ("densenet121", "classifier"),
    ("alexnet_owt", "classifier"),
    ("alexnet_owt", "features"),
    # googlenet_bn's classifier: test_googlenet_bn_takes_torchvisions_weights_... below.
    ("googlenet_bn", "features"),
}
TORCHVISION_NAMES = {  # ours -> torchvision's constructor
    **{name: name for name in tv.PUBLISHED},
    "resnet50_v1_5": "resnet50",
    "resnet101_v1_5": "resnet101",
    "resnet152_v1_5": "resnet152",
    "alexnet_owt": "alexnet",
    "googlenet_bn": "googlenet",
}
# As torchvision builds the network of its published weights: GoogLeNet's checkpoint holds
# the (untrained) auxiliary heads, and its weights expect transform_input.
TORCHVISION_OPTIONS = {
    "googlenet_bn": dict(aux_logits=True, transform_input=True, init_weights=False),
}
GOOGLENET_FEATURES = (
    *("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b"),
    *("maxpool3", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e"),
    *("maxpool4", "inception5a", "inception5b"),
)


def features_of(model, name):
    """torchvision's counterpart of our ``include_top=False`` output."""
    if name.startswith(("resnet", "resnext", "wide_resnet")):
        return torch.nn.Sequential(*list(model.children())[:-2])
    if name.startswith("densenet"):
        return lambda x: torch.nn.functional.relu(model.features(x))
    if name == "googlenet_bn":
        return lambda x: torch.nn.Sequential(*map(model.get_submodule, GOOGLENET_FEATURES))(
            model._transform_input(x)
        )
    return model.features  # VGG (after block5_pool), SqueezeNet (fire9), AlexNet (pool5)


# Checked with the slow tests besides DEFAULT: one network per other shape of name map.
SLOW = (
    "vgg11",
    "vgg11_bn",
    "vgg19_bn",
    "resnet34",
    "resnet50_v1_5",
    "wide_resnet50_2",
    "densenet161",
    "googlenet_bn",
)


def cases():
    """(network, way) for the published networks, network by network (each is made once),
    marked slow unless in ``DEFAULT``."""
    names = [
        name
        for name in tv.PUBLISHED
        if os.environ.get("KERASCNN_TORCHVISION_ALL")
        or name in SLOW
        or any(name == n for n, _ in DEFAULT)
    ]
    return [
        pytest.param(name, way, marks=[] if (name, way) in DEFAULT else [pytest.mark.slow])
        for name in names
        for way in ("classifier", "features")
    ]


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """name -> (torchvision model, .pth, .safetensors), made the first time each is asked for
    and kept for the module: random weights and statistics."""
    made = {}

    def network(name):
        if name not in made:
            made.clear()  # one network in memory at a time (VGG: 0.5 GB, several copies)
            made[name] = _make(name, tmp_path_factory.mktemp(name))
        return made[name]

    return network


def _make(name, folder):
    """(name, torchvision model, .pth, .safetensors) with random weights and statistics."""
    torch.manual_seed(0)
    options = TORCHVISION_OPTIONS.get(name, {})
    model = getattr(torchvision.models, TORCHVISION_NAMES[name])(weights=None, **options).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    state = model.state_dict()
    torch.save(state, folder / f"{name}.pth")
    save_safetensors(
        {k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors")
    )
    return model, folder / f"{name}.pth", folder / "model.safetensors"


def torchvision_outputs(function, pixels):
    """``function`` on torchvision's normalisation of raw pixels, channels last."""
    mean, std = (np.asarray(tv.STATISTICS[k], "float32") for k in ("mean", "std"))
    x = torch.from_numpy(((pixels - mean) / std).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        y = function(x).numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def assert_close(ours, theirs):
    assert ours.shape == theirs.shape
    difference = np.abs(ours - theirs).max()
    assert difference <= RELATIVE_TOLERANCE * np.abs(theirs).max(), difference


@pytest.mark.parametrize(("name", "way"), cases())
def test_converted_network_gives_torchvisions_outputs(name, way, networks, random_pixels):
    """ "classifier": logits, converted from the .pth; "features": the last feature map
    (``include_top=False``), converted from the .safetensors."""
    model, pth, safetensors = networks(name)
    statistics = tv.statistics(MODELS.get(name))  # GoogLeNet's: its transform_input's
    if way == "classifier":
        flattens = name.startswith(("vgg", "alexnet"))  # the classifier reads a 7x7 / 6x6 map
        size = 224 if flattens else max(MODELS.get(name).min_size)
        ours = kerascnn.create_model(
            name, input_shape=(size, size, 3), classifier_activation=None, **statistics
        )
        tv.load_checkpoint(MODELS.get(name), ours, pth)
        reference = model
    else:
        size = max(MODELS.get(name).min_size)
        ours = kerascnn.create_model(
            name, input_shape=(size, size, 3), include_top=False, **statistics
        )
        tv.load_checkpoint(MODELS.get(name), ours, safetensors)
        reference = features_of(model, name)
    pixels = random_pixels((1, size, size, 3), seed=1)
    assert_close(np.asarray(ours(pixels)), torchvision_outputs(reference, pixels))


@pytest.fixture(scope="module")
def resnet18_files(tmp_path_factory):
    """resnet18's torchvision model and checkpoint (random weights, trained-like statistics)."""
    torch.manual_seed(1)
    model = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.uniform_(0.5, 2.0)
    folder = tmp_path_factory.mktemp("resnet18")
    torch.save(model.state_dict(), folder / "resnet18.pth")
    return model, folder / "resnet18.pth"


def test_a_checkpoint_of_a_smaller_network_names_the_first_missing_tensor(resnet18_files):
    _, pth = resnet18_files
    ours = kerascnn.create_model("resnet34", input_shape=(32, 32, 3), **tv.STATISTICS)
    before = [w.copy() for w in ours.get_weights()]
    with pytest.raises(InvalidArgumentError, match=r"no tensor layer1\.2\.conv1\.weight"):
        tv.load_checkpoint(MODELS.get("resnet34"), ours, pth)
    for old, new in zip(before, ours.get_weights(), strict=True):  # nothing was assigned
        np.testing.assert_array_equal(old, new)


def checkpoint_with(pth, path, name, shape):
    """``pth``'s tensors with ``name`` set to zeros of ``shape``, saved as safetensors."""
    from safetensors.numpy import save_file

    tensors = read_checkpoint(pth)
    tensors[name] = np.zeros(shape, "float32")
    save_file(tensors, str(path))
    return path


def test_a_tensor_of_the_wrong_shape_is_named_and_nothing_is_assigned(resnet18_files, tmp_path):
    _, pth = resnet18_files
    changed = checkpoint_with(
        pth, tmp_path / "changed.safetensors", "layer2.0.conv1.weight", (128, 64, 1, 1)
    )
    ours = kerascnn.create_model("resnet18", input_shape=(32, 32, 3), **tv.STATISTICS)
    before = [w.copy() for w in ours.get_weights()]
    with pytest.raises(InvalidArgumentError) as excinfo:
        tv.load_checkpoint(MODELS.get("resnet18"), ours, changed)
    message = str(excinfo.value)
    assert "tensor layer2.0.conv1.weight (128, 64, 1, 1) does not fit" in message
    assert "conv3_block1_1_conv, which needs (128, 64, 3, 3)" in message
    for old, new in zip(before, ours.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_checkpoint_of_a_larger_network_names_a_tensor_left_over(resnet18_files, tmp_path):
    _, pth = resnet18_files
    larger = checkpoint_with(
        pth, tmp_path / "larger.safetensors", "layer1.2.conv1.weight", (64, 64, 3, 3)
    )
    ours = kerascnn.create_model("resnet18", input_shape=(32, 32, 3), **tv.STATISTICS)
    with pytest.raises(InvalidArgumentError, match=r"the first layer1\.2\.conv1\.weight"):
        tv.load_checkpoint(MODELS.get("resnet18"), ours, larger)


def test_convert_command_writes_weights_create_model_loads_with_torchvision_statistics(
    resnet18_files, tmp_path, random_pixels
):
    model, pth = resnet18_files
    out = tmp_path / "resnet18.weights.h5"
    arguments = ["convert", str(pth), "--model", "resnet18", "--out", str(out)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: resnet18, 11,699,112 parameters" in result.output
    ours = kerascnn.create_model(
        "resnet18", weights=out, input_shape=(64, 64, 3), classifier_activation=None
    )
    pixels = random_pixels((1, 64, 64, 3), seed=3)
    assert_close(np.asarray(ours(pixels)), torchvision_outputs(model, pixels))
    again = CliRunner().invoke(main, arguments)  # never over an existing file by default
    assert again.exit_code == 2 and "--overwrite" in again.output
    with pytest.raises(InvalidArgumentError, match="converted for resnet18, not resnet34"):
        kerascnn.create_model("resnet34", weights=out)


def serve(monkeypatch, tmp_path, pth, name="resnet18", prefix=None):
    """Publish ``pth`` as torchvision's resnet18 file from a local folder; Keras's cache in
    ``tmp_path``. The file's name carries its own SHA-256 prefix, as torchvision's do."""
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    published = dataclasses.replace(  # the published entry's statistics, a local file
        tv.PUBLISHED[name], file=f"{name}-{prefix or digest[:8]}.pth", weights="TEST"
    )
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    (served / published.file).write_bytes(pth.read_bytes())
    monkeypatch.setitem(tv.PUBLISHED, name, published)
    monkeypatch.setattr(tv, "URL_ROOT", served.as_uri() + "/")
    monkeypatch.setattr(tv, "CACHE_DIR", str(tmp_path / "keras"))
    return served / published.file, tmp_path / "keras" / "models" / published.file


def test_weights_torchvision_downloads_once_converts_and_caches(
    resnet18_files, tmp_path, monkeypatch, random_pixels
):
    model, pth = resnet18_files
    served, cached = serve(monkeypatch, tmp_path, pth)
    features = kerascnn.create_model(
        "resnet18", weights="torchvision", include_top=False, input_shape=(32, 32, 3)
    )
    assert cached.is_file() and cached.with_name(cached.stem + ".weights.h5").is_file()
    pixels = random_pixels((1, 32, 32, 3), seed=4)
    expected = torchvision_outputs(torch.nn.Sequential(*list(model.children())[:-2]), pixels)
    assert_close(np.asarray(features(pixels)), expected)
    served.unlink()  # the second build reads the cache
    classifier = kerascnn.create_model(
        "resnet18", weights="torchvision", input_shape=(32, 32, 3), classifier_activation=None
    )
    assert_close(np.asarray(classifier(pixels)), torchvision_outputs(model, pixels))
    with pytest.raises(InvalidArgumentError, match="num_classes=1000"):
        kerascnn.create_model("resnet18", weights="torchvision", num_classes=10)


def test_a_download_whose_hash_differs_from_its_name_is_deleted(
    resnet18_files, tmp_path, monkeypatch
):
    _, pth = resnet18_files
    _, cached = serve(monkeypatch, tmp_path, pth, prefix="00000000")
    with pytest.raises(InvalidArgumentError, match="does not start with 00000000"):
        kerascnn.create_model("resnet18", weights="torchvision")
    assert not cached.exists()


def test_googlenet_bn_takes_torchvisions_weights_with_its_transform_input_and_fresh_aux_heads(
    networks, tmp_path, monkeypatch, random_pixels
):
    """torchvision's GoogLeNet weights expect ``transform_input`` (x / 127.5 - 1 in raw
    pixels); its checkpoint's auxiliary heads are untrained and ours start afresh."""
    model, pth, _ = networks("googlenet_bn")
    serve(monkeypatch, tmp_path, pth, name="googlenet_bn")
    ours = kerascnn.create_model(
        "googlenet_bn",
        weights="torchvision",
        aux_logits=True,
        input_shape=(64, 64, 3),
        classifier_activation=None,
    )
    assert len(ours.outputs) == 3
    pixels = random_pixels((1, 64, 64, 3), seed=6)
    assert_close(np.asarray(ours(pixels)[0]), torchvision_outputs(model, pixels))
    tensors = read_checkpoint(pth)  # aux1.conv is in the checkpoint, and not taken
    assert "aux1.conv.conv.weight" in tensors
    assert not np.array_equal(
        ours.get_layer("aux1_conv_conv").get_weights()[0],
        tensors["aux1.conv.conv.weight"].transpose(2, 3, 1, 0),
    )


@pytest.mark.slow
def test_training_starts_from_torchvision_weights_with_a_new_classifier(
    networks, tmp_path, monkeypatch
):
    """kerascnn-train --weights torchvision: every layer but conv10 (the classifier, sized for
    the dataset's 10 classes) starts from the published weights; --freeze-until keeps them."""
    from kerascnn.cli import train_main

    _, pth, _ = networks("squeezenet1_1")
    serve(monkeypatch, tmp_path, pth, name="squeezenet1_1")
    arguments = ["--model", "squeezenet1_1", "--weights", "torchvision", "--image-size", "31"]
    arguments += ["--freeze-until", "fire9_concat", "--epochs", "1", "--no-export"]
    arguments += ["--output-dir", str(tmp_path / "runs"), "--run-name", "tv"]
    result = CliRunner().invoke(train_main, arguments)
    assert result.exit_code == 0, result.output
    assert "torchvision weights: loaded 25 layers; the classifier starts afresh" in result.output
    trained = keras.saving.load_model(tmp_path / "runs" / "tv" / "model.keras")
    tensors = read_checkpoint(pth)  # a frozen layer kept torchvision's kernel
    np.testing.assert_array_equal(
        trained.get_layer("fire9_expand3x3").get_weights()[0],
        tensors["features.12.expand3x3.weight"].transpose(2, 3, 1, 0),
    )
