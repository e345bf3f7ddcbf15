"""Adversarial training (Goodfellow et al. 2015; Madry et al. 2018; Wong et al. 2020): each
training batch is attacked first and the network is trained on the adversarial images (a
``share`` of the batch; the rest stay clean).

``--adversarial fgsm|fgsm-rs|pgd`` with ``--epsilon`` (pixel units, 0-255), ``--steps`` and
``--step-size`` (``kerascnn.adversarial.attacks``). The run's curves have both numbers:

- ``accuracy`` (train): clean accuracy of each training batch, the network in inference mode;
- ``robust_accuracy`` (train): accuracy on the batch's adversarial examples, as trained on;
- ``val_accuracy``: clean; ``val_robust_accuracy``: under PGD (``EVALUATION_STEPS`` steps or
  the training's, if more, from a random start) at the training epsilon, whatever the
  training attack, since a single-step attack can overestimate robustness (Wong et al.
  2020's catastrophic overfitting);

and ``metrics.json`` the same PGD robust accuracy of the best checkpoint on every split.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from kerascnn.adversarial.attacks import Attack, Attacker, check_attack, logits_model, perturb
from kerascnn.data import SPLITS, split_arrays
from kerascnn.errors import InvalidArgumentError
from kerascnn.settings import check, setting

EVALUATION_STEPS = 10
# Images of each split the best checkpoint's robust accuracy is measured on.
EVALUATION_IMAGES = 1000


@dataclass
class AdversarialConfig:
    """Adversarial training (module docstring); off unless ``adversarial`` is set."""

    adversarial: str | None = setting(
        None, "Adversarial training attack.", choices=("fgsm", "fgsm-rs", "pgd"), shown="off"
    )
    adversarial_epsilon: float = setting(
        8.0,
        "Adversarial training: largest pixel change (0-255).",
        low=0,
        high=255,
        option="--epsilon",
    )
    adversarial_steps: int = setting(7, "Adversarial training: PGD steps.", low=1, option="--steps")
    adversarial_step_size: float | None = setting(
        None,
        "Adversarial training: pixel units a step.",
        low=0,
        low_open=True,
        option="--step-size",
        shown="2.5 eps / steps (PGD), 1.25 eps (FGSM-RS)",
    )
    adversarial_share: float = setting(
        1.0,
        "Share of each batch replaced by adversarial examples.",
        low=0,
        high=1,
        low_open=True,
    )
    allow_large_step: bool = setting(False, "Allow a step above epsilon.", flag="on")

    def __post_init__(self) -> None:
        check(self)
        if self.adversarial is not None:
            check_attack(
                self.adversarial,
                [self.adversarial_epsilon],
                self.adversarial_steps,
                self.adversarial_step_size,
                1,
                allow_large_step=self.allow_large_step,
            )

    def attack(self) -> Attack | None:
        if self.adversarial is None:
            return None
        return Attack(
            self.adversarial,
            self.adversarial_epsilon,
            self.adversarial_steps,
            self.adversarial_step_size,
        )

    def evaluation_attack(self) -> Attack | None:
        """PGD at the training epsilon: what the robust accuracy of a run is measured with."""
        if self.adversarial is None:
            return None
        steps = max(EVALUATION_STEPS, self.adversarial_steps)
        return Attack("pgd", self.adversarial_epsilon, steps)


def check_network(config: AdversarialConfig, outputs: int) -> None:
    if config.adversarial is not None and outputs > 1:
        raise InvalidArgumentError(
            "adversarial training takes a network with one output; turn the auxiliary "
            "classifiers off with --model-option aux_logits=false"
        )


def sparse_labels(y):
    """Class indices from sparse or one-hot (mixup, cutmix) labels."""
    return tf.argmax(y, axis=-1) if len(y.shape) > 1 else y


@keras.saving.register_keras_serializable(package="kerascnn")
class AdversarialModel(keras.Model):
    """Wraps a network so that ``fit`` trains it on adversarial examples of each batch and
    ``evaluate`` reports ``robust_accuracy`` beside the clean metrics.

    Args:
        network: a functional model on logits, taking raw pixels.
        attack: the training attack.
        evaluation_attack: the attack of ``robust_accuracy`` in ``evaluate``.
        share: the part of each batch replaced by its adversarial examples.
    """

    def __init__(self, network, attack, evaluation_attack, share: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.attack = attack if isinstance(attack, Attack) else Attack(**attack)
        self.evaluation_attack = (
            evaluation_attack
            if isinstance(evaluation_attack, Attack)
            else Attack(**evaluation_attack)
        )
        self.share = float(share)
        self.robust_accuracy = keras.metrics.SparseCategoricalAccuracy(name="robust_accuracy")

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels = sparse_labels(y)
        count = tf.shape(x)[0]
        attacked = tf.cast(tf.round(self.share * tf.cast(count, "float32")), "int32")
        adversarial = perturb(
            lambda v: self.network(v, training=True),
            x[:attacked],
            labels[:attacked],
            self.attack,
        )
        mixed = tf.concat([adversarial, x[attacked:]], axis=0)
        with tf.GradientTape() as tape:
            predicted = self(mixed, training=True)
            loss = self.compute_loss(
                x=mixed, y=y, y_pred=predicted, sample_weight=sample_weight, training=True
            )
            self._loss_tracker.update_state(loss, sample_weight=count)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        self.robust_accuracy.update_state(labels[:attacked], predicted[:attacked])
        clean = self(x, training=False)
        return self.compute_metrics(x, y, clean, sample_weight=sample_weight)

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        labels = sparse_labels(y)
        network = lambda v: self.network(v, training=False)  # noqa: E731
        adversarial = perturb(network, x, labels, self.evaluation_attack)
        self.robust_accuracy.update_state(labels, network(adversarial))
        return super().test_step(data)

    def inference_model(self) -> keras.Model:
        return self.network

    def get_config(self):
        return {
            "name": self.name,
            "network": keras.saving.serialize_keras_object(self.network),
            "attack": dict(self.attack.__dict__),
            "evaluation_attack": dict(self.evaluation_attack.__dict__),
            "share": self.share,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


def wrap(model: keras.Model, config: AdversarialConfig) -> keras.Model:
    """``model`` for adversarial training when ``config`` asks for it, else itself."""
    if config.adversarial is None:
        return model
    return AdversarialModel(
        model,
        config.attack(),
        config.evaluation_attack(),
        config.adversarial_share,
        name=model.name,
    )


def robust_metrics(
    model: keras.Model, config: AdversarialConfig, dataset, input_shape
) -> dict[str, float]:
    """Under adversarial training, the PGD robust accuracy of ``model`` (the inference model)
    on the first ``EVALUATION_IMAGES`` images of every split; empty otherwise."""
    attack = config.evaluation_attack()
    if attack is None:
        return {}
    found, attacker = {}, Attacker(logits_model(model), attack)
    for split in SPLITS:
        images, labels = split_arrays(
            dataset.split(split),
            image_size=input_shape[:2],
            channels=input_shape[-1],
            limit=EVALUATION_IMAGES,
        )
        adversarial = attacker(images, labels, attack.epsilon)
        found[split] = round(float(np.mean(attacker.predict(adversarial) == labels)), 6)
    return found
