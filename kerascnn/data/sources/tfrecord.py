"""TFRecord shards in the layout of TensorFlow's build_imagenet_data.py."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerascnn.data.sources.base import (
    DATASETS,
    DECODED_TO_FILE_RATIO,
    SPLIT_SEED,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    Dataset,
    Split,
    stratified_split,
)
from kerascnn.errors import InvalidArgumentError, MissingFileError, first_line

TFRECORD_FEATURES = ("image/encoded", "image/class/label")


@DATASETS.register("tfrecord", argument="GLOB")
def tfrecord_dataset(pattern: str, *, label_offset: int = 1, **_) -> Dataset:
    """TFRecord shards as TensorFlow's build_imagenet_data.py writes them: ``image/encoded``
    (JPEG), ``image/class/label`` (starting at 1; ``label_offset`` is subtracted) and
    ``image/class/text``. Shards whose names contain ``train`` are the training split, those
    with ``validation`` or ``val`` the validation (and test) split; without that naming the
    records are split stratified. Labels are read once up front to check them."""
    files = sorted(tf.io.gfile.glob(os.path.expanduser(pattern)))
    if not files:
        raise MissingFileError(f"no TFRecord files match {pattern}")
    groups: dict[str, list[str]] = {}
    for file in files:
        name = Path(file).name.lower()
        group = "train" if "train" in name else "val" if "val" in name else "all"
        groups.setdefault(group, []).append(file)
    if "all" in groups or "train" not in groups or "val" not in groups:
        groups = {"all": files}
    scanned = {group: _scan_records(shards, label_offset) for group, shards in groups.items()}
    texts: dict[int, str] = {}
    for _, labels, names in scanned.values():
        for label, text in zip(labels, names, strict=True):
            texts.setdefault(int(label), text)
    num_classes = 1 + max(texts)
    class_names = tuple(texts.get(i) or str(i) for i in range(num_classes))

    def split_of(records: list[str], labels: np.ndarray, chosen: np.ndarray | None) -> Split:
        """The records of ``records`` whose position is in ``chosen`` (all when None)."""
        total = len(labels) if chosen is None else len(chosen)
        mask = None
        if chosen is not None:
            mask = np.zeros(scanned["all"][0], bool)
            mask[chosen] = True
            labels = labels[chosen]

        def stream(shuffle: bool = False, seed: int = 0):
            dataset = tf.data.TFRecordDataset(records)
            if mask is not None:
                keep = tf.constant(mask)
                dataset = dataset.enumerate().filter(lambda i, _: tf.gather(keep, i))
                dataset = dataset.map(lambda _, record: record)
            if shuffle:
                dataset = dataset.shuffle(min(total, 10_000), seed=seed)
            dataset = dataset.map(
                lambda record: _parse_record(record, label_offset),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            return dataset.ignore_errors()

        size = sum(os.path.getsize(r) for r in records) if all(map(os.path.exists, records)) else 0
        share = total / max(1, sum(len(v[1]) for g, v in scanned.items() if groups[g] == records))
        return Split(
            None,
            labels,
            stream=stream,
            channels_hint=3,
            decoded_bytes=int(size * DECODED_TO_FILE_RATIO * share),
        )

    if "all" in scanned:
        _, labels, _ = scanned["all"]
        parts = stratified_split(labels, (VALIDATION_FRACTION, TEST_FRACTION), seed=SPLIT_SEED)
        train, validation, test = (split_of(groups["all"], labels, p) for p in parts)
    else:
        train = split_of(groups["train"], scanned["train"][1], None)
        validation = test = split_of(groups["val"], scanned["val"][1], None)
    return Dataset(
        name=f"tfrecord:{pattern}",
        class_names=class_names,
        train=train,
        validation=validation,
        test=test,
        description=f"TFRecord shards {pattern}",
    )


def _parse_record(record, label_offset: int):
    features = tf.io.parse_single_example(
        record,
        {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    image = tf.io.decode_image(features["image/encoded"], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image, features["image/class/label"] - label_offset


def _scan_records(files: list[str], label_offset: int) -> tuple[int, np.ndarray, list[str]]:
    """Read every record's label and class text (not its image) to check them up front."""
    labels, texts = [], []
    try:
        for record in tf.data.TFRecordDataset(files):
            example = tf.train.Example.FromString(record.numpy())
            feature = example.features.feature
            missing = [name for name in TFRECORD_FEATURES if name not in feature]
            if missing:
                raise InvalidArgumentError(
                    f"TFRecord {files[0]}...: records lack {', '.join(missing)} (expected the "
                    f"build_imagenet_data layout: image/encoded, image/class/label, "
                    f"image/class/text)"
                )
            labels.append(int(feature["image/class/label"].int64_list.value[0]) - label_offset)
            text = (
                feature["image/class/text"].bytes_list.value
                if "image/class/text" in feature
                else []
            )
            texts.append(text[0].decode("utf-8", "replace") if text else "")
    except tf.errors.OpError as error:
        raise InvalidArgumentError(
            f"cannot read TFRecord files {files[0]}...: {first_line(error)}"
        ) from None
    if not labels:
        raise MissingFileError(f"no records in {', '.join(files)}")
    labels = np.array(labels, dtype="int64")
    if labels.min() < 0:
        raise InvalidArgumentError(
            f"TFRecord labels minus the label offset {label_offset} go down to {labels.min()}; "
            f"labels must start at 0 (use --label-offset 0 for labels starting at 0)"
        )
    return len(labels), labels, texts
