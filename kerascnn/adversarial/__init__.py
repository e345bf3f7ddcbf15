"""Adversarial examples: L-infinity attacks on raw pixels (``attacks``) and robustness
measured honestly, with the symptoms of gradient masking checked (``robustness``).
Adversarial training is ``kerascnn.training.adversarial``."""

from kerascnn.adversarial.attacks import ATTACKS, Attack, Attacker, perturb
from kerascnn.adversarial.robustness import Robustness, evaluate_robustness

__all__ = ["ATTACKS", "Attack", "Attacker", "Robustness", "evaluate_robustness", "perturb"]
