"""What a training run's configuration asks of the data: the pipeline's arguments, pixel
statistics baked into the model, and whether labels are one-hot (mixup/cutmix)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from kerascnn.data import ops
from kerascnn.data.config import DataConfig
from kerascnn.data.sources import Dataset
from kerascnn.data.statistics import normalization_options, pixel_statistics
from kerascnn.errors import InvalidArgumentError


@dataclass
class DataPlan:
    """The data options of a run with what they need computed from its training split."""

    config: DataConfig
    num_classes: int
    model_options: dict[str, Any] = field(default_factory=dict)  # mean/std overrides
    lighting: ops.Op | None = None
    statistics_images: int = 0

    @property
    def one_hot(self) -> bool:
        return bool(self.config.mixup or self.config.cutmix)

    def pipeline_options(self) -> dict[str, Any]:
        """``build_dataset``'s data options (the split decides what applies: augmentation
        and mixing train, the crop fraction evaluates)."""
        return {
            # Under --strategy multi-worker Keras's DataParallel gives each worker its share
            # of every global batch, so the pipeline itself is not sharded.
            "shard": None,
            "augmentation": self.config.augmentation,
            "crop_fraction": self.config.crop_fraction,
            "lighting": self.lighting,
            "num_classes": self.num_classes if self.one_hot else None,
            "mixup": self.config.mixup,
            "cutmix": self.config.cutmix,
        }

    def loss_and_metrics(self, loss_name: str, loss, metrics: list, label_smoothing: float = 0.0):
        """With mixed (one-hot) labels: categorical cross-entropy (with the run's label
        smoothing) and categorical metrics."""
        if not self.one_hot:
            return loss, metrics
        check_mixing_loss(loss_name)
        mixed = ["accuracy"]
        if len(metrics) > 1:
            mixed.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy"))
        loss = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing
        )
        return loss, mixed


def check_mixing_loss(loss_name: str) -> None:
    if loss_name != "crossentropy":
        raise InvalidArgumentError(
            f"mixup and cutmix train with cross-entropy on mixed labels; the loss is "
            f"{loss_name!r} (pass --loss crossentropy)"
        )


def plan_data(
    config: DataConfig, dataset: Dataset, image_size: Sequence[int], channels: int
) -> DataPlan:
    """Compute what the data options need from the training split (its mean for
    ``normalization``, its RGB eigen-decomposition for the lighting of ``alexnet``/``resnet``)."""
    recipe = ops.RECIPES.get(config.augmentation)
    plan = DataPlan(config, num_classes=dataset.num_classes)
    needs_lighting = recipe.uses_lighting and channels == 3
    if config.normalization != "auto" or needs_lighting:
        stats = pixel_statistics(dataset.train, image_size=image_size, channels=channels)
        plan.statistics_images = stats.images
        plan.model_options = normalization_options(config.normalization, stats)
        if needs_lighting:
            plan.lighting = ops.pca_lighting(stats.eigenvalues, stats.eigenvectors)
    return plan
