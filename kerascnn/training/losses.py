"""Training criteria by name. Models are trained on logits (``classifier_activation=None``);
the softmax is added back for the inference model that is evaluated, saved and exported."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

from kerascnn.errors import InvalidArgumentError
from kerascnn.registry import Registry

LOSSES: Registry[Callable[[], keras.losses.Loss]] = Registry("loss")


@keras.saving.register_keras_serializable(package="kerascnn")
def rbf_penalty(labels, logits):
    """LeCun et al. 1998, equation (8): the RBF penalty of the correct class, i.e. the squared
    distance from F6's output to the correct class's fixed code. The codes are fixed, so the
    collapse the paper warns about for trained RBF centres cannot happen; the logits of the
    paper's LeNet-5 are the negative penalties, so this is minus the correct class's logit."""
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    return -ops.take_along_axis(logits, labels[:, None], axis=1)[:, 0]


@keras.saving.register_keras_serializable(package="kerascnn")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of logits against integer labels smoothed towards the uniform
    distribution (Szegedy et al. 2016, section 7): the target is ``(1 - eps)`` on the label
    plus ``eps / K`` on every class, so the loss is
    ``(1 - eps) * CE(label) + eps * mean_k(-log p_k)``."""

    def __init__(self, label_smoothing: float = 0.1, name="smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        log_p = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        nll = -ops.take_along_axis(log_p, labels[:, None], axis=1)[:, 0]
        uniform = -ops.mean(log_p, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _crossentropy(label_smoothing: float = 0.0):
    if label_smoothing:
        return SmoothedCrossentropy(label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _rbf_penalty(label_smoothing: float = 0.0):
    if label_smoothing:
        raise InvalidArgumentError("label smoothing applies to crossentropy, not rbf_penalty")
    return rbf_penalty


LOSSES.add("crossentropy", _crossentropy)
LOSSES.add("rbf_penalty", _rbf_penalty)


def create_loss(name: str, label_smoothing: float = 0.0) -> keras.losses.Loss | Callable:
    return LOSSES.get(name)(label_smoothing=label_smoothing)
