"""Datasets and the tf.data pipeline that feeds them to a model."""

from kerascnn.data.pipeline import build_dataset, split_arrays
from kerascnn.data.sources import DATASETS, SPLITS, Dataset, Split, load_dataset

__all__ = [
    "DATASETS",
    "SPLITS",
    "Dataset",
    "Split",
    "build_dataset",
    "load_dataset",
    "split_arrays",
]
