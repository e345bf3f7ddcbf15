"""Knowledge distillation through Keras's Distiller: the loss is Hinton et al.'s, computed by
hand on a tiny batch; a teacher of another input size and channel count sees the student's
images resized and repeated; a teacher with another class count is a one-line error."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from kerascnn.cli import train_main
from kerascnn.errors import InvalidArgumentError
from kerascnn.training.distillation import DistillationConfig, distiller, load_teacher


def dense(units, seed, shape=(4,)):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), keras.layers.Dense(units)])


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_distillation_loss_equals_a_hand_computation():
    student, teacher = dense(3, seed=0), dense(3, seed=1)
    config = DistillationConfig(teacher="t", distill_temperature=2.5, student_loss_weight=0.3)
    model = distiller(student, teacher, config)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    y = np.array([0, 1, 2, 1, 0])
    loss = float(model.compute_loss(x, y, model(x), training=False))

    s, t, temp = student.predict(x, verbose=0), teacher.predict(x, verbose=0), 2.5
    hard = -np.log(softmax(s)[np.arange(5), y]).mean()
    p, q = softmax(t / temp), softmax(s / temp)
    soft = temp**2 * (p * np.log(p / q)).sum(-1).mean()  # KL(teacher || student), times T^2
    assert loss == pytest.approx(0.3 * hard + 0.7 * soft, rel=1e-4)


def save_teacher(directory, classes=3, shape=(8, 8, 3)):
    keras.utils.set_random_seed(2)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(classes, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="classifier_activation")(logits)
    keras.Model(inputs, outputs).save(directory / "teacher.keras")
    return directory / "teacher.keras"


def test_a_teacher_of_another_size_and_channels_sees_the_students_images(tmp_path):
    path = save_teacher(tmp_path)
    teacher = load_teacher(str(path), (16, 16, 1), 3)
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 1)).astype("float32")
    original = keras.saving.load_model(path)
    logits = keras.Model(original.input, original.get_layer("logits").output)
    resized = keras.ops.image.resize(np.repeat(images, 3, axis=-1), (8, 8))
    np.testing.assert_allclose(teacher.predict(images, verbose=0), logits(resized), atol=1e-5)
    assert not teacher.trainable_weights  # frozen
    with pytest.raises(InvalidArgumentError, match="3 classes; the dataset has 10"):
        load_teacher(str(path), (16, 16, 1), 10)


def test_a_teacher_with_another_class_count_is_a_one_line_error(tmp_path):
    path = save_teacher(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"class_names": ["a", "b", "c"]}))
    out = ["--output-dir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "sm")]
    result = CliRunner().invoke(train_main, ["--teacher", str(path), "--epochs", "1", *out])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: teacher {path} has 3 classes; the dataset has 10"
    ]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sm").exists()
