#!/usr/bin/env bash
# Everything a lent GPU is still needed for, as two device calls on one warm machine:
#
#   bash tools/gpu-session.sh train   continue training the bundled UNet (models/mnist-edm) from
#                                     the shipped weights for EDM_MINUTES, then score 10,000 seeded
#                                     35-NFE samples with the bundled classifier (the quality bar:
#                                     >= 90 % at top-class probability >= 0.9); about 7 minutes
#   bash tools/gpu-session.sh check   the GPU check (tools/gpu-check.sh): ld3 on WebGPU/CUDA
#                                     against PyTorch eager on the same card; about 4 minutes
#
# Two calls because a call's working tree is limited to 64 MiB: the tracked tree (~16 MB) plus
# the training data (.gpu/mnist.npz, ~12 MB) is one call, plus the offline bundle (.gpu/bundle,
# ~47 MB) the other. Training first leaves the check an idle GPU. Files that come back (a call
# returns at most 8):
#   train: $OUT/edm/{model.onnx,loss.csv,loss.png,samples.png,train_log.json}
#   check: $OUT/gpu/{gpu-table.md,gpu-results.json,gpu-check.log}
#
# Prepare here, on the networked machine:
#   /usr/bin/python3 tools/pack_mnist.py                 # .gpu/mnist.npz
#   bash tools/make-gpu-bundle.sh --verify               # .gpu/bundle
# Run there, from the repository root:
#   carry [".gpu/mnist.npz"]:  set -o pipefail; OUT=$OUT bash tools/gpu-session.sh train 2>&1
#   carry [".gpu/bundle"]:     set -o pipefail; OUT=$OUT bash tools/gpu-session.sh check 2>&1
# A CPU dry run of both stages (a few training steps, the check's tiny UNet):
#   bash tools/gpu-session.sh --cpu-dry-run
#
# Environment (defaults in brackets): OUT (required unless --cpu-dry-run), DATA [.gpu/mnist.npz],
# EDM_MINUTES [5], EDM_ARGS [batch 512, lr 3e-4, 200 warm-up steps, decay over the second half,
# training noise ln σ ~ N(-0.4, 1.4²): models/mnist-edm/README.md, "Where readability is lost"],
# CHECK_DEADLINE [240] seconds for the GPU check, PYTHON [python3].
set -uo pipefail

STAGES=${1:-}
DRY=0
case "$STAGES" in
  train | check) ;;
  --cpu-dry-run) DRY=1 STAGES="train check" ;;
  *) echo "usage: bash tools/gpu-session.sh train|check|--cpu-dry-run" >&2; exit 2 ;;
esac
if [ "$DRY" = 1 ]; then
  : "${OUT:=/tmp/ld3-gpu-session-dry}"
  : "${PYTHON:=/usr/bin/python3}"
  DEVICE=cpu
  # Two steps at batch 8 and a 16-sample check: the stages run, nothing is learned.
  : "${EDM_ARGS:=--max-steps 2 --batch 8 --warmup 1 --threads 2 --grid-steps 3 --p-mean -0.4 --p-std 1.4}"
  CHECK_SAMPLES=16
else
  : "${OUT:?set OUT to the folder whose files come back}"
  DEVICE=cuda
  : "${EDM_ARGS:=--batch 512 --lr 3e-4 --warmup 200 --decay-frac 0.5 --threads 8 --p-mean -0.4 --p-std 1.4}"
  CHECK_SAMPLES=10000
fi
PYTHON=${PYTHON:-python3}
DATA=${DATA:-.gpu/mnist.npz}
EDM_MINUTES=${EDM_MINUTES:-5}
CHECK_DEADLINE=${CHECK_DEADLINE:-240}
export PYTHONUNBUFFERED=1
T0=$(date +%s)
rc=0

train() {
  [ -f "$DATA" ] || { echo "missing $DATA: run /usr/bin/python3 tools/pack_mnist.py first" >&2; return 2; }
  mkdir -p "$OUT/edm"
  # Continue from the shipped EMA weights: train.py reads them back out of model.onnx.
  # shellcheck disable=SC2086 # EDM_ARGS is a list of flags
  "$PYTHON" models/mnist-edm/train.py --data "$DATA" --out "$OUT/edm" --device "$DEVICE" \
    --minutes "$EDM_MINUTES" --init models/mnist-edm/model.onnx \
    --classifier models/mnist-features/model.onnx --classifier-wait 1 \
    --check-samples "$CHECK_SAMPLES" $EDM_ARGS 2>&1 | sed -u 's/^/[edm] /'
  local edm_rc=${PIPESTATUS[0]}
  # model.onnx holds the same weights (and --init reads them), so ema.pt stays behind.
  rm -f "$OUT/edm/ema.pt"
  if [ -f "$OUT/edm/train_log.json" ]; then
    "$PYTHON" - "$OUT/edm/train_log.json" <<'EOF'
import json, sys
log = json.load(open(sys.argv[1]))
print(json.dumps({k: log[k] for k in ("training", "classifier_check") if k in log}))
EOF
  fi
  echo "[edm] exit $edm_rc after $(($(date +%s) - T0))s"
  return "$edm_rc"
}

check() {
  mkdir -p "$OUT/gpu"
  local check_rc
  if [ "$DRY" = 1 ]; then
    OUT="$OUT/gpu" DEADLINE="$CHECK_DEADLINE" bash tools/gpu-check.sh --cpu-dry-run
  else
    OUT="$OUT/gpu" DEADLINE="$CHECK_DEADLINE" bash tools/gpu-check.sh
  fi
  check_rc=$?
  # The table, the numbers and the log; the sample PNG and the training log are in the log.
  find "$OUT/gpu" -type f ! -name gpu-table.md ! -name gpu-results.json ! -name gpu-check.log \
    -delete
  return "$check_rc"
}

echo "gpu-session: stages=[$STAGES] dry=$DRY edm_minutes=$EDM_MINUTES out=$OUT"
for stage in $STAGES; do
  "$stage" || rc=$?
done
echo "--- files ($(($(date +%s) - T0))s total)"
find "$OUT" -type f -printf '%p %s\n' | sort
exit "$rc"
