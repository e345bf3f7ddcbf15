"""The case-study lectures' counting claims, from kerascnn's own counting (no training):

1. Three stacked 3x3 convolutions see what one 7x7 sees (receptive field 7) with 27C^2
   instead of 49C^2 weights (Simonyan & Zisserman 2014, section 2.3); C = 256, no biases.
2. The naive Inception module against the one with 1x1 reductions (Szegedy et al. 2014,
   Figure 2; CS231n's example): on 28x28x256, 1x1/128, 3x3/192, 5x5/96 and 3x3 pooling,
   then the same with 64-channel 1x1 reductions before the 3x3 and 5x5 and a 64-channel 1x1
   after the pooling.
3. SqueezeNet's "AlexNet-level accuracy with 50x fewer parameters" (Iandola et al. 2016):
   the parameter ratio of the registered networks, and the published accuracies beside it.

    python benchmarks/claims/counting.py            # text
    python benchmarks/claims/counting.py --json
"""

from __future__ import annotations

import argparse
import json

import keras

from kerascnn.models import MODELS, model_info
from kerascnn.models.counting import multiply_accumulates
from kerascnn.models.summary import summarize_model

SIDE, CHANNELS = 28, 256


def stacked(kernels: list[int], channels: int = CHANNELS) -> keras.Model:
    """Convolutions of ``kernels`` sizes, ``channels`` in and out, no biases."""
    inputs = keras.Input((16, 16, channels))
    x = inputs
    for index, kernel in enumerate(kernels):
        x = keras.layers.Conv2D(
            channels, kernel, padding="same", use_bias=False, name=f"conv{index}_{kernel}x{kernel}"
        )(x)
    return keras.Model(inputs, x)


def inception_module(reduce: bool) -> keras.Model:
    """GoogLeNet's module on 28x28x256: naive, or with 64-channel 1x1 reductions."""
    inputs = keras.Input((SIDE, SIDE, CHANNELS))

    def conv(x, filters, kernel, name):
        return keras.layers.Conv2D(filters, kernel, padding="same", name=name)(x)

    a = conv(inputs, 128, 1, "1x1")
    b = conv(conv(inputs, 64, 1, "3x3_reduce") if reduce else inputs, 192, 3, "3x3")
    c = conv(conv(inputs, 64, 1, "5x5_reduce") if reduce else inputs, 96, 5, "5x5")
    d = keras.layers.MaxPooling2D(3, strides=1, padding="same", name="pool")(inputs)
    if reduce:
        d = conv(d, 64, 1, "pool_proj")
    return keras.Model(inputs, keras.layers.Concatenate(name="output")([a, b, c, d]))


def measure() -> dict:
    three, seven = summarize_model(stacked([3, 3, 3])), summarize_model(stacked([7]))
    naive, reduced = inception_module(False), inception_module(True)
    squeeze, alex = model_info("squeezenet1_0"), model_info("alexnet")
    return {
        "stacked_3x3": {
            "receptive_field": three.rows[-1].receptive_field[0],
            "weights": three.parameters,
        },
        "single_7x7": {
            "receptive_field": seven.rows[-1].receptive_field[0],
            "weights": seven.parameters,
        },
        "inception_naive": {
            "multiply_accumulates": multiply_accumulates(naive),
            "output_channels": naive.output_shape[-1],
        },
        "inception_reduced": {
            "multiply_accumulates": multiply_accumulates(reduced),
            "output_channels": reduced.output_shape[-1],
        },
        "squeezenet_vs_alexnet": {
            "alexnet_parameters": alex["parameters"],
            "squeezenet1_0_parameters": squeeze["parameters"],
            "ratio": alex["parameters"] / squeeze["parameters"],
            "alexnet_top1": MODELS.get("alexnet").imagenet_accuracy.top1,
            "squeezenet1_0_top1": MODELS.get("squeezenet1_0").imagenet_accuracy.top1,
        },
    }


def report(figures: dict) -> list[str]:
    s3, s7 = figures["stacked_3x3"], figures["single_7x7"]
    naive, reduced = figures["inception_naive"], figures["inception_reduced"]
    sq = figures["squeezenet_vs_alexnet"]
    return [
        f"three 3x3 (C={CHANNELS}): receptive field {s3['receptive_field']}, "
        f"{s3['weights']:,} weights",
        f"one 7x7   (C={CHANNELS}): receptive field {s7['receptive_field']}, "
        f"{s7['weights']:,} weights ({s7['weights'] / s3['weights']:.2f}x)",
        f"Inception, naive:        {naive['multiply_accumulates']:,} MACs, "
        f"{naive['output_channels']} channels out",
        f"Inception, 1x1-reduced:  {reduced['multiply_accumulates']:,} MACs, "
        f"{reduced['output_channels']} channels out "
        f"({naive['multiply_accumulates'] / reduced['multiply_accumulates']:.2f}x fewer)",
        f"AlexNet {sq['alexnet_parameters']:,} / SqueezeNet 1.0 "
        f"{sq['squeezenet1_0_parameters']:,} parameters = {sq['ratio']:.1f}x; "
        f"published top-1 {sq['alexnet_top1']:.1f}% vs {sq['squeezenet1_0_top1']:.1f}%",
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    figures = measure()
    print(json.dumps(figures, indent=2) if parser.parse_args().json else "\n".join(report(figures)))
