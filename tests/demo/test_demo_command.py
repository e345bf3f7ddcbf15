"""`kerascnn demo` as a user runs it: the one-line errors before anything starts, and a real
server started by the console script, answering, then stopped by SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from gradio_client import Client, handle_file

import kerascnn.demo
from kerascnn.cli import main
from kerascnn.models import create_model


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demo_command(*args):
    return CliRunner().invoke(main, ["demo", *map(str, args)])


def test_missing_artifact_is_one_error_line():
    result = demo_command("no/such/model.keras", "--port", free_port())
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: no such file or directory: no/such/model.keras"
    ]


def test_port_in_use_is_one_error_line_before_loading_anything():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The artifact is missing too: the port is checked first, before any slow work.
        result = demo_command("no/such/model.keras", "--port", port)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is in use; choose another with --port"
    ]


def test_without_gradio_the_command_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError
    monkeypatch.delitem(sys.modules, "kerascnn.demo.page", raising=False)
    monkeypatch.delattr(kerascnn.demo, "page", raising=False)
    result = demo_command("model.keras", "--port", free_port())
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: the demo needs gradio: pip install 'kerascnn[demo]' (gradio)"
    ]


@pytest.mark.slow
def test_command_serves_until_sigterm_then_stops_cleanly(tmp_path):
    """`kerascnn demo MODEL.keras` prints its URL, answers as `kerascnn predict` does, and
    exits 0 on SIGTERM (as on Ctrl-C) with no traceback."""
    model = tmp_path / "model.keras"
    create_model("lenet5").save(model)  # untrained: this is about the command, not the model
    image = tmp_path / "noise.png"
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 1), dtype="uint8")
    image.write_bytes(tf.io.encode_png(pixels).numpy())
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = subprocess.Popen(
        ["kerascnn", "demo", str(model), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = server.stdout.readline()
        assert first.startswith(f"Running on http://127.0.0.1:{port}"), server.stderr.read()
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        label, *_ = client.predict(handle_file(str(image)), api_name="/predict")
        expected = CliRunner().invoke(main, ["predict", str(model), str(image), "--json"])
        assert label["label"] == json.loads(expected.stdout)[0]["top_k"][0]["class"]
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert server.returncode == 0, err
    assert "Stopped (SIGTERM)." in out
    assert "Traceback" not in err
