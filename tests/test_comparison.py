"""`kerascnn compare`: the networks side by side, with published accuracies only where a
registration cites one (README "Comparing networks")."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from kerascnn import comparison
from kerascnn.cli import main
from kerascnn.models import MODELS, list_models, model_info


def test_every_published_accuracy_has_a_source_and_is_a_percentage():
    cited = [MODELS.get(n) for n in list_models() if MODELS.get(n).imagenet_accuracy]
    assert len(cited) >= 10
    for spec in cited:
        accuracy = spec.imagenet_accuracy
        assert accuracy.source
        assert accuracy.top1 is not None or accuracy.top5 is not None
        for value in (accuracy.top1, accuracy.top5):
            assert value is None or 50.0 < value < 100.0
        if accuracy.top1 is not None and accuracy.top5 is not None:
            assert accuracy.top5 > accuracy.top1


def test_vgg16_from_torchvisions_table():
    # torchvision's 1-crop table: VGG-16 28.41% top-1 and 9.62% top-5 error.
    accuracy = MODELS.get("vgg16").imagenet_accuracy
    assert (accuracy.top1, accuracy.top5) == (100 - 28.41, 100 - 9.62)
    assert MODELS.get("zfnet").imagenet_accuracy is None  # none cited: none shown


def test_compare_counts_are_the_catalogues():
    entries = comparison.compare(["squeezenet1_0", "zfnet"])
    for entry in entries:
        info = model_info(entry.name)
        assert entry.parameters == info["parameters"]
        assert entry.multiply_accumulates == info["multiply_accumulates"]
    assert entries[1].top1 is None and entries[1].source is None
    assert entries[0].depth == 18  # conv1, 8 fire modules of two, conv10 (Iandola et al.)


def test_cli_table_json_and_chart(tmp_path):
    chart = tmp_path / "chart.png"
    runner = CliRunner()
    done = runner.invoke(
        main, ["compare", "alexnet", "squeezenet1_0", "zfnet", "--plot", str(chart)]
    )
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    squeeze = next(line for line in lines if line.startswith("squeezenet1_0"))
    assert "1.2M" in squeeze and "58.1%" in squeeze
    assert "Krizhevsky et al. 2012" in done.output
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.width >= 800
    done = runner.invoke(main, ["compare", "alexnet", "squeezenet1_0", "--json"])
    entries = json.loads(done.output)
    ratio = entries[0]["parameters"] / entries[1]["parameters"]
    assert ratio == pytest.approx(62_378_344 / 1_248_424)


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["compare", "vgg16", "resnt50"], "closest: resnet50"),
        (["compare", "vgg16", "--plot", "no/such/dir/chart.png"], "no directory for --plot"),
    ],
)
def test_cli_bad_input_is_one_error_line(arguments, expected, tmp_path):
    done = CliRunner().invoke(main, arguments)
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and expected in lines[0]
