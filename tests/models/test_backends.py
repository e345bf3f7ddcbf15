"""The same model on JAX as on TensorFlow: with the same weights, the same logits (relative
1e-5), and a training step with a finite loss that changes the weights.

The JAX side runs in one child process for all the models (``backend_parity.py``). On this
suite's 2 CPU cores each model costs a minute or two on JAX (XLA compiles every op of the
eager forward and the whole training step), so the suite checks two networks that hold the
custom layers of the zoo between them: LeNet-5 (its scaled tanh, trainable subsampling,
connection-table convolution and RBF output) and ResNet-20 (batch norm, residual shortcuts).
``KERASCNN_BACKEND_MODELS=all`` (or a comma-separated list) checks every registered model;
``KERASCNN_BACKEND=torch`` the PyTorch backend instead of JAX.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import backend_parity
import numpy as np
import pytest

SCRIPT = Path(backend_parity.__file__)
BACKEND = os.environ.get("KERASCNN_BACKEND", "jax")
CHOSEN = os.environ.get("KERASCNN_BACKEND_MODELS", "lenet5,resnet20")
NAMES = backend_parity.all_names() if CHOSEN == "all" else CHOSEN.split(",")
RELATIVE = 1e-5


@pytest.fixture(scope="module")
def other_backend(tmp_path_factory):
    """What the child process found on ``BACKEND``, per model."""
    pytest.importorskip(BACKEND)
    out = tmp_path_factory.mktemp("parity") / f"{BACKEND}.json"
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *NAMES],
        env=env,
        capture_output=True,
        text=True,
        timeout=300 * len(NAMES),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(out.read_text())
    assert found["backend"] == BACKEND
    return found["models"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_same_logits_and_a_finite_training_step_off_tensorflow(name, other_backend):
    found = other_backend[name]
    assert "error" not in found, found.get("error")
    model = backend_parity.build(name)
    images, _ = backend_parity.images_and_labels(name)
    expected = backend_parity.logits(model, images)
    actual = np.asarray(found["logits"])
    scale = np.abs(expected).max()
    assert scale > 0
    np.testing.assert_allclose(actual, expected, rtol=RELATIVE, atol=RELATIVE * scale)
    assert found["finite"] and found["updated"]
