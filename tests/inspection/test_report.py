"""`kerascnn report` and `kerascnn train --report`: one self-contained HTML page whose
images are PNGs of the size the page says."""

import base64
import json
import shutil
import warnings
from html.parser import HTMLParser
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from click.testing import CliRunner

from kerascnn import create_model
from kerascnn.cli import main
from kerascnn.evaluation import confusion_matrix
from kerascnn.inspection.report import results_section
from kerascnn.models.counting import multiply_accumulates

pytestmark = pytest.mark.slow
PREFIX = "data:image/png;base64,"


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.headings, self.links, self._heading = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        if tag in ("h1", "h2"):
            self._heading = ""
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.links.append(attrs[key])

    def handle_data(self, data):
        if self._heading is not None:
            self._heading += data

    def handle_endtag(self, tag):
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append(self._heading)
            self._heading = None


def parse(path):
    page = Page()
    page.feed(path.read_text())
    page.close()
    return page


def test_train_report_flag_writes_a_self_contained_page(run_dir):
    page = parse(run_dir / "report.html")
    assert not page.links  # nothing fetched from anywhere
    for section in ("Configuration", "Training curves", "Confusion matrix", "Per-class"):
        assert any(h.startswith(section) for h in page.headings), page.headings
    assert any(h.startswith("Saliency") for h in page.headings)
    assert any(h.startswith("Grad-CAM") for h in page.headings)


def test_report_command_images_decode_as_pngs_of_the_stated_size(run_dir):
    (run_dir / "report.html").unlink()
    result = CliRunner().invoke(main, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert str(run_dir / "report.html") in result.output
    page = parse(run_dir / "report.html")
    # Curves, confusion matrix, and three saliency and three Grad-CAM examples at least.
    assert len(page.images) >= 8
    for image in page.images:
        assert image["src"].startswith(PREFIX)
        data = base64.b64decode(image["src"][len(PREFIX) :])
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        decoded = tf.io.decode_png(data)
        assert decoded.shape[:2] == (int(image["height"]), int(image["width"]))


def test_report_states_the_runs_numbers(run_dir):
    text = (run_dir / "report.html").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{100 * metrics['test']['accuracy']:.2f}%" in text
    assert "variant: modern" in text  # the resolved config.yaml


def test_report_draws_the_learning_rate_the_run_used(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    rates = metrics["history"]["learning_rate"]
    assert len(rates) == metrics["epochs_completed"]
    assert rates == pytest.approx([config["learning_rate"]] * len(rates))
    (curves,) = [i for i in parse(run_dir / "report.html").images if "curves" in i["alt"]]
    assert "learning rate" in curves["alt"]


def test_report_puts_results_first_and_the_configuration_in_a_collapsed_block(run_dir):
    text = (run_dir / "report.html").read_text()
    headings = parse(run_dir / "report.html").headings
    assert headings[1] == "Results" and headings[-1] == "Configuration"
    configuration = text[text.index("<h2>Configuration</h2>") :]
    assert configuration.startswith("<h2>Configuration</h2><details><summary>")
    assert "<details open" not in text  # collapsed until clicked


def test_report_header_names_the_model_the_versions_the_machine_and_the_date(run_dir):
    text = (run_dir / "report.html").read_text()
    header = text[text.index('<table class="header">') : text.index("<h2>Results")]
    metadata = json.loads((run_dir / "metadata.json").read_text())
    assert f"{metadata['parameters']:,} parameters" in header
    # The trained variant's multiply-accumulates, counted on a fresh copy of it.
    fresh = create_model(
        "lenet5", num_classes=len(metadata["class_names"]), **metadata["model_options"]
    )
    macs = multiply_accumulates(fresh)
    assert f"{macs / 1e6:,.2f} M multiply-accumulates" in header
    for name, version in (("TensorFlow", tf.__version__), ("Keras", keras.__version__)):
        assert f"{name} {version}" in header
    assert "kerascnn " in header and "cores" in header and " UTC" in header


def test_report_curves_mark_the_best_epoch(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (curves,) = [i for i in parse(run_dir / "report.html").images if "curves" in i["alt"]]
    assert f"the best epoch, {metrics['best_epoch']}" in curves["alt"]


CHROMIUM = [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")]
CHROMEDRIVER = shutil.which("chromedriver")


def headless_chromium(width: int):
    """Selenium's Chrome driver on the system's Chromium (never downloaded), or a loud skip."""
    browser = next((b for b in CHROMIUM if b), None)
    if browser is None or CHROMEDRIVER is None:
        message = "no Chromium and chromedriver on PATH: the report's layout is not checked"
        warnings.warn(message, stacklevel=2)
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},900")
    service = webdriver.chrome.service.Service(CHROMEDRIVER)
    return webdriver.Chrome(service=service, options=options)


def test_report_has_no_horizontal_scroll_at_1280_pixels(run_dir):
    """The widest pictures (curves, misclassified grid) scale to the column in a
    1280-pixel window: the page is no wider than the window."""
    driver = headless_chromium(1280)
    try:
        driver.get(Path(run_dir / "report.html").resolve().as_uri())
        inner, scroll = driver.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth]"
        )
        assert inner == 1280
        assert scroll <= inner
        shown = driver.execute_script(
            "return Array.from(document.images).map(i => i.getBoundingClientRect().right)"
        )
        assert max(shown) <= inner
    finally:
        driver.quit()


def test_confusion_matrix_counts():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    matrix = confusion_matrix(labels, predictions, 3)
    assert matrix.sum() == len(labels)
    assert np.trace(matrix) == (labels == predictions).sum()
    for true, predicted in zip(labels, predictions, strict=True):
        assert matrix[true, predicted] >= 1


def test_report_on_a_missing_run_is_one_error_line(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: ")


def test_report_shows_the_runs_warnings_before_its_results():
    metrics = {
        "warnings": ["test accuracy 10.03% is within 5 points of chance"],
        "loss_function": "crossentropy",
        "test": {"accuracy": 0.1003, "top5_accuracy": 0.5, "cross_entropy": 2.3, "loss": 2.4},
    }
    page = "".join(results_section(metrics))
    assert page.index("Warning:") < page.index("<h2>Results</h2>")
    assert "within 5 points of chance" in page
    assert "<th>crossentropy loss</th>" in page and "<td>2.3000</td>" in page
