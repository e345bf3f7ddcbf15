"""``kerascnn compress`` end to end on a LeNet-5 run (a new run and export, sizes that are
the files' own, shared layers with at most 2**bits values once exported, TFLite parity), and
the one-line errors of bad input, with nothing written."""

import gzip
import json
import math

import keras
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.export.saved_model import export_saved_model
from kerascnn.export.tflite import convert_tflite
from kerascnn.models import create_model

BITS = 3
SPARSITY = 0.5
# One layer given its own sparsity (--prune-layer), the others following --prune.
OWN = {"c5": 0.8}


def one_line_error(args, tmp_path):
    out = ["--output-dir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "sm")]
    result = CliRunner().invoke(main, ["compress", *args, *out])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: ")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sm").exists()
    return result.stderr


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """A LeNet-5 .keras file with the metadata an export has (enough to plan a compression)."""
    directory = tmp_path_factory.mktemp("untrained")
    create_model("lenet5", num_classes=10).save(directory / "model.keras")
    (directory / "metadata.json").write_text(json.dumps({"model": "lenet5", "dataset": "digits"}))
    return directory


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--prune", "1.0"], "--prune must be in [0, 1)"),
        (["--prune", "-0.1"], "--prune must be in [0, 1)"),
        (["--cluster", "9"], "from 1 to 8"),
        (["--cluster", "0"], "from 1 to 8"),
        ([], "nothing to do"),
        (["--prune", "0.5", "--quantize", "int4"], "unknown quantisation int4"),
        (["--low-rank", "0"], "--low-rank must be in (0, 1]"),
        (["--low-rank", "1.5"], "--low-rank must be in (0, 1]"),
        (["--qat", "--quantize", "float16"], "--qat exports the int8 TFLite"),
        (["--qat", "--prune", "0.5", "--structured"], "--qat cannot follow --structured"),
        (["--prune", "0.5", "--prune-layer", "c9=0.5"], "prunable layers are c1, c3, c5, f6"),
        (["--prune-layer", "c5=1.0"], "--prune-layer c5's sparsity must be in [0, 1)"),
        (["--prune-layer", "c5=-0.2"], "--prune-layer c5's sparsity must be in [0, 1)"),
        (["--prune-layer", "c5=0.5", "--prune-layer", "c5=0.6"], "gives layer c5 twice"),
        (["--prune-layer", "c5"], "expected NAME=SPARSITY"),
        (["--prune-layer", "c5=most"], "expected NAME=SPARSITY"),
        (["--prune", "0.5", "--structured", "--prune-layer", "f6=0.5"], "stays whole"),
    ],
)
def test_bad_recipes_are_one_line_errors(untrained, tmp_path, args, expected):
    assert expected in one_line_error([str(untrained), *args], tmp_path)


def test_an_artifact_that_cannot_be_fine_tuned_is_refused(tmp_path):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    export_saved_model(model, tmp_path / "plain")
    (tmp_path / "model.tflite").write_bytes(convert_tflite(tmp_path / "plain"))
    message = one_line_error([str(tmp_path / "model.tflite"), "--prune", "0.5"], tmp_path)
    assert "cannot be fine-tuned" in message
    message = one_line_error([str(tmp_path / "model.tflite"), "--qat"], tmp_path)
    assert "cannot be fine-tuned" in message


def test_a_model_with_nothing_prunable_is_refused(tmp_path):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.GlobalAveragePooling2D(), keras.layers.Softmax()]
    )
    model.save(tmp_path / "pool.keras")
    assert "nothing to prune" in one_line_error(
        [str(tmp_path / "pool.keras"), "--prune", "0.5"], tmp_path
    )


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A 1-epoch LeNet-5 run on digits: ``root/runs/src``."""
    root = tmp_path_factory.mktemp("compress")
    out = ["--output-dir", str(root / "runs"), "--export-dir", str(root / "sm")]
    trained = CliRunner().invoke(main, ["train", "--epochs", "1", "--run-name", "src", *out])
    assert trained.exit_code == 0, trained.output
    return root


@pytest.fixture(scope="module")
def compressed(source_run):
    """The source run pruned to 50% (C5 to 80%) and shared on 3 bits over 2 epochs."""
    root = source_run
    out = ["--output-dir", str(root / "runs"), "--export-dir", str(root / "sm")]
    args = ["compress", str(root / "runs" / "src"), "--prune", str(SPARSITY)]
    for name, sparsity in OWN.items():
        args += ["--prune-layer", f"{name}={sparsity}"]
    args += ["--cluster", str(BITS), "--quantize", "int8", "--epochs", "2", *out]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return root, result.stdout


@pytest.mark.slow
def test_compress_writes_a_run_and_an_export_measured_against_the_source(compressed, tmp_path):
    root, stdout = compressed
    run, export = root / "runs" / "src-compressed", root / "sm" / "src-compressed"
    for name in ("model.keras", "metrics.json", "config.yaml", "compression.yaml", "logs"):
        assert (run / name).exists(), name
    report = json.loads((run / "compression.json").read_text())
    assert "int8 TFLite, compressed" in stdout and "Deep Compression storage estimate" in stdout
    # The sizes are those of the files shipped.
    for row, name in zip(report["files"][1:], ("model.tflite", "model_int8.tflite"), strict=True):
        data = (export / name).read_bytes()
        assert row["bytes"] == len(data)
        assert row["gzip_bytes"] == len(gzip.compress(data, compresslevel=9))
    # The exported model is pruned and shared: checked on its weights, each layer at its
    # own --prune-layer sparsity or else at --prune's.
    exported = keras.saving.load_model(export / "model.keras")
    assert sorted(row["layer"] for row in report["layers"]) == ["c1", "c3", "c5", "f6"]
    for row in report["layers"]:
        kernel = keras.ops.convert_to_numpy(exported.get_layer(row["layer"]).kernel)
        asked = OWN.get(row["layer"], SPARSITY)
        assert (kernel == 0).sum() == math.floor(asked * kernel.size)
        assert np.unique(kernel).size <= 2**BITS
        assert row["chosen_sparsity"] == asked
        assert f"{100 * row['sparsity']:.1f}% {f'{100 * asked:.1f}%':>7}" in stdout
    # The run records the sparsities chosen.
    recorded = yaml.safe_load((run / "compression.yaml").read_text())
    assert recorded["prune"] == SPARSITY and recorded["prune_layers"] == OWN
    # The compressed TFLite files agree with the compressed Keras model (export thresholds).
    parity = json.loads((export / "metadata.json").read_text())["parity"]
    assert parity["tflite"]["top1_agreement"] == 1.0
    assert parity["tflite_int8"]["top1_agreement"] >= 0.98
    assert report["accuracy"]["change_points"] == pytest.approx(
        100 * (report["accuracy"]["compressed"] - report["accuracy"]["source"])
    )
    # Compressing again into the same run name is refused, and the run is left as it was.
    before = (run / "compression.json").read_bytes()
    result = CliRunner().invoke(
        main,
        [
            "compress",
            str(root / "runs" / "src"),
            "--prune",
            "0.5",
            "--output-dir",
            str(root / "runs"),
            "--export-dir",
            str(root / "sm"),
        ],
    )
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert (run / "compression.json").read_bytes() == before


@pytest.mark.slow
def test_structured_compression_exports_a_smaller_network_with_the_same_answers(tmp_path):
    """--structured: the pruned filters leave the exported network (modern LeNet-5: ReLU,
    max pooling, no partially connected C3), which agrees with its TFLite file."""
    out = ["--output-dir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "sm")]
    source = ["--epochs", "1", "--model-option", "variant=modern", "--run-name", "src", *out]
    trained = CliRunner().invoke(main, ["train", *source])
    assert trained.exit_code == 0, trained.output
    args = [str(tmp_path / "runs" / "src"), "--prune", "0.5", "--structured", "--epochs", "1"]
    result = CliRunner().invoke(main, ["compress", *args, *out])
    assert result.exit_code == 0, result.output
    assert "filters deleted from the network" in result.stdout
    run, export = tmp_path / "runs" / "src-compressed", tmp_path / "sm" / "src-compressed"
    report = json.loads((run / "compression.json").read_text())
    assert report["shrunk"] and all(c["kept"] < c["filters"] for c in report["shrunk"])
    source_model = keras.saving.load_model(tmp_path / "runs" / "src" / "model.keras")
    smaller = keras.saving.load_model(export / "model.keras")
    assert smaller.count_params() == report["parameters"]["total"] < source_model.count_params()
    for cut in report["shrunk"]:
        assert smaller.get_layer(cut["layer"]).kernel.shape[-1] == cut["kept"]
    parity = json.loads((export / "metadata.json").read_text())["parity"]
    assert parity["tflite"]["top1_agreement"] == 1.0


@pytest.mark.slow
def test_qat_exports_an_int8_tflite_compared_with_post_training_quantisation(source_run):
    """--qat on the faithful LeNet-5 (custom layers: their inner tensors are calibrated, the
    rest quantised with the trained ranges): the int8 file agrees with the QAT Keras model
    within the export's int8 thresholds, and the table sets it against the source's own
    post-training int8 file, each accuracy that of the file."""
    root = source_run
    out = ["--output-dir", str(root / "runs"), "--export-dir", str(root / "sm")]
    args = [str(root / "runs" / "src"), "--qat", "--epochs", "1", "--run-name", "qat", *out]
    result = CliRunner().invoke(main, ["compress", *args])
    assert result.exit_code == 0, result.output
    export = root / "sm" / "qat"
    assert (export / "model_int8.tflite").is_file() and not (export / "model.tflite").exists()
    parity = json.loads((export / "metadata.json").read_text())["parity"]
    assert parity["tflite_int8"]["top1_agreement"] >= 0.98
    assert parity["tflite_int8"]["accuracy_loss"] <= 0.01
    report = json.loads((root / "runs" / "qat" / "compression.json").read_text())
    rows = {row["artifact"]: row for row in report["files"]}
    assert rows["int8 TFLite, QAT"]["accuracy"] == parity["tflite_int8"]["accuracy"]
    assert report["qat"]["change_points"] == pytest.approx(
        100 * (report["qat"]["qat_accuracy"] - report["qat"]["post_training_accuracy"])
    )
    assert (
        report["qat"]["post_training_accuracy"]
        == (rows["int8 TFLite, source, post-training"]["accuracy"])
    )
    assert "against the source's post-training int8" in result.stdout
    # Nothing pruned or shared: the paper's sparse format has nothing to estimate.
    assert report["deep_compression"] is None
    assert "storage estimate: not applicable" in result.stdout
    # The run's model.keras loads in a fresh process's way (registered layers) and evaluates.
    evaluated = CliRunner().invoke(main, ["evaluate", str(root / "runs" / "qat")])
    assert evaluated.exit_code == 0, evaluated.output
