"""Training: configuration, optimisers, callbacks and ``train_and_evaluate``."""

from kerascnn.training.config import TrainConfig
from kerascnn.training.train import (
    RunOutcome,
    TrainResult,
    prepare_run_dir,
    run_training,
    train_and_evaluate,
)

__all__ = [
    "RunOutcome",
    "TrainConfig",
    "TrainResult",
    "prepare_run_dir",
    "run_training",
    "train_and_evaluate",
]
