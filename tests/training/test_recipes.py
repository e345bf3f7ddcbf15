"""Recipes: every file loads into a TrainConfig, derives from a base, and states what the
papers cited in each file say (README "Recipes"); precedence defaults < recipe < --config <
flags."""

import pytest
import yaml
from click.testing import CliRunner

from kerascnn.cli import main
from kerascnn.recorded import RECIPES, list_recipes, read_recipe, recipe_names
from kerascnn.training.config import TrainConfig
from kerascnn.training.recipes import load_recipe, resolve_config

REQUIRED = [
    "alexnet",
    "vgg",
    "googlenet",
    "inception_v3",
    "resnet_imagenet",
    "resnet_cifar",
    "densenet_cifar",
    "wrn_cifar",
]
BASES = ("imagenet", "cifar")

# From the paper each recipe file cites (README "Recipes"), unless another paper is named.
EXPECTED = {
    "alexnet": dict(
        optimizer="sgd", momentum=0.9, batch_size=128, learning_rate=0.01, schedule="plateau",
        lr_decay_factor=0.1, weight_decay=5e-4, epochs=90, augmentation="alexnet", tta="ten-crop",
    ),
    "vgg": dict(
        optimizer="sgd", momentum=0.9, batch_size=256, learning_rate=0.01, schedule="plateau",
        lr_decay_factor=0.1, weight_decay=5e-4, augmentation="vgg", tta="multi-scale",
    ),
    # "lr decreased 4% every 8 epochs"
    "googlenet": dict(
        optimizer="sgd", momentum=0.9, schedule="exponential", lr_decay_factor=0.96,
        lr_decay_epochs=8, lr_staircase=True, augmentation="inception",
    ),
    # Szegedy et al. 2016, section 8 and 7.
    "inception_v3": dict(
        optimizer="rmsprop", learning_rate=0.045, schedule="exponential", lr_decay_factor=0.94,
        lr_decay_epochs=2, label_smoothing=0.1, batch_size=32, epochs=100,
        optimizer_options={"rho": 0.9, "epsilon": 1.0, "global_clipnorm": 2.0},
    ),
    "resnet_imagenet": dict(
        optimizer="sgd", momentum=0.9, batch_size=256, learning_rate=0.1, schedule="plateau",
        lr_decay_factor=0.1, weight_decay=1e-4, augmentation="resnet",
    ),
    "resnet_cifar": dict(
        optimizer="sgd", momentum=0.9, batch_size=128, learning_rate=0.1, schedule="multistep",
        lr_decay_factor=0.1, weight_decay=1e-4, augmentation="cifar",
    ),
    # Huang et al. 2017, section 4.2.
    "densenet_cifar": dict(
        optimizer="sgd", nesterov=True, batch_size=64, learning_rate=0.1, epochs=300,
        lr_milestones=[150.0, 225.0], weight_decay=1e-4,
    ),
    # Zagoruyko & Komodakis 2016, section 3.
    "wrn_cifar": dict(
        optimizer="sgd", nesterov=True, batch_size=128, learning_rate=0.1, epochs=200,
        lr_decay_factor=0.2, lr_milestones=[60.0, 120.0, 160.0], weight_decay=5e-4,
    ),
}  # fmt: skip


def test_the_required_recipes_exist():
    assert set(REQUIRED) <= set(recipe_names())


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_loads_and_cites_its_source(name):
    config = resolve_config(name)
    assert config.recipe == name
    text = (RECIPES / f"{name}.yaml").read_text()
    assert text.startswith("#")  # the paper, in a comment
    assert read_recipe(name).get("description")
    from kerascnn.models import MODELS

    MODELS.get(config.model)


@pytest.mark.parametrize("name", REQUIRED)
def test_paper_recipes_derive_from_a_base(name):
    assert read_recipe(name)["base"] in BASES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_values_match_the_papers(name):
    config = resolve_config(name)
    for key, value in EXPECTED[name].items():
        assert getattr(config, key) == pytest.approx(value), key


def test_resnet_cifar_milestones_are_the_papers_iterations():
    # 32k and 48k iterations, stop at 64k; batch 128 on a 45k training split.
    config = resolve_config("resnet_cifar")
    epochs_at = [iterations * 128 / 45000 for iterations in (32000, 48000, 64000)]
    assert config.lr_milestones == pytest.approx(epochs_at[:2], abs=0.5)
    assert config.epochs == pytest.approx(epochs_at[2], abs=0.5)


def test_precedence_defaults_recipe_file_flags(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("learning_rate: 0.2\nepochs: 7\n")
    config = resolve_config("resnet_cifar", path, epochs=3)
    assert config.learning_rate == 0.2  # file over recipe
    assert config.epochs == 3  # flag over file
    assert config.weight_decay == 1e-4  # recipe over defaults
    assert config.batch_size == 128  # base under recipe
    assert config.seed == TrainConfig().seed  # defaults


def test_a_config_file_may_name_the_recipe(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("recipe: wrn_cifar\nepochs: 2\n")
    config = resolve_config(None, path)
    assert (config.recipe, config.epochs, config.lr_decay_factor) == ("wrn_cifar", 2, 0.2)


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = resolve_config("inception_v3")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert TrainConfig.from_yaml(path) == config


def test_base_values_are_overridden_by_the_recipe():
    assert load_recipe("cifar")["batch_size"] == 128
    assert load_recipe("densenet_cifar")["batch_size"] == 64


def test_unknown_recipe_is_a_one_line_error():
    result = CliRunner().invoke(main, ["train", "--recipe", "resnet_cifa"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown recipe 'resnet_cifa'")
    assert "resnet_cifar" in result.stderr and len(result.stderr.splitlines()) == 1


def test_recipes_command_lists_one_line_each():
    result = CliRunner().invoke(main, ["recipes"])
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == recipe_names()
    for (name, description), line in zip(list_recipes(), lines, strict=True):
        assert line.startswith(name) and line.endswith(description)
