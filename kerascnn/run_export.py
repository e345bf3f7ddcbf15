"""Exports on any Keras backend: the one at the end of ``kerascnn train`` (``export_run``)
and ``kerascnn export`` (``export_anywhere``).

The SavedModel, TFLite and ONNX converters trace the model with TensorFlow, so they need the
TensorFlow backend. On it, both export in this process. On JAX or PyTorch, they start a child
process of this module with ``KERAS_BACKEND=tensorflow``, which loads the ``model.keras`` (a
backend-neutral file) and exports it the same way; without TensorFlow installed the run's
export is skipped with one line saying how to run it elsewhere (``kerascnn export`` says it
cannot run). Either way the export directory and its parity figures are the same.

    python -m kerascnn.run_export '{"job": "run" | "trained", "arguments": {...}}'

is the child's command line (not meant for users: ``kerascnn export`` is theirs).
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
from kerascnn.export import ExportResult, export_model, export_trained
from kerascnn.training.config import TrainConfig
from kerascnn.training.run import TrainResult, load_result

# The export parity check runs on at most this many test images (a large test split, such as
# an image folder's, is never decoded into memory whole).
PARITY_LIMIT = 1000


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


def export_anywhere(source: str | Path, export_dir: str | Path, **options) -> ExportResult:
    """``kerascnn export``: ``export_trained(source, export_dir, **options)`` in this process
    on TensorFlow, in a TensorFlow child process on another backend.

    Raises:
        ExportError: TensorFlow is not installed, or the export failed (the child's line).
    """
    if keras.backend.backend() == "tensorflow":
        return export_trained(source, export_dir, **options)
    if importlib.util.find_spec("tensorflow") is None:
        raise ExportError(
            f"kerascnn export needs TensorFlow (the converters trace the model with it), not "
            f"installed here (backend {keras.backend.backend()}): run it where it is"
        )
    arguments = {"source": str(source), "export_dir": str(export_dir), **options}
    return in_child("trained", arguments)


def export_in_child(run_dir: Path, destination: Path, *, overwrite: bool = False) -> ExportResult:
    """``export_in_process`` of the run in ``run_dir``, in a TensorFlow child process."""
    arguments = {"run_dir": str(run_dir), "destination": str(destination), "overwrite": overwrite}
    return in_child("run", arguments)


def in_child(job: str, arguments: dict) -> ExportResult:
    """Run this module with ``KERAS_BACKEND=tensorflow`` on one of ``JOBS``; its result, read
    from the JSON line it prints. A user's error in the child (its ``Error:`` line) is raised
    as it is; anything else as the child's last line."""
    command = [sys.executable, "-m", __name__, json.dumps({"job": job, "arguments": arguments})]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        errors = [line for line in lines if line.startswith("Error: ")]
        if errors:
            raise ExportError(errors[-1].removeprefix("Error: "))
        raise ExportError(f"export in a TensorFlow process failed: {lines[-1]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return ExportResult(
        directory=Path(found["directory"]), parity=found["parity"], kept=found["kept"]
    )


def _export_run_dir(run_dir: str, destination: str, overwrite: bool) -> ExportResult:
    return export_in_process(load_result(Path(run_dir)), Path(destination), overwrite=overwrite)


JOBS = {"run": _export_run_dir, "trained": export_trained}


def main(argv: list[str]) -> int:
    """The child: one of ``JOBS`` with its arguments (``argv[0]``, JSON); one JSON line on
    success, one ``Error:`` line and status 2 on a user-facing error."""
    request = json.loads(argv[0])
    try:
        exported = JOBS[request["job"]](**request["arguments"])
    except KerasCNNError as error:
        print(f"Error: {first_line(error)}", file=sys.stderr)
        return 2
    found = {"directory": str(exported.directory), "parity": exported.parity}
    print(json.dumps({**found, "kept": exported.kept}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
