"""A network's per-layer table, laid out like CS231n's VGG-16 walk-through: each layer's
output shape, parameters, multiply-accumulates, forward activation memory and receptive
field, and the totals (``kerascnn summary``).

Conventions (stated once here, printed under the table):

- Multiply-accumulates are ``counting.layer_multiply_accumulates``'s, the papers' convention.
- Activation memory counts the values a forward pass keeps for one image: the input image and
  the output of every layer that makes a new tensor (convolutions, poolings, dense layers,
  batch norm, additions, concatenations). A layer without weights or a sliding window that
  maps one tensor to as many values (an activation, dropout, the model's ``(x - mean) / std``
  preprocessing, flatten) is taken as computed in place or as a view, as Caffe and PyTorch
  run ReLU and as the CS231n table counts (its rows are the input and each CONV, POOL and FC
  output). Float32: 4 bytes a value. Training keeps about as much again for the gradients,
  so "with the backward pass" is twice the forward figure.
- Receptive fields are ``receptive_field.receptive_fields``'s.
- A layer that runs a nested model (``StochasticDepth``'s residual branch) is listed as the
  nested model's layers, then itself with nothing of its own: the branch's output is its
  output at inference, so the table and totals are those of the network without it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import keras

from kerascnn.errors import InvalidArgumentError
from kerascnn.models.counting import layer_multiply_accumulates
from kerascnn.models.factory import create_model
from kerascnn.models.layers import nested_model
from kerascnn.models.receptive_field import (
    Field,
    Pair,
    compose,
    inbound_layer_names,
    receptive_fields,
    window,
)
from kerascnn.models.spec import MODELS

BYTES_PER_VALUE = 4  # float32
BACKWARD_FACTOR = 2  # each stored activation gets a gradient of its size
NORMALIZATION = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)


@dataclass(frozen=True)
class Row:
    """One layer (or one block of consecutive layers) of the table.

    ``receptive_field`` and ``jump`` are (height, width) in input pixels at the row's (last)
    output, None where that output is not a feature map (it sees the whole input)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int
    multiply_accumulates: int
    activations: int
    receptive_field: Pair | None
    jump: Pair | None


@dataclass(frozen=True)
class Summary:
    """The table and its totals for one image."""

    model: str
    title: str
    input_shape: tuple[int, int, int]
    rows: tuple[Row, ...]
    parameters: int
    multiply_accumulates: int
    activations: int
    depth: int

    @property
    def forward_bytes(self) -> int:
        return self.activations * BYTES_PER_VALUE

    @property
    def training_bytes(self) -> int:
        return self.forward_bytes * BACKWARD_FACTOR

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "rows": [asdict(row) for row in self.rows],
            "forward_bytes": self.forward_bytes,
            "training_bytes": self.training_bytes,
            "bytes_per_value": BYTES_PER_VALUE,
        }


def summarize(name: str, input_size: tuple[int, int] | None = None, depth: int | None = None):
    """The table of registered model ``name`` at ``input_size`` (height, width; default the
    paper's input), per layer, or per block of layer-name depth ``depth`` (see ``block_name``).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the closest).
        InvalidArgumentError: the input is smaller than the model's minimum, or a bad depth.
    """
    spec = MODELS.get(name)
    if depth is not None and depth < 1:
        raise InvalidArgumentError(f"depth must be 1 or more; received {depth}")
    height, width = input_size or spec.input_shape[:2]
    shape = (int(height), int(width), spec.input_shape[2])
    # Counting needs shapes, not values: skip drawing the weights (catalogue.measure does too).
    with keras.StatelessScope(initialize_variables=False):
        model = create_model(name, input_shape=shape, num_classes=spec.num_classes)
        summary = summarize_model(model, depth=depth, name=name, title=spec.title)
    keras.backend.clear_session()
    return summary


def summarize_model(
    model: keras.Model, depth: int | None = None, name: str = "", title: str = ""
) -> Summary:
    """The table of any built functional ``model``."""
    rows = layer_rows(model)
    totals = (sum(r.parameters for r in rows), sum(r.multiply_accumulates for r in rows))
    activations = sum(r.activations for r in rows)
    if depth is not None:
        rows = group_rows(rows, depth)
    return Summary(
        model=name or model.name,
        title=title or model.name,
        input_shape=tuple(model.inputs[0].shape[1:]),
        rows=tuple(rows),
        parameters=totals[0],
        multiply_accumulates=totals[1],
        activations=activations,
        depth=weight_depth(model),
    )


def weight_depth(model: keras.Model) -> int:
    """Layers with weights (batch norm aside) on the longest input-to-output path: the depth
    the papers name their networks by (VGG-16: 16, GoogLeNet: 22, ResNet-50: 50)."""
    depth: dict[str, int] = {}
    for layer in model.layers:
        inputs = [] if isinstance(layer, keras.layers.InputLayer) else inbound_layer_names(layer)
        nested = nested_model(layer)
        if nested is not None:
            own = weight_depth(nested)
        else:
            own = int(bool(layer.trainable_weights) and not isinstance(layer, NORMALIZATION))
        depth[layer.name] = max((depth[name] for name in inputs), default=0) + own
    return max(depth[layer.name] for layer in model.layers)


def layer_rows(model: keras.Model, outer: Field | None = None) -> list[Row]:
    """One row per layer of ``model``; with ``outer`` (the field at a nested model's input),
    the nested model's layers without its input, their fields in the outer input's pixels."""
    fields = receptive_fields(model)
    rows = []
    for layer in model.layers:
        field: Field = fields[layer.name]
        if outer is not None:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            field = compose(outer, field)
        nested = nested_model(layer)
        if nested is not None:
            inner = fields[inbound_layer_names(layer)[0]]
            rows += layer_rows(nested, inner if outer is None else compose(outer, inner))
            rows.append(_row(layer, field, counted=False))
        else:
            rows.append(_row(layer, field))
    return rows


def _row(layer: keras.layers.Layer, field: Field, counted: bool = True) -> Row:
    """``layer``'s row; not ``counted``: a wrapper whose nested layers have their own rows."""
    shape = _output_shape(layer)
    return Row(
        name=layer.name,
        kind=type(layer).__name__,
        output_shape=shape,
        parameters=layer.count_params() if counted else 0,
        multiply_accumulates=layer_multiply_accumulates(layer) if counted else 0,
        activations=math.prod(shape) if counted and stores_output(layer) else 0,
        receptive_field=field.size,
        jump=field.jump,
    )


def stores_output(layer: keras.layers.Layer) -> bool:
    """Whether ``layer``'s output counts as new activation memory (see the module doc)."""
    if isinstance(layer, keras.layers.InputLayer) or layer.weights:
        return True
    inputs = layer._inbound_nodes[0].input_tensors
    if len(inputs) != 1 or window(layer)[0] is not None:
        return True
    return math.prod(inputs[0].shape[1:]) != math.prod(_output_shape(layer))


def block_name(layer_name: str, depth: int) -> str:
    """The block a layer belongs to at ``depth``: its name up to the ``depth``-th
    underscore-separated part that holds a digit (``conv2_block1_1_conv`` is in ``conv2``
    at depth 1 and ``conv2_block1`` at 2; ``inception_3a_5x5_reduce`` in ``inception_3a``;
    ``fc6_dropout`` in ``fc6``). A name with fewer numbered parts is cut at its last one
    (``conv1_relu`` is in ``conv1`` at any depth); one without any is its own block."""
    parts = layer_name.split("_")
    numbered = [i for i, part in enumerate(parts) if re.search(r"\d", part)]
    if not numbered:
        return layer_name
    return "_".join(parts[: numbered[min(depth, len(numbered)) - 1] + 1])


def group_rows(rows: list[Row], depth: int) -> list[Row]:
    """Consecutive rows of the same block merged: sums of the counts, the last layer's
    output shape and receptive field."""
    groups: list[tuple[str, list[Row]]] = []
    for row in rows:
        key = block_name(row.name, depth)
        if groups and groups[-1][0] == key:
            groups[-1][1].append(row)
        else:
            groups.append((key, [row]))
    return [_merge(key, members) for key, members in groups]


def _merge(key: str, members: list[Row]) -> Row:
    if len(members) == 1:
        return members[0]
    last = members[-1]
    return Row(
        name=key,
        kind=f"{len(members)} layers",
        output_shape=last.output_shape,
        parameters=sum(r.parameters for r in members),
        multiply_accumulates=sum(r.multiply_accumulates for r in members),
        activations=sum(r.activations for r in members),
        receptive_field=last.receptive_field,
        jump=last.jump,
    )


def _output_shape(layer: keras.layers.Layer) -> tuple[int, ...]:
    output = layer.output[0] if isinstance(layer.output, list | tuple) else layer.output
    return tuple(int(d) for d in output.shape[1:])


# ---- text ----------------------------------------------------------------------------------


def table_lines(summary: Summary) -> list[str]:
    """The table as text lines: a header, one line per row, the totals and conventions."""
    header = ("layer", "type", "output", "params", "MACs", "memory", "RF", "jump")
    lines = [_row_cells(row) for row in summary.rows]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    text = [_join(header, widths), _join(tuple("-" * w for w in widths), widths)]
    text += [_join(cells, widths) for cells in lines]
    forward_mb = summary.forward_bytes / 1e6
    macs = summary.multiply_accumulates
    text += [
        "",
        f"{summary.title} at {'x'.join(map(str, summary.input_shape))}, one image:",
        f"  parameters        {summary.parameters:,}",
        f"  depth             {summary.depth} weight layers on the longest path",
        f"  multiply-adds     {macs:,} ({si(macs)})",
        f"  activations       {summary.activations:,} values x {BYTES_PER_VALUE} bytes = "
        f"{forward_mb:.1f} MB forward, ~{BACKWARD_FACTOR * forward_mb:.1f} MB with the "
        f"backward pass",
        "  memory counts the input and every new tensor (activations, dropout and reshapes in "
        "place); RF: receptive field in input pixels, jump: input pixels between neighbouring "
        "units; 'all' after the last feature map",
    ]
    return text


def _row_cells(row: Row) -> tuple[str, ...]:
    return (
        row.name,
        row.kind,
        "x".join(map(str, row.output_shape)),
        f"{row.parameters:,}",
        si(row.multiply_accumulates),
        si(row.activations),
        _pair_text(row.receptive_field),
        _pair_text(row.jump),
    )


def _pair_text(pair: Pair | None) -> str:
    if pair is None:
        return "all"
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _join(cells: tuple[str, ...], widths: list[int]) -> str:
    # Names and types to the left, numbers to the right.
    return "  ".join(
        f"{c:<{w}}" if i < 2 else f"{c:>{w}}"
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


def si(count: int) -> str:
    """1234567890 -> '1.23G'; 0 -> '0'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g}{unit}"
    return str(count)
