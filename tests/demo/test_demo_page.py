"""The demo page end to end (README "Try it in a browser"): a trained digits model exported as
.keras, .tflite and .onnx, each served on a free 127.0.0.1 port; the page's answers through
``gradio_client`` against ``kerascnn predict``'s, then the page in headless Chromium."""

import io
import json
import os
import shutil
import socket
import time
import warnings
from urllib.parse import urlparse
from urllib.request import urlopen

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from gradio_client import Client, handle_file
from PIL import Image

from kerascnn import demo
from kerascnn.cli import main, train_main
from kerascnn.data import load_dataset, split_arrays
from kerascnn.export import export_trained
from kerascnn.inspection import Explainer, gradcam, saliency

pytestmark = pytest.mark.slow

# The artifact each page serves, inside the export directory ("." is the directory itself,
# read through its model.keras).
ARTIFACTS = {"keras": ".", "tflite": "model.tflite", "onnx": "model.onnx"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """LeNet-5 trained on digits for one epoch (`kerascnn-train`), exported to TFLite and
    ONNX beside its model.keras (`kerascnn export`)."""
    root = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(
        train_main,
        ["--epochs", "1", "--no-export", "--output-dir", str(root / "runs"), "--run-name", "lenet"],
    )
    assert result.exit_code == 0, result.output[-3000:]
    export = export_trained(root / "runs" / "lenet", root / "export", formats=("tflite", "onnx"))
    return export.directory


@pytest.fixture(scope="module")
def pages(exported, tmp_path_factory):
    """kind -> (local URL, the example images the page offers), one server per artifact."""
    served, pages = {}, []
    for kind, name in ARTIFACTS.items():
        examples = tmp_path_factory.mktemp(f"examples_{kind}")
        page = demo.build(exported / name, examples_dir=examples)
        url, _ = demo.launch(page, port=free_port())
        pages.append(page)
        served[kind] = (url, sorted(examples.glob("*.png")))
    yield served
    for page in pages:
        page.close()


def predicted(artifact, images):
    """`kerascnn predict --json` on the image files: {image: {class: probability}}, top-1."""
    result = CliRunner().invoke(
        main, ["predict", str(artifact), *map(str, images), "--top-k", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    return {
        p["image"]: ({r["class"]: r["probability"] for r in p["top_k"]}, p["top_k"][0]["class"])
        for p in found
    }


def confidences(label: dict) -> dict:
    return {c["label"]: c["confidence"] for c in label["confidences"]}


@pytest.mark.parametrize("kind", ARTIFACTS)
def test_page_answers_equal_predict_for_each_example(exported, pages, kind):
    url, examples = pages[kind]
    names = load_dataset("digits").class_names
    # One example per class, named by its true class.
    assert sorted(p.stem.rsplit("_", 1)[1] for p in examples) == sorted(names)
    expected = predicted(exported / ARTIFACTS[kind], examples)
    client = Client(url + "/", verbose=False)
    for path in examples:
        label, status, *pictures = client.predict(handle_file(str(path)), api_name="/predict")
        probabilities, top1 = expected[str(path)]
        assert label["label"] == top1
        got = confidences(label)
        assert got.keys() == probabilities.keys()
        assert max(abs(got[c] - p) for c, p in probabilities.items()) <= 1e-6
        if kind == "keras":
            assert len(pictures) == 2 and all(min(Image.open(p).size) >= 224 for p in pictures)
            assert "Grad-CAM on layer" in status
        else:
            assert pictures == []


def test_the_pages_maps_are_the_inspection_commands_maps(exported):
    """The page's one-pass Grad-CAM and saliency equal `kerascnn inspect gradcam/saliency`'s."""
    model = keras.saving.load_model(exported / "model.keras")
    images, _ = split_arrays(load_dataset("digits").test, image_size=(32, 32), channels=1, limit=4)
    classes = np.arange(4)
    cams, saliencies = Explainer(model)(images, classes)
    expected_cams, _ = gradcam(model, images, classes)
    np.testing.assert_allclose(cams, expected_cams, rtol=1e-4, atol=1e-4 * expected_cams.max())
    expected = saliency(model, images, classes)
    np.testing.assert_allclose(saliencies, expected, rtol=1e-4, atol=1e-4 * expected.max())


def test_tflite_and_onnx_pages_say_predictions_only(pages):
    for kind in ("tflite", "onnx"):
        config = urlopen(pages[kind][0] + "/config").read().decode()
        assert f"A {kind} artifact gives predictions only" in config
    assert "predictions only" not in urlopen(pages["keras"][0] + "/config").read().decode()


def test_broken_upload_is_a_line_on_the_page_and_the_server_keeps_serving(pages, tmp_path):
    url, examples = pages["keras"]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    client = Client(url + "/", verbose=False)
    label, status, *pictures = client.predict(handle_file(str(broken)), api_name="/predict")
    assert status == "**Error:** cannot decode broken.png: not a JPEG, PNG, BMP or GIF image"
    assert not label and pictures == [None, None]
    label, status, *_ = client.predict(handle_file(str(examples[0])), api_name="/predict")
    assert label["label"] and not status.startswith("**Error")


def test_a_drawing_is_read_as_bright_ink_on_black(exported, pages, tmp_path):
    """The sketchpad's PNG (dark ink, opacity where drawn) gives the answer `predict` gives
    for the same digit stored as the dataset stores it: bright on black."""
    url, examples = pages["keras"]
    digit = np.asarray(Image.open(examples[3]))  # (H, W) bright ink on black
    drawing = np.zeros((*digit.shape, 4), "uint8")
    drawing[..., 3] = digit  # black ink whose opacity is the digit
    path = tmp_path / "drawing.png"
    Image.fromarray(drawing, "RGBA").save(path)
    client = Client(url + "/", verbose=False)
    payload = {"background": None, "layers": [], "composite": handle_file(str(path))}
    label, *_ = client.predict(payload, api_name="/sketch")
    probabilities, top1 = predicted(exported, [examples[3]])[str(examples[3])]
    assert label["label"] == top1
    assert max(abs(confidences(label)[c] - p) for c, p in probabilities.items()) <= 1e-6


# -- in a real browser --------------------------------------------------------------------

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the system's, e.g. Debian's `chromium` package) through Selenium,
    logging every network request. Nothing is downloaded: the driver and the browser are the
    system's (Selenium Manager runs offline)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next(filter(None, map(shutil.which, CHROMIUM)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        message = (
            "NO BROWSER: the demo's browser test needs chromium and chromedriver (Debian: "
            "apt-get install chromium chromium-driver; .ci/run installs them); skipped"
        )
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    yield driver
    driver.quit()


def wait_for(find, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"nothing found in {timeout} s")


def requests_sent(driver) -> list[tuple[float, str, str]]:
    """(browser timestamp in s, method, URL) of every request in the performance log."""
    sent = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            sent.append((message["params"]["timestamp"], request["method"], request["url"]))
    return sent


def test_page_in_chromium(exported, pages, browser, tmp_path):
    """Upload a digit PNG, read the top class from the DOM, see Grad-CAM drawn, and count the
    hosts the page talked to: 127.0.0.1 only."""
    from selenium.webdriver.common.by import By

    url, _ = pages["keras"]
    digit = tmp_path / "digit.png"
    test = load_dataset("digits").test
    digit.write_bytes(tf.io.encode_png(test.images[5]).numpy())
    _, top1 = predicted(exported, [digit])[str(digit)]

    browser.get(url + "/")
    upload = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#image input[type=file]"))
    upload[0].send_keys(str(digit))
    shown = wait_for(
        lambda: browser.execute_script(
            "const e = document.querySelector('#label [data-testid=label-output-value]');"
            "return e ? e.textContent.trim() : '';"
        )
    )
    assert shown == top1
    cam = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#gradcam img"))[0]
    wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", cam))
    # The picture the page shows, as the browser fetched it: not blank.
    source = cam.get_attribute("src")
    assert urlparse(source).hostname == "127.0.0.1"
    pixels = np.asarray(Image.open(io.BytesIO(urlopen(source).read())).convert("L"))
    assert min(pixels.shape) >= 224 and pixels.std() > 10, "the Grad-CAM picture is blank"
    browser.save_screenshot(str(tmp_path / "demo.png"))

    # A broken file: a readable line on the page, and the page keeps answering.
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    browser.find_element(By.CSS_SELECTOR, "#image button[aria-label='Remove Image']").click()
    upload = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#image input[type=file]"))
    upload[0].send_keys(str(broken))
    status = wait_for(lambda: browser.find_element(By.ID, "status").text)
    assert status == "Error: cannot decode broken.png: not a JPEG, PNG, BMP or GIF image"

    sent = requests_sent(browser)
    hosts = {urlparse(u).hostname for _, _, u in sent if urlparse(u).scheme not in ("data", "blob")}
    print(f"\n{len(sent)} requests, hosts {sorted(hosts)}; screenshot {tmp_path / 'demo.png'}")
    assert hosts == {"127.0.0.1"}
    upload_at = min(t for t, m, u in sent if m == "POST" and "/gradio_api/upload" in u)
    pictures_at = min(
        t for t, _, u in sent if "/gradio_api/file=" in u and t > upload_at and "digit" not in u
    )
    print(
        f"first prediction: {pictures_at - upload_at:.2f} s from the upload request to the "
        f"result's pictures (browser log)"
    )
