"""Dataset readers. Each returns integer labels already split into train, validation and
test, and raw 0-255 pixels: in memory (uint8 arrays, for small datasets) or as a stream of
images decoded inside tf.data (image folders, TFRecord shards, TFDS), so a large dataset is
never decoded into memory up front.

``load_dataset(name)`` takes a registered name (``digits``, ``mnist``, ``fashion_mnist``,
``cifar10``, ``cifar100``), a directory of images, a ``.npz`` file, ``tfrecord:GLOB`` or
``tfds:NAME``. Everything a user can get wrong (a missing path, an empty class folder, a label
out of range, arrays of different lengths, TFRecords without the expected features) is refused
here, before any training, with a one-line ``KerasCNNError``.

One module per reader (``builtin``, ``arrays``, ``folder``, ``tfrecord``, ``tfds``), what they
share in ``base``, and ``load``, the one door to all of them. Every reader module is imported
here, so every dataset is registered whichever name a caller imports first.
"""

from kerascnn.data.sources import arrays, builtin, folder, tfds, tfrecord  # noqa: F401
from kerascnn.data.sources.arrays import from_arrays, npz_file
from kerascnn.data.sources.base import (
    DATASETS,
    SPLIT_SEED,
    SPLITS,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    Dataset,
    Split,
    stratified_split,
)
from kerascnn.data.sources.builtin import RestrictedUnpickler, keras_cache_file, read_cifar_batch
from kerascnn.data.sources.folder import (
    IMAGE_EXTENSIONS,
    decode_image_file,
    file_split,
    image_file_problem,
    image_folder,
)
from kerascnn.data.sources.load import check_dataset_name, load_dataset
from kerascnn.data.sources.tfds import tfds_dataset
from kerascnn.data.sources.tfrecord import tfrecord_dataset

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "SPLIT_SEED",
    "SPLITS",
    "TEST_FRACTION",
    "VALIDATION_FRACTION",
    "Dataset",
    "RestrictedUnpickler",
    "Split",
    "check_dataset_name",
    "decode_image_file",
    "file_split",
    "from_arrays",
    "image_file_problem",
    "image_folder",
    "keras_cache_file",
    "load_dataset",
    "npz_file",
    "read_cifar_batch",
    "stratified_split",
    "tfds_dataset",
    "tfrecord_dataset",
]
