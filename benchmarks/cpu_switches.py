"""ResNet-50 training speed at 224 px, batch 16, on synthetic data: ours (``resnet50``) against
``keras.applications.ResNet50``, in float32, in ``mixed_bfloat16`` (``--mixed-precision
bfloat16``) and compiled with XLA (``--jit-compile``), on the TensorFlow and JAX backends.

Each backend runs in its own child process (Keras picks its backend at import); inside it the
cases are interleaved (every case one block of steps, then the next, repeated) so that a shared
machine's load weighs on all alike. Prints images/s per case and the ratios:

    python benchmarks/cpu_switches.py                    # 3 timed steps per case, x2, TF and JAX
    python benchmarks/cpu_switches.py --steps 10 --repeats 3 --backends tensorflow

Recorded in benchmarks/RESULTS.md ("CPU speed switches").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CASES = (  # (name, model, precision policy, jit_compile)
    ("ours fp32", "ours", "float32", "auto"),
    ("applications fp32", "applications", "float32", "auto"),
    ("ours bf16", "ours", "mixed_bfloat16", "auto"),
    ("applications bf16", "applications", "mixed_bfloat16", "auto"),
    ("ours fp32 xla", "ours", "float32", True),
)


def build(which: str, size: int):
    import keras

    if which == "applications":
        return keras.applications.ResNet50(weights=None, input_shape=(size, size, 3))
    from kerascnn.models import create_model

    return create_model("resnet50", input_shape=(size, size, 3), num_classes=1000)


def measure(args) -> None:
    """The child: every case built and warmed up, then timed in interleaved blocks."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    labels = rng.integers(0, 1000, args.batch)
    models = {}
    for name, which, policy, jit in CASES:
        keras.mixed_precision.set_global_policy(policy)
        model = build(which, args.size)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            jit_compile=jit,
        )
        for _ in range(args.warmup):  # traces and compiles
            model.train_on_batch(images, labels)
        models[name] = model
    keras.mixed_precision.set_global_policy("float32")
    seconds = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(images, labels)
            seconds[name].append((time.perf_counter() - started) / args.steps)
    speeds = {name: args.batch / min(values) for name, values in seconds.items()}
    print(json.dumps({"backend": keras.backend.backend(), "images_per_second": speeds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args)
        return
    results = {}
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, __file__, "--child", *sys.argv[1:]]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{backend}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])["images_per_second"]
    for backend, speeds in results.items():
        base = speeds["ours fp32"]
        print(f"\n{backend} (ResNet-50, {args.size} px, batch {args.batch}, images/s)")
        for name, speed in speeds.items():
            print(f"  {name:<20} {speed:7.2f}   x{speed / base:.2f} of ours fp32")
        print(
            f"  ours / applications: fp32 x{base / speeds['applications fp32']:.2f}, "
            f"bf16 x{speeds['ours bf16'] / speeds['applications bf16']:.2f}"
        )
    if {"tensorflow", "jax"} <= set(results):
        for name in results["tensorflow"]:
            ratio = results["jax"][name] / results["tensorflow"][name]
            print(f"  JAX / TensorFlow, {name}: x{ratio:.2f}")


if __name__ == "__main__":
    main()
