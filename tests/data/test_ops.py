"""Augmentation ops, recipes, batch mixing and the pipeline's determinism. Every op runs
eagerly and inside tf.data and the two must agree; each is checked for shape, dtype, value
range, determinism under a seed and the property that defines it."""

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import build_dataset, ops
from kerascnn.data.sources import Split

SEEDS = [(0, 0), (1, 2), (7, 3), (42, 1), (5, 5), (9, 8)]


def image(shape=(12, 16, 3), seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype("float32")


def eager(op, x, seed=(1, 2)):
    return op(tf.constant(x), tf.constant(seed, tf.int32)).numpy()


def in_tf_data(op, x, seed=(1, 2)):
    dataset = tf.data.Dataset.from_tensors((x, np.array(seed, np.int32))).map(op)
    return dataset.get_single_element().numpy()


def both(op, x, seed=(1, 2)):
    """The op's output eagerly, after checking tf.data gives the same."""
    a, b = eager(op, x, seed), in_tf_data(op, x, seed)
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert a.dtype == np.float32
    return a


def windows(big, height, width):
    """Every (height, width) window of ``big``."""
    return [
        big[top : top + height, left : left + width]
        for top in range(big.shape[0] - height + 1)
        for left in range(big.shape[1] - width + 1)
    ]


def is_window_of(small, big):
    return any(np.array_equal(small, w) for w in windows(big, *small.shape[:2]))


def test_flip_is_a_flip_or_nothing_and_both_happen():
    x = image()
    outcomes = set()
    for seed in SEEDS:
        out = both(ops.flip(), x, seed)
        if np.array_equal(out, x):
            outcomes.add("same")
        else:
            np.testing.assert_array_equal(out, x[:, ::-1])
            outcomes.add("flipped")
        np.testing.assert_array_equal(out, eager(ops.flip(), x, seed))  # deterministic
    assert outcomes == {"same", "flipped"}


def test_random_crop_lies_inside_the_image_and_moves_with_the_seed():
    x = image()
    crops = [both(ops.random_crop(8, 9), x, seed) for seed in SEEDS]
    for crop in crops:
        assert crop.shape == (8, 9, 3)
        assert is_window_of(crop, x)
    assert len({c.tobytes() for c in crops}) > 1


def test_pad_crop_is_a_window_of_the_zero_padded_image():
    x = image((8, 8, 3))
    padded = np.pad(x, [(4, 4), (4, 4), (0, 0)])
    outs = [both(ops.pad_crop(4), x, seed) for seed in SEEDS]
    for out in outs:
        assert out.shape == x.shape
        assert is_window_of(out, padded)
    assert len({o.tobytes() for o in outs}) > 1


def offset_in(out, padded):
    """(top, left) of the window of ``padded`` that ``out`` is, or None."""
    height, width = out.shape[:2]
    for top in range(padded.shape[0] - height + 1):
        for left in range(padded.shape[1] - width + 1):
            if np.allclose(out, padded[top : top + height, left : left + width], atol=1e-3):
                return top, left
    return None


def translated_epochs(augmentation, images, epochs=4):
    """Every (image, label) the training pipeline yields over ``epochs`` epochs."""
    split = Split(images.astype(np.uint8), np.arange(len(images)))
    dataset = build_dataset(
        split,
        image_size=images.shape[1:3],
        channels=1,
        batch_size=len(images),
        training=True,
        seed=3,
        augmentation=augmentation,
    )
    return [
        pair
        for _ in range(epochs)
        for batch in dataset.as_numpy_iterator()
        for pair in zip(*batch, strict=True)
    ]


@pytest.mark.parametrize("augmentation", ["translate", "cifar"])
def test_translate_moves_digits_and_never_mirrors_them(augmentation):
    # Asymmetric 32x32 images (no zero pixel, so the padding shows), one per label; the
    # recipe pads 1/8 of 32 = 4 pixels (one pixel of digits' 8x8 originals).
    images = np.random.default_rng(0).integers(1, 256, (4, 32, 32, 1))
    pad = ops.translation_padding(32, 32)
    assert pad == 4
    offsets, mirrored = set(), 0
    for out, label in translated_epochs(augmentation, images):
        original = np.pad(images[label], [(pad, pad), (pad, pad), (0, 0)]).astype("float32")
        offset = offset_in(out, original)  # the label's own image, moved
        if offset is None:
            assert offset_in(out, original[:, ::-1]) is not None
            mirrored += 1
        else:
            offsets.add(offset)
    if augmentation == "translate":
        assert mirrored == 0
        assert len(offsets) >= 8  # 16 images, 81 possible shifts: many distinct ones
    else:  # the check above sees a flip when there is one
        assert mirrored > 0


def test_center_crop_takes_the_middle():
    x = image((10, 13, 1))
    np.testing.assert_array_equal(both(ops.center_crop(4, 5), x), x[3:7, 4:9])


@pytest.mark.parametrize("shape, side", [((12, 16, 3), 24), ((20, 10, 1), 5), ((9, 9, 3), 9)])
def test_resize_shorter_keeps_the_aspect_ratio(shape, side):
    out = both(ops.resize_shorter(side), image(shape))
    assert min(out.shape[:2]) == side
    ratio = shape[0] / shape[1]
    assert out.shape[0] / out.shape[1] == pytest.approx(ratio, rel=0.1)


def test_resize_of_a_constant_image_stays_constant():
    x = np.full((10, 14, 3), 77.0, np.float32)
    np.testing.assert_allclose(both(ops.resize(5, 6), x), 77.0, atol=1e-3)


def test_scale_jitter_draws_the_shorter_side_from_its_range():
    x = image((12, 16, 3))
    sides = {min(both(ops.random_resize_shorter(14, 30), x, seed).shape[:2]) for seed in SEEDS}
    assert all(14 <= s <= 30 for s in sides)
    assert len(sides) > 1


def test_pca_lighting_shifts_every_pixel_by_the_same_colour_vector():
    x = image((6, 7, 3))
    lighting = ops.pca_lighting()
    shifts = []
    for seed in SEEDS[:3]:
        shift = both(lighting, x, seed) - x
        np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0], shift.shape), atol=1e-3)
        shifts.append(shift[0, 0])
        # The shift lies in the span of the eigenvectors scaled by their eigenvalues: solve
        # for alpha and check it is a plausible N(0, 0.1) draw.
        vectors = np.array(ops.IMAGENET_EIGENVECTORS)
        alpha = np.linalg.solve(vectors, shift[0, 0] / 255.0) / np.array(ops.IMAGENET_EIGENVALUES)
        assert np.all(np.abs(alpha) < 0.6)
    assert not np.allclose(shifts[0], shifts[1])
    gray = image((5, 5, 1))
    np.testing.assert_array_equal(both(lighting, gray), gray)


def test_pca_from_pixels_recovers_a_known_covariance():
    rng = np.random.default_rng(0)
    # Pixels varying along one colour direction only: one eigenvalue, that eigenvector.
    direction = np.array([1.0, 2.0, 2.0]) / 3.0
    t = rng.uniform(0, 80, (4000, 1))
    pixels = (20 + t * direction).reshape(40, 10, 10, 3)
    values, vectors = ops.pca_from_pixels(pixels)
    expected = np.var(t / 255.0, ddof=1)
    assert values[0] == pytest.approx(expected, rel=1e-6)
    assert values[1] == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(np.abs(np.array(vectors)[:, 0]), direction, atol=1e-6)


def test_random_resized_crop_gives_the_size_and_stays_in_range():
    x = image((30, 40, 3))
    outs = [both(ops.random_resized_crop(16, 16), x, seed) for seed in SEEDS]
    for out in outs:
        assert out.shape == (16, 16, 3)
        assert out.min() >= -1e-3 and out.max() <= 255 + 1e-3
    assert len({o.tobytes() for o in outs}) > 1
    constant = np.full((30, 40, 3), 99.0, np.float32)
    np.testing.assert_allclose(both(ops.random_resized_crop(8, 8), constant), 99.0, atol=1e-2)


@pytest.mark.parametrize("channels", [3, 1])
def test_color_distortion_stays_in_range_and_changes_colour(channels):
    x = image((8, 8, channels))
    outs = [both(ops.color_distortion(), x, seed) for seed in SEEDS[:3]]
    for out in outs:
        assert out.shape == x.shape
        assert out.min() >= 0 and out.max() <= 255
    assert not np.allclose(outs[0], x)


@pytest.mark.parametrize("name", ops.RECIPES.names())
def test_each_recipe_yields_the_model_size_in_range_deterministically(name):
    recipe = ops.RECIPES.get(name)
    height, width = 16, 12
    base = ops.base_op(height, width, recipe.base_scale)
    x = base(tf.constant(image((20, 26, 3)))).numpy()
    assert min(x.shape[:2]) >= max(height, width) or x.shape[:2] == (height, width)
    op = recipe.training_op(height, width)
    out = both(op, x, (3, 4))
    assert out.shape[:2] == (height, width) or name == "none"
    assert out.min() >= 0 and out.max() <= 255
    np.testing.assert_array_equal(out, eager(op, x, (3, 4)))


def test_evaluation_base_with_a_crop_fraction_is_the_centre_of_the_enlarged_image():
    x = image((20, 30, 1))
    out = ops.base_op(10, 10, None, crop_fraction=0.5)(tf.constant(x)).numpy()
    enlarged = ops.resize_shorter(20)(tf.constant(x)).numpy()
    np.testing.assert_allclose(out, enlarged[5:15, 10:20], atol=1e-4)


# -- batch mixing -------------------------------------------------------------------------


def batch(count=6, size=5, classes=4):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, size, size, 3)).astype("float32")
    labels = tf.one_hot(rng.integers(0, classes, count), classes).numpy()
    return images, labels


def run_mix(mix, images, labels, seed=(3, 1)):
    eager_out = mix(tf.constant(images), tf.constant(labels), tf.constant(seed, tf.int32))
    graph = (
        tf.data.Dataset.from_tensors((images, labels, np.array(seed, np.int32)))
        .map(mix)
        .get_single_element()
    )
    for a, b in zip(eager_out, graph, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    return eager_out[0].numpy(), eager_out[1].numpy()


def test_mixup_mixes_images_and_labels_by_the_same_weight():
    images, labels = batch()
    mixed, mixed_labels = run_mix(ops.mixup(0.4), images, labels)
    np.testing.assert_allclose(mixed_labels.sum(-1), 1.0, atol=1e-5)
    # lam from the first label pair where the two labels differ.
    i = next(i for i in range(len(labels)) if not np.array_equal(labels[i], labels[-1 - i]))
    lam = mixed_labels[i, labels[i].argmax()]  # one-hot: lam on its own class
    np.testing.assert_allclose(mixed, lam * images + (1 - lam) * images[::-1], atol=1e-2)
    assert mixed.min() >= 0 and mixed.max() <= 255


def test_cutmix_pastes_a_box_and_labels_follow_its_area():
    images, labels = batch(size=16)
    for seed in SEEDS[:3]:
        mixed, mixed_labels = run_mix(ops.cutmix(1.0), images, labels, seed)
        from_partner = np.all(mixed == images[::-1], axis=-1) & ~np.all(mixed == images, axis=-1)
        from_self = np.all(mixed == images, axis=-1)
        assert np.all(from_partner | from_self)  # every pixel from one image or the other
        share = from_partner[0].mean()
        expected = (1 - share) * labels + share * labels[::-1]
        np.testing.assert_allclose(mixed_labels, expected, atol=1e-5)


# -- the pipeline under a seed ------------------------------------------------------------


def pipeline(seed, **kwargs):
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (10, 20, 20, 3), dtype=np.uint8), np.arange(10) % 3)
    return build_dataset(
        split, image_size=(16, 16), channels=3, batch_size=4, training=True, seed=seed, **kwargs
    )


def epochs(dataset, count=2):
    return [[(x.copy(), y.copy()) for x, y in dataset.as_numpy_iterator()] for _ in range(count)]


def same(a, b):
    return all(
        np.array_equal(x1, x2) and np.array_equal(y1, y2)
        for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("augmentation", ["alexnet", "cifar"])
def test_augmented_pipeline_is_reproducible_under_its_seed_and_varies_by_epoch(augmentation):
    first = epochs(pipeline(1, augmentation=augmentation))
    again = epochs(pipeline(1, augmentation=augmentation))
    other = epochs(pipeline(2, augmentation=augmentation))
    assert same(first[0], again[0]) and same(first[1], again[1])
    assert not same(first[0], first[1])
    assert not same(first[0], other[0])
    for images, _ in first[0]:
        assert images.shape[1:] == (16, 16, 3) and images.dtype == np.float32
        assert images.min() >= 0 and images.max() <= 255


def test_pipeline_mixing_gives_one_hot_mixed_labels():
    (first,) = epochs(pipeline(0, num_classes=3, mixup=0.5, cutmix=1.0), count=1)
    for images, labels in first:
        assert labels.shape == (len(images), 3)
        np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-5)


def test_sharding_gives_each_worker_a_disjoint_share():
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (10, 4, 4, 1), dtype=np.uint8), np.arange(10))
    seen = []
    for index in range(2):
        dataset = build_dataset(
            split, image_size=(4, 4), channels=1, batch_size=10, training=False, shard=(2, index)
        )
        seen.append(set(np.concatenate([y for _, y in dataset.as_numpy_iterator()])))
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(10))
