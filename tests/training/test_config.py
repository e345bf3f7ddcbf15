"""The training configuration (STYLE 7), the optimiser registry and the training criteria."""

import dataclasses

import keras
import numpy as np
import pytest

from kerascnn.training.config import TrainConfig, write_yaml
from kerascnn.training.losses import LOSSES, create_loss, rbf_penalty
from kerascnn.training.optimizers import OPTIMIZERS, create_optimizer


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


# -- TrainConfig --------------------------------------------------------------------------


def test_defaults_train_lenet5_on_digits():
    config = TrainConfig()
    assert config.model == "lenet5"
    assert config.dataset == "digits"
    assert config.image_size is None
    assert config.model_options == {}


def test_default_model_options_are_not_shared():
    first, second = TrainConfig(), TrainConfig()
    first.model_options["variant"] = "modern"
    assert second.model_options == {}


def test_from_yaml_overrides_only_the_given_fields(tmp_path):
    path = write(
        tmp_path,
        "model: resnet20\nepochs: 3\nlearning_rate: 0.05\nimage_size: [28, 24]\n"
        "model_options:\n  variant: modern\n",
    )
    config = TrainConfig.from_yaml(path)
    assert config.model == "resnet20"
    assert config.epochs == 3
    assert config.learning_rate == 0.05
    assert config.image_size == (28, 24)
    assert config.model_options == {"variant": "modern"}
    defaults = TrainConfig()
    assert config.dataset == defaults.dataset
    assert config.batch_size == defaults.batch_size


def test_an_empty_yaml_file_gives_the_defaults(tmp_path):
    assert TrainConfig.from_yaml(write(tmp_path, "")) == TrainConfig()


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, "model: lenet5\nlearnig_rate: 0.1\n")
    with pytest.raises(ValueError, match="learnig_rate"):
        TrainConfig.from_yaml(path)


@pytest.mark.parametrize(
    "line, field",
    [
        ('epochs: "ten"', "epochs"),
        ("epochs: 2.5", "epochs"),
        ("epochs: true", "epochs"),
        ("image_size: [32]", "image_size"),
        ("image_size: [32, 32, 3]", "image_size"),
        ("image_size: [32, 32.5]", "image_size"),
        ("image_size: 32", "image_size"),
        ('export: "yes"', "export"),
        ("export: 1", "export"),
        ("learning_rate: fast", "learning_rate"),
        ("learning_rate: true", "learning_rate"),
        ("model: 5", "model"),
        ("model_options: [variant]", "model_options"),
    ],
)
def test_wrong_types_are_rejected(tmp_path, line, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig.from_yaml(write(tmp_path, line + "\n"))


def test_an_integer_learning_rate_becomes_a_float(tmp_path):
    config = TrainConfig.from_yaml(write(tmp_path, "learning_rate: 1\n"))
    assert config.learning_rate == 1.0
    assert isinstance(config.learning_rate, float)


def test_null_clears_an_optional_field(tmp_path):
    config = TrainConfig.from_dict({"image_size": None, "run_name": None})
    assert config.image_size is None
    assert config.run_name is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"epochs": 0},
        {"batch_size": -4},
        {"learning_rate": -0.1},
        {"learning_rate": 0.0},
        {"learning_rate": float("nan")},
        {"image_size": (0, 32)},
        {"run_name": "a/b"},
        {"run_name": ""},
        {"run_name": ".."},
    ],
)
def test_invalid_values_are_rejected(overrides):
    with pytest.raises(ValueError):
        TrainConfig(**overrides)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    with pytest.raises(ValueError):
        TrainConfig.from_dict(data)


def test_run_name_with_slash_is_named_in_the_error():
    with pytest.raises(ValueError, match="run_name"):
        TrainConfig.from_dict({"run_name": "runs/one"})


def test_updated_ignores_none_and_overrides_the_rest():
    base = TrainConfig(model="resnet20", epochs=5, batch_size=16)
    updated = base.updated(epochs=2, batch_size=None, model=None, learning_rate=0.1)
    assert updated.epochs == 2
    assert updated.learning_rate == 0.1
    assert updated.batch_size == 16
    assert updated.model == "resnet20"
    # The original is left alone.
    assert base.epochs == 5
    assert base.learning_rate == TrainConfig().learning_rate


def test_updated_checks_what_it_is_given():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig().updated(epochs="3")
    with pytest.raises(ValueError, match="optimiser"):
        TrainConfig().updated(optimiser="sgd")


def test_to_dict_from_dict_round_trip():
    config = TrainConfig(
        model="resnet20",
        epochs=7,
        learning_rate=0.25,
        image_size=(28, 30),
        run_name="trial",
        export=False,
        model_options={"variant": "modern"},
    )
    data = config.to_dict()
    assert data["image_size"] == [28, 30]
    assert TrainConfig.from_dict(data) == config


def test_yaml_round_trip(tmp_path):
    config = TrainConfig(image_size=(40, 40), seed=9, model_options={"shortcut": "B"})
    path = tmp_path / "config.yaml"
    write_yaml(path, config.to_dict())
    assert TrainConfig.from_yaml(path) == config


@pytest.mark.parametrize(
    "text",
    [
        '!!python/object/apply:os.system ["touch {marker}"]\n',
        'model: !!python/object/apply:os.system ["touch {marker}"]\n',
        'epochs: !!python/object/new:subprocess.check_call [["touch", "{marker}"]]\n',
    ],
)
def test_yaml_that_constructs_python_objects_is_refused_unexecuted(tmp_path, text):
    marker = tmp_path / "executed"
    path = write(tmp_path, text.format(marker=marker))
    with pytest.raises(ValueError):
        TrainConfig.from_yaml(path)
    assert not marker.exists()


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        TrainConfig.from_yaml(tmp_path / "absent.yaml")


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        TrainConfig.from_yaml(tmp_path)


@pytest.mark.parametrize(
    "text, line",
    [
        ("model: lenet5\n  epochs: 3\n", 2),
        ("model: lenet5\nepochs: 3\nimage_size: [32,\n  32\nseed: 1\n", 5),
    ],
)
def test_invalid_yaml_names_the_line(tmp_path, text, line):
    with pytest.raises(ValueError, match=rf"line {line}\b"):
        TrainConfig.from_yaml(write(tmp_path, text))


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "42\n", "just words\n"])
def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path, text):
    with pytest.raises(ValueError, match="mapping"):
        TrainConfig.from_yaml(write(tmp_path, text))


def test_every_field_has_a_default():
    # STYLE 7: defaults live in one place, so TrainConfig() needs no arguments.
    for field in dataclasses.fields(TrainConfig):
        assert (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        ), field.name


# -- optimisers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_builds_with_the_learning_rate(name):
    optimizer = create_optimizer(name, 0.0125)
    assert isinstance(optimizer, keras.optimizers.Optimizer)
    assert float(optimizer.learning_rate) == pytest.approx(0.0125)


def test_the_documented_optimizers_are_registered():
    assert set(OPTIMIZERS.names()) >= {"sgd", "adam", "adamw", "rmsprop", "adagrad"}


def test_sgd_uses_momentum():
    optimizer = create_optimizer("sgd", 0.1)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == pytest.approx(0.9)


def test_unknown_optimizer_names_the_closest_match():
    with pytest.raises(ValueError, match="adamw"):
        create_optimizer("adamww", 0.1)


# -- losses -------------------------------------------------------------------------------


@pytest.fixture
def logits_and_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, (6, 10)).astype("float32")
    labels = rng.integers(0, 10, 6)
    return logits, labels


def numpy_log_softmax(logits):
    shifted = logits.astype("float64") - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("label_shape", [(-1,), (-1, 1)])
def test_rbf_penalty_is_minus_the_correct_logit(logits_and_labels, label_shape):
    logits, labels = logits_and_labels
    penalty = np.asarray(rbf_penalty(labels.reshape(label_shape), logits))
    expected = -logits[np.arange(len(labels)), labels]
    np.testing.assert_allclose(penalty, expected, rtol=1e-6)


def test_rbf_penalty_is_registered():
    assert create_loss("rbf_penalty") is rbf_penalty


def test_crossentropy_takes_logits(logits_and_labels):
    logits, labels = logits_and_labels
    loss = float(create_loss("crossentropy")(labels, logits))
    expected = -numpy_log_softmax(logits)[np.arange(len(labels)), labels].mean()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_unknown_loss_names_the_closest_match():
    assert "crossentropy" in LOSSES
    with pytest.raises(ValueError, match="crossentropy"):
        create_loss("cross_entropy")
