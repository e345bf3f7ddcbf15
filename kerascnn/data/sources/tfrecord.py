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
    groups = _shard_groups(pattern)
    scanned = {group: _scan_records(shards, label_offset) for group, shards in groups.items()}
    if "all" in scanned:
        labels, _ = scanned["all"]
        parts = stratified_split(labels, (VALIDATION_FRACTION, TEST_FRACTION), seed=SPLIT_SEED)
        train, validation, test = (
            _record_split(groups["all"], labels, label_offset, chosen=p) for p in parts
        )
    else:
        train = _record_split(groups["train"], scanned["train"][0], label_offset)
        validation = test = _record_split(groups["val"], scanned["val"][0], label_offset)
    return Dataset(
        name=f"tfrecord:{pattern}",
        class_names=_class_names(scanned.values()),
        train=train,
        validation=validation,
        test=test,
        description=f"TFRecord shards {pattern}",
    )


def _shard_groups(pattern: str) -> dict[str, list[str]]:
    """The shards matching ``pattern`` by split, ``train`` and ``val`` from their names, or
    all under ``all`` when they are not named that way."""
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
    return groups


def _class_names(scanned) -> tuple[str, ...]:
    """Each label's ``image/class/text`` (the first seen), or the label itself without one."""
    texts: dict[int, str] = {}
    for labels, names in scanned:
        for label, text in zip(labels, names, strict=True):
            texts.setdefault(int(label), text)
    num_classes = 1 + max(texts)
    return tuple(texts.get(i) or str(i) for i in range(num_classes))


def _record_split(
    records: list[str], labels: np.ndarray, label_offset: int, chosen: np.ndarray | None = None
) -> Split:
    """The records of the shards ``records`` (``labels`` are theirs, in order) at the
    positions ``chosen``, all of them when None."""
    total = len(labels) if chosen is None else len(chosen)
    share = total / max(1, len(labels))
    mask = None
    if chosen is not None:
        mask = np.zeros(len(labels), bool)
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
    return Split(
        None,
        labels,
        stream=stream,
        channels_hint=3,
        decoded_bytes=int(size * DECODED_TO_FILE_RATIO * share),
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


def _scan_records(files: list[str], label_offset: int) -> tuple[np.ndarray, list[str]]:
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
    return labels, texts
