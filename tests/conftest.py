"""Shared test setup: quiet TensorFlow, a tiny random image helper, and a fresh Keras session
for every test module."""

import json
import os
import signal
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kerascnn.quiet import import_tensorflow_quietly  # noqa: E402

# TensorFlow writes native start-up lines (CUDA probing) when first imported: import it here,
# with them captured, before any test module imports Keras.
import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def _random_pixels(shape, seed=0):
    """Raw 0-255 pixels, as the models take them (they normalise inside)."""
    return np.random.default_rng(seed).uniform(0, 255, size=shape).astype("float32")


@pytest.fixture(scope="session")
def random_pixels():
    """``random_pixels(shape, seed=0)``: float32 raw pixels, uniform in [0, 255)."""
    return _random_pixels


@pytest.fixture(scope="module", autouse=True)
def _fresh_keras_session():
    """Clear Keras's global state (layer name counters, the models built) after each test
    module, so that one module's models do not weigh on the next."""
    yield
    keras.backend.clear_session()


def _killed_after_epoch(command, cwd, env, state_path, epoch: int) -> int:
    """Start a training ``command``, SIGKILL it once its backup (``state_path``) records
    ``epoch`` or later, and return the epoch the backup holds."""
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if state_path.is_file() and json.loads(state_path.read_text())["epoch"] >= epoch:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    return json.loads(state_path.read_text())["epoch"]


def _run_under_jax(script: str, timeout: int = 300) -> None:
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok"), done.stdout[-2000:]


@pytest.fixture
def run_under_jax():
    """``run_under_jax(script)``: ``script`` run by a Python process on Keras's JAX backend
    must succeed and print ``ok`` last."""
    pytest.importorskip("jax")
    return _run_under_jax


@pytest.fixture
def killed_after_epoch():
    """``killed_after_epoch(command, cwd, env, state_path, epoch)``: a run SIGKILLed mid-way."""
    return _killed_after_epoch
