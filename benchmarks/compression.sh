#!/usr/bin/env bash
# Deep Compression on LeNet-5 (digits) and distillation of a ResNet-20 teacher into a LeNet-5
# student, as recorded in benchmarks/RESULTS.md ("Compression and distillation"). Run from the
# repository root; takes tens of minutes on two cores.
#   EPOCHS=10 SEEDS="0 1 2" bash benchmarks/compression.sh
set -euo pipefail
export TF_CPP_MIN_LOG_LEVEL=2
work="${WORK:-benchmarks/work}"   # untracked: runs and exports
epochs="${EPOCHS:-10}"
seeds=(${SEEDS:-0 1 2})
out=(--output-dir "$work/runs" --export-dir "$work/exports" --overwrite)
# 1. The default LeNet-5, then pruned, shared and quantised (the issue's command).
kerascnn train --run-name lenet5 "${out[@]}" > /dev/null
kerascnn compress "$work/runs/lenet5" --prune "${PRUNE:-0.9}" --global --cluster 4 \
    --quantize int8 --epochs "${COMPRESS_EPOCHS:-16}" "${out[@]}" | sed -n '/artifact/,$p'
# 1b. Quantisation-aware training against post-training int8, and its control (the same
# epochs of float fine-tuning, then post-training int8).
kerascnn compress "$work/runs/lenet5" --qat --epochs "${QAT_EPOCHS:-5}" --run-name lenet5-qat \
    "${out[@]}" | sed -n '/artifact/,$p'
kerascnn compress "$work/runs/lenet5" --prune 0 --quantize int8 --epochs "${QAT_EPOCHS:-5}" \
    --run-name lenet5-float-tuned "${out[@]}" | sed -n '/artifact/,/^$/p'
# 2. A ResNet-20 teacher; LeNet-5 students alone and distilled, same epochs, seeds and recipe.
kerascnn train --model resnet20 --epochs "$epochs" --run-name resnet20 "${out[@]}" > /dev/null
for seed in "${seeds[@]}"; do
    kerascnn train --epochs "$epochs" --seed "$seed" --run-name "alone-$seed" "${out[@]}" \
        > /dev/null
    kerascnn train --epochs "$epochs" --seed "$seed" --run-name "distilled-$seed" \
        --teacher "$work/runs/resnet20" --distill-temperature 4 "${out[@]}" > /dev/null
done
python - "$work/runs" "${seeds[@]}" <<'PY'
import json, statistics, sys
from pathlib import Path
runs, seeds = Path(sys.argv[1]), sys.argv[2:]
def test(name):
    return 100 * json.loads((runs / name / "metrics.json").read_text())["test"]["accuracy"]
print(f"teacher resnet20: test accuracy {test('resnet20'):.2f}%")
for kind in ("alone", "distilled"):
    values = [test(f"{kind}-{seed}") for seed in seeds]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    print(f"lenet5 {kind:<9}: " + ", ".join(f"{v:.2f}" for v in values)
          + f"  mean {statistics.mean(values):.2f}% (sd {spread:.2f})")
PY
