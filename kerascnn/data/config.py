"""The data section of a training run's configuration (README "Data"): how images are read,
augmented, normalised, mixed and viewed at test time."""

from __future__ import annotations

from dataclasses import dataclass

from kerascnn.data.ops import RECIPES
from kerascnn.data.statistics import NORMALIZATIONS
from kerascnn.data.views import TTA_NAMES
from kerascnn.settings import check, setting


@dataclass
class DataConfig:
    augmentation: str = setting(
        "none", "Training augmentation: {choices} (README: Data).", names=RECIPES.names
    )
    tta: str = setting("none", "Final test evaluation's views: {choices}.", choices=TTA_NAMES)
    normalization: str = setting(
        "auto",
        "Pixel statistics in the model's first layer: the model's, or the training set's.",
        choices=NORMALIZATIONS,
    )
    mixup: float = setting(0.0, "Mixup Beta alpha, 0 = off.", low=0)
    cutmix: float = setting(0.0, "CutMix Beta alpha, 0 = off.", low=0)
    crop_fraction: float | None = setting(
        None,
        "Evaluate the centre crop of the image resized to size / F.",
        low=0,
        low_open=True,
        high=1,
        shown="the recipe's",
    )
    strict: bool = setting(
        False,
        "An unreadable file in an image folder is an error instead of being skipped.",
        flag="on",
    )
    label_offset: int = setting(1, "Subtracted from TFRecord labels (ImageNet's start at 1).")

    def __post_init__(self) -> None:
        check(self)
        RECIPES.get(self.augmentation)  # an unknown name lists the closest recipes

    def source_options(self) -> dict:
        """What ``load_dataset`` takes besides the name."""
        return {"strict": self.strict, "label_offset": self.label_offset}
