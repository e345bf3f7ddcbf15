"""Image folders: one subfolder per class, files listed and checked up front, decoded inside
tf.data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerascnn.data.sources.base import (
    DECODED_TO_FILE_RATIO,
    SPLIT_SEED,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    Dataset,
    Split,
    stratified_split,
)
from kerascnn.errors import InvalidArgumentError, MissingFileError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")

# What a whole file starts and ends with; a file that does not is skipped as unreadable. This
# catches stray files and truncated downloads without decoding anything up front.
_JPEG = (b"\xff\xd8\xff", (b"\xff\xd9",))
_SIGNATURES = {
    ".jpg": _JPEG,
    ".jpeg": _JPEG,
    ".png": (b"\x89PNG\r\n\x1a\n", (b"IEND\xaeB`\x82",)),
    ".gif": (b"GIF8", (b";",)),
    ".bmp": (b"BM", ()),
}


def image_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole JPEG/PNG/BMP/GIF image file, or None if it looks whole.

    Checks the extension, the format's signature, the end marker (JPEG EOI, PNG IEND, GIF
    trailer; JPEG encoders may pad after EOI, so its last 64 bytes are searched) and BMP's
    declared file size. Decoding errors that slip through are still skipped by the pipeline.
    """
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        return "not an image file"
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(16)
            file.seek(max(0, size - 64))
            tail = file.read()
    except OSError as error:
        return f"unreadable ({error.strerror})"
    signature, ends = _SIGNATURES[suffix]
    if suffix in (".jpg", ".jpeg", ".png") and not head.startswith(signature):
        # Files are often misnamed (a PNG saved as .jpg); accept either signature.
        if not (head.startswith(_JPEG[0]) or head.startswith(_SIGNATURES[".png"][0])):
            return "not a JPEG or PNG"
        ends = _JPEG[1] if head.startswith(_JPEG[0]) else _SIGNATURES[".png"][1]
        signature = head[:4]
    if not head.startswith(signature):
        return f"not a {suffix[1:].upper()} file"
    if head.startswith(_JPEG[0]):
        if b"\xff\xd9" not in tail:
            return "truncated"
    elif ends and not tail.endswith(ends[0]):
        return "truncated"
    if suffix == ".bmp" and int.from_bytes(head[2:6], "little") > size:
        return "truncated"
    return None


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _list_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts)
    )


def image_folder(root: Path, *, strict: bool = False) -> Dataset:
    """A folder with one subfolder per class, either inside ``train/`` and ``val/`` (or
    ``validation/``), optional ``test/`` (without it ``val/`` is also the test split, as the
    ImageNet papers report on it), or directly, split deterministically and stratified.

    Files are checked without decoding (signature and end marker); bad ones are skipped and
    counted in one warning line on stderr, or with ``strict`` refused with an error.
    """
    root = Path(root)
    layout, class_names = _folder_layout(root)
    found: dict[str, tuple[list[str], list[int]]] = {}
    skipped: list[tuple[Path, str]] = []
    for split, folder in layout.items():
        paths, labels, bad = _list_images(folder, class_names, layout.get("train", root))
        found[split] = (paths, labels)
        skipped += bad
    if skipped:
        report_skipped(root, skipped, strict)
    splits = _split_files(found)
    return Dataset(
        name=str(root.resolve()),  # saved with the run, so `kerascnn evaluate` finds it again
        class_names=class_names,
        train=file_split(*splits["train"]),
        validation=file_split(*splits["validation"]),
        test=file_split(*splits["test"]),
        description=f"image folder {root}",
    )


def _folder_layout(root: Path) -> tuple[dict[str, Path], tuple[str, ...]]:
    """The folder of each split (``all`` when the folder is to be split here) and the class
    names, from the training folder's subfolders."""
    subsets = {p.name: p for p in _class_folders(root)}
    validation_name = next((n for n in ("val", "validation") if n in subsets), None)
    if "train" in subsets and validation_name:
        layout = {"train": subsets["train"], "validation": subsets[validation_name]}
        if "test" in subsets:
            layout["test"] = subsets["test"]
        class_names = tuple(p.name for p in _class_folders(layout["train"]))
    else:
        layout = {"all": root}
        class_names = tuple(subsets)
    if not class_names:
        raise MissingFileError(f"{root} has no class subfolders (one folder per class)")
    return layout, class_names


def _list_images(
    folder: Path, class_names: tuple[str, ...], classes_from: Path
) -> tuple[list[str], list[int], list[tuple[Path, str]]]:
    """The image files of one split and their labels, and the files skipped with why."""
    index = {name: i for i, name in enumerate(class_names)}
    paths, labels, skipped = [], [], []
    for class_folder in _class_folders(folder):
        if class_folder.name not in index:
            raise InvalidArgumentError(
                f"{class_folder} is not a class of {classes_from} "
                f"(classes: {', '.join(class_names)})"
            )
        good = 0
        for file in _list_files(class_folder):
            problem = image_file_problem(file)
            if problem:
                skipped.append((file, problem))
                continue
            paths.append(str(file))
            labels.append(index[class_folder.name])
            good += 1
        if good == 0:
            raise MissingFileError(f"class folder {class_folder} has no readable images")
    return paths, labels, skipped


def _split_files(
    found: dict[str, tuple[list[str], list[int]]],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Paths and labels of train, validation and test: split stratified from ``all``, or as
    the folders gave them (the validation split doubling as the test split without one)."""
    if "all" not in found:
        found.setdefault("test", found["validation"])
        return {k: (np.array(v[0]), np.array(v[1], dtype="int64")) for k, v in found.items()}
    paths = np.array(found["all"][0])
    labels = np.array(found["all"][1], dtype="int64")
    train, validation, test = stratified_split(
        labels, (VALIDATION_FRACTION, TEST_FRACTION), seed=SPLIT_SEED
    )
    return {
        "train": (paths[train], labels[train]),
        "validation": (paths[validation], labels[validation]),
        "test": (paths[test], labels[test]),
    }


def report_skipped(root: Path, skipped: list[tuple[Path, str]], strict: bool) -> None:
    examples = ", ".join(f"{p.relative_to(root)} ({why})" for p, why in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    message = f"{len(skipped)} unreadable or non-image file(s) in {root}: {examples}{more}"
    if strict:
        raise InvalidArgumentError(f"{message} (--strict)")
    print(f"Warning: skipped {message}", file=sys.stderr)


def file_split(paths: np.ndarray, labels: np.ndarray) -> Split:
    """A split of image files, decoded to RGB inside tf.data (grayscale, palette, RGBA and
    CMYK JPEG all come out as 3 channels; the pipeline converts to the model's channels)."""
    paths = np.asarray(paths, dtype=str)
    labels = np.asarray(labels, dtype="int64")
    size = sum(os.path.getsize(p) for p in paths)

    def stream(shuffle: bool = False, seed: int = 0):
        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
        if shuffle:
            dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.map(
            lambda path, label: (decode_image_file(path), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        # A file that passed the header check but still fails to decode is dropped, never
        # ending an epoch with an exception.
        return dataset.ignore_errors()

    return Split(
        None, labels, stream=stream, channels_hint=3, decoded_bytes=size * DECODED_TO_FILE_RATIO
    )


def decode_image_file(path):
    """Graph-safe: a JPEG/PNG/BMP/GIF file -> uint8 (height, width, 3)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image
