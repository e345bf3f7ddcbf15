"""Networks as backbones: the feature maps at each stride (timm's ``features_only``,
``out_indices`` and ``feature_info``; keras-hub's ``pyramid_outputs``).

A *stage* ends at the last layer of each stride (2, 4, 8, 16, 32 input pixels between
neighbouring units) on the network's main path. Both are read from the built graph, so every
family is covered without a list per model:

- the stride of a layer's output is its receptive field's jump (``receptive_field``);
- a layer is on the main path when every path from the input to the output passes through it:
  no connection skips over it in the graph's topological order (so a residual block's output
  is, and a layer inside an Inception module or beside a shortcut is not);
- padding layers are passed over (their outputs are larger than the stage's map).

A registration can name its stage ends itself (``ModelSpec.feature_layers``) where this would
be wrong. Stride 1 maps (before any subsampling) are not stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models.receptive_field import PADDING_LAYERS, receptive_fields


@dataclass(frozen=True)
class FeatureInfo:
    """One stage's feature map: ``index`` (for ``out_indices``), the ``layer`` that outputs it,
    ``stride`` (input pixels per unit) and ``channels``."""

    index: int
    layer: str
    stride: int
    channels: int

    @property
    def level(self) -> str:
        """keras-hub's pyramid key: ``"P3"`` for stride 8."""
        return f"P{round(math.log2(self.stride))}"


def stage_ends(model: keras.Model, layer_names: tuple[str, ...] = ()) -> list[FeatureInfo]:
    """The stages of ``model`` (built without its classifier), shallowest first.

    Args:
        model: a functional model.
        layer_names: the stage-end layers, when the registration overrides the search.
    """
    fields = receptive_fields(model)
    if layer_names:
        chosen = [model.get_layer(name) for name in layer_names]
    else:
        by_stride: dict[int, keras.layers.Layer] = {}
        for layer in main_path(model):
            field = fields[layer.name]
            if field.is_global or isinstance(layer, PADDING_LAYERS):
                continue
            if field.jump[0] > 1:
                by_stride[field.jump[0]] = layer  # the last one of each stride wins
        chosen = [by_stride[stride] for stride in sorted(by_stride)]
    return [
        FeatureInfo(index, layer.name, fields[layer.name].jump[0], int(layer.output.shape[-1]))
        for index, layer in enumerate(chosen)
    ]


def main_path(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers every input-to-output path passes through, in order: those that no
    connection from an earlier layer (in the topological order) skips over. Connections
    that carry no feature map (FractalNet's drop-path state) are not paths."""
    layers = list(model.layers)
    position = {layer.name: index for index, layer in enumerate(layers)}
    furthest = -1  # the furthest layer reading the output of a layer before this one
    on_path = []
    for index, layer in enumerate(layers):
        if furthest <= index:
            on_path.append(layer)
        if len(layer.output.shape) == 4:  # a side input of another kind is not a path
            readers = [position.get(node.operation.name, -1) for node in layer._outbound_nodes]
            furthest = max([furthest, *readers])
    return on_path


def feature_model(
    model: keras.Model,
    out_indices: tuple[int, ...] | None = None,
    layer_names: tuple[str, ...] = (),
    title: str = "",
) -> keras.Model:
    """A model with the same input whose outputs are the chosen stages' feature maps, with
    ``feature_info`` (a tuple of ``FeatureInfo``) and ``pyramid_outputs`` (``{"P2": tensor,
    ...}``, keras-hub's name) attributes.

    Raises:
        InvalidArgumentError: an index in ``out_indices`` is not a stage.
    """
    stages = stage_ends(model, layer_names)
    indices = tuple(range(len(stages))) if out_indices is None else tuple(out_indices)
    valid = {stage.index: stage for stage in stages}
    bad = [i for i in indices if i not in valid]
    if bad or not indices:
        choices = ", ".join(f"{s.index} (stride {s.stride})" for s in stages)
        raise InvalidArgumentError(
            f"{title or model.name} has no stage {bad[0] if bad else '()'} for out_indices; "
            f"valid: {choices}"
        )
    chosen = [valid[i] for i in indices]
    outputs = [model.get_layer(stage.layer).output for stage in chosen]
    features = keras.Model(model.inputs, outputs, name=f"{model.name}_features")
    features.feature_info = tuple(chosen)
    features.pyramid_outputs = {
        stage.level: output for stage, output in zip(chosen, features.outputs, strict=True)
    }
    return features
