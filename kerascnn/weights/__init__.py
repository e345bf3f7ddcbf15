"""Reading other frameworks' checkpoints into numpy arrays, without running their code.

``read_checkpoint(path)`` returns ``{tensor name: array}`` of a safetensors file or of a PyTorch
``.pth`` file (``torch.save`` of a state dict), read with a restricted unpickler; torch is not
needed. Which of our layers a tensor belongs to is ``kerascnn.models.convert``'s business.
"""

from kerascnn.weights.readers import (
    CHECKPOINT_SUFFIXES,
    TensorUnpickler,
    read_checkpoint,
    read_pth,
    read_safetensors,
)

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "TensorUnpickler",
    "read_checkpoint",
    "read_pth",
    "read_safetensors",
]
