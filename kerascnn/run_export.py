"""The export at the end of ``kerascnn train``, on any Keras backend.

The SavedModel, TFLite and ONNX converters trace the model with TensorFlow, so they need the
TensorFlow backend. On it, ``export_run`` exports the inference model in the training
process. On JAX or PyTorch, ``export_run`` starts a child process of this module with
``KERAS_BACKEND=tensorflow``, which loads the run's ``model.keras`` (a backend-neutral file)
and exports it the same way; without TensorFlow installed the export is skipped with one line
saying how to run it elsewhere. Either way the export directory and its parity figures are
the same.

    python -m kerascnn.run_export RUN_DIR DESTINATION [--overwrite]

is the child's command line (not meant for users: ``kerascnn export RUN_DIR`` is theirs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import keras

from kerascnn.data import Dataset, load_dataset, split_arrays
from kerascnn.errors import ExportError, KerasCNNError, first_line
from kerascnn.export import ExportResult, export_model
from kerascnn.training.config import TrainConfig
from kerascnn.training.run import TrainResult, load_result

# The export parity check runs on at most this many test images (a large test split, such as
# an image folder's, is never decoded into memory whole).
PARITY_LIMIT = 1000
OVERWRITE = "--overwrite"


@dataclass
class Skipped:
    """An export that could not run here, and the line telling the user how to run it."""

    note: str


def export_run(
    result: TrainResult,
    destination: Path,
    *,
    overwrite: bool = False,
    dataset: Dataset | None = None,
) -> ExportResult | Skipped:
    """Export a completed run's inference model to ``destination`` with the parity check on
    (at most ``PARITY_LIMIT`` images of) the test split: in this process on TensorFlow, in a
    TensorFlow child process on another backend, or ``Skipped`` without TensorFlow.

    ``dataset`` is the run's, already loaded (read again from ``config.yaml`` otherwise).

    Raises:
        ExportError: the export failed (in the child too: its one line).
    """
    if keras.backend.backend() == "tensorflow":
        return export_in_process(result, destination, overwrite=overwrite, dataset=dataset)
    if importlib.util.find_spec("tensorflow") is None:
        return Skipped(
            f"export skipped: it needs TensorFlow, not installed here (backend "
            f"{keras.backend.backend()}); run `kerascnn export {result.run_dir}` where it is"
        )
    return export_in_child(result.run_dir, destination, overwrite=overwrite)


def export_in_process(
    result: TrainResult,
    destination: Path,
    *,
    overwrite: bool = False,
    dataset: Dataset | None = None,
) -> ExportResult:
    """``export_model`` of ``result.model`` with the run's metadata and metrics summary."""
    run_dir = result.run_dir
    if dataset is None:
        config = TrainConfig.from_yaml(run_dir / "config.yaml")
        dataset = load_dataset(config.dataset, **config.data.source_options())
    height, width, channels = result.metadata["input_shape"]
    images, _ = split_arrays(
        dataset.test, image_size=(height, width), channels=channels, limit=PARITY_LIMIT
    )
    summary = {k: v for k, v in result.metrics.items() if k != "history"}
    return export_model(
        result.model,
        destination,
        metadata={**result.metadata, "run": str(run_dir), "metrics": summary},
        parity_images=images,
        overwrite=overwrite,
    )


def export_in_child(run_dir: Path, destination: Path, *, overwrite: bool = False) -> ExportResult:
    """Run this module with ``KERAS_BACKEND=tensorflow`` on ``run_dir``; its result, read
    from the JSON line it prints."""
    command = [sys.executable, "-m", __name__, str(run_dir), str(destination)]
    if overwrite:
        command.append(OVERWRITE)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        errors = [line for line in lines if line.startswith("Error: ")]
        message = errors[-1].removeprefix("Error: ") if errors else lines[-1]
        raise ExportError(f"export in a TensorFlow process failed: {message}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return ExportResult(
        directory=Path(found["directory"]), parity=found["parity"], kept=found["kept"]
    )


def main(argv: list[str]) -> int:
    """The child: export ``RUN_DIR`` to ``DESTINATION``; one JSON line on success, one
    ``Error:`` line and status 2 on a user-facing error."""
    overwrite = OVERWRITE in argv
    run_dir, destination = (Path(a) for a in argv if a != OVERWRITE)
    try:
        exported = export_in_process(load_result(run_dir), destination, overwrite=overwrite)
    except KerasCNNError as error:
        print(f"Error: {first_line(error)}", file=sys.stderr)
        return 2
    found = {"directory": str(exported.directory), "parity": exported.parity}
    print(json.dumps({**found, "kept": exported.kept}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
