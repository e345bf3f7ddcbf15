"""torchvision's networks converted into ours: output differences, conversion time and memory.

For every network with published torchvision weights, in a fresh process each (so that peak
memory is the conversion's): torchvision's model with random weights and batch-norm statistics
that are not the defaults is saved as a .pth; `kerascnn convert` (``convert_checkpoint``) turns
it into a .weights.h5 (timed, peak resident memory read after); the file is loaded with
``create_model(name, weights=...)`` and ours on one image of raw pixels at its default input
is compared with torchvision's model on ``(x / 255 - mean) / std``. One JSON line per network.

    python benchmarks/torchvision_weights.py [NAME ...]
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# torchvision's constructors of our variants, and the options of its published weights
# (GoogLeNet's checkpoint holds the auxiliary heads; its weights expect transform_input).
CONSTRUCTORS = {"alexnet_owt": "alexnet", "googlenet_bn": "googlenet"}
OPTIONS = {"googlenet_bn": dict(aux_logits=True, transform_input=True, init_weights=False)}


def measure(name: str) -> dict:
    sys.modules.setdefault("triton", None)  # torch's GPU compiler crashes beside TensorFlow
    import numpy as np
    import torch
    import torchvision

    import kerascnn
    from kerascnn.models.convert import torchvision as tv
    from kerascnn.models.convert.conversion import convert_checkpoint

    torch.manual_seed(0)
    constructor = CONSTRUCTORS.get(name, name.removesuffix("_v1_5"))
    options = OPTIONS.get(name, {})
    model = getattr(torchvision.models, constructor)(weights=None, **options).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    with tempfile.TemporaryDirectory() as folder:
        pth = Path(folder) / f"{name}.pth"
        torch.save(model.state_dict(), pth)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        result = convert_checkpoint(pth, name, Path(folder) / f"{name}.weights.h5")
        seconds = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ours = kerascnn.create_model(name, weights=result.out, classifier_activation=None)
        size = ours.input.shape[1:3]  # the default input: 224x224, SqueezeNet's 227x227
        pixels = np.random.default_rng(0).uniform(0, 255, (1, *size, 3)).astype("float32")
        mean, std = (np.asarray(tv.STATISTICS[k], "float32") for k in ("mean", "std"))
        with torch.no_grad():
            x = torch.from_numpy(((pixels - mean) / std).transpose(0, 3, 1, 2).copy())
            theirs = model(x).numpy()
        difference = float(np.abs(np.asarray(ours(pixels)) - theirs).max())
        return {
            "name": name,
            "parameters": result.parameters,
            "checkpoint_mb": round(pth.stat().st_size / 1e6, 1),
            "max_abs_difference": difference,
            "relative_difference": difference / float(np.abs(theirs).max()),
            "top1_agrees": bool(np.argmax(theirs) == np.argmax(np.asarray(ours(pixels)))),
            "convert_seconds": round(seconds, 1),
            "peak_rss_mb_before_convert": round(rss_before / 1024),
            "peak_rss_mb_after_convert": round(rss_after / 1024),
        }


def main(names: list[str]) -> None:
    if len(names) == 2 and names[0] == "--one":
        print(json.dumps(measure(names[1])), flush=True)
        return
    from kerascnn.models.convert import PUBLISHED

    for name in names or list(PUBLISHED):
        subprocess.run(
            [sys.executable, __file__, "--one", name],
            check=False,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )


if __name__ == "__main__":
    main(sys.argv[1:])
