"""TensorFlow Datasets, already prepared on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerascnn.data.sources.base import DATASETS, Dataset, Split
from kerascnn.errors import InvalidArgumentError, MissingFileError, first_line


@DATASETS.register("tfds", argument="NAME")
def tfds_dataset(name: str, **_) -> Dataset:
    """A TensorFlow Datasets dataset already prepared in its data directory (never
    downloaded here: run ``tfds build NAME`` first). Needs ``pip install kerascnn[tfds]``."""
    try:  # deferred: tensorflow-datasets is an optional extra (kerascnn[tfds])
        import tensorflow_datasets as tfds
    except ImportError:
        raise InvalidArgumentError(
            "tfds: datasets need tensorflow-datasets: pip install tensorflow-datasets "
            "(or kerascnn[tfds])"
        ) from None
    try:
        builder = tfds.builder(name)
    except Exception as error:
        raise InvalidArgumentError(f"tfds:{name}: {first_line(error)}") from None
    if not Path(builder.data_dir).exists():
        raise MissingFileError(
            f"tfds:{name} is not prepared in {builder.data_dir}; run `tfds build {name}` first"
        )
    info = builder.info
    label_feature = info.features["label"]
    names = tuple(label_feature.names)
    available = list(info.splits)
    if "train" not in available or "test" not in available and "validation" not in available:
        raise InvalidArgumentError(f"tfds:{name} needs train and test splits; has {available}")
    test_name = "test" if "test" in available else "validation"

    def split_of(split_name: str) -> Split:
        labels = np.array(
            [int(x["label"]) for x in builder.as_dataset(split=split_name).as_numpy_iterator()]
        )

        def stream(shuffle: bool = False, seed: int = 0):
            dataset = builder.as_dataset(split=split_name, shuffle_files=shuffle)
            return dataset.map(lambda x: (x["image"], x["label"]))

        return Split(None, labels, stream=stream, channels_hint=info.features["image"].shape[-1])

    validation_name = "validation" if "validation" in available else test_name
    return Dataset(
        name=f"tfds:{name}",
        class_names=names,
        train=split_of("train"),
        validation=split_of(validation_name),
        test=split_of(test_name),
        description=info.description.splitlines()[0] if info.description else name,
    )
