"""Checks of the training configuration's data fields (kept here, beside what they name)."""

from __future__ import annotations

from kerascnn.errors import InvalidArgumentError


def check_data_options(config) -> None:
    """One-line errors for bad ``augmentation``, ``tta``, ``normalization``, mixing alphas
    and crop fraction, before anything is loaded."""
    from kerascnn.data.ops import RECIPES
    from kerascnn.data.statistics import NORMALIZATIONS
    from kerascnn.data.views import check_tta

    RECIPES.get(config.augmentation)
    check_tta(config.tta)
    if config.normalization not in NORMALIZATIONS:
        raise InvalidArgumentError(
            f"unknown normalization {config.normalization!r}; choose one of "
            f"{', '.join(NORMALIZATIONS)}"
        )
    for key in ("mixup", "cutmix"):
        if getattr(config, key) < 0:
            raise InvalidArgumentError(
                f"{key} must be 0 (off) or positive; received {getattr(config, key)}"
            )
    if config.crop_fraction is not None and not 0 < config.crop_fraction <= 1:
        raise InvalidArgumentError(
            f"crop_fraction must be in (0, 1]; received {config.crop_fraction}"
        )
