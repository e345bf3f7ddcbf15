"""Optimisers by name, and weight decay in the papers' two senses.

Each factory takes the learning rate (a float or a schedule), the momentum settings and any
further keyword arguments of the Keras optimiser.

Weight decay:
- ``l2`` (the papers' term): ``lambda / 2 * |w|^2`` added to the loss, so the gradient gains
  ``lambda * w`` and momentum and adaptive scaling act on it (AlexNet, VGG, ResNet).
- ``decoupled`` (Loshchilov & Hutter 2019): ``w -= lr * lambda * w`` applied by the optimiser
  beside the gradient step (the Keras optimisers' ``weight_decay``; AdamW is Adam with it).
Either can leave out biases and normalisation parameters (``decay_bias_and_norm=False``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.registry import Registry
from kerascnn.settings import check, setting

OPTIMIZERS: Registry[Callable[..., keras.optimizers.Optimizer]] = Registry("optimizer")


def _sgd(lr, *, momentum=0.9, nesterov=False, **options):
    return keras.optimizers.SGD(lr, momentum=momentum, nesterov=nesterov, **options)


def _rmsprop(lr, *, momentum=0.9, nesterov=False, **options):
    # RMSProp's own momentum is 0 unless optimizer_options sets it (Inception v3 uses none).
    return keras.optimizers.RMSprop(lr, **options)


def _plain(optimizer_class):
    def build(lr, *, momentum=0.9, nesterov=False, **options):
        return optimizer_class(lr, **options)

    return build


OPTIMIZERS.add("sgd", _sgd)
OPTIMIZERS.add("adam", _plain(keras.optimizers.Adam))
OPTIMIZERS.add("adamw", _plain(keras.optimizers.AdamW))
OPTIMIZERS.add("rmsprop", _rmsprop)
OPTIMIZERS.add("adagrad", _plain(keras.optimizers.Adagrad))

DECAY_MODES = ("l2", "decoupled")


@dataclass
class OptimizationConfig:
    """The optimiser and its weight decay (README "Options")."""

    optimizer: str = setting(
        "adam", "{choices} (sgd: momentum 0.9 unless --momentum).", names=OPTIMIZERS.names
    )
    momentum: float = setting(0.9, "SGD momentum.", low=0)
    nesterov: bool = setting(False, "Nesterov momentum (SGD).", flag="switch")
    weight_decay: float = setting(0.0, "Weight decay lambda.", low=0)
    decay_mode: str = setting(
        "l2", "l2: the papers' term in the loss; decoupled: AdamW's.", choices=DECAY_MODES
    )
    decay_bias_and_norm: bool = setting(
        True, "Decay biases and normalisation parameters too.", flag="switch"
    )
    ema: float | None = setting(
        None,
        "Average the weights, EMA with this decay; evaluated and exported averaged.",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
        shown="off",
        metavar="DECAY",
    )
    swa_epochs: int | None = setting(
        None,
        "Stochastic weight averaging over the last N epochs (batch-norm statistics "
        "recomputed); evaluated and exported averaged.",
        low=1,
        shown="off",
        metavar="N",
    )
    # Further keyword arguments of the Keras optimiser, e.g. {rho: 0.9, epsilon: 1.0}.
    optimizer_options: dict[str, Any] = setting(
        help="Further Keras optimiser arguments.", factory=dict, cli=False
    )

    def __post_init__(self) -> None:
        check(self)

    def create(self, learning_rate: Any) -> keras.optimizers.Optimizer:
        options = dict(self.optimizer_options)
        if self.ema is not None:  # the Keras optimisers' own moving average of the weights
            options.update(use_ema=True, ema_momentum=self.ema)
        return create_optimizer(
            self.optimizer,
            learning_rate,
            momentum=self.momentum,
            nesterov=self.nesterov,
            options=options,
        )


# Variables of normalisation layers and biases, by the names Keras gives them.
NORM_AND_BIAS = ("bias", "gamma", "beta", "moving_mean", "moving_variance", "scale", "offset")


def create_optimizer(
    name: str,
    learning_rate: Any,
    *,
    momentum: float = 0.9,
    nesterov: bool = False,
    options: dict[str, Any] | None = None,
) -> keras.optimizers.Optimizer:
    """``sgd`` (momentum 0.9 unless given, optionally Nesterov), ``adam``, ``adamw``,
    ``rmsprop`` or ``adagrad``; ``options`` are further Keras optimiser keyword arguments."""
    factory = OPTIMIZERS.get(name)
    try:
        return factory(learning_rate, momentum=momentum, nesterov=nesterov, **(options or {}))
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(
            f"optimizer_options {options or {}} do not suit {name}: {error}"
        ) from None


def is_bias_or_norm(variable) -> bool:
    """A bias, or a parameter of a normalisation layer (one-dimensional scale and offset)."""
    leaf = variable.path.split("/")[-1] if hasattr(variable, "path") else variable.name
    return leaf in NORM_AND_BIAS or len(variable.shape) <= 1


def apply_weight_decay(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    weight_decay: float,
    mode: str = "l2",
    *,
    bias_and_norm: bool = True,
) -> list[str]:
    """Put weight decay on ``model``'s trainable variables; returns the decayed paths.

    ``l2`` gives each decayed variable a regulariser ``L2(lambda / 2)`` (so the loss gains
    the papers' ``lambda / 2 * |w|^2``; a variable that already has one, from a model whose
    paper fixes it, keeps its own). ``decoupled`` sets the optimiser's ``weight_decay`` and
    excludes the others from it. Call before the optimiser is built.
    """
    if not weight_decay:
        return []
    decayed = [v for v in model.trainable_variables if bias_and_norm or not is_bias_or_norm(v)]
    if mode == "l2":
        regularizer = keras.regularizers.L2(weight_decay / 2)
        for variable in decayed:
            if getattr(variable, "regularizer", None) is None:
                variable.regularizer = regularizer
    elif mode == "decoupled":
        optimizer.weight_decay = weight_decay
        keep = {id(v) for v in decayed}
        excluded = [v for v in model.trainable_variables if id(v) not in keep]
        if excluded:
            optimizer.exclude_from_weight_decay(var_list=excluded)
    else:
        raise InvalidArgumentError(f"decay_mode must be l2 or decoupled; received {mode!r}")
    return [v.path for v in decayed]
