"""Deployment end to end: ``kerascnn export`` of a LeNet-5 trained here on the digits, in
every format and TFLite quantisation mode; each artifact loaded in a subprocess that does not
import kerascnn (TensorFlow, LiteRT, ONNX Runtime only) and held to the parity thresholds;
predict, evaluate and benchmark on every kind; failures that leave nothing.

The thresholds are README's ("Export and deployment"): float32 artifacts agree on every top-1
within 1e-4 of the Keras probabilities, float16 on >= 99.5% of top-1, full-integer int8 on
>= 98% losing at most 1 point of accuracy. Every figure compared is computed here from the
artifacts' outputs."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import kerascnn
import kerascnn.export
import kerascnn.runtime
from kerascnn.cli import main
from kerascnn.data import load_dataset, split_arrays
from kerascnn.data.pipeline import convert_channels
from kerascnn.errors import ExportError
from kerascnn.export.saved_model import to_channels

pytestmark = pytest.mark.slow

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TOP_K = 3
FLOAT32_TOLERANCE = 1e-4
MIN_AGREEMENT = {"float16": 0.995, "dynamic": 0.98, "int8": 0.98}
MAX_INT8_ACCURACY_LOSS = 0.01
TFLITE_FILES = {
    "none": "model.tflite",
    "float16": "model_float16.tflite",
    "dynamic": "model_dynamic.tflite",
    "int8": "model_int8.tflite",
}
EXPORTED = {"model.keras", "1", "labels.txt", "metadata.json", "model.onnx", *TFLITE_FILES.values()}


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def load_digits():
    data = load_dataset("digits")
    size = {"image_size": (32, 32), "channels": 1}
    return split_arrays(data.train, **size), split_arrays(data.test, **size), data.test


@pytest.fixture(scope="module")
def digits():
    return load_digits()


STANDALONE = """
    import json, sys
    import numpy as np, onnxruntime, tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    export, images_file, out, modes = sys.argv[1:5]
    pngs = sys.argv[5:]
    images = np.load(images_file)
    results = {}

    loaded = tf.saved_model.load(export + "/1")
    for name, signature in loaded.signatures.items():
        if name == "serving_default":
            outputs = signature(images=tf.constant(images))
        else:
            encoded = [open(p, "rb").read() for p in pngs]
            outputs = signature(image_bytes=tf.constant(encoded))
        for key, value in outputs.items():
            value = value.numpy()
            # Class names: bytes, saved as a fixed-width bytes array (object arrays need pickle).
            results[f"{name}/{key}"] = value.astype("S") if value.dtype == object else value

    tflite_dtypes = {}
    for mode, filename in json.loads(modes).items():
        runner = Interpreter(model_path=export + "/" + filename).get_signature_runner()
        details = runner.get_input_details()["images"]
        output_details = runner.get_output_details()["probabilities"]
        feed = images
        if details["dtype"] == np.int8:
            scale, zero = details["quantization"]
            feed = np.clip(np.round(images / scale + zero), -128, 127).astype(np.int8)
        probabilities = runner(images=feed)["probabilities"]
        if output_details["dtype"] == np.int8:
            scale, zero = output_details["quantization"]
            probabilities = (probabilities.astype(np.float32) - zero) * scale
        results["tflite/" + mode] = probabilities
        tflite_dtypes[mode] = [np.dtype(details["dtype"]).name, probabilities.dtype.name,
                               np.dtype(output_details["dtype"]).name]

    session = onnxruntime.InferenceSession(export + "/model.onnx")
    results["onnx"] = session.run(["probabilities"], {"images": images})[0]
    meta = session.get_modelmeta().custom_metadata_map
    np.savez(out, **results)
    print(json.dumps({
        "kerascnn_imported": any(m.startswith("kerascnn") for m in sys.modules),
        "signatures": sorted(loaded.signatures),
        "tflite_dtypes": tflite_dtypes,
        "onnx_class_names": json.loads(meta["class_names"]),
    }))
"""


def built_once(tmp_path_factory, name, build):
    """A directory ``build(directory)`` fills once per test session: under pytest-xdist the
    first worker to get here builds it and the others wait for it, rather than each training
    and exporting the same model."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    done, failed = root / ".done", root / ".failed"
    try:
        root.mkdir()  # atomic: exactly one worker succeeds
    except FileExistsError:
        deadline = time.monotonic() + 900
        while not done.exists():
            if failed.exists():
                pytest.fail(f"another worker failed to build {root}: {failed.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for another worker to build {root}")
            time.sleep(0.2)
        return root
    try:
        build(root)
    except BaseException as error:
        failed.write_text(repr(error)[:3000])
        raise
    done.write_text("")
    return root


def build_deployment(root):
    """Train, export with the CLI, write client images and run every artifact outside
    kerascnn; everything the tests look at lands under ``root``."""
    (images, labels), (test_images, _), test = load_digits()
    # A LeNet-5 (modern variant) trained for a few epochs, saved as a run would be: its
    # model.keras beside a metadata.json naming the dataset and the classes.
    keras.utils.set_random_seed(0)
    model = kerascnn.create_model("lenet5", num_classes=10, variant="modern")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=4, batch_size=32, verbose=0)
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "metadata.json").write_text(
        json.dumps({"model": "lenet5", "dataset": "digits", "class_names": CLASS_NAMES})
    )
    result = invoke(
        [
            "export", run, "--export-dir", root / "exports", "--name", "lenet5",
            "--format", "saved_model,tflite,onnx", "--quantize", "none,float16,dynamic,int8",
            "--top-k", TOP_K,
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (root / "export.txt").write_text(result.output)
    # Images as a client would send them: test digits (8x8 grayscale PNG) and random RGB
    # and RGBA pictures of other sizes, which the model's graph must convert and resize.
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    pictures = [test.images[i] for i in range(4)]
    pictures += [rng.integers(0, 256, (40, 52, 3)), rng.integers(0, 256, (20, 24, 4))]
    pngs = []
    for index, picture in enumerate(pictures):
        path = root / "images" / f"image{index}.png"
        path.write_bytes(tf.io.encode_png(np.asarray(picture, "uint8")).numpy())
        pngs.append(str(path))
    # Every artifact run in a fresh Python that never imports kerascnn, on the test split
    # (raw pixels) and, for the SavedModel's bytes signature, on the PNG files.
    np.save(root / "images.npy", test_images)
    script = root / "standalone.py"
    script.write_text(textwrap.dedent(STANDALONE))
    arguments = [root / "exports" / "lenet5", root / "images.npy", root / "outputs.npz"]
    done = subprocess.run(
        [sys.executable, script, *arguments, json.dumps(TFLITE_FILES), *pngs],
        cwd=root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (root / "report.json").write_text(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    return built_once(tmp_path_factory, "deployment", build_deployment)


@pytest.fixture(scope="module")
def trained(deployment):
    run = deployment / "run"
    return run, keras.saving.load_model(run / "model.keras", compile=False)


@pytest.fixture(scope="module")
def exported(deployment):
    return deployment / "exports" / "lenet5", (deployment / "export.txt").read_text()


@pytest.fixture(scope="module")
def pngs(deployment):
    return sorted((deployment / "images").glob("*.png"))


@pytest.fixture(scope="module")
def standalone(deployment):
    report = json.loads((deployment / "report.json").read_text())
    return report, dict(np.load(deployment / "outputs.npz"))


@pytest.fixture(scope="module")
def keras_probabilities(trained, digits):
    _, model = trained
    _, (images, _), _ = digits
    return model.predict(images, verbose=0)


def agreement(a, b):
    return float(np.mean(a.argmax(-1) == b.argmax(-1)))


def accuracy(probabilities, labels):
    return float(np.mean(probabilities.argmax(-1) == labels))


# -- what the export writes ---------------------------------------------------------------


def test_export_writes_every_format_and_prints_each_parity(exported):
    directory, output = exported
    assert {p.name for p in directory.iterdir()} == EXPORTED
    assert sorted(p.name for p in directory.parent.iterdir()) == ["lenet5"]  # no leftovers
    assert (directory / "labels.txt").read_text().splitlines() == CLASS_NAMES
    for name in ("saved_model", "tflite", "tflite_float16", "tflite_dynamic", "tflite_int8"):
        assert f"parity {name} " in output
    assert "parity onnx " in output


def test_artifacts_run_without_kerascnn(standalone):
    report, _ = standalone
    assert report["kerascnn_imported"] is False
    assert report["signatures"] == ["serving_bytes", "serving_default"]
    assert report["onnx_class_names"] == CLASS_NAMES


def test_saved_model_raw_pixel_signature(standalone, keras_probabilities):
    _, outputs = standalone
    probabilities = outputs["serving_default/probabilities"]
    assert np.abs(probabilities - keras_probabilities).max() < FLOAT32_TOLERANCE
    expected_top = np.argsort(-keras_probabilities, axis=-1, kind="stable")[:, :TOP_K]
    indices = outputs["serving_default/top_k_indices"]
    assert indices.shape == (len(probabilities), TOP_K)
    np.testing.assert_array_equal(indices[:, 0], expected_top[:, 0])
    names = outputs["serving_default/top_k_classes"]
    assert [[n.decode() for n in row] for row in names] == [
        [CLASS_NAMES[i] for i in row] for row in indices
    ]


def test_saved_model_bytes_signature_matches_predict_on_the_files(standalone, pngs):
    _, outputs = standalone
    probabilities = outputs["serving_bytes/probabilities"]
    assert probabilities.shape == (len(pngs), 10)
    result = invoke(["predict", pngs[0].parent.parent / "run", *pngs, "--top-k", 10, "--json"])
    assert result.exit_code == 0, result.output
    for row, prediction in zip(probabilities, json.loads(result.output), strict=True):
        expected = np.zeros(10)
        for entry in prediction["top_k"]:
            expected[entry["index"]] = entry["probability"]
        assert np.abs(row - expected).max() < FLOAT32_TOLERANCE
    first = outputs["serving_bytes/top_k_classes"][:, 0]
    assert [n.decode() for n in first] == [
        p["top_k"][0]["class"] for p in json.loads(result.output)
    ]


def test_tflite_float32_and_onnx_agree_on_every_top1(standalone, keras_probabilities):
    _, outputs = standalone
    for name in ("tflite/none", "onnx"):
        assert np.abs(outputs[name] - keras_probabilities).max() < FLOAT32_TOLERANCE, name
        assert agreement(outputs[name], keras_probabilities) == 1.0, name


@pytest.mark.parametrize("mode", ["float16", "dynamic", "int8"])
def test_quantised_tflite_meets_its_threshold(standalone, keras_probabilities, digits, mode):
    report, outputs = standalone
    _, (_, labels), _ = digits
    probabilities = outputs[f"tflite/{mode}"]
    assert agreement(probabilities, keras_probabilities) >= MIN_AGREEMENT[mode]
    if mode == "int8":
        # Full integer: int8 in and out, dequantised by the client.
        assert report["tflite_dtypes"]["int8"] == ["int8", "float32", "int8"]
        loss = accuracy(keras_probabilities, labels) - accuracy(probabilities, labels)
        assert loss <= MAX_INT8_ACCURACY_LOSS
    else:
        assert report["tflite_dtypes"][mode][0] == "float32"


def test_metadata_records_the_measured_parity(exported, standalone, keras_probabilities, digits):
    directory, _ = exported
    _, outputs = standalone
    _, (_, labels), _ = digits
    parity = json.loads((directory / "metadata.json").read_text())["parity"]
    measured = {
        "saved_model": outputs["serving_default/probabilities"],
        "tflite": outputs["tflite/none"],
        "tflite_float16": outputs["tflite/float16"],
        "tflite_dynamic": outputs["tflite/dynamic"],
        "tflite_int8": outputs["tflite/int8"],
        "onnx": outputs["onnx"],
    }
    assert set(parity) == set(measured)
    for name, probabilities in measured.items():
        figures = parity[name]
        assert figures["images"] == len(labels)
        assert figures["top1_agreement"] == pytest.approx(
            agreement(probabilities, keras_probabilities), abs=1 / len(labels)
        )
        assert figures["max_abs_diff"] == pytest.approx(
            np.abs(probabilities - keras_probabilities).max(), abs=1e-3
        )
        assert figures["keras_accuracy"] == pytest.approx(accuracy(keras_probabilities, labels))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("have", [1, 2, 3, 4])
def test_graph_channel_conversion_matches_the_pipeline(channels, have):
    """serving_bytes converts channels known only at run time as the training pipeline does
    for known ones (gray + alpha, which the pipeline never meets, is taken as gray)."""
    image = np.random.default_rng(have).integers(0, 256, (5, 6, have)).astype("float32")
    convert = tf.function(
        lambda x: to_channels(x, channels),
        input_signature=[tf.TensorSpec([None, None, None], tf.float32)],
    )
    reference = image[..., :1] if have == 2 else image
    expected = convert_channels(tf.constant(reference), channels).numpy()
    np.testing.assert_allclose(convert(tf.constant(image)).numpy(), expected)


# -- predict and evaluate on every kind -----------------------------------------------------

ARTIFACTS = ["model.keras", "1", "model.tflite", "model_int8.tflite", "model.onnx"]


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_predict_and_evaluate_every_artifact(exported, pngs, trained, artifact):
    directory, _ = exported
    _, model = trained
    digit_files = pngs[:4]
    result = invoke(["predict", directory / artifact, *digit_files, "--json", "--top-k", 2])
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.output)
    pixels = kerascnn.runtime.read_images(digit_files, (32, 32, 1))
    expected = model.predict(pixels, verbose=0).argmax(-1)
    assert [p["top_k"][0]["index"] for p in predictions] == list(expected)
    assert [p["top_k"][0]["class"] for p in predictions] == [CLASS_NAMES[i] for i in expected]

    result = invoke(["evaluate", directory / artifact, "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    parity = json.loads((directory / "metadata.json").read_text())["parity"]
    name = {
        "model.keras": "saved_model",
        "1": "saved_model",
        "model.tflite": "tflite",
        "model_int8.tflite": "tflite_int8",
        "model.onnx": "onnx",
    }[artifact]
    key = "keras_accuracy" if artifact == "model.keras" else "accuracy"
    assert metrics["accuracy"] == pytest.approx(parity[name][key])


def test_class_names_travel_with_the_files(exported, tmp_path):
    """Without metadata.json: a .onnx file has them in its metadata, a .tflite file beside
    labels.txt reads them from there."""
    directory, _ = exported
    for name in ("model.onnx", "model_int8.tflite"):
        alone = tmp_path / name.split(".")[-1]
        alone.mkdir()
        shutil.copy(directory / name, alone / name)
        if name.endswith(".tflite"):
            shutil.copy(directory / "labels.txt", alone / "labels.txt")
        artifact = kerascnn.runtime.load_artifact(alone / name)
        assert artifact.class_names == CLASS_NAMES


# -- benchmark -------------------------------------------------------------------------------


def test_benchmark_times_every_artifact_against_keras(exported):
    directory, _ = exported
    args = ["benchmark", directory, "--batch-size", 4, "--warmup", 0, "--repeats", 2]
    result = invoke([*args, "--threads", 1, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    timings = payload["timings"]
    listed = {t["artifact"].rsplit("/", 1)[-1] for t in timings}
    assert listed == EXPORTED - {"labels.txt", "metadata.json"}
    keras_timing = next(t for t in timings if t["kind"] == "keras")
    for t in timings:
        assert t["latency_ms"] > 0 and t["throughput"] > 0 and t["batch_size"] == 4
        assert t["latency_vs_keras"] == pytest.approx(keras_timing["latency_ms"] / t["latency_ms"])
        assert t["throughput_vs_keras"] == pytest.approx(
            t["throughput"] / keras_timing["throughput"]
        )
    assert payload["machine"]["cores"] == os.cpu_count()
    table = invoke(args).output
    assert "batch-1 latency (ms)" in table and "batch-4 throughput (images/s)" in table
    assert all(name in table for name in listed)


def test_benchmark_refuses_artifacts_of_different_models(exported, tmp_path):
    directory, _ = exported
    other = kerascnn.create_model("lenet5", num_classes=10, input_shape=(36, 36, 1))
    other.save(tmp_path / "other.keras")
    result = CliRunner().invoke(
        main, ["benchmark", str(directory / "model.onnx"), str(tmp_path / "other.keras")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error:") and "one model's artifacts" in result.output


# -- failures --------------------------------------------------------------------------------


def test_a_failed_onnx_conversion_leaves_nothing(trained, tmp_path, monkeypatch):
    run, _ = trained

    def explode(*args, **kwargs):
        raise RuntimeError("Unsupported ops: Foo\nmore converter log")

    monkeypatch.setattr(kerascnn.export.directory, "convert_onnx", explode)
    result = CliRunner().invoke(
        main, ["export", str(run), "--export-dir", str(tmp_path), "--format", "onnx"]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: export to")
    assert "Unsupported ops: Foo" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_an_int8_model_that_disagrees_fails_the_parity_check(
    exported, trained, digits, monkeypatch
):
    directory, _ = exported
    _, model = trained
    _, (images, labels), _ = digits
    original = kerascnn.runtime.TFLiteRunner

    class Shifted(original):
        """Predicts the next class for a third of the images, as a broken quantisation might."""

        def __call__(self, images):
            outputs = super().__call__(images)
            if self.input_dtype == np.int8:
                outputs[::3] = np.roll(outputs[::3], 1, axis=-1)
            return outputs

    monkeypatch.setattr(kerascnn.export.directory, "TFLiteRunner", Shifted)
    with pytest.raises(ExportError, match="tflite_int8 disagrees with the Keras model: top-1"):
        kerascnn.export.measure_parity(model, directory, images, labels)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--format", "pickle"], "unknown export format pickle"),
        (["--quantize", "int4"], "unknown quantisation int4"),
        (["--format", "onnx", "--quantize", "int8"], "--quantize applies to TFLite"),
    ],
)
def test_bad_export_options_are_one_line_errors(trained, tmp_path, options, message):
    run, _ = trained
    result = CliRunner().invoke(main, ["export", str(run), "--export-dir", str(tmp_path), *options])
    assert result.exit_code == 2
    assert result.output.startswith("Error:") and message in result.output
    assert list(tmp_path.iterdir()) == []


def test_int8_without_calibration_data_is_refused(trained, tmp_path):
    _, model = trained
    model.save(tmp_path / "alone.keras")  # no metadata: no dataset to calibrate on
    result = CliRunner().invoke(
        main,
        ["export", str(tmp_path / "alone.keras"), "--export-dir", str(tmp_path / "out")]
        + ["--quantize", "int8"],
    )
    assert result.exit_code == 2
    assert "at least 200 training images" in result.output
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_onnx_export_without_tf2onnx_says_what_to_install(monkeypatch, tmp_path):
    from kerascnn.export.onnx import convert_onnx

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx raises ImportError
    with pytest.raises(ExportError, match=r"kerascnn\[onnx\]"):
        convert_onnx(tmp_path)
