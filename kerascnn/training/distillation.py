"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural
Network") with Keras 3's own ``keras.distillation.Distiller``: the student learns from the
labels and from the teacher's softened outputs,

    loss = w * CE(y, student) + (1 - w) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

(``LogitsDistillation``'s KL term, scaled by T^2 as the paper does so the soft term's
gradients keep their size as T changes). The teacher is a trained kerascnn model (a run
directory or ``.keras`` file); it may take another input size or channel count than the
student (its preprocessing is inside it): an adapter resizes the student's raw pixels to the
teacher's input and repeats or averages the channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.runtime import load_artifact
from kerascnn.settings import check, setting


@dataclass
class DistillationConfig:
    """A teacher to distil from (README "Knowledge distillation")."""

    teacher: str | None = setting(
        None,
        "A trained run directory or .keras file to distil from (Hinton et al. 2015).",
        shown="none",
        metavar="RUN_DIR_OR_KERAS",
    )
    distill_temperature: float = setting(
        4.0, "Softmax temperature of the distillation term.", low=0, low_open=True
    )
    student_loss_weight: float = setting(
        0.5, "Weight of the labels' loss; the teacher's term gets 1 minus it.", low=0, high=1
    )

    def __post_init__(self) -> None:
        check(self)


def without_softmax(inference: keras.Model) -> keras.Model:
    """The trained layers up to the logits: the inference model without the softmax that
    ``with_softmax`` put on (sharing its weights); another model as it is."""
    last = inference.layers[-1]
    if last.name != "classifier_activation":
        return inference
    return keras.Model(inference.input, last.input, name=inference.name)


def load_teacher(source: str, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The teacher's logits on the student's inputs, frozen.

    Raises:
        InvalidArgumentError: not a Keras model, another class count, or channels that
            cannot be mapped (only 1 <-> 3).
    """
    artifact = load_artifact(source)
    if artifact.kind != "keras":
        raise InvalidArgumentError(
            f"teacher {source} is a {artifact.kind} file; give a run directory or .keras file"
        )
    teacher = without_softmax(artifact.keras_model)
    classes = int(teacher.output_shape[-1])
    if classes != num_classes:
        raise InvalidArgumentError(
            f"teacher {source} has {classes} classes; the dataset has {num_classes}"
        )
    teacher.trainable = False
    height, width, channels = artifact.input_shape
    inputs = keras.Input(input_shape, name="student_images")
    x = inputs
    if tuple(input_shape[:2]) != (height, width):
        x = keras.layers.Resizing(height, width, name="teacher_resize")(x)
    if input_shape[-1] != channels:
        x = _channels(x, input_shape[-1], channels, source)
    return keras.Model(inputs, teacher(x), name="teacher")


def _channels(x, have: int, want: int, source: str):
    if (have, want) == (1, 3):
        return keras.layers.Concatenate(name="teacher_rgb")([x, x, x])
    if (have, want) == (3, 1):
        # A fixed 1x1 convolution averaging the channels (grey as the mean of R, G and B).
        grey = keras.layers.Conv2D(
            1,
            1,
            use_bias=False,
            trainable=False,
            kernel_initializer=keras.initializers.Constant(1 / 3),
            name="teacher_grey",
        )
        return grey(x)
    raise InvalidArgumentError(
        f"teacher {source} takes {want} channels; the student {have} (only 1 <-> 3 are mapped)"
    )


def distiller(
    student: keras.Model, teacher: keras.Model, config: DistillationConfig
) -> keras.distillation.Distiller:
    """Keras's ``Distiller`` training ``student`` against ``teacher``'s softened logits."""
    return keras.distillation.Distiller(
        teacher=teacher,
        student=student,
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=config.distill_temperature,
            # An instance, not the default "kl_divergence": Keras 3.15 turns the string into
            # a plain function, which LogitsDistillation then applies to the scaled logits
            # themselves (no softmax, no T^2); only a KLDivergence instance takes the
            # paper's path (softmax at temperature T, times T^2).
            loss=keras.losses.KLDivergence(),
        ),
        student_loss_weight=config.student_loss_weight,
        name=student.name,
    )
