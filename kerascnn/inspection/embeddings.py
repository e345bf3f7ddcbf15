"""Feature space: nearest neighbours, TensorBoard projector files and a 2-D map."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from google.protobuf import text_format
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from tensorboard.plugins import projector

from kerascnn import plotting
from kerascnn.errors import InvalidArgumentError

METHODS = ("tsne", "pca")


def nearest(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (N, k) and Euclidean distances of the ``k`` nearest ``pool`` rows per query."""
    if not 1 <= k <= len(pool):
        raise InvalidArgumentError(f"--k must be between 1 and {len(pool)}; received {k}")
    squared = (queries**2).sum(1)[:, None] - 2 * queries @ pool.T + (pool**2).sum(1)[None, :]
    distances = np.sqrt(np.maximum(squared, 0))
    index = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return index, np.take_along_axis(distances, index, axis=1)


def sprite(images: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The projector's sprite: images in a square grid, no padding; and the tile size."""
    tiles = [plotting.to_rgb(image) for image in images]
    side = int(np.ceil(np.sqrt(len(tiles))))
    h, w = tiles[0].shape[:2]
    canvas = np.zeros((side * h, side * w, 3), "uint8")
    for i, tile in enumerate(tiles):
        r, c = divmod(i, side)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    return canvas, (h, w)


def metadata_name(name: str) -> str:
    """A class name as the projector's metadata shows it: a name that reads as a number
    (digits' ``"3"``) becomes ``"class 3"``, since the projector labels points by the first
    column that is not all numbers and would fall back to the point's index."""
    try:
        float(name)
    except ValueError:
        return name
    return f"class {name}"


def projector_files(
    vectors: np.ndarray, labels: list[str], images: np.ndarray, predicted: list[str]
) -> dict:
    """``tensor.tsv`` (one vector a row), ``metadata.tsv``, ``sprite.png`` and
    ``projector_config.pbtxt`` naming them, relative to their directory.

    ``metadata.tsv`` has a header and the columns ``label`` (the true class), ``predicted``
    and ``correct``: the projector labels the points by ``label`` and offers each column
    under "Color by", one colour a class.
    """
    tensor = "\n".join("\t".join(f"{v:.6g}" for v in row) for row in vectors) + "\n"
    metadata = "label\tpredicted\tcorrect\n" + "".join(
        f"{metadata_name(true)}\t{metadata_name(guess)}\t{'yes' if true == guess else 'no'}\n"
        for true, guess in zip(labels, predicted, strict=True)
    )
    picture, (height, width) = sprite(images)
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "penultimate_features"
    embedding.tensor_path = "tensor.tsv"
    embedding.metadata_path = "metadata.tsv"
    embedding.tensor_shape.extend(vectors.shape)
    embedding.sprite.image_path = "sprite.png"
    embedding.sprite.single_image_dim.extend([width, height])
    return {
        "tensor.tsv": tensor,
        "metadata.tsv": metadata,
        "sprite.png": plotting.png_bytes(picture),
        "projector_config.pbtxt": text_format.MessageToString(config),
    }


def project(vectors: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """2-D points: t-SNE (perplexity capped for small sets) or PCA."""
    if method not in METHODS:
        raise InvalidArgumentError(f"--method must be one of {', '.join(METHODS)}; got {method}")
    if method == "pca" or len(vectors) < 5:
        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    perplexity = min(30.0, (len(vectors) - 1) / 3)
    # Exact gradients: faster than Barnes-Hut below a few thousand points.
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        method="exact" if len(vectors) <= 2000 else "barnes_hut",
        random_state=seed,
    )
    return tsne.fit_transform(vectors)


def scatter(points: np.ndarray, labels: np.ndarray, class_names: list[str], method: str):
    """The 2-D points coloured by class, with a legend, as a uint8 image."""
    figure, ax = plt.subplots(figsize=(6, 5), dpi=90)
    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for c, name in enumerate(class_names):
        chosen = labels == c
        if chosen.any():
            ax.scatter(*points[chosen].T, s=10, color=colours(c % colours.N), label=name)
    ax.set_title(f"penultimate features, {method.upper()} ({len(points)} images)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2 if len(class_names) > 10 else 1)
    figure.tight_layout()
    return plotting.figure_to_array(figure)
