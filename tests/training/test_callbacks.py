"""Callbacks that keep a run's files whole: atomic saves and best/last checkpoints.

Each checkpoint's weights are set to a distinctive constant before it is written, so which
epoch a file holds can be read back from the file itself."""

import keras
import numpy as np
import pytest

from kerascnn.training.callbacks import Checkpoints, save_atomically
from kerascnn.training.resume import STATE, RunBackup, read_state


@pytest.fixture
def model():
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, name="dense")(inputs)
    return keras.Model(inputs, outputs)


def stamp(model, value):
    """Fill every weight with ``value``."""
    model.set_weights([np.full(w.shape, value, "float32") for w in model.get_weights()])


def stamp_of(path):
    weights = keras.saving.load_model(path).get_weights()
    values = np.unique(np.concatenate([w.ravel() for w in weights]))
    assert len(values) == 1, values
    return float(values[0])


# -- save_atomically ----------------------------------------------------------------------


def test_save_atomically_writes_a_loadable_file_and_nothing_else(tmp_path, model):
    stamp(model, 0.5)
    path = tmp_path / "model.keras"
    save_atomically(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
    loaded = keras.saving.load_model(path)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_save_atomically_replaces_an_existing_file(tmp_path, model):
    path = tmp_path / "model.keras"
    stamp(model, 1.0)
    save_atomically(model, path)
    stamp(model, 2.0)
    save_atomically(model, path)
    assert stamp_of(path) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, model, monkeypatch, error):
    path = tmp_path / "model.keras"
    stamp(model, 3.0)
    save_atomically(model, path)
    before = path.read_bytes()

    def save_halfway(self, filepath, *args, **kwargs):
        # Write something truncated where the save was going, then die.
        with open(filepath, "wb") as file:
            file.write(b"PK\x03\x04 truncated")
        raise error

    monkeypatch.setattr(type(model), "save", save_halfway)
    stamp(model, 4.0)
    with pytest.raises(type(error)):
        save_atomically(model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_a_failed_first_save_leaves_nothing(tmp_path, model, monkeypatch):
    def save_halfway(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as file:
            file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(type(model), "save", save_halfway)
    with pytest.raises(OSError):
        save_atomically(model, tmp_path / "model.keras")
    assert list(tmp_path.iterdir()) == []


# -- Checkpoints --------------------------------------------------------------------------


def run_epochs(callback, model, history):
    """Drive ``callback`` as ``fit`` would, stamping the weights with the epoch number."""
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, logs in enumerate(history):
        stamp(model, float(epoch))
        callback.on_epoch_end(epoch, logs)


def test_checkpoints_create_their_directory(tmp_path, model):
    directory = tmp_path / "run" / "checkpoints"
    run_epochs(Checkpoints(directory), model, [])
    assert directory.is_dir()


def test_last_is_every_epoch_and_best_only_on_improvement(tmp_path, model):
    directory = tmp_path / "checkpoints"
    callback = Checkpoints(directory)
    callback.set_model(model)
    callback.on_train_begin()
    accuracies = [0.5, 0.4, 0.7, 0.7, 0.6]
    best_stamps = []
    for epoch, accuracy in enumerate(accuracies):
        stamp(model, float(epoch))
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_accuracy": accuracy})
        assert stamp_of(directory / "last.keras") == epoch
        best_stamps.append(stamp_of(directory / "best.keras"))
    # The best so far after each epoch: epoch 0 (0.5), still 0, epoch 2 (0.7); a tie or a
    # drop does not replace it.
    expected = [int(np.argmax(accuracies[: i + 1])) for i in range(len(accuracies))]
    assert best_stamps == expected
    assert callback.best == pytest.approx(max(accuracies))
    assert callback.best_epoch == expected[-1] + 1
    assert sorted(p.name for p in directory.iterdir()) == ["best.keras", "last.keras"]


def test_a_loss_monitor_prefers_lower_values(tmp_path, model):
    directory = tmp_path / "checkpoints"
    losses = [0.9, 1.2, 0.3, 0.5]
    callback = Checkpoints(directory, monitor="val_loss")
    run_epochs(callback, model, [{"val_loss": v} for v in losses])
    assert stamp_of(directory / "best.keras") == int(np.argmin(losses))
    assert stamp_of(directory / "last.keras") == len(losses) - 1
    assert callback.best == pytest.approx(min(losses))


def test_without_the_monitored_value_only_last_is_written(tmp_path, model):
    directory = tmp_path / "checkpoints"
    run_epochs(Checkpoints(directory), model, [{"loss": 0.3}, None])
    assert sorted(p.name for p in directory.iterdir()) == ["last.keras"]
    assert stamp_of(directory / "last.keras") == 1


def test_checkpoints_accept_numpy_values(tmp_path, model):
    directory = tmp_path / "checkpoints"
    callback = Checkpoints(directory)
    run_epochs(callback, model, [{"val_accuracy": np.float32(0.25)}])
    assert callback.best == pytest.approx(0.25)
    assert (directory / "best.keras").is_file()


def test_checkpoints_during_fit(tmp_path, model):
    # The same callback under a real fit: files written, no temporary left behind.
    directory = tmp_path / "checkpoints"
    model.compile(optimizer="sgd", loss="mse", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    callback = Checkpoints(directory, monitor="val_loss")
    model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=[callback])
    assert sorted(p.name for p in directory.iterdir()) == ["best.keras", "last.keras"]
    assert callback.best_epoch in (1, 2)
    np.testing.assert_allclose(
        keras.saving.load_model(directory / "last.keras").get_weights()[0],
        model.get_weights()[0],
    )


# -- one serialisation per epoch: best.keras and the backup are links to last.keras -------


def test_an_improving_epoch_is_serialised_once(tmp_path, model):
    directory = tmp_path / "checkpoints"
    callback = Checkpoints(directory)
    run_epochs(callback, model, [{"val_accuracy": 0.5}])
    assert (directory / "best.keras").samefile(directory / "last.keras")
    run_epochs(callback, model, [{"val_accuracy": 0.4}])  # no better: best keeps its file
    assert not (directory / "best.keras").samefile(directory / "last.keras")
    assert stamp_of(directory / "best.keras") == 0


def backed_up(tmp_path, model, history, checkpoints=True):
    """Checkpoints then the backup, in the run's order, over ``history``."""
    checkpoints = Checkpoints(tmp_path / "checkpoints") if checkpoints else None
    backup = RunBackup(tmp_path / "backup", checkpoints)
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    callbacks = [c for c in (checkpoints, backup) if c is not None]
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    for epoch, logs in enumerate(history):
        stamp(model, float(epoch))
        model.optimizer.iterations.assign(10 * (epoch + 1))
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
    return read_state(tmp_path / "backup")


def test_the_backup_is_the_epochs_checkpoint_and_resumes_with_its_optimiser(tmp_path, model):
    state = backed_up(tmp_path, model, [{"loss": 1.0, "val_accuracy": a} for a in (0.5, 0.4)])
    files = sorted(p.name for p in (tmp_path / "backup").iterdir())
    assert state["epoch"] == 2 and files == ["epoch-0002.keras", STATE]
    assert (tmp_path / "backup" / state["weights"]).samefile(tmp_path / "checkpoints/last.keras")
    # A fresh model resumes from it: the weights and the optimiser's step of epoch 2.
    fresh = keras.models.clone_model(model)
    fresh.compile(optimizer="adam", loss="mse")
    restore = RunBackup(tmp_path / "backup")
    restore.set_model(fresh)
    restore.on_train_begin()
    assert restore.restored_epoch == 2
    assert {float(w.ravel()[0]) for w in fresh.get_weights()} == {1.0}
    assert int(fresh.optimizer.iterations.numpy()) == 20


def test_without_checkpoints_the_backup_saves_its_own_weights(tmp_path, model):
    state = backed_up(tmp_path, model, [{"loss": 1.0}], checkpoints=False)
    assert state["weights"] == "epoch-0001.weights.h5"
    assert (tmp_path / "backup" / state["weights"]).is_file()
