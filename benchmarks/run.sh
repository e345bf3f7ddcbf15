#!/usr/bin/env bash
# Speed of every artifact kind for ResNet-50 and MobileNet (untrained weights: speed does not
# depend on them), as recorded in benchmarks/RESULTS.md. Run from the repository root with
# kerascnn installed with its onnx extra (pip install -e ".[onnx]"); takes several minutes.
#   bash benchmarks/run.sh [MODEL...]      (default: resnet50 mobilenet)
set -euo pipefail
export TF_CPP_MIN_LOG_LEVEL=2
work="${WORK:-benchmarks/work}"   # untracked: models and exports
batch="${BATCH:-8}"
threads="${THREADS:-$(nproc)}"
models=("${@:-resnet50 mobilenet}")
mkdir -p "$work"
for name in ${models[@]}; do
    python -c "import sys, kerascnn; kerascnn.create_model(sys.argv[1]).save(sys.argv[2])" \
        "$name" "$work/$name.keras"
    kerascnn export "$work/$name.keras" --export-dir "$work/exports" --overwrite \
        --format saved_model,tflite,onnx --quantize none,dynamic
    kerascnn benchmark "$work/exports/$name" --batch-size "$batch" --threads "$threads" \
        --warmup 2 --repeats 5
done
