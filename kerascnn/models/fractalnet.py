"""FractalNet.

Reference: G. Larsson, M. Maire, G. Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks
without Residuals", ICLR 2017 (arXiv:1605.07648): section 2 (the expansion rule and the join),
section 3.1 (drop-path) and section 4 (the CIFAR network and its training settings).

A fractal block of C columns follows the expansion rule ``f_1(z) = conv(z)``,
``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``, where a join takes the element-wise mean of its
inputs. As in the paper's Figure 1, the join that ends ``f_C(f_C(z))`` and the one that adds
``conv(z)`` are one join: column ``c`` (1 = the shallowest, C = the deepest) has ``2^(c-1)``
convolutions, so a block has ``2^C - 1`` of them and its longest path ``2^(C-1)``, and after
depth ``i`` of that longest path every column with a convolution ending there is joined. The
CIFAR network stacks B = 5 blocks of C = 4 columns (40 convolutions on the longest path), each
followed by 2x2 max pooling, with 64, 128, 256, 512 and 512 filters; every convolution is 3x3,
followed by batch normalisation and ReLU. After the fifth pooling (1x1 on a 32x32 image) the
only other weighted layer is the softmax classifier.

Drop-path (section 3.1) regularises training: for each mini-batch either every join drops
each of its inputs with probability ``local_drop_rate`` (0.15), keeping at least one, and
averages the rest ("local"), or a single column, drawn uniformly, is kept in the whole network
("global"); half of the mini-batches are global (``global_drop_fraction``). One
:class:`DropPathSampler` makes that draw for the network and every :class:`FractalJoin` reads
it, so all joins agree on the column. At inference every join averages all its inputs. The
paper's "deepest column alone" evaluation is ``only_column=columns``.

Departures: the paper's Caffe implementation pools each column before the block's last join,
for convenience; here the join comes first, then one pooling, as in the paper's
description and Figure 1. Dropout (0%, 10%, 20%, 30%, 40% per block, section 4) sits between
each convolution and its batch normalisation, as in the authors' released network generator;
batch normalisation has its usual scale and offset (the released Caffe layers have a
convolution bias instead). Weights are initialised as Caffe's "xavier" filler that the
authors used, uniform with variance 1 / fan-in (Keras' ``lecun_uniform``). The paper states
no weight decay, so none is the default.

Parameters: the paper's Table 1 gives 38.6M for its 20-layer (C = 3) network and 22.9M for the
40-layer one, whose columns have different widths (a footnote to the table) that the paper
does not give in full. The widths above give 33.8M for C = 3 (on CIFAR-100) and 76.1M for
C = 4; see tests/models/test_fractalnet.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras
from keras import ops

from kerascnn.errors import InvalidArgumentError
from kerascnn.models import layers
from kerascnn.models.spec import FB_RESNET_CIFAR10_MEAN, FB_RESNET_CIFAR10_STD, register_model

# Section 4: filters per block (64, 128, 256, 512, 512); with dropout, a rate per block of
# (0%, 10%, 20%, 30%, 40%); a 15% drop rate for local drop-path; 50% global mini-batches.
CIFAR_BLOCKS = (64, 128, 256, 512, 512)
CIFAR_DROPOUT = (0.0, 0.1, 0.2, 0.3, 0.4)
LOCAL_DROP_RATE = 0.15
GLOBAL_DROP_FRACTION = 0.5
# Caffe's "xavier" filler (the authors' networks): uniform, variance 1 / fan-in.
CAFFE_XAVIER = "lecun_uniform"


@keras.saving.register_keras_serializable(package="kerascnn")
class DropPathSampler(keras.layers.Layer):
    """Draws a network's drop-path mode once per call (one mini-batch) for all its joins.

    The output has shape ``(batch, 2)``, the same row for every example:
    ``[is_global, column]``. In training, ``is_global`` is 1 with probability
    ``global_drop_fraction`` and ``column`` is drawn uniformly from 1..``columns``; otherwise
    both are 0 (local drop-path in training, a plain mean at inference). With ``only_column``
    the output is always ``[1, only_column]``: that column alone, in training and inference.
    """

    def __init__(
        self,
        columns: int,
        global_drop_fraction: float = GLOBAL_DROP_FRACTION,
        only_column: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.columns = int(columns)
        self.global_drop_fraction = float(global_drop_fraction)
        self.only_column = None if only_column is None else int(only_column)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if self.only_column is not None:
            state = ops.convert_to_tensor([1.0, float(self.only_column)], dtype="float32")
        elif training and self.global_drop_fraction > 0.0:
            draws = keras.random.uniform((2,), seed=self.seed_generator)
            is_global = ops.cast(draws[0] < self.global_drop_fraction, "float32")
            column = ops.minimum(ops.floor(draws[1] * self.columns), self.columns - 1) + 1.0
            state = ops.stack([is_global, column])
        else:
            state = ops.zeros((2,), dtype="float32")
        state = ops.cast(ops.reshape(state, (1, 2)), self.compute_dtype)
        return ops.broadcast_to(state, (ops.shape(x)[0], 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2)

    def get_config(self):
        return {
            **super().get_config(),
            "columns": self.columns,
            "global_drop_fraction": self.global_drop_fraction,
            "only_column": self.only_column,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="kerascnn")
class FractalJoin(keras.layers.Layer):
    """The join layer: the element-wise mean of its inputs, with drop-path in training.

    Called on ``[path_1, ..., path_k]`` or ``[path_1, ..., path_k, state]``, where
    ``columns[i]`` names the column ``path_i`` belongs to and ``state`` is a
    :class:`DropPathSampler`'s output. The mean is taken over the kept inputs only (no
    rescaling beyond it). Local drop-path (training, ``state`` not global): each input is
    dropped with probability ``local_drop_rate``, drawn once per call; if all are dropped, one
    is kept at random. Global (``state`` names a column): only that column's input is kept;
    a join the column does not pass through averages all its inputs, since its output then
    reaches the network's output only through inputs that later joins drop. At inference,
    without a global state, every input is kept.
    """

    def __init__(
        self,
        columns: Sequence[int],
        local_drop_rate: float = LOCAL_DROP_RATE,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.columns = [int(c) for c in columns]
        if len(self.columns) < 1:
            raise InvalidArgumentError("a join needs at least one input column")
        if not 0.0 <= float(local_drop_rate) < 1.0:
            raise InvalidArgumentError(
                f"local drop rate must be in [0, 1); received {local_drop_rate}"
            )
        self.local_drop_rate = float(local_drop_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        count = len(self.columns)
        paths = list(inputs[:count])
        state = inputs[count] if len(inputs) > count else None
        keep = self._local_keep(training)
        if state is not None:
            state = ops.cast(state, "float32")
            own = ops.convert_to_tensor(self.columns, dtype="float32")
            selected = ops.cast(ops.equal(own, state[0, 1]), "float32")
            selected = ops.where(ops.sum(selected) > 0.0, selected, ops.ones((count,)))
            keep = ops.where(state[0, 0] > 0.5, selected, keep)
        weights = ops.cast(keep / ops.sum(keep), paths[0].dtype)
        output = paths[0] * weights[0]
        for i in range(1, count):
            output = output + paths[i] * weights[i]
        return output

    def _local_keep(self, training):
        count = len(self.columns)
        if not training or self.local_drop_rate == 0.0:
            return ops.ones((count,), dtype="float32")
        draws = keras.random.uniform((count,), seed=self.seed_generator)
        keep = ops.cast(draws >= self.local_drop_rate, "float32")
        # All dropped: keep the input with the largest draw, a uniformly random one.
        fallback = ops.one_hot(ops.argmax(draws), count, dtype="float32")
        return ops.where(ops.sum(keep) > 0.0, keep, fallback)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "columns": self.columns,
            "local_drop_rate": self.local_drop_rate,
            "seed": self.seed,
        }


def FractalNet(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: str | None,
    mean: Sequence[float],
    std: Sequence[float],
    columns: int = 4,
    blocks: Sequence[int] = CIFAR_BLOCKS,
    dropout: float | Sequence[float] = CIFAR_DROPOUT,
    local_drop_rate: float = LOCAL_DROP_RATE,
    global_drop_fraction: float = GLOBAL_DROP_FRACTION,
    only_column: int | None = None,
    weight_decay: float | None = None,
    seed: int | None = None,
    name: str | None = None,
) -> keras.Model:
    """Build a FractalNet (Larsson, Maire, Shakhnarovich 2016), the CIFAR layout of section 4.

    Args:
        input_shape: (height, width, channels); 32x32x3 in the paper, at least
            ``2^len(blocks)`` on each side (one 2x2 max pooling per block).
        num_classes: classifier units (10 for CIFAR-10).
        include_top: add the classifier on the flattened last pooling; otherwise return the
            last pooling's feature map, pooled by ``pooling``.
        pooling: None, "avg" or "max", for ``include_top=False``.
        classifier_activation: "softmax", or None for logits.
        mean, std: raw-pixel statistics of the first layer.
        columns: C, the number of columns of each fractal block (4: 8 convolutions on the
            longest path of a block, 2^C - 1 = 15 in all).
        blocks: the filters of each block's convolutions, one entry per block (B = 5).
        dropout: the dropout rate of each block's convolutions (one per block, or one for
            all; 0 for none). The paper's "+ dropout" setting is the default.
        local_drop_rate: probability that a join drops each input under local drop-path.
        global_drop_fraction: fraction of mini-batches trained with global drop-path (a single
            column); 0 for local drop-path only. ``local_drop_rate=0`` with
            ``global_drop_fraction=0`` trains without drop-path.
        only_column: None (all columns), or a column 1..C (1 = the shallowest, C = the
            deepest) that alone is used in training and inference: the paper's "deepest column
            alone" is ``only_column=columns``. The weights are the same as with all columns.
        weight_decay: L2 decay of the convolution and classifier kernels (the paper gives none).
        seed: seed of the drop-path draws (None: random).
        name: the model's name, ``fractalnet{depth}`` by default, depth the number of
            convolutions on the longest path.

    Returns:
        A ``keras.Model`` taking raw 0-255 pixels.

    Raises:
        InvalidArgumentError: for an invalid column count, block table, rate or column, or an
            input too small for the number of poolings.
    """
    rates = _check_arguments(
        input_shape, columns, blocks, dropout, local_drop_rate, global_drop_fraction, only_column
    )
    regularizer = layers.l2_decay(weight_decay)
    depth = 2 ** (columns - 1)

    inputs, x = layers.image_input(input_shape, mean, std)
    state = DropPathSampler(
        columns, global_drop_fraction, only_column, seed=seed, name="drop_path"
    )(x)
    for index, (filters, rate) in enumerate(zip(blocks, rates, strict=True)):
        prefix = f"block{index + 1}"
        block_seed = None if seed is None else seed + 1000 * (index + 1)
        x = fractal_block(
            x,
            state,
            columns=columns,
            filters=int(filters),
            dropout=rate,
            local_drop_rate=local_drop_rate,
            regularizer=regularizer,
            seed=block_seed,
            prefix=prefix,
        )
        x = keras.layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)

    if include_top:
        # Section 4: a softmax classifier on the last pooling (1x1 on a 32x32 input).
        x = keras.layers.Flatten(name="flatten")(x)
        x = layers.classifier(
            x,
            num_classes,
            classifier_activation,
            kernel_initializer=CAFFE_XAVIER,
            kernel_regularizer=regularizer,
        )
    else:
        x = layers.global_pool(x, pooling)
    return keras.Model(inputs, x, name=name or f"fractalnet{depth * len(blocks)}")


def fractal_block(
    x,
    state,
    *,
    columns: int,
    filters: int,
    dropout: float,
    local_drop_rate: float,
    regularizer,
    seed: int | None,
    prefix: str,
):
    """One fractal block of ``columns`` columns, the expansion rule unrolled by depth.

    Column ``c`` has a convolution ending at depth ``i`` of the longest path (1-based) when
    ``i`` is a multiple of ``2^(columns - c)``; where two or more do, they are joined and the
    join feeds each of them. Layers: ``{prefix}_column{c}_{k}_conv`` (the k-th convolution of
    column c, with ``_dropout``, ``_bn`` and ``_relu``) and ``{prefix}_join{i}``.
    """
    depth = 2 ** (columns - 1)
    outputs = dict.fromkeys(range(1, columns + 1), x)
    counts = dict.fromkeys(range(1, columns + 1), 0)
    for i in range(1, depth + 1):
        active = [c for c in range(1, columns + 1) if i % 2 ** (columns - c) == 0]
        for c in active:
            counts[c] += 1
            outputs[c] = conv_unit(
                outputs[c],
                filters,
                dropout=dropout,
                regularizer=regularizer,
                name=f"{prefix}_column{c}_{counts[c]}",
            )
        if len(active) > 1:
            joined = FractalJoin(
                active,
                local_drop_rate,
                seed=None if seed is None else seed + i,
                name=f"{prefix}_join{i}",
            )([outputs[c] for c in active] + [state])
            for c in active:
                outputs[c] = joined
    return outputs[columns]


def conv_unit(x, filters: int, *, dropout: float, regularizer, name: str):
    """3x3 convolution, dropout (if any), batch normalisation, ReLU (the authors' order)."""
    x = keras.layers.Conv2D(
        filters,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer=CAFFE_XAVIER,
        kernel_regularizer=regularizer,
        name=f"{name}_conv",
    )(x)
    if dropout > 0.0:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _check_arguments(
    input_shape, columns, blocks, dropout, local_drop_rate, global_drop_fraction, only_column
) -> list[float]:
    if isinstance(columns, bool) or not isinstance(columns, numbers.Integral) or columns < 1:
        raise InvalidArgumentError(f"columns must be a positive integer; received {columns!r}")
    blocks = tuple(blocks)
    if not blocks or any(
        isinstance(f, bool) or not isinstance(f, numbers.Integral) or f < 1 for f in blocks
    ):
        raise InvalidArgumentError(
            f"blocks must list each block's filters as positive integers; received {blocks!r}"
        )
    if dropout is None:
        dropout = 0.0
    rates = (
        [float(dropout)] * len(blocks)
        if isinstance(dropout, numbers.Real)
        else [float(r) for r in dropout]
    )
    if len(rates) != len(blocks) or not all(0.0 <= r < 1.0 for r in rates):
        raise InvalidArgumentError(
            f"dropout must be a rate in [0, 1) or one per block ({len(blocks)}); "
            f"received {dropout!r}"
        )
    if not 0.0 <= float(local_drop_rate) < 1.0:
        raise InvalidArgumentError(
            f"local_drop_rate must be in [0, 1); received {local_drop_rate!r}"
        )
    if not 0.0 <= float(global_drop_fraction) <= 1.0:
        raise InvalidArgumentError(
            f"global_drop_fraction must be in [0, 1]; received {global_drop_fraction!r}"
        )
    if only_column is not None and (
        isinstance(only_column, bool)
        or not isinstance(only_column, numbers.Integral)
        or not 1 <= only_column <= columns
    ):
        raise InvalidArgumentError(
            f"only_column must be None or a column 1..{columns}; received {only_column!r}"
        )
    size = 2 ** len(blocks)
    if input_shape[0] < size or input_shape[1] < size:
        raise InvalidArgumentError(
            f"FractalNet with {len(blocks)} blocks needs inputs of at least {size}x{size}; "
            f"received input_shape={tuple(input_shape)}"
        )
    return rates


register_model(
    "fractalnet",
    FractalNet,
    title="FractalNet",
    paper=(
        "Larsson, Maire, Shakhnarovich 2016, FractalNet: Ultra-Deep Neural Networks "
        "without Residuals"
    ),
    input_shape=(32, 32, 3),
    # Five 2x2 max poolings: 32x32 leaves 1x1; 31 would leave nothing after the fifth.
    min_size=(32, 32),
    num_classes=10,
    # CIFAR-10 training-set channel statistics.
    mean=FB_RESNET_CIFAR10_MEAN,
    std=FB_RESNET_CIFAR10_STD,
    columns=4,
    description="FractalNet, C=4 columns, B=5 blocks (40 layers), dropout and drop-path",
)
