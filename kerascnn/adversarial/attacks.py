"""L-infinity attacks on raw pixels (0-255): the fast gradient sign method (Goodfellow et al.
2015), FGSM from a random start (Wong et al. 2020, "Fast is better than free") and projected
gradient descent with a random start and restarts (Madry et al. 2018), untargeted or
targeted, on the cross-entropy or on the margin of the logits (Carlini and Wagner 2017).

Every model here takes raw pixels and starts with its preprocessing layer, so the gradients
run through the preprocessing to the pixels, and epsilon and the step are in pixel units.
The functions are plain TensorFlow, so the training step (inside ``tf.function``) and the
evaluation call the same code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from kerascnn.errors import InvalidArgumentError

ATTACKS = ("fgsm", "fgsm-rs", "pgd")
LOSSES = ("crossentropy", "margin")
PIXEL_MAX = 255.0
# Madry et al. (2018) step 2.5 * epsilon / steps, so that a path can reach the edge of the
# ball from any start; Wong et al. (2020) step 1.25 * epsilon from a random start.
PGD_STEP_FACTOR = 2.5
FGSM_RS_STEP_FACTOR = 1.25


@dataclass(frozen=True)
class Attack:
    """One L-infinity attack, in raw pixel units.

    Attributes:
        name: ``fgsm`` (one step of ``epsilon`` from the image), ``fgsm-rs`` (one step of
            1.25 epsilon from a uniform random start in the ball) or ``pgd`` (``steps``
            steps of ``step_size`` from a random start, ``restarts`` times).
        epsilon: the largest change of a pixel, 0-255.
        steps: PGD's iterations (FGSM takes one).
        step_size: pixel units a step; None: 2.5 epsilon / steps (PGD), 1.25 epsilon
            (FGSM-RS), epsilon (FGSM).
        restarts: PGD runs from fresh random starts; an image counts as broken if any does.
        loss: ``crossentropy`` or ``margin`` (best other logit minus the label's).
        targeted: push towards ``targets`` instead of away from the label.
    """

    name: str = "pgd"
    epsilon: float = 8.0
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1
    loss: str = "crossentropy"
    targeted: bool = False

    def __post_init__(self) -> None:
        check_attack(self.name, [self.epsilon], self.steps, self.step_size, self.restarts)
        if self.loss not in LOSSES:
            raise InvalidArgumentError(
                f"unknown attack loss {self.loss!r}; choose one of {', '.join(LOSSES)}"
            )

    @property
    def iterations(self) -> int:
        return self.steps if self.name == "pgd" else 1

    @property
    def random_start(self) -> bool:
        return self.name != "fgsm"

    def step_for(self, epsilon: float) -> float:
        """The step at ``epsilon``: ``step_size``, else the method's multiple of epsilon."""
        if self.step_size is not None:
            return float(self.step_size)
        factor = {"fgsm": 1.0, "fgsm-rs": FGSM_RS_STEP_FACTOR}.get(self.name)
        if factor is None:
            return PGD_STEP_FACTOR * epsilon / self.steps
        return factor * epsilon

    def label(self) -> str:
        """``pgd-20x2``, ``fgsm``, ``pgd-20 margin``: how tables name the attack."""
        text = self.name
        if self.name == "pgd":
            text += f"-{self.steps}" + (f"x{self.restarts}" if self.restarts > 1 else "")
        if self.loss == "margin":
            text += " margin"
        return text + (" targeted" if self.targeted else "")


def check_attack(
    name: str,
    epsilons,
    steps: int,
    step_size: float | None,
    restarts: int,
    *,
    allow_large_step: bool = True,
) -> None:
    """What a user can get wrong about an attack, as one-line ``InvalidArgumentError``s."""
    if name not in ATTACKS:
        raise InvalidArgumentError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")
    for epsilon in epsilons:
        if not 0 <= epsilon <= PIXEL_MAX:  # NaN fails too
            raise InvalidArgumentError(
                f"epsilon must be in pixel units, 0 to 255; received {epsilon}"
            )
    if steps < 1:
        raise InvalidArgumentError(f"steps must be at least 1; received {steps}")
    if restarts < 1:
        raise InvalidArgumentError(f"restarts must be at least 1; received {restarts}")
    if step_size is not None and not step_size > 0:
        raise InvalidArgumentError(f"step size must be positive; received {step_size}")
    smallest = min(epsilons)
    if step_size is not None and step_size > smallest and not allow_large_step:
        raise InvalidArgumentError(
            f"step size {step_size:g} is larger than epsilon {smallest:g}; every step would "
            f"land on the edge of the ball (pass --allow-large-step if that is what you want)"
        )


def parse_epsilons(text: str) -> list[float]:
    """``8,16,32`` -> [8.0, 16.0, 32.0]: raw pixel units, each 0-255."""
    try:
        values = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers in pixel units, got {text!r}") from None
    if not values or any(not 0 <= v <= PIXEL_MAX for v in values):
        raise ValueError(f"expected epsilons from 0 to 255 (pixel units), got {text!r}")
    return sorted(set(values))


def score_tensor(model: keras.Model):
    """The class scores: the input of a final softmax (the logits), else the output."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation | keras.layers.Softmax):
        return last.input
    return model.output


def logits_model(model: keras.Model) -> keras.Model:
    """``model`` up to its class scores (sharing its layers): what an attack differentiates."""
    return keras.Model(model.input, score_tensor(model))


def objective(logits, labels, loss: str = "crossentropy", targeted: bool = False):
    """What the attack climbs, per image: the cross-entropy of ``labels`` or the margin of
    the best other logit over the label's; targeted, the negated cross-entropy of the target
    or the target's margin over the best other."""
    logits = tf.cast(logits, "float32")
    labels = tf.cast(labels, "int32")
    if loss == "crossentropy":
        value = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        return -value if targeted else value
    chosen = tf.one_hot(labels, tf.shape(logits)[-1]) > 0
    own = tf.reduce_max(tf.where(chosen, logits, -np.inf), axis=-1)
    other = tf.reduce_max(tf.where(chosen, -np.inf, logits), axis=-1)
    return own - other if targeted else other - own


def perturb(
    logits_fn: Callable[[tf.Tensor], tf.Tensor],
    images,
    labels,
    attack: Attack,
    *,
    epsilon: float | None = None,
):
    """One run of ``attack`` (no restarts) on a batch: adversarial raw pixels within
    ``epsilon`` (default ``attack.epsilon``) of ``images`` and in 0-255. ``labels`` are the
    targets when the attack is targeted. Graph-safe: the training step calls it inside
    ``tf.function``."""
    epsilon = attack.epsilon if epsilon is None else epsilon
    images = tf.convert_to_tensor(images, "float32")
    low = tf.maximum(images - epsilon, 0.0)
    high = tf.minimum(images + epsilon, PIXEL_MAX)
    x = images
    if attack.random_start:
        x = tf.clip_by_value(
            images + tf.random.uniform(tf.shape(images), -epsilon, epsilon), low, high
        )
    step = attack.step_for(epsilon)

    def climb(i, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            # Summed: each image's gradient is its own objective's (images are independent).
            climbed = tf.reduce_sum(objective(logits_fn(x), labels, attack.loss, attack.targeted))
        gradient = tape.gradient(climbed, x)
        if gradient is None:  # no differentiable path to the pixels: the attack cannot move
            gradient = tf.zeros_like(x)
        return i + 1, tf.clip_by_value(x + step * tf.sign(gradient), low, high)

    # An explicit loop: Keras traces the training step without AutoGraph.
    _, x = tf.while_loop(lambda i, x: i < attack.iterations, climb, (tf.constant(0), x))
    return tf.stop_gradient(x)


class Attacker:
    """``attack`` on a model's class scores, compiled once (epsilon is an argument, so one
    trace serves every epsilon), over batches and with the attack's restarts."""

    def __init__(self, logits_fn: Callable, attack: Attack, batch_size: int = 256, logits=None):
        """``logits``: ``logits_fn`` compiled, shared between the attackers of one model."""
        self.attack, self.batch_size = attack, batch_size
        self.logits = logits or tf.function(logits_fn, reduce_retracing=True)
        # A partial, not a lambda: TensorFlow counts retracing per code object, and every
        # attacker's lambda would share one (a false "excessive retracing" warning).
        self._perturb = tf.function(
            functools.partial(perturb, logits_fn, attack=attack), reduce_retracing=True
        )

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The predicted class of each raw-pixel image."""
        found = [
            np.asarray(self.logits(images[i : i + self.batch_size])).argmax(-1)
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(found) if found else np.zeros((0,), "int64")

    def __call__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        epsilon: float,
        targets: np.ndarray | None = None,
    ) -> np.ndarray:
        """Adversarial raw pixels for every image: for each, the first restart that broke it
        (misclassified; targeted, classified as its target), else the last restart's."""
        images = np.asarray(images, "float32")
        if epsilon == 0:
            return images.copy()
        aim = labels if targets is None else targets
        best = np.empty_like(images)
        for start in range(0, len(images), self.batch_size):
            batch = slice(start, start + self.batch_size)
            done = None
            for _ in range(self.attack.restarts):
                found = np.asarray(
                    self._perturb(
                        images[batch], aim[batch], epsilon=tf.constant(epsilon, "float32")
                    )
                )
                predicted = self.predict(found)
                broke = predicted == aim[batch] if self.attack.targeted else predicted != aim[batch]
                if done is None:
                    best[batch], done = found, broke
                else:
                    replace = broke & ~done
                    best[batch][replace], done = found[replace], done | broke
                if done.all():
                    break
        return best
