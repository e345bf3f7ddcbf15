"""A smoke test of benchmarks/input_pipeline.py's functions on tiny inputs (the benchmark
itself is run by hand; its results are in benchmarks/RESULTS.md)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "input_pipeline.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("input_pipeline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_functions_measure_positive_rates(bench, tmp_path):
    folder = bench.write_jpeg_folder(tmp_path / "jpegs", 12, size=(20, 24), classes=2)
    assert len(list(folder.rglob("*.jpg"))) == 12
    pipeline = bench.measure_pipeline(
        folder, image_size=16, batch_size=4, augmentation="resnet", batches=3
    )
    assert pipeline["images"] == 12 and pipeline["images_per_second"] > 0
    step = bench.measure_training_step(
        "lenet5", image_size=32, batch_size=2, steps=1, num_classes=2
    )
    assert step["images"] == 2 and step["images_per_second"] > 0
    assert bench.machine()["cpus"] >= 1
