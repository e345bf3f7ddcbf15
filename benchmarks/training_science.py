"""The issue's figures for search, the range test and ensembles, measured with the commands a
user runs (each through the installed `kerascnn` / `kerascnn-train` scripts), in a scratch
directory; prints one JSON object.

    python benchmarks/training_science.py --model resnet20 --trials 12 --epochs 4 \
        --refine-trials 8 --refine-epochs 10 --full-epochs 30 --ensemble-epochs 10

The search is random over learning_rate (log 1e-4..1e-1), weight_decay (log 1e-6..1e-2) and
batch_size (32, 64, 128), then refined around its 3 best trials; the best configuration and
the default one then train for --full-epochs each (test accuracy of both reported). The range
test runs on the same model. The ensemble averages 5 LeNet-5 runs (seeds 0-4)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml


def run(*args: str, cwd: Path) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def test_accuracy(cwd: Path, run_name: str) -> float:
    return json.loads((cwd / "runs" / run_name / "metrics.json").read_text())["test"]["accuracy"]


def search(cwd: Path, a) -> dict:
    space = [
        "learning_rate=log:1e-4:1e-1",
        "weight_decay=log:1e-6:1e-2",
        "batch_size=choice:32,64,128",
    ]
    searched = [f"--search={s}" for s in space]
    started = time.perf_counter()
    run(
        "kerascnn",
        "tune",
        "--model",
        a.model,
        "--trials",
        str(a.trials),
        "--epochs",
        str(a.epochs),
        *searched,
        "--name",
        "coarse",
        cwd=cwd,
    )
    run(
        "kerascnn",
        "tune",
        "--refine",
        "coarse",
        "--top",
        "3",
        "--trials",
        str(a.refine_trials),
        "--epochs",
        str(a.refine_epochs),
        "--name",
        "fine",
        cwd=cwd,
    )
    seconds = time.perf_counter() - started
    best = yaml.safe_load((cwd / "runs" / "tune" / "fine" / "best.yaml").read_text())
    full = ["--epochs", str(a.full_epochs), "--no-export"]
    run(
        "kerascnn-train",
        "--config",
        "runs/tune/fine/best.yaml",
        *full,
        "--run-name",
        "best",
        cwd=cwd,
    )
    run("kerascnn-train", "--model", a.model, *full, "--run-name", "default", cwd=cwd)
    return {
        "search_seconds": round(seconds, 1),
        "best": {k: best[k] for k in ("learning_rate", "weight_decay", "batch_size")},
        "best_test_accuracy": test_accuracy(cwd, "best"),
        "default_test_accuracy": test_accuracy(cwd, "default"),
    }


def range_test(cwd: Path, a) -> dict:
    run("kerascnn", "lr-find", "--model", a.model, "--run-name", "range", cwd=cwd)
    record = json.loads((cwd / "runs" / "lr-find" / "range" / "lr_find.json").read_text())
    return {"steepest": record["steepest"], "minimum_over_10": record["minimum_over_10"]}


def ensemble(cwd: Path, a) -> dict:
    members = []
    for seed in range(5):
        name = f"lenet-{seed}"
        run(
            "kerascnn-train",
            "--seed",
            str(seed),
            "--epochs",
            str(a.ensemble_epochs),
            "--no-export",
            "--run-name",
            name,
            cwd=cwd,
        )
        members.append(f"runs/{name}")
    run("kerascnn", "ensemble", *members, "--name", "lenet-x5", "--no-export", cwd=cwd)
    test = json.loads((cwd / "runs" / "lenet-x5" / "metrics.json").read_text())["test"]
    accuracies = [m["accuracy"] for m in test["members"]]
    return {
        "members": accuracies,
        "member_mean": round(statistics.mean(accuracies), 4),
        "member_std": round(statistics.pstdev(accuracies), 4),
        "ensemble": test["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--refine-trials", type=int, default=8)
    parser.add_argument("--refine-epochs", type=int, default=10)
    parser.add_argument("--full-epochs", type=int, default=30)
    parser.add_argument("--ensemble-epochs", type=int, default=10)
    parser.add_argument("--only", choices=("search", "range", "ensemble"), action="append")
    a = parser.parse_args()
    parts = {"ensemble": ensemble, "range": range_test, "search": search}
    with tempfile.TemporaryDirectory() as scratch:
        results = {"arguments": vars(a)}
        for name in a.only or parts:
            started = time.perf_counter()
            results[name] = parts[name](Path(scratch), a)
            results[name]["wall_seconds"] = round(time.perf_counter() - started, 1)
            print(json.dumps({name: results[name]}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
