#!/usr/bin/env bash
# Everything a lent GPU is still needed for, in one device call (about 10 minutes):
#
#   1. continue training the bundled UNet (models/mnist-edm) from its committed EMA weights for
#      EDM_MINUTES, then score 10,000 seeded 35-NFE samples with the bundled classifier
#      (the issue's quality bar: >= 90 % at top-class probability >= 0.9);
#   2. the GPU check (tools/gpu-check.sh): ld3 on WebGPU/CUDA against PyTorch eager.
#
# Training runs first and alone, so the check's timings see an idle GPU. At most 8 files come
# back from a device call, so only these are kept:
#   $OUT/edm/{model.onnx,ema.pt,loss.csv,samples.png,train_log.json}
#   $OUT/gpu/{gpu-table.md,gpu-results.json,gpu-check.log}
#
# Prepare here, on the networked machine:
#   /usr/bin/python3 tools/pack_mnist.py                 # .gpu/mnist.npz
#   bash tools/make-gpu-bundle.sh --verify               # .gpu/bundle
# Run there (carry [".gpu"]), from the repository root:
#   set -o pipefail; OUT=$OUT bash tools/gpu-session.sh 2>&1
# A CPU dry run of the same stages (a few training steps, the check's tiny UNet):
#   bash tools/gpu-session.sh --cpu-dry-run
#
# Environment (defaults in brackets): OUT (required unless --cpu-dry-run), DATA [.gpu/mnist.npz],
# EDM_MINUTES [5], EDM_ARGS [batch 512, lr 3e-4, 200 warm-up steps, decay over the second half],
# CHECK_DEADLINE [240] seconds for the GPU check, PYTHON [python3].
set -uo pipefail

DRY=0
[ "${1:-}" = "--cpu-dry-run" ] && DRY=1
if [ "$DRY" = 1 ]; then
  : "${OUT:=/tmp/ld3-gpu-session-dry}"
  : "${PYTHON:=/usr/bin/python3}"
  DEVICE=cpu
  # Two steps at batch 8 and a 16-sample check: the stages run, nothing is learned.
  : "${EDM_ARGS:=--max-steps 2 --batch 8 --warmup 1 --threads 2 --grid-steps 3}"
  CHECK_SAMPLES=16
else
  : "${OUT:?set OUT to the folder whose files come back}"
  DEVICE=cuda
  : "${EDM_ARGS:=--batch 512 --lr 3e-4 --warmup 200 --decay-frac 0.5 --threads 8}"
  CHECK_SAMPLES=10000
fi
PYTHON=${PYTHON:-python3}
DATA=${DATA:-.gpu/mnist.npz}
EDM_MINUTES=${EDM_MINUTES:-5}
CHECK_DEADLINE=${CHECK_DEADLINE:-240}
export PYTHONUNBUFFERED=1

[ -f "$DATA" ] || { echo "missing $DATA: run /usr/bin/python3 tools/pack_mnist.py first" >&2; exit 2; }
mkdir -p "$OUT/edm" "$OUT/gpu"
T0=$(date +%s)
echo "gpu-session: dry=$DRY edm_minutes=$EDM_MINUTES check_deadline=$CHECK_DEADLINE out=$OUT"

# 1. The UNet, continued from the shipped EMA weights (same architecture, same data).
# shellcheck disable=SC2086 # EDM_ARGS is a list of flags
"$PYTHON" models/mnist-edm/train.py --data "$DATA" --out "$OUT/edm" --device "$DEVICE" \
  --minutes "$EDM_MINUTES" --init models/mnist-edm/ema.pt \
  --classifier models/mnist-features/model.onnx --classifier-wait 1 \
  --check-samples "$CHECK_SAMPLES" $EDM_ARGS 2>&1 | sed -u 's/^/[edm] /'
edm_rc=${PIPESTATUS[0]}
# loss.csv holds the curve's numbers; the plot is redrawn from it here.
rm -f "$OUT/edm/loss.png"
echo "[edm] exit $edm_rc after $(($(date +%s) - T0))s"

# 2. The GPU check, on the GPU the training has left idle.
if [ "$DRY" = 1 ]; then
  OUT="$OUT/gpu" DEADLINE="$CHECK_DEADLINE" bash tools/gpu-check.sh --cpu-dry-run
else
  OUT="$OUT/gpu" DEADLINE="$CHECK_DEADLINE" bash tools/gpu-check.sh
fi
check_rc=$?
# Keep the table, the numbers and the log; the sample PNG and the training log are in the log.
find "$OUT/gpu" -type f ! -name gpu-table.md ! -name gpu-results.json ! -name gpu-check.log \
  -delete

echo "--- files ($(($(date +%s) - T0))s total)"
find "$OUT" -type f -printf '%p %s\n' | sort
if [ -f "$OUT/edm/train_log.json" ]; then
  "$PYTHON" - "$OUT/edm/train_log.json" <<'EOF'
import json, sys
log = json.load(open(sys.argv[1]))
print(json.dumps({k: log[k] for k in ("training", "classifier_check") if k in log}))
EOF
fi
[ "$edm_rc" = 0 ] && [ "$check_rc" = 0 ]
