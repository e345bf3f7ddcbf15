"""A compression recipe: what ``kerascnn compress`` does to a trained model, checked before
any work, and the callback that does it during fine-tuning.

With both pruning and sharing, the epochs split as Deep Compression does it: the first half
prunes (the sparsity rising over the first two thirds of those steps, then held) and
retrains; then each layer is clustered and the second half fine-tunes the shared weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras

from kerascnn.compression import lowrank, pruning, sharing
from kerascnn.errors import InvalidArgumentError
from kerascnn.export import QUANTIZE_MODES

SCOPES = ("layer", "global")
# The pruning phase's fraction over which the sparsity rises; the rest retrains at the final.
RAMP_FRACTION = 2 / 3
# Mask updates over the ramp (Zhu & Gupta's pruning frequency, as a count).
PRUNING_UPDATES = 20


@dataclass(frozen=True)
class Recipe:
    """``prune``: the final sparsity (None: no pruning); ``prune_layers``: ``(layer name,
    final sparsity)`` pairs overriding ``prune`` for those layers (Han et al. 2015, Table 2,
    prune each layer differently; without ``prune`` the other layers are not pruned);
    ``initial_sparsity``: where the schedule starts; ``scope``: ``layer`` or ``global``
    magnitudes (for the layers ``prune_layers`` does not name); ``structured``: whole
    filters; ``cluster_bits``: weight sharing's codebook size (None: none); ``low_rank``:
    the rank fraction Dense layers are factored to (None: none); ``quantize``: the TFLite
    modes exported beside float32; ``qat``: fine-tune with fake-quantised weights and
    activations (``qat``), exported to an int8 TFLite whose ranges come from training."""

    prune: float | None = None
    prune_layers: tuple[tuple[str, float], ...] = ()
    initial_sparsity: float = 0.0
    scope: str = "layer"
    structured: bool = False
    cluster_bits: int | None = None
    low_rank: float | None = None
    quantize: tuple[str, ...] = ()
    qat: bool = False

    def check(self, epochs: int) -> Recipe:
        nothing = (self.prune, self.cluster_bits, self.low_rank) == (None, None, None)
        if nothing and not self.qat and not self.prune_layers:
            raise InvalidArgumentError(
                "nothing to do: give --prune SPARSITY, --prune-layer NAME=SPARSITY, "
                "--cluster BITS, --low-rank FRACTION or --qat"
            )
        if self.qat and self.structured:
            raise InvalidArgumentError(
                "--qat cannot follow --structured: deleting filters rebuilds the network "
                "without its quantisation; prune the filters first, then compress that run "
                "with --qat"
            )
        if self.low_rank is not None:
            lowrank.check_rank_fraction(self.low_rank)
        if self.prunes:
            self._check_sparsities()
        elif self.structured:
            raise InvalidArgumentError("--structured needs --prune SPARSITY")
        if self.scope not in SCOPES:
            raise InvalidArgumentError(f"scope must be one of {', '.join(SCOPES)}")
        if self.structured and self.scope == "global":
            raise InvalidArgumentError("structured pruning ranks filters per layer; drop --global")
        if self.cluster_bits is not None:
            sharing.check_bits(self.cluster_bits)
        unknown = [mode for mode in self.quantize if mode not in QUANTIZE_MODES[1:]]
        if unknown:
            raise InvalidArgumentError(
                f"unknown quantisation {', '.join(unknown)}; choose from "
                f"{', '.join(QUANTIZE_MODES[1:])}"
            )
        if self.qat and set(self.quantize) - {"int8"}:
            raise InvalidArgumentError(
                "--qat exports the int8 TFLite its training prepared, alone: drop --quantize "
                f"{','.join(m for m in self.quantize if m != 'int8')}"
            )
        if self.prunes and self.cluster_bits is not None and epochs < 2:
            raise InvalidArgumentError(
                "pruning and sharing fine-tune in turn: give at least --epochs 2"
            )
        return self

    def _check_sparsities(self) -> None:
        if self.prune is not None:
            pruning.check_sparsity(self.prune, "--prune")
        pruning.check_sparsity(self.initial_sparsity, "initial sparsity")
        seen = set()
        for name, sparsity in self.prune_layers:
            if name in seen:
                raise InvalidArgumentError(f"--prune-layer gives layer {name} twice")
            seen.add(name)
            pruning.check_sparsity(sparsity, f"--prune-layer {name}'s sparsity")
        finals = ([("--prune", self.prune)] if self.prune is not None else []) + [
            (f"--prune-layer {name}", sparsity) for name, sparsity in self.prune_layers
        ]
        for option, final in finals:
            if self.initial_sparsity > final:
                raise InvalidArgumentError(
                    f"initial sparsity {self.initial_sparsity} exceeds {option}'s {final}"
                )

    @property
    def prunes(self) -> bool:
        return self.prune is not None or bool(self.prune_layers)

    @property
    def layer_sparsities(self) -> dict[str, float]:
        """The final sparsity of each layer ``prune_layers`` names."""
        return dict(self.prune_layers)

    def to_dict(self) -> dict:
        values = {**asdict(self), "quantize": list(self.quantize)}
        return {**values, "prune_layers": self.layer_sparsities}

    @property
    def modes(self) -> tuple[str, ...]:
        """The TFLite modes exported: float32 and ``quantize``; with ``qat``, ``int8`` and
        no float32 (the converter drops the fake quantisation from a float32 file, which
        would then compute something the model was not trained to)."""
        return ("int8",) if self.qat else ("none", *self.quantize)


@dataclass(frozen=True)
class Phases:
    """When each part happens, in optimiser steps and epochs."""

    prune_begin: int
    prune_end: int
    frequency: int
    cluster_epoch: int | None  # the epoch (from 0) at whose start the kernels are clustered
    settled_epoch: int  # the first epoch (from 1) whose end has the final compressed weights


def plan_phases(recipe: Recipe, epochs: int, steps_per_epoch: int) -> Phases:
    prune_epochs = (
        0 if not recipe.prunes else epochs if recipe.cluster_bits is None else epochs // 2
    )
    ramp = max(1, math.floor(RAMP_FRACTION * prune_epochs * steps_per_epoch))
    cluster_epoch = None if recipe.cluster_bits is None else prune_epochs
    settled = cluster_epoch + 1 if cluster_epoch is not None else math.ceil(ramp / steps_per_epoch)
    return Phases(
        prune_begin=0,
        prune_end=ramp,
        frequency=max(1, ramp // PRUNING_UPDATES),
        cluster_epoch=cluster_epoch,
        settled_epoch=max(1, settled),
    )


class Compress(keras.callbacks.Callback):
    """Prunes on the schedule and ties shared weights, after every optimiser step.

    ``sparsity_at`` records the scheduled sparsity (of the layers following ``--prune``) at
    each step where the masks changed, so a test (or a user) can check it against the
    schedule; a layer of ``prune_layers`` follows the same schedule to its own final."""

    def __init__(self, recipe: Recipe, phases: Phases, targets: list[pruning.Target]):
        super().__init__()
        self.recipe, self.phases, self.targets = recipe, phases, targets
        self.step = 0
        self.masks: dict[str, tuple] = {}
        self.sparsity: tuple | None = None  # (--prune's, {layer: its own}) when last masked
        self.shared: list[sharing.SharedKernel] = []
        self.sparsity_at: dict[int, float] = {}

    def scheduled(self, step: int, final: float | None = None) -> float:
        """The sparsity at ``step`` of a layer whose final sparsity is ``final`` (default:
        ``--prune``'s; 0 without it)."""
        recipe, phases = self.recipe, self.phases
        final = (recipe.prune or 0.0) if final is None else final
        return pruning.polynomial_sparsity(
            step,
            min(recipe.initial_sparsity, final),
            final,
            phases.prune_begin,
            phases.prune_end,
            phases.frequency,
        )

    def on_train_begin(self, logs=None):
        self._update_masks()

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.phases.cluster_epoch and not self.shared:
            getattr(self.model, "jax_state_sync", lambda: None)()
            self.shared = sharing.share_weights(self.targets, self.recipe.cluster_bits)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        # Under JAX, fit keeps the weights outside the variables between steps: bring them
        # back before reading (the next step then starts from what is assigned here).
        getattr(self.model, "jax_state_sync", lambda: None)()
        if self.shared:
            sharing.retie(self.shared)  # pruned weights are the pinned code 0
            return
        self._update_masks()

    def _update_masks(self) -> None:
        if not self.recipe.prunes:
            return
        sparsity = self.scheduled(self.step)
        layers = {name: self.scheduled(self.step, s) for name, s in self.recipe.prune_layers}
        if (sparsity, layers) != self.sparsity and max([sparsity, *layers.values()]) > 0:
            self.masks = pruning.magnitude_masks(
                self.targets, sparsity, self.recipe.scope, self.recipe.structured, layers
            )
            self.sparsity = (sparsity, layers)
            self.sparsity_at[self.step] = sparsity
        pruning.apply_masks(self.targets, self.masks)


class SettledCheckpoints(keras.callbacks.Callback):
    """Keeps the run's ``Checkpoints`` from choosing an epoch before the compression is
    final (an unpruned epoch would score best and undo it): earlier epochs write
    ``last.keras`` only."""

    def __init__(self, checkpoints, settled_epoch: int):
        super().__init__()
        self.checkpoints, self.settled_epoch = checkpoints, settled_epoch

    def set_model(self, model):
        super().set_model(model)
        self.checkpoints.set_model(model)

    def on_train_begin(self, logs=None):
        self.checkpoints.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.settled_epoch:
            logs = {k: v for k, v in (logs or {}).items() if k != self.checkpoints.monitor}
        self.checkpoints.on_epoch_end(epoch, logs)
