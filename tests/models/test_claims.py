"""benchmarks/claims/counting.py's figures: the lectures' numbers by hand, against kerascnn's
counting (README "The papers' claims")."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "claims" / "counting.py"


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("counting_claims", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.measure(), module.report


def test_three_3x3_see_a_7x7_with_fewer_weights(figures):
    measured, _ = figures
    c = 256
    assert measured["stacked_3x3"] == {"receptive_field": 7, "weights": 3 * 3 * 3 * c * c}
    assert measured["single_7x7"] == {"receptive_field": 7, "weights": 7 * 7 * c * c}
    assert 3 * 3 * 3 * c * c == 1_769_472 and 7 * 7 * c * c == 3_211_264  # 27C^2 vs 49C^2


def test_inception_modules_by_hand(figures):
    measured, _ = figures
    hw, c = 28 * 28, 256  # output positions, input channels
    naive = hw * 128 * 1 * c + hw * 192 * 9 * c + hw * 96 * 25 * c
    reduced = (
        hw * 128 * c  # 1x1
        + hw * 64 * c  # 3x3 reduce
        + hw * 192 * 9 * 64  # 3x3 on 64 channels
        + hw * 64 * c  # 5x5 reduce
        + hw * 96 * 25 * 64  # 5x5 on 64 channels
        + hw * 64 * c  # pool projection
    )
    assert (naive, reduced) == (854_196_224, 271_351_808)  # CS231n's 854M and ~271M
    assert measured["inception_naive"]["multiply_accumulates"] == naive
    assert measured["inception_reduced"]["multiply_accumulates"] == reduced
    assert measured["inception_naive"]["output_channels"] == 128 + 192 + 96 + 256
    assert measured["inception_reduced"]["output_channels"] == 128 + 192 + 96 + 64


def test_squeezenet_ratio_from_the_registry(figures):
    measured, report = figures
    ratio = measured["squeezenet_vs_alexnet"]
    assert ratio["ratio"] == ratio["alexnet_parameters"] / ratio["squeezenet1_0_parameters"]
    assert 45 < ratio["ratio"] < 55  # Iandola et al.: "50x fewer parameters"
    assert any("SqueezeNet 1.0" in line for line in report(measured))
