"""Training: the configuration, optimisers, schedules, callbacks and a run in named steps
(``plan_training``, ``train``, ``train_and_evaluate``)."""

from kerascnn.training.config import TrainConfig
from kerascnn.training.run import (
    TrainingPlan,
    TrainResult,
    plan_training,
    train,
    train_and_evaluate,
)

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingPlan",
    "plan_training",
    "train",
    "train_and_evaluate",
]
