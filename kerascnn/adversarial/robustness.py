"""Robust accuracy, measured so that the number means what it says.

A model can look robust because its gradients are useless to an attacker, not because it is
(gradient masking; Athalye, Carlini and Wagner 2018). Beside the attack asked for, each
evaluation runs the attacks that expose it: FGSM, PGD on the cross-entropy and PGD on the
logit margin, an unbounded PGD (epsilon 255: any image can be reached, so accuracy must fall
to 0%), and optionally a transfer attack crafted on a surrogate model. The robust accuracy it
reports is the worst case per image over all of them; where a symptom of masking shows, it
reports no robust accuracy at all, and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerascnn import plotting
from kerascnn.adversarial.attacks import PIXEL_MAX, Attack, Attacker, logits_model

# PGD's steps in the cross-checks when the attack asked for is single-step.
CHECK_STEPS = 20
# Images the unbounded attack runs on (it only has to show that accuracy reaches 0%).
UNBOUNDED_IMAGES = 200
# How many points an attack must win by to count as a symptom (a few images either way is
# noise); the margin loss is often a little stronger than the cross-entropy on any model, so
# only a large gap counts.
TOLERANCE = 0.02
MARGIN_TOLERANCE = 0.10
EXAMPLES = 6


@dataclass
class Robustness:
    """Accuracy under each attack at each epsilon, on the same images."""

    attack: Attack  # the attack asked for
    epsilons: list[float]
    images: int
    clean_accuracy: float
    accuracy: dict[str, list[float]]  # attack label -> accuracy per epsilon
    worst_case: list[float]  # per epsilon: correct under every attack, per image
    unbounded: dict[str, Any]
    masking: list[str] = field(default_factory=list)  # the symptoms that showed
    pictures: dict[str, np.ndarray] = field(default_factory=dict)  # file name -> uint8

    @property
    def masked(self) -> bool:
        return bool(self.masking)

    @property
    def robust_accuracy(self) -> list[float | None]:
        """The worst case per epsilon; None everywhere when gradient masking is suspected."""
        return [None if self.masked else value for value in self.worst_case]

    def as_json(self) -> dict[str, Any]:
        return {
            "attack": {**self.attack.__dict__, "label": self.attack.label()},
            "images": self.images,
            "clean_accuracy": self.clean_accuracy,
            "epsilons": self.epsilons,
            "accuracy": self.accuracy,
            "worst_case_accuracy": self.worst_case,
            "robust_accuracy": self.robust_accuracy,
            "unbounded": self.unbounded,
            "gradient_masking": self.masking,
        }


def attack_suite(attack: Attack) -> list[Attack]:
    """The attack asked for, then the cross-checks (untargeted): FGSM, PGD on the
    cross-entropy and PGD on the margin, with the attack's steps (``CHECK_STEPS`` for a
    single-step attack); none twice."""
    steps = attack.steps if attack.name == "pgd" else CHECK_STEPS
    checks = [
        Attack("fgsm", attack.epsilon),
        Attack("pgd", attack.epsilon, steps),
        Attack("pgd", attack.epsilon, steps, loss="margin"),
    ]
    suite = [attack]
    for check in checks:
        if check.label() not in {a.label() for a in suite}:
            suite.append(check)
    return suite


def random_targets(labels: np.ndarray, classes: int, seed: int = 0) -> np.ndarray:
    """A wrong class per image, uniformly (Carlini and Wagner's average case)."""
    offsets = np.random.default_rng(seed).integers(1, classes, size=len(labels))
    return (labels + offsets) % classes


def evaluate_robustness(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    attack: Attack,
    epsilons: list[float],
    *,
    surrogate: keras.Model | None = None,
    class_names: list[str] | None = None,
    seed: int = 0,
    notify=lambda line: None,
) -> Robustness:
    """Accuracy of ``model`` (raw pixels -> probabilities or logits) on ``images`` under
    ``attack`` and its cross-checks at each epsilon, the worst case per image, the unbounded
    attack, a transfer attack from ``surrogate`` if given, and the masking checks."""
    labels = np.asarray(labels, "int64")
    scores = logits_model(model)
    classes = int(scores.output.shape[-1])
    targets = random_targets(labels, classes, seed) if attack.targeted else None
    shared = tf.function(scores, reduce_retracing=True)
    clean = Attacker(scores, attack, logits=shared).predict(images) == labels
    correct: dict[str, list[np.ndarray]] = {}
    examples: np.ndarray | None = None
    for member in attack_suite(attack):
        attacker = Attacker(scores, member, logits=shared)
        correct[member.label()] = []
        for epsilon in epsilons:
            notify(f"{member.label()} at epsilon {epsilon:g}")
            aim = targets if member.targeted else None
            adversarial = attacker(images, labels, epsilon, aim)
            correct[member.label()].append(attacker.predict(adversarial) == labels)
            if member is attack and epsilon == max(epsilons):
                examples = adversarial
    if surrogate is not None:
        notify(f"transfer of {attack.label()} from the surrogate")
        crafted = Attacker(logits_model(surrogate), replace(attack, targeted=False))
        scorer = Attacker(scores, attack, logits=shared)
        correct["transfer"] = [
            scorer.predict(crafted(images, labels, epsilon)) == labels for epsilon in epsilons
        ]
    unbounded = _unbounded(scores, shared, images, labels, attack)
    accuracy = {name: [float(c.mean()) for c in rows] for name, rows in correct.items()}
    worst = [
        float(np.logical_and.reduce([rows[i] for rows in correct.values()]).mean())
        for i in range(len(epsilons))
    ]
    result = Robustness(
        attack, list(epsilons), len(labels), float(clean.mean()), accuracy, worst, unbounded
    )
    result.masking = masking_symptoms(result)
    result.pictures = {
        "robust_accuracy.png": curve_picture(result),
        "adversarial_examples.png": examples_picture(
            model, images, labels, examples, max(epsilons), class_names
        ),
    }
    return result


def _unbounded(scores: keras.Model, shared, images, labels, attack: Attack) -> dict[str, Any]:
    """PGD on the margin with epsilon 255 on the first ``UNBOUNDED_IMAGES`` images."""
    steps = max(attack.steps, CHECK_STEPS)
    unbounded = Attack("pgd", PIXEL_MAX, steps, loss="margin")
    attacker = Attacker(scores, unbounded, logits=shared)
    chosen = slice(0, UNBOUNDED_IMAGES)
    found = attacker(images[chosen], labels[chosen], PIXEL_MAX)
    accuracy = float((attacker.predict(found) == labels[chosen]).mean())
    return {
        "attack": unbounded.label(),
        "epsilon": PIXEL_MAX,
        "images": len(found),
        "accuracy": accuracy,
    }


def masking_symptoms(result: Robustness) -> list[str]:
    """The symptoms of gradient masking (Athalye et al. 2018, section 3.1) that show, each
    as a sentence; empty when none does."""
    tolerance = max(TOLERANCE, 3 / max(result.images, 1))
    found = []
    for name, values in result.accuracy.items():
        for i in range(1, len(values)):
            if values[i] > values[i - 1] + tolerance:
                found.append(
                    f"accuracy under {name} rises with epsilon ({values[i - 1]:.1%} at "
                    f"{result.epsilons[i - 1]:g}, {values[i]:.1%} at {result.epsilons[i]:g})"
                )
                break
    labels = list(result.accuracy)
    pgd = next(
        (n for n in labels if n.startswith("pgd") and "margin" not in n and "targeted" not in n),
        None,
    )
    margin = next((n for n in labels if n.startswith("pgd") and n.endswith("margin")), None)
    pairs = [
        ("fgsm", pgd, tolerance, "single-step FGSM beats iterative {b}"),
        (margin, pgd, MARGIN_TOLERANCE, "the margin loss beats the cross-entropy"),
        (
            "transfer",
            labels[0],
            tolerance,
            "a transfer attack from the surrogate beats the white-box {b}",
        ),
    ]
    for a, b, gap, sentence in pairs:
        if a not in result.accuracy or b not in result.accuracy:
            continue
        for epsilon, x, y in zip(
            result.epsilons, result.accuracy[a], result.accuracy[b], strict=True
        ):
            if x < y - gap:
                found.append(
                    f"{sentence.format(b=b)} at epsilon {epsilon:g} ({x:.1%} vs {y:.1%} correct)"
                )
                break
    unbounded = result.unbounded
    if unbounded["accuracy"] > max(TOLERANCE, 3 / max(unbounded["images"], 1)):
        found.append(
            f"an unbounded attack ({unbounded['attack']} at epsilon 255) leaves "
            f"{unbounded['accuracy']:.1%} correct; any image can be reached, so it should be 0%"
        )
    return found


def curve_picture(result: Robustness) -> np.ndarray:
    """Accuracy against epsilon, one line per attack, the worst case in black."""
    figure = plotting.plt.figure(figsize=(6, 4), dpi=100)
    axis = figure.gca()
    xs = [0.0, *result.epsilons]
    for name, values in result.accuracy.items():
        axis.plot(xs, [result.clean_accuracy, *values], marker="o", label=name)
    axis.plot(xs, [result.clean_accuracy, *result.worst_case], "k-", lw=2.5, label="worst case")
    axis.set_xlabel("epsilon (pixel units, 0-255)")
    axis.set_ylabel("accuracy")
    axis.set_ylim(-0.02, 1.02)
    title = "robust accuracy"
    if result.masked:
        title += " - GRADIENT MASKING SUSPECTED: not robustness"
    axis.set_title(title, fontsize=10, color="red" if result.masked else "black")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return plotting.figure_to_array(figure)


def examples_picture(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    adversarial: np.ndarray,
    epsilon: float,
    class_names: list[str] | None,
) -> np.ndarray:
    """For the first ``EXAMPLES`` images: original, perturbation (amplified, grey is 0)
    and adversarial image, titled with the class and its probability."""
    chosen = slice(0, EXAMPLES)
    names = class_names or [str(i) for i in range(10_000)]
    before = np.asarray(model(images[chosen], training=False))
    after = np.asarray(model(adversarial[chosen], training=False))
    pictures, titles = [], []
    for i in range(len(before)):
        delta = adversarial[i] - images[i]
        peak = max(1e-6, float(np.abs(delta).max()))
        pictures += [
            plotting.enlarge(plotting.to_rgb(images[i])),
            plotting.enlarge(plotting.to_rgb(127.5 + 127.5 * delta / peak)),
            plotting.enlarge(plotting.to_rgb(adversarial[i])),
        ]
        p, q = before[i].argmax(), after[i].argmax()
        titles += [
            f"{names[p]} p={before[i][p]:.2f} (true {names[labels[i]]})",
            f"eps {epsilon:g}, max |d| {np.abs(delta).max():.0f}",
            f"{names[q]} p={after[i][q]:.2f}",
        ]
    return plotting.panels(pictures, titles, columns=3)


def table(result: Robustness) -> str:
    """The table ``kerascnn evaluate --attack`` prints."""
    names = list(result.accuracy)
    width = max(10, *(len(n) for n in names)) + 2
    header = f"  {'epsilon':>7}  " + "".join(f"{n:>{width}}" for n in names)
    lines = [header + f"  {'robust':>8}"]
    lines.append(
        f"  {'0':>7}  "
        + "".join(f"{result.clean_accuracy:>{width}.2%}" for _ in names)
        + f"  {result.clean_accuracy:>8.2%}"
    )
    for i, epsilon in enumerate(result.epsilons):
        cells = "".join(f"{result.accuracy[n][i]:>{width}.2%}" for n in names)
        robust = "MASKED" if result.masked else f"{result.worst_case[i]:.2%}"
        lines.append(f"  {epsilon:>7g}  {cells}  {robust:>8}")
    unbounded = result.unbounded
    lines.append(
        f"  unbounded check: {unbounded['attack']} at epsilon 255 leaves "
        f"{unbounded['accuracy']:.1%} of {unbounded['images']} images correct"
    )
    if result.masked:
        lines.append("  GRADIENT MASKING SUSPECTED: the accuracies above are not robustness")
        lines += [f"    - {symptom}" for symptom in result.masking]
    else:
        lines.append("  robust: correct under every attack above (worst case per image)")
    return "\n".join(lines)
