"""Weights trained in PyTorch, converted into our networks (torchvision's ImageNet weights).

``names`` maps each family's layers to torchvision's modules, ``assign`` checks and converts
every tensor, ``torchvision`` knows the published files and ``weights="torchvision"``.
"""

from kerascnn.models.convert.torchvision import PUBLISHED, Published

__all__ = ["PUBLISHED", "Published"]
