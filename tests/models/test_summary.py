"""`kerascnn summary`: the per-layer table's numbers against the lectures' and papers' own,
and the receptive-field arithmetic (README "Networks as case studies")."""

import json
import math

import keras
import pytest
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.models import model_info
from kerascnn.models.receptive_field import receptive_fields
from kerascnn.models.summary import block_name, summarize


def field_of(layers, r=1, j=1):
    """The standard arithmetic (Araujo et al. 2019, Distill) over (kernel, stride) pairs."""
    for kernel, stride in layers:
        r, j = r + (kernel - 1) * j, j * stride
    return r, j


@pytest.fixture(scope="module")
def vgg16():
    return summarize("vgg16")


def test_alexnet_conv1_matches_the_lecture():
    # CS231n: CONV1, 96 11x11 filters at stride 4 on 227x227x3 -> 55x55x96, 35K parameters.
    rows = {row.name: row for row in summarize("alexnet").rows}
    conv1 = rows["conv1"]
    assert conv1.output_shape == ((227 - 11) // 4 + 1, (227 - 11) // 4 + 1, 96) == (55, 55, 96)
    assert conv1.parameters == 11 * 11 * 3 * 96 + 96 == 34_944
    assert conv1.multiply_accumulates == 55 * 55 * 96 * 11 * 11 * 3
    assert conv1.receptive_field == (11, 11) and conv1.jump == (4, 4)


def test_vgg16_totals_match_the_lecture_rows(vgg16):
    # CS231n's VGG-16 table: the input, then each CONV3 / POOL2 / FC output, one row each.
    side, rows = 224, [224 * 224 * 3]
    for convs, channels in ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)):
        rows += [side * side * channels] * convs
        side //= 2
        rows.append(side * side * channels)
    rows += [4096, 4096, 1000]
    assert sum(rows) == 15_237_608  # not the 24M the slide prints under these rows
    assert vgg16.activations == sum(rows)
    assert vgg16.forward_bytes == 4 * sum(rows)
    assert vgg16.training_bytes == 2 * vgg16.forward_bytes
    assert vgg16.parameters == 138_357_544  # Simonyan & Zisserman, Table 2: 138M
    assert vgg16.depth == 13 + 3  # weight layers: 13 convolutions, 3 fully connected
    info = model_info("vgg16")
    assert vgg16.multiply_accumulates == info["multiply_accumulates"]


def test_vgg16_receptive_fields(vgg16):
    rows = {row.name: row for row in vgg16.rows}
    layers = []
    for convs in (2, 2, 3, 3, 3):
        layers += [(3, 1)] * convs + [(2, 2)]
    conv5_3 = field_of(layers[:-1])
    pool5 = field_of(layers)
    assert conv5_3 == (196, 16) and pool5 == (212, 32)
    assert rows["block5_conv3"].receptive_field == (196, 196)
    assert rows["block5_conv3"].jump == (16, 16)
    assert rows["block5_pool"].receptive_field == (212, 212)
    assert rows["fc1"].receptive_field is None  # a dense layer sees the whole image


def test_resnet50_final_stage_receptive_field():
    # conv1 7x7/2, pool 3x3/2, then bottlenecks 1x1-3x3-1x1 with the stage's stride on the
    # first 1x1 (He et al. 2015's Caffe models, keras.applications).
    layers = [(7, 2), (3, 2)]
    for stage, blocks in enumerate((3, 4, 6, 3)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers += [(1, stride), (3, 1), (1, 1)]
    expected, jump = field_of(layers)
    assert (expected, jump) == (483, 32)  # Araujo et al. 2019, Table 1: ResNet-50, 483
    resnet50 = summarize("resnet50")
    assert resnet50.depth == 50  # the projection shortcuts are not on the longest path
    rows = {row.name: row for row in resnet50.rows}
    assert rows["conv5_block3_out"].receptive_field == (expected, expected)
    assert rows["conv5_block3_out"].jump == (jump, jump)


def test_lenet5_c5_sees_the_whole_32x32_input():
    # LeCun et al. 1998, section II.B: C5's units connect to S4's 5x5 maps, all of the input.
    expected = field_of([(5, 1), (2, 2), (5, 1), (2, 2), (5, 1)])
    assert expected == (32, 4)
    rows = {row.name: row for row in summarize("lenet5").rows}
    assert (rows["c5"].receptive_field[0], rows["c5"].jump[0]) == expected


def test_branches_merge_to_the_widest_input():
    inputs = keras.Input((32, 32, 3))
    narrow = keras.layers.Conv2D(4, 3, padding="same", name="narrow")(inputs)
    wide = keras.layers.Conv2D(4, 5, padding="same", name="wide")(inputs)
    wide = keras.layers.MaxPooling2D(3, strides=1, padding="same", name="wide_pool")(wide)
    merged = keras.layers.Concatenate(name="merged")([narrow, wide])
    dilated = keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", name="dilated")(merged)
    fields = receptive_fields(keras.Model(inputs, dilated))
    assert fields["narrow"].size == (3, 3)
    assert fields["wide_pool"].size == (7, 7)
    assert fields["merged"].size == (7, 7)
    assert fields["dilated"].size == (7 + 2 * 2, 7 + 2 * 2)


def test_asymmetric_kernels_keep_height_and_width_apart():
    inputs = keras.Input((17, 17, 8))
    x = keras.layers.Conv2D(8, (1, 7), padding="same", name="row")(inputs)
    fields = receptive_fields(keras.Model(inputs, x))
    assert fields["row"].size == (1, 7)


def test_blocks_group_layers_by_name_and_keep_the_totals():
    assert block_name("conv2_block1_1_conv", 1) == "conv2"
    assert block_name("conv2_block1_1_conv", 2) == "conv2_block1"
    assert block_name("inception_3a_5x5_reduce", 1) == "inception_3a"
    assert block_name("conv1_relu", 2) == "conv1"
    assert block_name("predictions", 1) == "predictions"
    per_layer = summarize("resnet20")
    per_block = summarize("resnet20", depth=2)
    assert len(per_block.rows) < len(per_layer.rows)
    for field in ("parameters", "multiply_accumulates", "activations"):
        assert sum(getattr(r, field) for r in per_block.rows) == getattr(per_layer, field)
    block = {row.name: row for row in per_block.rows}["conv3_block1"]
    assert block.output_shape == (16, 16, 32)


def test_input_size_changes_shapes_not_parameters_of_a_convolutional_stack():
    small = summarize("resnet20", input_size=(48, 64))
    assert small.input_shape == (48, 64, 3)
    assert small.rows[-1].output_shape == (10,)
    last_map = [r for r in small.rows if r.receptive_field is not None][-1]
    assert last_map.output_shape[:2] == (12, 16)
    assert small.parameters == summarize("resnet20").parameters


def test_cli_prints_the_table_and_json():
    runner = CliRunner()
    done = runner.invoke(main, ["summary", "alexnet"])
    assert done.exit_code == 0, done.output
    conv1 = next(line for line in done.output.splitlines() if line.startswith("conv1 "))
    assert "55x55x96" in conv1 and "34,944" in conv1
    assert "62,378,344" in done.output
    done = runner.invoke(main, ["summary", "vgg16", "--depth", "1", "--json"])
    assert done.exit_code == 0, done.output
    table = json.loads(done.output)
    assert table["activations"] == 15_237_608
    assert table["forward_bytes"] == 4 * 15_237_608
    assert [r["name"] for r in table["rows"]][2:7] == [f"block{i}" for i in range(1, 6)]
    assert math.prod(table["rows"][-2]["output_shape"]) == 1000


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["summary", "alexnet", "--input", "32x32"], "AlexNet needs inputs of at least 39x39"),
        (["summary", "alexnett"], "closest: alexnet"),
        (["summary", "alexnet", "--input", "big"], "expected HxW or N"),
    ],
)
def test_cli_bad_input_is_one_error_line(arguments, expected):
    done = CliRunner().invoke(main, arguments)
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and expected in lines[0]
