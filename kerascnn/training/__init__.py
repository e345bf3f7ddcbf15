"""Training: configuration, optimisers, callbacks and ``train_and_evaluate``."""

from kerascnn.training.config import TrainConfig
from kerascnn.training.train import TrainResult, prepare_run_dir, train_and_evaluate

__all__ = ["TrainConfig", "TrainResult", "prepare_run_dir", "train_and_evaluate"]
