"""One short training run shared by the inspection and report tests."""

import pytest
from click.testing import CliRunner

from kerascnn.cli import train_main

EPOCHS = 3


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """LeNet-5 (modern variant: ReLU and max pooling) trained on digits for a few epochs with
    ``kerascnn-train --report`` (the console script's command). The published variant's
    scaled tanh saturates on bright stroke pixels, so its pixel gradients sit beside the
    strokes, not on them."""
    root = tmp_path_factory.mktemp("inspect")
    result = CliRunner().invoke(
        train_main,
        [
            "--epochs",
            str(EPOCHS),
            "--model-option",
            "variant=modern",
            "--no-export",
            "--output-dir",
            str(root / "runs"),
            "--run-name",
            "lenet",
            "--report",
        ],
    )
    assert result.exit_code == 0, result.output[-3000:]
    return root / "runs" / "lenet"
