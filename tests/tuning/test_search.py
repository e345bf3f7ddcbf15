"""`kerascnn tune` (README "Hyperparameter search"): the space's parsing and narrowing, the
one-line errors, and a tiny search (LeNet-5, one epoch, two trials) killed between trials and
continued without running its finished trial again."""

import json
import math

import pytest
from click.testing import CliRunner

from kerascnn import cli
from kerascnn.errors import KerasCNNError
from kerascnn.training.config import TrainConfig, read_yaml
from kerascnn.tuning import parse_dimension, plan_refined, plan_search, refine, run_search
from kerascnn.tuning import search as search_module
from kerascnn.tuning.search import trial_name
from kerascnn.tuning.space import Dimension, to_hyperparameters


def test_each_kind_becomes_the_matching_keras_tuner_hyperparameter():
    dimensions = [
        parse_dimension("learning_rate=log:1e-4:1e-1"),
        parse_dimension("weight_decay=uniform:0:0.01"),
        parse_dimension("batch_size=choice:32,64,128"),
        parse_dimension("epochs=int:1:5"),
    ]
    space = {p.name: p.get_config() for p in to_hyperparameters(dimensions).space}
    assert space["learning_rate"]["sampling"] == "log"
    assert (space["learning_rate"]["min_value"], space["learning_rate"]["max_value"]) == (
        1e-4,
        1e-1,
    )
    assert space["weight_decay"]["sampling"] == "linear"
    assert space["batch_size"]["values"] == [32, 64, 128]  # integers, as the field is
    assert (space["epochs"]["min_value"], space["epochs"]["max_value"]) == (1, 5)


BAD_SEARCHES = [
    "nonsense=log:1e-3:1e-1",  # unknown field
    "output_dir=choice:a,b",  # a path
    "init_from=choice:a",  # a path
    "learning_rate=log:0:1",  # log of zero
    "learning_rate=log:0.1:0.01",  # low >= high
    "learning_rate=uniform:0.1:0.1",
    "batch_size=choice:",  # empty choice
    "batch_size=choice:32,big",  # not an integer
    "learning_rate=uniform:-1:1",  # an end TrainConfig refuses
    "optimizer=choice:sgd,bogus",  # not a registered optimiser
    "learning_rate=normal:0:1",  # unknown kind
]


@pytest.mark.parametrize("text", BAD_SEARCHES)
def test_a_bad_search_is_one_error_line_and_writes_nothing(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["tune", "--name", "bad", "--epochs", "1", "--search", text]
    result = CliRunner().invoke(cli.main, args, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert list(tmp_path.iterdir()) == []


def test_zero_trials_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["tune", "--name", "x", "--trials", "0", "--search", "learning_rate=log:1e-3:1e-1"]
    result = CliRunner().invoke(cli.main, args, catch_exceptions=False)
    assert result.exit_code == 2 and result.output.startswith("Error:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "top"),
    [
        ("learning_rate=log:1e-5:1", [1e-3, 3e-3]),
        ("weight_decay=uniform:0:1", [0.2, 0.25, 0.3]),
        ("batch_size=int:8:512", [64, 96]),
    ],
)
def test_a_refined_range_holds_the_top_values_and_is_narrower(text, top):
    coarse = parse_dimension(text)
    fine = refine(coarse, top)
    assert all(fine.contains(v) for v in top)
    assert coarse.low <= fine.low and fine.high <= coarse.high
    assert fine.width() < coarse.width()
    if coarse.kind == "log":  # the margin is a tenth of the old log-width either side
        assert math.log(fine.high / fine.low) == pytest.approx(
            math.log(3e-3 / 1e-3) + 0.2 * coarse.width()
        )


def test_a_refined_choice_keeps_the_values_the_top_trials_took():
    fine = refine(parse_dimension("batch_size=choice:32,64,128"), [64, 32])
    assert fine == Dimension("batch_size", "choice", choices=(32, 64))


# -- a tiny search, killed and continued ---------------------------------------------------

SPACE = ["learning_rate=log:1e-3:1e-2", "batch_size=choice:32,64"]


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """Two one-epoch LeNet-5 trials; the first attempt is killed as trial 01 starts, the
    same search is then run again. Records which trials each attempt trained."""
    root = tmp_path_factory.mktemp("tune")
    base = TrainConfig(model="lenet5", dataset="digits", epochs=1, output_dir=str(root))
    trained, real_train = [], search_module.train

    def killed_at_second(plan, run_dir, **kwargs):
        if run_dir.name == "trial-01":
            raise KeyboardInterrupt  # what Ctrl-C or a kill leaves: no result for trial 01
        trained.append(("first", run_dir.name))
        return real_train(plan, run_dir, **kwargs)

    def recorded(plan, run_dir, **kwargs):
        trained.append(("second", run_dir.name))
        return real_train(plan, run_dir, **kwargs)

    plan = plan_search(base, SPACE, name="tiny", trials=2)
    search_module.train = killed_at_second
    try:
        with pytest.raises(KeyboardInterrupt):
            run_search(plan)
        first_metrics = (plan.directory / "trial-00" / "metrics.json").read_text()
        search_module.train = recorded
        lines = []
        result = run_search(plan_search(base, SPACE, name="tiny", trials=2), lines.append)
    finally:
        search_module.train = real_train
    return plan, result, trained, first_metrics, lines, root


@pytest.mark.slow
def test_a_killed_search_continues_without_rerunning_a_finished_trial(search):
    plan, result, trained, first_metrics, lines, _ = search
    assert trained == [("first", "trial-00"), ("second", "trial-01")]
    assert (plan.directory / "trial-00" / "metrics.json").read_text() == first_metrics
    assert any("1 finished trial kept" in line for line in lines)
    assert [row.status for row in result.rows] == ["completed", "completed"]


@pytest.mark.slow
def test_each_trial_is_a_run_directory_and_the_table_is_best_first(search):
    plan, result, *_ = search
    accuracies = [row.validation_accuracy for row in result.rows]
    assert accuracies == sorted(accuracies, reverse=True)
    for row in result.rows:
        run = plan.directory / trial_name(row.trial_id)
        metrics = json.loads((run / "metrics.json").read_text())
        assert row.validation_accuracy == metrics["validation"]["accuracy"]
        config = read_yaml(run / "config.yaml")
        assert config["learning_rate"] == pytest.approx(row.values["learning_rate"])
        assert config["batch_size"] == row.values["batch_size"] in (32, 64)
        assert 1e-3 <= config["learning_rate"] <= 1e-2
        assert list((run / "logs").iterdir())  # TensorBoard, with the trial's HParams


@pytest.mark.slow
def test_best_yaml_reproduces_the_best_trial_configuration(search):
    plan, result, *_ = search
    best = TrainConfig.from_yaml(plan.directory / "best.yaml").to_dict()
    trial = read_yaml(plan.directory / trial_name(result.rows[0].trial_id) / "config.yaml")
    outputs = ("run_name", "output_dir", "export_dir", "export", "overwrite")
    assert {k: v for k, v in best.items() if k not in outputs} == {
        k: v for k, v in trial.items() if k not in outputs
    }
    assert best["output_dir"] == "runs" and best["run_name"] is None  # a fresh run's


@pytest.mark.slow
def test_refine_narrows_around_the_best_trials_and_checks_top(search):
    plan, result, *_, root = search
    fine = plan_refined("tiny", top=1, output_dir=str(root), trials=1)
    best = result.rows[0].values
    assert fine.name == "tiny-refined" and not fine.directory.exists()
    rate, batch = fine.space
    assert rate.contains(best["learning_rate"]) and rate.width() < plan.space[0].width()
    assert batch.choices == (best["batch_size"],)
    with pytest.raises(KerasCNNError, match="--top"):
        plan_refined("tiny", top=3, output_dir=str(root))


@pytest.mark.parametrize(
    ("method", "oracle"),
    [
        ("random", "RandomSearchOracle"),
        ("grid", "GridSearchOracle"),
        ("bayesian", "BayesianOptimizationOracle"),
        ("hyperband", "HyperbandOracle"),
    ],
)
def test_each_method_is_a_keras_tuner_oracle_over_the_space(method, oracle, tmp_path):
    space = [parse_dimension(text) for text in SPACE]
    plan = search_module.SearchPlan(
        "s", tmp_path, method, 3, 4, space, TrainConfig(epochs=4), dataset=None
    )
    made = search_module.make_oracle(plan)
    assert type(made).__name__ == oracle
    assert made.objective.name == "val_accuracy" and made.objective.direction == "max"
    assert sorted(p.name for p in made.hyperparameters.space) == ["batch_size", "learning_rate"]
    if method == "hyperband":
        assert made.max_epochs == 4  # --epochs is the longest trial
    else:
        assert made.max_trials == 3


@pytest.mark.slow
def test_two_workers_share_the_trials_of_one_search(tmp_path):
    """KerasTuner's distributed mode on one machine: the oracle in this process, two worker
    processes; every trial runs once, in its own run directory."""
    base = TrainConfig(model="lenet5", epochs=1, output_dir=str(tmp_path))
    plan = plan_search(base, SPACE, name="parallel", trials=2)
    result = run_search(plan, workers=2)
    assert sorted(row.trial_id for row in result.rows) == ["0", "1"]
    assert all(row.status == "completed" for row in result.rows)
    runs = sorted(p.name for p in plan.directory.glob("trial-*"))
    assert runs == ["trial-00", "trial-01"]
    assert (plan.directory / "best.yaml").is_file()
