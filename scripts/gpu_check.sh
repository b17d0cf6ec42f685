#!/usr/bin/env bash
# GPU check (issue 11): run on a machine with an NVIDIA GPU, from the repository root, after `make install`.
#
#   1. `benchmark perf --bags realistic` (300 slides × 500–1000 instances × 1024 features): CLAM's loop vs our
#      batched trainer vs the compute floor, epoch time, slides/s, peak RSS and peak CUDA memory;
#   2. one fold of a PANDA-sized simulated cohort (--scale 44.233: 10,616 slides) for every model, timed,
#      features resident on the GPU.
#
# Prints both tables and leaves the raw outputs in $OUT (default ./gpu-check). Usage:
#   bash scripts/gpu_check.sh            # everything
#   EPOCHS=5 MODELS=abmil,hmil bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
EPOCHS=${EPOCHS:-20}
MODELS=${MODELS:-all}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi here; run it on a GPU machine" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$BIN/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"

echo "== 1. benchmark perf, realistic bags"
"$BIN/benchmark" perf --bags realistic --models abmil,clam-sb,hmil --device cuda --format markdown \
  --cache-dir "$OUT/cache" | tee "$OUT/perf-realistic.md"

echo "== 2. one PANDA-sized fold, $MODELS, $EPOCHS epochs"
start=$(date +%s)
/usr/bin/time -v "$BIN/benchmark" run --dataset panda-sim --scale 44.233 --models "$MODELS" --folds 5 --fold 0 \
  --epochs "$EPOCHS" --device cuda --features-on-device --cache-dir "$OUT/cache" \
  --splits-dir "$OUT/splits" --tracking-uri "sqlite:///$OUT/mlflow.db" 2> "$OUT/run.time" | tee "$OUT/run.txt"
end=$(date +%s)
echo "wall: $((end - start)) s for one fold of $MODELS; peak RSS: $(grep 'Maximum resident' "$OUT/run.time" | awk '{print $NF}') KiB"
echo "(5 folds ≈ 5 × this; outputs in $OUT)"
