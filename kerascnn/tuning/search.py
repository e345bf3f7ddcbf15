"""Hyperparameter search: KerasTuner's oracles choose the values, the project's own training
runs each trial.

A search lives in ``<output_dir>/tune/<name>/``:

- ``search.yaml``: what was asked (method, trials, epochs, the space, the base configuration);
  running the same command again continues the search;
- ``tuner/``: KerasTuner's state (the oracle and each trial's values and score), so a killed
  search resumes where it stopped: finished trials are not run again, and the trial that was
  running continues from its last completed epoch (its run directory's backup);
- ``trial-NN/``: one ordinary run directory per trial (config.yaml, metrics.json,
  checkpoints, TensorBoard logs with the HParams of the trial), made by ``plan_training`` and
  ``train``; ``tensorboard --logdir`` on the search shows every trial in the HParams tab;
- ``results.json`` and ``best.yaml``: the trials best first (by validation accuracy; the test
  accuracy is shown, never used to choose) and the best trial's configuration, ready for
  ``kerascnn-train --config best.yaml``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras_tuner
import keras_tuner.src.config
import yaml

from kerascnn.data import Dataset
from kerascnn.errors import InvalidArgumentError, KerasCNNError, MissingFileError
from kerascnn.files import write_text_atomically
from kerascnn.training.config import OutputConfig, TrainConfig, read_yaml, write_yaml
from kerascnn.training.resume import prepare_run_dir, run_status
from kerascnn.training.run import plan_training, train
from kerascnn.tuning.space import Dimension, parse_space, refine, to_hyperparameters

METHODS = ("random", "grid", "bayesian", "hyperband")
OBJECTIVE = "val_accuracy"  # the best checkpoint's validation accuracy
SEARCH_FILE = "search.yaml"
# Settings of a trial's run that the search fixes (the rest come from the base and the space).
OUTPUT_FIELDS = tuple(OutputConfig.__dataclass_fields__)


@dataclass
class SearchPlan:
    """A checked search: what ``search.yaml`` records, and the dataset loaded once."""

    name: str
    directory: Path
    method: str
    trials: int
    epochs: int
    space: list[Dimension]
    base: TrainConfig
    dataset: Dataset
    refined_from: str | None = None
    overwrite: bool = False

    def record(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "trials": self.trials,
            "epochs": self.epochs,
            "space": [_dimension_record(d) for d in self.space],
            "refined_from": self.refined_from,
            "base": {k: v for k, v in self.base.to_dict().items() if k not in OUTPUT_FIELDS},
        }


def _dimension_record(d: Dimension) -> dict[str, Any]:
    if d.kind == "choice":
        return {"field": d.field, "kind": d.kind, "choices": list(d.choices)}
    return {"field": d.field, "kind": d.kind, "low": d.low, "high": d.high}


def _dimension(record: dict[str, Any]) -> Dimension:
    return Dimension(
        record["field"],
        record["kind"],
        record.get("low"),
        record.get("high"),
        tuple(record.get("choices", ())),
    )


@dataclass
class TrialRow:
    """One trial of a search, for the table and ``results.json``."""

    trial_id: str
    values: dict[str, Any]
    status: str  # completed, failed (with ``message``), running
    validation_accuracy: float | None = None
    test_accuracy: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    message: str = ""
    run_dir: str = ""


@dataclass
class SearchResult:
    directory: Path
    space: list[Dimension]
    rows: list[TrialRow]  # best first
    best_config: Path | None
    resumed_trials: int = 0  # finished trials found on disk and not run again
    notes: list[str] = field(default_factory=list)


def trial_name(trial_id: str) -> str:
    """A trial's run directory: ``trial-07`` for KerasTuner's trial "7" (or "07")."""
    return f"trial-{int(trial_id):02d}"


def search_directory(output_dir: str | Path, name: str) -> Path:
    if not name or "/" in name or name in (".", ".."):
        raise InvalidArgumentError(f"--name must be a plain directory name; received {name!r}")
    return Path(output_dir) / "tune" / name


def plan_search(
    base: TrainConfig,
    space: Sequence[str] | Sequence[Dimension],
    *,
    name: str,
    method: str = "random",
    trials: int = 10,
    epochs: int | None = None,
    overwrite: bool = False,
    refined_from: str | None = None,
) -> SearchPlan:
    """Check a search before anything is written: the space, the method, the base
    configuration (``plan_training``: names, sizes, the dataset, loaded here once), and an
    existing search of that name (continued only if it asked the same)."""
    if method not in METHODS:
        raise InvalidArgumentError(f"unknown --method {method!r}; choose one of {METHODS}")
    if trials < 1:
        raise InvalidArgumentError(f"--trials must be at least 1; received {trials}")
    given = list(space)
    dimensions = given if all(isinstance(d, Dimension) for d in given) else parse_space(given)
    if not dimensions:
        raise InvalidArgumentError("give at least one --search FIELD=KIND:ARGUMENTS")
    directory = search_directory(base.output.output_dir, name)
    base = base.updated(epochs=epochs or base.epochs)
    dataset = plan_training(base).dataset
    plan = SearchPlan(name, directory, method, trials, base.epochs, dimensions, base, dataset)
    plan.refined_from, plan.overwrite = refined_from, overwrite
    _check_existing(plan, overwrite)
    return plan


def _check_existing(plan: SearchPlan, overwrite: bool) -> None:
    saved = plan.directory / SEARCH_FILE
    if not plan.directory.exists() or overwrite:
        return
    if not saved.is_file():
        raise InvalidArgumentError(
            f"{plan.directory} exists and holds no search; choose another --name"
        )
    if read_yaml(saved) != yaml.safe_load(yaml.safe_dump(plan.record(), sort_keys=False)):
        raise InvalidArgumentError(
            f"search {plan.name} exists with other settings ({saved}); run the same command "
            f"to continue it, choose another --name or pass --overwrite"
        )


def plan_refined(
    source: str,
    *,
    top: int,
    name: str | None = None,
    output_dir: str = OutputConfig().output_dir,
    method: str = "random",
    trials: int = 10,
    epochs: int | None = None,
    overwrite: bool = False,
) -> SearchPlan:
    """The coarse-to-fine step: search ``source`` again with each range narrowed around its
    ``top`` best trials (``space.refine``), under ``name`` (``<source>-refined``)."""
    directory = search_directory(output_dir, source)
    if not (directory / SEARCH_FILE).is_file():
        raise MissingFileError(f"no search {source!r} (expected {directory / SEARCH_FILE})")
    record = read_yaml(directory / SEARCH_FILE)
    space = [_dimension(d) for d in record["space"]]
    completed = [r for r in read_rows(directory, space) if r.status == "completed"]
    if top < 1 or top > len(completed):
        raise InvalidArgumentError(
            f"--top must be between 1 and the {len(completed)} completed trials of {source}; "
            f"received {top}"
        )
    best = completed[:top]
    narrowed = [refine(d, [row.values[d.field] for row in best]) for d in space]
    base = TrainConfig.from_dict(record["base"], source=str(directory / SEARCH_FILE))
    base = base.updated(output_dir=output_dir)
    return plan_search(
        base,
        narrowed,
        name=name or f"{source}-refined",
        method=method,
        trials=trials,
        epochs=epochs or record["epochs"],
        overwrite=overwrite,
        refined_from=source,
    )


# -- running ------------------------------------------------------------------------------


def make_oracle(plan: SearchPlan) -> keras_tuner.Oracle:
    """KerasTuner's oracle for the method, over the space, maximising validation accuracy."""
    common = {
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "hyperparameters": to_hyperparameters(plan.space),
        "seed": plan.base.seed,
        "tune_new_entries": False,
    }
    oracles = keras_tuner.oracles
    if plan.method == "hyperband":
        # Hyperband's brackets fix the number of trials; --epochs is the longest trial.
        return oracles.HyperbandOracle(max_epochs=plan.epochs, factor=3, **common)
    factory = {
        "random": oracles.RandomSearchOracle,
        "grid": oracles.GridSearchOracle,
        "bayesian": oracles.BayesianOptimizationOracle,
    }[plan.method]
    return factory(max_trials=plan.trials, **common)


# KerasTuner prints the traceback of every failed trial when DEBUG is on (its default); the
# search reports a failed trial in one line and keeps the last line of its message.
keras_tuner.src.config.DEBUG = False


class TrainingTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A KerasTuner tuner whose trial is one ordinary kerascnn run (``plan_training`` then
    ``train``) in ``trial-NN/`` under the search directory."""

    def __init__(self, plan: SearchPlan, notify: Callable[[str], None]):
        self.plan, self.notify = plan, notify
        with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner's "Reloading Tuner"
            super().__init__(make_oracle(plan), directory=str(plan.directory), project_name="tuner")

    def trial_config(self, trial: keras_tuner.engine.trial.Trial) -> TrainConfig:
        values = trial.hyperparameters.values
        return self.plan.base.updated(
            **{d.field: values[d.field] for d in self.plan.space},
            epochs=values.get("tuner/epochs", self.plan.epochs),
            output_dir=str(self.plan.directory),
            run_name=trial_name(trial.trial_id),
            export=False,
            overwrite=False,
        )

    def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
        plan, config = self.plan, self.trial_config(trial)
        run_dir = self.plan.directory / config.output.run_name
        try:
            if run_status(run_dir) == "completed":  # killed after the run, before KerasTuner
                metrics = json.loads((run_dir / "metrics.json").read_text())
            else:
                prepare_run_dir(run_dir, False, config.to_dict())
                training = plan_training(config, dataset=plan.dataset)
                metrics = train(training, run_dir, verbose=0).metrics
        except KerasCNNError as error:  # a diverged trial fails; the search goes on
            self.notify(f"trial {trial.trial_id} failed: {error}")
            raise keras_tuner.errors.FailedTrialError(str(error)) from None
        except Exception as error:  # a bug stops the search with its traceback
            raise keras_tuner.errors.FatalError(repr(error)) from error
        values = {d.field: trial.hyperparameters.values[d.field] for d in plan.space}
        self.notify(trial_line(row_of(plan.directory, trial.trial_id, values, "completed")))
        return {OBJECTIVE: metrics["validation"]["accuracy"]}

    def on_trial_begin(self, trial) -> None:
        values = trial.hyperparameters.values
        shown = "  ".join(f"{d.field}={_short(values[d.field])}" for d in self.plan.space)
        self.notify(f"trial {trial.trial_id} starts: {shown}")

    def on_trial_end(self, trial) -> None:
        super().on_trial_end(trial)
        write_results(self.plan)


def run_search(
    plan: SearchPlan, notify: Callable[[str], None] | None = None, *, workers: int = 1
) -> SearchResult:
    """Run the search, or continue the one of that name; returns the trials best first.

    With ``workers`` > 1, KerasTuner's distributed mode on this machine: this process holds
    the oracle (the chief) and ``workers`` processes (``kerascnn.tuning.worker``) each run
    trials as it hands them out."""
    notify = notify or (lambda line: None)
    if plan.overwrite and plan.directory.exists():
        shutil.rmtree(plan.directory)
    if not (plan.directory / SEARCH_FILE).is_file():
        plan.directory.mkdir(parents=True, exist_ok=True)
        write_yaml(plan.directory / SEARCH_FILE, plan.record())
    if workers > 1:
        finished = run_parallel(plan, workers, notify)
    else:
        tuner = TrainingTuner(plan, notify)
        finished = _announce_finished(tuner, plan, notify)
        tuner.search(verbose=0)
    rows = write_results(plan)
    best = plan.directory / "best.yaml"
    return SearchResult(
        plan.directory, plan.space, rows, best if best.is_file() else None, finished
    )


def _announce_finished(tuner: TrainingTuner, plan: SearchPlan, notify) -> int:
    finished = [t for t in tuner.oracle.trials.values() if t.status != "RUNNING"]
    if finished:
        notify(f"continuing search {plan.name}: {plural(len(finished), 'finished trial')} kept")
    return len(finished)


def run_parallel(plan: SearchPlan, workers: int, notify: Callable[[str], None]) -> int:
    """The chief's oracle served from a thread of this process, ``workers`` worker processes
    on the loopback interface; returns when they have all exited."""
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    saved = {key: os.environ.get(key) for key in [*address, "KERASTUNER_TUNER_ID"]}
    os.environ.update(address, KERASTUNER_TUNER_ID="chief")
    try:
        chief = TrainingTuner(plan, notify)
        finished = _announce_finished(chief, plan, notify)
        # A daemon thread: if every worker has exited, nothing waits on the server any more.
        threading.Thread(target=chief.search, kwargs={"verbose": 0}, daemon=True).start()
        command = [sys.executable, "-m", "kerascnn.tuning.worker", str(plan.directory)]
        processes = [
            subprocess.Popen(command, env={**os.environ, "KERASTUNER_TUNER_ID": f"worker{i}"})
            for i in range(workers)
        ]
        failed = [i for i, process in enumerate(processes) if process.wait() != 0]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if failed:
        raise RuntimeError(f"search workers {failed} failed (their errors are above)")
    return finished


def load_plan(directory: Path) -> SearchPlan:
    """The plan of the search in ``directory`` (``search.yaml``), its dataset loaded: what a
    worker process runs."""
    record = read_yaml(directory / SEARCH_FILE)
    base = TrainConfig.from_dict(record["base"], source=str(directory / SEARCH_FILE))
    base = base.updated(output_dir=str(directory.parent.parent))
    return SearchPlan(
        directory.name,
        directory,
        record["method"],
        record["trials"],
        record["epochs"],
        [_dimension(d) for d in record["space"]],
        base,
        plan_training(base).dataset,
        record["refined_from"],
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# -- results ------------------------------------------------------------------------------


def row_of(
    directory: Path, trial_id: str, values: dict[str, Any], status: str, message: str = ""
) -> TrialRow:
    """A trial's row: its values, and its figures from its run directory's metrics.json."""
    run_dir = directory / trial_name(trial_id)
    row = TrialRow(trial_id, values, status, message=message, run_dir=str(run_dir))
    if (run_dir / "metrics.json").is_file():
        metrics = json.loads((run_dir / "metrics.json").read_text())
        row.status = "completed"
        row.validation_accuracy = metrics["validation"]["accuracy"]
        row.test_accuracy = metrics["test"]["accuracy"]
        row.epochs = metrics["epochs_completed"]
        row.seconds = metrics["train_seconds"]
    return row


def read_rows(directory: Path, space: list[Dimension]) -> list[TrialRow]:
    """Every trial of a search, best first (completed by validation accuracy, then the
    rest), from KerasTuner's trial records and the run directories."""
    rows = []
    for trial_file in sorted((directory / "tuner").glob("trial_*/trial.json")):
        trial = json.loads(trial_file.read_text())
        status = {"COMPLETED": "completed", "RUNNING": "running"}.get(trial["status"], "failed")
        message = (trial.get("message") or "").strip().splitlines() or [""]
        values = trial["hyperparameters"]["values"]
        values = {d.field: values.get(d.field) for d in space}
        rows.append(row_of(directory, trial["trial_id"], values, status, message[-1]))
    return sorted(
        rows,
        key=lambda r: (r.status != "completed", -(r.validation_accuracy or 0.0), r.trial_id),
    )


def write_results(plan: SearchPlan) -> list[TrialRow]:
    """``results.json`` (the trials best first) and ``best.yaml`` (the best trial's
    configuration without its output settings: what ``kerascnn-train --config`` reads)."""
    rows = read_rows(plan.directory, plan.space)
    payload = [row.__dict__ for row in rows]
    write_text_atomically(plan.directory / "results.json", json.dumps(payload, indent=2) + "\n")
    if rows and rows[0].status == "completed":
        config = read_yaml(Path(rows[0].run_dir) / "config.yaml")
        best = {k: v for k, v in config.items() if k not in OUTPUT_FIELDS}
        write_yaml(plan.directory / "best.yaml", best)
    return rows


def trial_line(row: TrialRow) -> str:
    values = "  ".join(f"{k}={_short(v)}" for k, v in row.values.items())
    if row.status != "completed":
        return f"trial {row.trial_id}  {values}  {row.status}"
    return (
        f"trial {row.trial_id}  {values}  validation {100 * row.validation_accuracy:.2f}%  "
        f"test {100 * row.test_accuracy:.2f}%  ({row.seconds:.0f} s)"
    )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
