"""Compressing a trained model for inference (``kerascnn compress``): magnitude pruning on
Zhu & Gupta's schedule, Deep Compression's weight sharing, then the existing quantised TFLite
export, with every saving measured.

- ``pruning``: masks, the schedule, applying them (``keras.ops`` and ``Variable.assign``);
- ``sharing``: k-means codebooks and tying the weights to them during fine-tuning;
- ``qat``: quantisation-aware training (fake-quantised weights and activations, whose ranges
  the int8 TFLite export then uses; the layers are ``kerascnn.models.quantized``'s);
- ``storage``: file sizes raw and gzip, and Deep Compression's storage estimate;
- ``recipe``: what to do (checked) and the callback that does it while the model fine-tunes;
- ``run``: the compression run, its export and its report.
"""

from kerascnn.compression.recipe import Recipe
from kerascnn.compression.run import (
    CompressionPlan,
    CompressionResult,
    compress,
    plan_compression,
)

__all__ = ["CompressionPlan", "CompressionResult", "Recipe", "compress", "plan_compression"]
