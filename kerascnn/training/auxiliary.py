"""Training a network with auxiliary classifiers (GoogLeNet, Inception v3).

The network is built with ``aux_logits=True``: outputs ``[main, aux1, ...]``. The papers
train on ``loss(main) + sum_i w_i * loss(aux_i)`` (GoogLeNet: w = 0.3 for both heads;
Inception v3: 0.4) and report the main head only, which is what ``AuxiliaryLossModel``
does: metrics see the main output, and ``main_head`` drops the auxiliary heads for
evaluation and export.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from kerascnn.models.layers import main_head


@keras.saving.register_keras_serializable(package="kerascnn")
class AuxiliaryLossModel(keras.Model):
    """Wraps a multi-output network so that ``compile``/``fit`` see one prediction (the main
    head) while the loss adds the weighted auxiliary losses.

    Args:
        network: a functional model whose outputs are ``[main, aux1, ...]``.
        auxiliary_loss_weights: one weight per auxiliary output.
    """

    def __init__(self, network: keras.Model, auxiliary_loss_weights: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        if len(network.outputs) != len(auxiliary_loss_weights) + 1:
            raise ValueError(
                f"{network.name} has {len(network.outputs)} outputs; expected the main output "
                f"and {len(auxiliary_loss_weights)} auxiliary ones"
            )
        self.network = network
        self.auxiliary_loss_weights = tuple(float(w) for w in auxiliary_loss_weights)

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        main, *auxiliary = y_pred
        total = super().compute_loss(x=x, y=y, y_pred=main, sample_weight=sample_weight, **kwargs)
        for weight, logits in zip(self.auxiliary_loss_weights, auxiliary, strict=True):
            total = total + weight * ops.mean(self.loss(y, logits))
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y, y_pred[0], sample_weight)

    def inference_model(self) -> keras.Model:
        """The network without its auxiliary heads (shares the trained layers)."""
        return main_head(self.network)

    def get_config(self):
        return {
            "name": self.name,
            "network": keras.saving.serialize_keras_object(self.network),
            "auxiliary_loss_weights": list(self.auxiliary_loss_weights),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


def inference_model(model: keras.Model) -> keras.Model:
    """``model`` itself, or what a training wrapper holds for inference (the student of a
    ``keras.distillation.Distiller``, the main head of an ``AuxiliaryLossModel``, the network
    of an ``AdversarialModel``)."""
    if isinstance(model, keras.distillation.Distiller):
        model = model.student
    unwrap = getattr(model, "inference_model", None)
    return unwrap() if callable(unwrap) else model
