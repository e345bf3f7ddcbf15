"""Training with auxiliary classifiers: the loss is the main loss plus the weighted auxiliary
losses (Szegedy et al. 2014, section 5: "their loss gets added to the total loss of the
network with a discount weight (the losses of the auxiliary classifiers were weighted by
0.3)"), metrics and the inference model see the main head only."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import kerascnn
from kerascnn.cli import main, train_main
from kerascnn.models import MODELS
from kerascnn.training.auxiliary import AuxiliaryLossModel, inference_model

AUX_WEIGHTS = (0.3, 0.3)


def two_head_network(seed=0):
    keras.utils.set_random_seed(seed)
    images = keras.Input((6,), name="images")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(images)
    main = keras.layers.Dense(3, name="predictions")(hidden)
    aux1 = keras.layers.Dense(3, name="aux1_predictions")(hidden)
    aux2 = keras.layers.Dense(3, name="aux2_predictions")(images)
    return keras.Model(images, [main, aux1, aux2], name="toy")


def crossentropy():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 6)).astype("float32"), rng.integers(0, 3, 32)


@pytest.fixture
def model():
    model = AuxiliaryLossModel(two_head_network(), AUX_WEIGHTS, name="toy")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=crossentropy(), metrics=["accuracy"])
    return model


def test_loss_is_main_plus_weighted_auxiliary_losses(model, data):
    images, labels = data
    main, aux1, aux2 = model.network(images)
    loss = crossentropy()
    expected = loss(labels, main) + 0.3 * loss(labels, aux1) + 0.3 * loss(labels, aux2)
    result = model.evaluate(images, labels, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["loss"], float(expected), rtol=1e-5)


def test_metrics_are_the_main_heads(model, data):
    images, labels = data
    main = model.network(images)[0]
    expected = float(np.mean(np.argmax(main, axis=1) == labels))
    result = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] == pytest.approx(expected)


def test_training_updates_the_auxiliary_heads(model, data):
    images, labels = data
    before = model.network.get_layer("aux2_predictions").get_weights()[0].copy()
    model.fit(images, labels, epochs=1, batch_size=32, verbose=0)
    after = model.network.get_layer("aux2_predictions").get_weights()[0]
    # aux2 feeds only its own loss: it changes only if its loss is in the total.
    assert not np.allclose(before, after)


def test_inference_model_is_the_main_head_sharing_the_trained_layers(model, data):
    images, _ = data
    inference = inference_model(model)
    assert len(inference.outputs) == 1
    assert not any(layer.name.startswith("aux") for layer in inference.layers)
    np.testing.assert_allclose(
        inference.predict(images, verbose=0), model.network(images)[0], rtol=1e-6
    )
    plain = two_head_network()
    assert inference_model(plain) is plain


def test_checkpoint_round_trip_keeps_heads_and_optimizer_state(model, data, tmp_path):
    images, labels = data
    model.fit(images, labels, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "last.keras")
    restored = keras.saving.load_model(tmp_path / "last.keras")
    assert isinstance(restored, AuxiliaryLossModel)
    assert restored.auxiliary_loss_weights == AUX_WEIGHTS
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 2
    for ours, theirs in zip(restored.network(images), model.network(images), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_weights_must_match_the_auxiliary_outputs():
    with pytest.raises(ValueError, match="3 outputs"):
        AuxiliaryLossModel(two_head_network(), (0.3,))


# --- end to end: `kerascnn-train` on a network with auxiliary heads ------------------------

AUXILIARY_MODELS = [
    name for name in kerascnn.list_models() if MODELS.get(name).auxiliary_loss_weights
]


def test_every_network_with_auxiliary_heads_builds_them_on_request():
    assert {"googlenet", "inception_v3"} <= set(AUXILIARY_MODELS)
    for name in AUXILIARY_MODELS:
        spec = MODELS.get(name)
        network = kerascnn.create_model(name, input_shape=(*spec.min_size, 3), aux_logits=True)
        assert len(network.outputs) == 1 + len(spec.auxiliary_loss_weights)


# The training path is the same for every such network (train.py wraps whatever the spec's
# auxiliary_loss_weights say); GoogLeNet is the cheapest, and Inception v3's own head is
# tested in tests/models/test_inception.py.
@pytest.mark.slow
@pytest.mark.parametrize("name", ["googlenet"])
def test_train_cli_uses_auxiliary_heads_and_exports_the_main_head(name, tmp_path):
    spec = MODELS.get(name)
    size = max(spec.min_size)
    result = CliRunner().invoke(
        train_main,
        [
            "--model", name, "--epochs", "1", "--batch-size", "64", "--image-size", str(size),
            "--optimizer", "sgd", "--learning-rate", "0.01", "--run-name", "aux",
            "--output-dir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "exports"),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "runs" / "aux"
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["auxiliary_loss_weights"] == list(spec.auxiliary_loss_weights)
    metrics = json.loads((run / "metrics.json").read_text())
    # The main head's metrics, under the plain names.
    assert {"accuracy", "loss"} <= set(metrics["test"])
    assert {"accuracy", "val_accuracy"} <= set(metrics["history"])

    # The checkpoint for resuming keeps the heads; the inference model has none.
    last = keras.saving.load_model(run / "checkpoints" / "last.keras")
    assert isinstance(last, AuxiliaryLossModel)
    assert len(last.network.outputs) == 1 + len(spec.auxiliary_loss_weights)
    for path in (run / "model.keras", tmp_path / "exports" / "aux" / "model.keras"):
        inference = keras.saving.load_model(path)
        assert len(inference.outputs) == 1
        assert not any(layer.name.startswith("aux") for layer in inference.layers)
    export_metadata = json.loads((tmp_path / "exports" / "aux" / "metadata.json").read_text())
    assert export_metadata["parity"]["tflite"]["top1_agreement"] == 1.0

    evaluated = CliRunner().invoke(
        main, ["evaluate", str(tmp_path / "exports" / "aux" / "model.tflite"), "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(
        metrics["test"]["accuracy"], abs=0.01
    )
