#!/usr/bin/env bash
# ResNet-50 training images/s at 224 px in bfloat16 (Keras mixed_bfloat16) on Keras's JAX
# backend, synthetic data, on one NVIDIA GPU; printed against NVIDIA's published figure of
# 2,375 images/s on one A100 80GB (mixed precision, XLA, TensorFlow 2: NVIDIA Deep Learning
# Examples, "ResNet-50 v1.5 for TensorFlow", Training performance,
# https://github.com/NVIDIA/DeepLearningExamples/tree/master/TensorFlow2/Classification/ConvNets/resnet50v1.5).
#
# kerascnn.models cannot be imported without TensorFlow (the package imports it at start-up),
# and a GPU machine may have none; so this builds keras.applications.ResNet50, the network our
# resnet50 matches layer for layer and measured at the same speed (benchmarks/RESULTS.md), and
# imports neither TensorFlow nor kerascnn. Needs: pip install keras "jax[cuda12]".
#
#   benchmarks/gpu.sh                       # batch 256 (fills an 80 GB card in bf16), 50 steps
#   benchmarks/gpu.sh --batch 128 --steps 100
#   benchmarks/gpu.sh --steps 2 --batch 2   # dry run (also on a CPU: checks the script only)
set -euo pipefail
export KERAS_BACKEND=jax
# JAX preallocates 75% of the card by default; let it take what the batch needs.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}"
exec python - "$@" <<'PY'
import argparse, sys, time

import jax
import keras
import numpy as np

NVIDIA_A100 = 2375  # images/s, ResNet-50 v1.5, TF2, A100 80GB, mixed precision + XLA

parser = argparse.ArgumentParser(prog="benchmarks/gpu.sh")
parser.add_argument("--batch", type=int, default=256)
parser.add_argument("--steps", type=int, default=50)
parser.add_argument("--warmup", type=int, default=5)
parser.add_argument("--size", type=int, default=224)
args = parser.parse_args(sys.argv[1:])

device = jax.devices()[0]
print(f"device: {device.device_kind} ({device.platform}), jax {jax.__version__}, "
      f"keras {keras.__version__}, batch {args.batch}, {args.size} px, bf16", flush=True)
if device.platform != "gpu":
    print("Warning: no GPU found; this is a dry run of the script, not a measurement",
          file=sys.stderr)
keras.mixed_precision.set_global_policy("mixed_bfloat16")
model = keras.applications.ResNet50(weights=None, input_shape=(args.size, args.size, 3))
model.compile(
    optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
    loss=keras.losses.SparseCategoricalCrossentropy(),
    jit_compile=True,
)
rng = np.random.default_rng(0)
images = jax.device_put(rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32"))
labels = jax.device_put(rng.integers(0, 1000, args.batch))
for _ in range(args.warmup):
    loss = model.train_on_batch(images, labels)
started = time.perf_counter()
for _ in range(args.steps):
    loss = model.train_on_batch(images, labels)  # returns a float: waits for the step
seconds = time.perf_counter() - started
speed = args.steps * args.batch / seconds
print(f"ResNet-50 training: {speed:,.1f} images/s ({1000 * seconds / args.steps:.1f} ms/step, "
      f"loss {float(loss):.3f})")
print(f"NVIDIA's A100 figure: {NVIDIA_A100:,} images/s -> x{speed / NVIDIA_A100:.2f}")
print(f"TensorFlow imported: {'tensorflow' in sys.modules}")
PY
