"""See what a trained network learned: filters, activations, saliency, Grad-CAM, occlusion,
neighbours, embeddings, class models, fooling images, and the run report.

Library functions return arrays and pictures (uint8 arrays); ``kerascnn inspect`` and
``kerascnn report`` write them."""

from kerascnn.inspection.attribution import (
    Explainer,
    gradcam,
    guided_saliency,
    occlusion,
    saliency,
)
from kerascnn.inspection.commands import COMMANDS, Inputs, Inspection, inspect
from kerascnn.inspection.model import Inspectable, load_inspectable
from kerascnn.inspection.synthesis import class_model, fooling

__all__ = [
    "COMMANDS",
    "Explainer",
    "Inputs",
    "Inspectable",
    "Inspection",
    "class_model",
    "fooling",
    "gradcam",
    "guided_saliency",
    "inspect",
    "load_inspectable",
    "occlusion",
    "saliency",
]
