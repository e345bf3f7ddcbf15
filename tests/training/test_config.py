"""The training configuration (STYLE 7), the optimiser registry and the training criteria."""

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from kerascnn import settings
from kerascnn.cli import train_main
from kerascnn.data.config import DataConfig
from kerascnn.training.adversarial import AdversarialConfig
from kerascnn.training.config import OutputConfig, TrainConfig, flat_fields, sections, write_yaml
from kerascnn.training.distillation import DistillationConfig
from kerascnn.training.distribute import DistributionConfig
from kerascnn.training.losses import LOSSES, create_loss, rbf_penalty
from kerascnn.training.optimizers import OPTIMIZERS, OptimizationConfig, create_optimizer
from kerascnn.training.schedules import ScheduleConfig
from kerascnn.training.tensorboard import LoggingConfig
from kerascnn.training.transfer import TransferConfig


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


# -- sections, and the flat names files and flags use ----------------------------------------

FLAT_CONFIG = Path(__file__).parent / "data" / "flat_config.yaml"


def test_a_flat_config_file_of_the_earlier_layout_still_loads():
    """A config.yaml written before the fields were grouped into sections: every flat key lands
    in its section, and the config writes the same keys and values back."""
    written = yaml.safe_load(FLAT_CONFIG.read_text())
    config = TrainConfig.from_yaml(FLAT_CONFIG)
    assert config.data.mixup == 0.2 and config.data.augmentation == "cifar"
    assert config.optimization.optimizer == "sgd" and config.optimization.weight_decay == 1e-4
    assert config.lr_schedule.schedule == "multistep"
    assert config.lr_schedule.lr_milestones == [3.0, 5.0]
    assert config.transfer.freeze_until == "conv1"
    assert config.distribution.strategy == "one-device"
    assert config.logging.profile_batches == (2, 3)
    assert config.output.run_name == "old" and config.output.export is False
    back = yaml.safe_load(yaml.safe_dump(config.to_dict(), sort_keys=False))
    # Fields added since the file was written take their defaults.
    newer = {
        *(f.name for f in dataclasses.fields(AdversarialConfig)),
        *(f.name for f in dataclasses.fields(DistillationConfig)),
        "recompute_bn_stats",
        "weights",
    }
    assert {key: value for key, value in back.items() if key not in newer} == written
    assert back["recompute_bn_stats"] == "auto"


def test_sections_may_be_written_as_mappings():
    flat = TrainConfig.from_dict({"mixup": 0.3, "learning_rate": 0.5, "export": False})
    nested = TrainConfig.from_dict(
        {"data": {"mixup": 0.3}, "lr_schedule": {"learning_rate": 0.5}, "output": {"export": False}}
    )
    assert nested == flat
    with pytest.raises(ValueError, match="data.learning_rate"):
        TrainConfig.from_dict({"data": {"learning_rate": 0.5}})


def test_a_flat_name_reads_through_to_its_section():
    config = TrainConfig(mixup=0.4, learning_rate=0.02, histogram_freq=2)
    assert (config.mixup, config.data.mixup) == (0.4, 0.4)
    assert (config.learning_rate, config.lr_schedule.learning_rate) == (0.02, 0.02)
    assert config.histogram_freq == config.logging.histogram_freq == 2
    with pytest.raises(AttributeError, match="learnig_rate"):
        config.learnig_rate  # noqa: B018


def test_every_field_name_is_one_flat_key():
    """No field is named twice, and no field shares a section's name, so flat keys are
    unambiguous."""
    names = [f.name for f in flat_fields()]
    assert len(names) == len(set(names))
    assert not set(names) & set(sections())
    assert set(names) == set(TrainConfig().to_dict())


@pytest.mark.parametrize(
    "section, values, field",
    [
        (DataConfig, {"mixup": -1.0}, "mixup"),
        (DataConfig, {"crop_fraction": 1.5}, "crop_fraction"),
        (DataConfig, {"tta": "five-crop"}, "tta"),
        (DataConfig, {"augmentation": "alexnt"}, "alexnet"),
        (ScheduleConfig, {"lr_milestones": [5.0, 2.0]}, "lr_milestones"),
        (ScheduleConfig, {"lr_decay_factor": 0.0}, "lr_decay_factor"),
        (OptimizationConfig, {"decay_mode": "l1"}, "decay_mode"),
        (OptimizationConfig, {"weight_decay": -1e-4}, "weight_decay"),
        (TransferConfig, {"freeze_until": "a", "trainable_from": "b"}, "not both"),
        (LoggingConfig, {"histogram_freq": -1}, "histogram_freq"),
        (LoggingConfig, {"profile_batches": (3, 2)}, "profile_batches"),
        (DistributionConfig, {"strategy": "mirror"}, "strategy"),
        (OutputConfig, {"run_name": "a/b"}, "run_name"),
    ],
)
def test_each_section_checks_its_own_fields(section, values, field):
    with pytest.raises(ValueError, match=field):
        section(**values)
    with pytest.raises(ValueError, match=field):
        TrainConfig(**values)


def test_train_options_are_generated_from_the_config():
    """Every flag-settable field is a `kerascnn train` option with the field's help, its
    default as the help shows it, its choices and its bounds, and nothing else restates a
    default: the command's other options are the few that are not training settings."""
    params = {p.name: p for p in train_main.params}
    cli_fields = [f for f in flat_fields() if settings.about(f).cli]
    for field in cli_fields:
        about, option = settings.about(field), params[field.name]
        assert option.help == settings.help_text(field), field.name
        assert option.default in (None, ()), field.name
        if about.allowed() is not None:
            assert list(option.type.choices) == [c for c in about.allowed() if c is not None]
        if about.low is not None and not about.allowed():
            assert (option.type.min, option.type.min_open) == (about.low, about.low_open)
    assert set(params) - {f.name for f in cli_fields} == {
        "config_file",
        "report",
        "verbose",
        "coordinator",
        "num_workers",
        "worker_index",
    }
    shown = " ".join(CliRunner().invoke(train_main, ["--help"]).stdout.split())
    for field in cli_fields:
        assert params[field.name].opts[0] in shown
        assert f"[{settings.shown_default(field)}]" in shown or not settings.shown_default(field)
