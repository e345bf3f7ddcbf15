"""Learning-rate schedules by name, as functions of the optimiser's step.

Parameters are in epochs (as the papers state them) and turned into steps with the number of
steps per epoch. Every schedule can start with a linear warm-up (Goyal et al. 2017): over the
first ``warmup_epochs`` the rate is the schedule's times ``(step + 1) / warmup_steps``.

- ``constant``: ``lr``.
- ``step``: ``lr * factor ** floor(epoch / decay_epochs)`` ("divide by 10 every 30 epochs").
- ``multistep``: ``lr * factor ** (number of milestones passed)`` ("divide by 10 at 32k and
  48k iterations", ResNet on CIFAR-10).
- ``plateau``: ``lr``, multiplied by ``factor`` when the validation error has not improved for
  ``plateau_patience`` epochs (AlexNet, VGG, ResNet on ImageNet); a callback, not a schedule.
- ``exponential``: ``lr * factor ** (epoch / decay_epochs)``, with ``lr_staircase`` the
  exponent floored (GoogLeNet: 4% every 8 epochs, factor 0.96).
- ``inverse_time``: ``lr / (1 + factor * epoch / decay_epochs)`` (floored with staircase).
- ``cosine``: ``min + (lr - min) * (1 + cos(pi * epoch / epochs)) / 2`` (Loshchilov & Hutter).
- ``polynomial``: ``min + (lr - min) * (1 - epoch / epochs) ** power``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from kerascnn.errors import InvalidArgumentError
from kerascnn.registry import Registry
from kerascnn.settings import check, setting


@dataclass(frozen=True)
class ScheduleSettings:
    """What a schedule needs, in steps."""

    learning_rate: float
    steps_per_epoch: int
    total_steps: int
    decay_factor: float = 0.1
    decay_epochs: float = 30.0
    milestones: tuple[float, ...] = ()
    staircase: bool = False
    power: float = 1.0
    min_learning_rate: float = 0.0

    @property
    def decay_steps(self) -> float:
        return self.decay_epochs * self.steps_per_epoch


# name -> the rate at a (float32) step; plateau is a callback, so its formula is the constant.
SCHEDULES: Registry[Callable[[Any, ScheduleSettings], Any]] = Registry("schedule")


def _periods(step, s: ScheduleSettings):
    periods = step / s.decay_steps
    return ops.floor(periods) if s.staircase else periods


def _progress(step, s: ScheduleSettings):
    return ops.minimum(step / max(s.total_steps, 1), 1.0)


def _multistep(step, s: ScheduleSettings):
    passed = 0.0 * step
    for milestone in s.milestones:
        passed = passed + ops.cast(step >= milestone * s.steps_per_epoch, "float32")
    return s.learning_rate * ops.power(s.decay_factor, passed)


def _between(s: ScheduleSettings, fraction):
    return s.min_learning_rate + (s.learning_rate - s.min_learning_rate) * fraction


SCHEDULES.add("constant", lambda step, s: s.learning_rate + 0.0 * step)
SCHEDULES.add("plateau", SCHEDULES.get("constant"))
SCHEDULES.add(
    "step",
    lambda step, s: s.learning_rate * ops.power(s.decay_factor, ops.floor(step / s.decay_steps)),
)
SCHEDULES.add("multistep", _multistep)
SCHEDULES.add(
    "exponential", lambda step, s: s.learning_rate * ops.power(s.decay_factor, _periods(step, s))
)
SCHEDULES.add(
    "inverse_time", lambda step, s: s.learning_rate / (1.0 + s.decay_factor * _periods(step, s))
)
SCHEDULES.add(
    "cosine",
    lambda step, s: _between(s, 0.5 * (1.0 + ops.cos(math.pi * _progress(step, s)))),
)
SCHEDULES.add(
    "polynomial", lambda step, s: _between(s, ops.power(1.0 - _progress(step, s), s.power))
)
# Schedules that run as callbacks rather than formulas of the step.
CALLBACK_SCHEDULES = ("plateau",)


@keras.saving.register_keras_serializable(package="kerascnn")
class StepFunction(keras.optimizers.schedules.LearningRateSchedule):
    """The registered formula ``kind`` at the optimiser's step (serialisable, so checkpoints
    carry their schedule)."""

    def __init__(self, kind: str, settings: dict[str, Any]):
        self.kind = kind
        self.settings = dict(settings)

    def __call__(self, step):
        settings = ScheduleSettings(
            **{**self.settings, "milestones": tuple(self.settings["milestones"])}
        )
        return SCHEDULES.get(self.kind)(ops.cast(step, "float32"), settings)

    def get_config(self):
        return {
            "kind": self.kind,
            "settings": {**self.settings, "milestones": list(self.settings["milestones"])},
        }


@keras.saving.register_keras_serializable(package="kerascnn")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``schedule(step) * min(1, (step + 1) / warmup_steps)``."""

    def __init__(self, schedule, warmup_steps: int):
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        fraction = ops.minimum((ops.cast(step, "float32") + 1.0) / self.warmup_steps, 1.0)
        return self.schedule(step) * fraction

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


@dataclass
class ScheduleConfig:
    """The learning rate over a run: its start, the schedule and the schedule's parameters
    (in epochs; only ``learning_rate``, ``schedule`` and ``warmup_epochs`` are flags, the
    rest are config-file fields, README "Options")."""

    learning_rate: float = setting(1e-3, "Initial learning rate.", low=0, low_open=True)
    schedule: str = setting(
        "constant",
        "{choices} (parameters: --config).",
        names=lambda: SCHEDULES.names(),
    )
    warmup_epochs: float = setting(0.0, "Linear warm-up.", low=0)
    lr_decay_factor: float = setting(
        0.1,
        "step, multistep, exponential, plateau: the factor; inverse_time: the rate.",
        low=0,
        low_open=True,
        cli=False,
    )
    lr_decay_epochs: float = setting(
        30.0,
        "step and exponential: the period; inverse_time: the time unit.",
        low=0,
        low_open=True,
        cli=False,
    )
    lr_milestones: list[float] = setting(help="multistep: the epochs.", factory=list, cli=False)
    lr_staircase: bool = setting(
        False, "exponential and inverse_time: change once per period.", cli=False
    )
    lr_power: float = setting(1.0, "polynomial: the power.", cli=False)
    min_learning_rate: float = setting(
        0.0, "cosine, polynomial and plateau floor.", low=0, cli=False
    )
    plateau_patience: int = setting(
        5, "Epochs without a lower validation error before dividing.", low=1, cli=False
    )

    def __post_init__(self) -> None:
        check(self)
        milestones = list(self.lr_milestones)
        if milestones != sorted(milestones) or any(m <= 0 for m in milestones):
            raise InvalidArgumentError(
                f"lr_milestones must be increasing positive epochs; received {milestones}"
            )


def settings_from_config(
    schedule: ScheduleConfig, steps_per_epoch: int, epochs: int
) -> ScheduleSettings:
    return ScheduleSettings(
        learning_rate=schedule.learning_rate,
        steps_per_epoch=steps_per_epoch,
        total_steps=epochs * steps_per_epoch,
        decay_factor=schedule.lr_decay_factor,
        decay_epochs=schedule.lr_decay_epochs,
        milestones=tuple(schedule.lr_milestones),
        staircase=schedule.lr_staircase,
        power=schedule.lr_power,
        min_learning_rate=schedule.min_learning_rate,
    )


def create_schedule(
    name: str, settings: ScheduleSettings, warmup_epochs: float = 0.0
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate as a function of the step, warm-up included (``plateau`` is the
    constant rate here; ``plateau_callbacks`` adds the reductions)."""
    SCHEDULES.get(name)  # an unknown name lists the close matches
    schedule = StepFunction(name, settings.__dict__)
    warmup_steps = round(warmup_epochs * settings.steps_per_epoch)
    return LinearWarmup(schedule, warmup_steps) if warmup_steps > 0 else schedule


class PlateauWarmup(keras.callbacks.Callback):
    """Linear warm-up for the plateau schedule, whose rate is a plain variable that
    ``ReduceLROnPlateau`` divides: sets ``lr * (step + 1) / warmup_steps`` before each step
    of the warm-up."""

    def __init__(self, learning_rate: float, warmup_steps: int):
        super().__init__()
        self.learning_rate, self.warmup_steps = learning_rate, warmup_steps

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step < self.warmup_steps:
            self.model.optimizer.learning_rate = self.learning_rate * (step + 1) / self.warmup_steps
        elif step == self.warmup_steps:
            self.model.optimizer.learning_rate = self.learning_rate


def schedule_callbacks(
    schedule: ScheduleConfig, steps_per_epoch: int
) -> list[keras.callbacks.Callback]:
    """The callbacks a schedule needs: for ``plateau``, the reduction on validation error
    (and the warm-up); none for the others."""
    if schedule.schedule not in CALLBACK_SCHEDULES:
        return []
    callbacks: list[keras.callbacks.Callback] = []
    warmup_steps = round(schedule.warmup_epochs * steps_per_epoch)
    if warmup_steps > 0:
        callbacks.append(PlateauWarmup(schedule.learning_rate, warmup_steps))
    callbacks.append(
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_accuracy",  # validation error = 1 - accuracy
            mode="max",
            factor=schedule.lr_decay_factor,
            patience=schedule.plateau_patience,
            min_lr=schedule.min_learning_rate,
            verbose=1,
        )
    )
    return callbacks


def learning_rate_for(schedule: ScheduleConfig, steps_per_epoch: int, epochs: int) -> Any:
    """What the optimiser is given: a float for ``plateau`` (so the callback can change it),
    a schedule over ``epochs`` otherwise."""
    if schedule.schedule in CALLBACK_SCHEDULES:
        return schedule.learning_rate
    settings = settings_from_config(schedule, steps_per_epoch, epochs)
    return create_schedule(schedule.schedule, settings, schedule.warmup_epochs)
