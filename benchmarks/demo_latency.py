"""`kerascnn demo`: how long the page takes to show a prediction, and the server's memory.

For each artifact (or registered model, saved untrained: the time does not depend on the
weights), serve the demo page on 127.0.0.1 in this process, open it in headless Chromium (the
system's chromium and chromedriver), upload an image of the model's input size twice, and read
from the browser's performance log the time from the upload request to the first request for
the answer's pictures (Grad-CAM and saliency; for artifacts without gradients, to the label
appearing). The server's resident memory (VmRSS, and the peak VmHWM) is read after the answers.

    python benchmarks/demo_latency.py lenet5 resnet50
    python benchmarks/demo_latency.py runs/lenet5-digits-.../ saved_models/x/model.tflite
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from kerascnn.quiet import import_tensorflow_quietly

import_tensorflow_quietly()  # before TensorFlow's start-up lines reach the terminal

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from kerascnn import demo  # noqa: E402
from kerascnn.models import create_model  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chromium() -> webdriver.Chrome:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager downloads nothing
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def memory_mib() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def shown_label(driver) -> str:
    """The class the page shows ("" for none), read in the page (the element is replaced as
    the answer changes)."""
    return driver.execute_script(
        "const e = document.querySelector('#label [data-testid=label-output-value]');"
        "return e ? e.textContent.trim() : '';"
    )


def upload_seconds(driver, url: str, image: Path, explains: bool) -> dict[str, float]:
    """Open the page, upload ``image`` and wait for the answer. ``browser_s``: from the upload
    request to the first request for the answer's pictures, in the browser's log (Keras
    models); ``wall_s``: from handing the file to the page to the class showing, polled."""
    driver.get(url + "/")
    while not driver.find_elements(By.CSS_SELECTOR, "#image input[type=file]"):
        time.sleep(0.05)  # the page is still rendering
    driver.get_log("performance")  # drop what came before
    upload = driver.find_element(By.CSS_SELECTOR, "#image input[type=file]")
    started = time.monotonic()
    upload.send_keys(str(image))
    while not shown_label(driver):
        if time.monotonic() - started > 300:
            raise TimeoutError("no answer within 300 s")
        time.sleep(0.02)
    times = {"wall_s": time.monotonic() - started}
    sent = []
    while explains and "browser_s" not in times:
        if time.monotonic() - started > 300:
            raise TimeoutError(f"no pictures within 300 s; requests: {sent}")
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                request = message["params"]["request"]
                sent.append((message["params"]["timestamp"], request["method"], request["url"]))
        uploads = [t for t, m, u in sent if m == "POST" and "/gradio_api/upload" in u]
        pictures = [
            t
            for t, _, u in sent
            if uploads and t > uploads[0] and "/gradio_api/file=" in u and image.stem not in u
        ]
        if pictures:
            times["browser_s"] = min(pictures) - uploads[0]
        time.sleep(0.2)
    return {k: round(v, 2) for k, v in times.items()}


def measure(source: str, driver, workdir: Path) -> dict:
    artifact = Path(source)
    if not artifact.exists():  # a registered model's name
        artifact = workdir / f"{source}.keras"
        create_model(source).save(artifact)
    started = time.perf_counter()
    model = demo.load_demo_model(artifact)
    page = demo.build(model.artifact, examples_dir=workdir / "examples")
    url, _ = demo.launch(page, port=free_port())
    ready = time.perf_counter() - started
    try:
        height, width, channels = model.artifact.input_shape
        pixels = np.random.default_rng(0).integers(0, 256, (height, width, channels), "uint8")
        image = workdir / f"upload_{height}x{width}x{channels}.png"
        image.write_bytes(tf.io.encode_png(pixels).numpy())
        first = upload_seconds(driver, url, image, model.explains)
        second = upload_seconds(driver, url, image, model.explains)
        return {
            "artifact": artifact.name,
            "kind": model.artifact.kind,
            "input": f"{height}x{width}x{channels}",
            "page_ready_s": round(ready, 1),
            "first": first,
            "second": second,
            **{f"{k}_MiB": round(v) for k, v in memory_mib().items()},
        }
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="artifact paths or registered model names")
    args = parser.parse_args()
    # SIGTERM (a timeout) unwinds like Ctrl-C, so the browser is closed below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    driver = chromium()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for source in args.sources:
                print(json.dumps(measure(source, driver, Path(tmp))), flush=True)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
