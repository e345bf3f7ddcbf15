"""Networks as backbones: ``create_model(name, features_only=True, out_indices=...)`` and its
``feature_info`` (README "Feature pyramids")."""

import keras
import numpy as np
import pytest

from kerascnn import create_model, list_models
from kerascnn.errors import InvalidArgumentError
from kerascnn.models import MODELS
from kerascnn.models.features import main_path

# Deeper variants of a family whose shallower registration runs the same builder with more
# blocks per stage (variants are data): building each twice would double the test's time
# (graph construction costs ~5 ms a layer) for no code it does not already cover.
DEEPER_VARIANTS = {
    "densenet169": "densenet121",
    "densenet201": "densenet121",
    "densenet264": "densenet121",
    "resnet101": "resnet50",
    "resnet152": "resnet50",
    "resnet101_v2": "resnet50_v2",
    "resnet152_v2": "resnet50_v2",
    "resnext101_32x8d": "resnext50_32x4d",
    "inception_resnet_v2": "inception_resnet_v1",
    "plain110": "plain56",
    "resnet110": "resnet56",
    "resnet110_sd": "resnet56",
    "resnet1202": "resnet56",
    "preact_resnet164": "preact_resnet110",
    "preact_resnet1001": "preact_resnet110",
}
GROWTH = 64  # a multiple of every stride, so each stage's map grows by exactly GROWTH/stride


def build_features(name, side, **kwargs):
    channels = MODELS.get(name).input_shape[2]
    with keras.StatelessScope(initialize_variables=False):  # shapes only: skip the init
        return create_model(name, input_shape=(side, side, channels), features_only=True, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in DEEPER_VARIANTS])
def test_feature_maps_have_the_strides_and_channels_of_feature_info(name):
    """At two input sizes GROWTH apart, each output's map grows by GROWTH / stride: the
    stride is real (whatever the padding), and the channels are feature_info's."""
    side = max(64, *MODELS.get(name).min_size)
    small, large = build_features(name, side), build_features(name, side + GROWTH)
    keras.backend.clear_session()
    info = small.feature_info
    assert [stage.index for stage in info] == list(range(len(info)))
    strides = [stage.stride for stage in info]
    assert strides == sorted(set(strides)) and all(s in (2, 4, 8, 16, 32) for s in strides)
    assert strides[-1] >= 4  # every network subsamples at least twice
    for stage, a, b in zip(info, small.outputs, large.outputs, strict=True):
        assert a.shape[-1] == b.shape[-1] == stage.channels, stage
        assert b.shape[1] - a.shape[1] == GROWTH // stage.stride, stage
        assert b.shape[2] - a.shape[2] == GROWTH // stage.stride, stage
    assert list(small.pyramid_outputs) == [f"P{s.bit_length() - 1}" for s in strides]


def test_resnet50_stages_are_the_stage_outputs():
    # The layers keras-hub's and timm's ResNet-50 give for strides 2 to 32.
    model = build_features("resnet50", 224)
    assert [(s.layer, s.stride, s.channels) for s in model.feature_info] == [
        ("conv1_relu", 2, 64),
        ("conv2_block3_out", 4, 256),
        ("conv3_block4_out", 8, 512),
        ("conv4_block6_out", 16, 1024),
        ("conv5_block3_out", 32, 2048),
    ]
    assert [tuple(o.shape[1:]) for o in model.outputs][-1] == (7, 7, 2048)


def test_out_indices_choose_stages_and_bad_ones_list_the_valid():
    model = build_features("vgg16", 64, out_indices=(1, 2, 3, 4))
    assert [s.stride for s in model.feature_info] == [4, 8, 16, 32]
    assert [s.layer for s in model.feature_info][-2:] == ["block5_conv3", "block5_pool"]
    with pytest.raises(InvalidArgumentError, match=r"valid: 0 \(stride 2\).*4 \(stride 32\)"):
        build_features("vgg16", 64, out_indices=(5,))
    with pytest.raises(InvalidArgumentError, match="features_only"):
        create_model("vgg16", out_indices=(1,))


def test_main_path_skips_layers_beside_a_shortcut():
    inputs = keras.Input((8, 8, 4), name="x")
    branch = keras.layers.Conv2D(4, 3, padding="same", name="branch")(inputs)
    added = keras.layers.Add(name="add")([inputs, branch])
    out = keras.layers.Conv2D(4, 3, strides=2, name="down")(added)
    names = [layer.name for layer in main_path(keras.Model(inputs, out))]
    assert names == ["x", "add", "down"]


def segmentation_model(backbone: str, num_classes: int, side: int) -> keras.Model:
    """README's example: a small FPN-style segmentation head on a backbone."""
    features = create_model(backbone, input_shape=(side, side, 3), features_only=True)
    stages = list(zip(features.feature_info, features.outputs, strict=True))
    x, stride = None, None
    for stage, fmap in reversed(stages):  # deepest first, adding each finer map in turn
        lateral = keras.layers.Conv2D(64, 1, name=f"lateral_{stage.stride}")(fmap)
        if x is not None:
            x = keras.layers.UpSampling2D(stride // stage.stride)(x)
            lateral = keras.layers.Add()([x, lateral])
        x, stride = lateral, stage.stride
    logits = keras.layers.Conv2D(num_classes, 3, padding="same", name="classes")(x)
    logits = keras.layers.UpSampling2D(stride, interpolation="bilinear")(logits)
    return keras.Model(features.inputs, logits)


def test_every_deeper_variant_has_a_tested_sibling():
    assert set(DEEPER_VARIANTS) <= set(list_models())
    for deep, sibling in DEEPER_VARIANTS.items():
        assert MODELS.get(deep).builder is MODELS.get(sibling).builder, deep


def test_a_segmentation_head_on_a_backbone_trains():
    model = segmentation_model("nin_cifar", num_classes=3, side=32)
    assert model.output_shape == (None, 32, 32, 3)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    masks = (images.mean(axis=-1) // 86).astype("int32")  # three brightness classes
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(model.train_on_batch(images, masks))
