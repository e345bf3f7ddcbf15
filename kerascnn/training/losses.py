"""Training criteria by name. Models are trained on logits (``classifier_activation=None``);
the softmax is added back for the inference model that is evaluated, saved and exported."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

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


LOSSES.add("crossentropy", lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True))
LOSSES.add("rbf_penalty", lambda: rbf_penalty)


def create_loss(name: str) -> keras.losses.Loss | Callable:
    return LOSSES.get(name)()
