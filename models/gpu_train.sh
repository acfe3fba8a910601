#!/usr/bin/env bash
# Train both bundled MNIST models on one GPU machine in a single call (about 7 minutes).
#
# Run from the repository root, with the packed data carried along:
#   /usr/bin/python3 tools/pack_mnist.py            # here, once: writes .gpu/mnist.npz (~12 MB)
#   OUT=/some/folder bash models/gpu_train.sh       # on the GPU machine ($OUT is set there)
#
# The classifier (models/mnist-features, ~1 min) trains concurrently with the diffusion model
# (models/mnist-edm, EDM_MINUTES of training); at the end the diffusion script scores 10,000
# seeded 35-NFE samples with the fresh classifier. Exactly 8 files come back:
#   $OUT/edm/{model.onnx,ema.pt,loss.csv,loss.png,samples.png,train_log.json}
#   $OUT/features/{model.onnx,train_log.json}
#
# Environment overrides (defaults in brackets): OUT (required), DATA [.gpu/mnist.npz],
# EDM_MINUTES [6], EDM_BATCH [256], FEAT_EPOCHS [15], FEAT_MINUTES [2], CHECK_SAMPLES [10000],
# DEVICE [cuda], PYTHON [python3], EXTRA_EDM_ARGS []. A CPU dry run of this script:
#   OUT=/tmp/x DEVICE=cpu EDM_MINUTES=0.2 EDM_BATCH=16 FEAT_EPOCHS=1 FEAT_MINUTES=0.1 \
#     CHECK_SAMPLES=16 PYTHON=/usr/bin/python3 \
#     EXTRA_EDM_ARGS="--channels 16,32,32 --emb-dim 64 --grid-steps 3" bash models/gpu_train.sh
set -euo pipefail

: "${OUT:?set OUT to the folder whose files come back}"
DATA=${DATA:-.gpu/mnist.npz}
EDM_MINUTES=${EDM_MINUTES:-6}
EDM_BATCH=${EDM_BATCH:-256}
FEAT_EPOCHS=${FEAT_EPOCHS:-15}
FEAT_MINUTES=${FEAT_MINUTES:-2}
CHECK_SAMPLES=${CHECK_SAMPLES:-10000}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
EXTRA_EDM_ARGS=${EXTRA_EDM_ARGS:-}
export PYTHONUNBUFFERED=1

[ -f "$DATA" ] || { echo "missing $DATA: run /usr/bin/python3 tools/pack_mnist.py first" >&2; exit 2; }
mkdir -p "$OUT/edm" "$OUT/features"
t0=$(date +%s)

if [ "$DEVICE" = cuda ]; then
  nvidia-smi -L || true
fi
"$PY" - "$DEVICE" <<'EOF'
import sys, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if sys.argv[1] == "cuda":
    if not torch.cuda.is_available():
        sys.exit("torch.cuda.is_available() is False: refusing to train on the CPU here")
    print("gpu", torch.cuda.get_device_name(0))
try:
    import onnxruntime
    print("onnxruntime", onnxruntime.__version__)
except ImportError:
    print("onnxruntime not importable: ONNX output checks and the classifier check are skipped")
EOF

# Classifier in the background (same GPU); its lines are prefixed so the two logs stay apart.
"$PY" models/mnist-features/train.py --data "$DATA" --out "$OUT/features" --device "$DEVICE" \
  --epochs "$FEAT_EPOCHS" --minutes "$FEAT_MINUTES" --threads 4 2>&1 | sed -u 's/^/[features] /' &
feat_pid=$!

# A failure must not skip the file listing below, hence set +e around the run.
set +e
# shellcheck disable=SC2086 # EXTRA_EDM_ARGS is a list of extra flags
"$PY" models/mnist-edm/train.py --data "$DATA" --out "$OUT/edm" --device "$DEVICE" \
  --minutes "$EDM_MINUTES" --batch "$EDM_BATCH" --threads 8 \
  --classifier "$OUT/features/model.onnx" --classifier-wait 60 --check-samples "$CHECK_SAMPLES" \
  $EXTRA_EDM_ARGS \
  2>&1 | sed -u 's/^/[edm] /'
edm_rc=${PIPESTATUS[0]}
wait "$feat_pid"
set -e

# At most 8 files come back: if the classifier's export failed it left weights.pt instead of
# model.onnx; make room for it by dropping the loss plot (loss.csv has the same numbers).
if [ -f "$OUT/features/weights.pt" ] && [ "$(find "$OUT" -type f | wc -l)" -gt 8 ]; then
  rm -f "$OUT/edm/loss.png"
fi

echo "--- files ($(( $(date +%s) - t0 ))s total)"
find "$OUT" -type f -printf '%p %s\n' | sort
for f in "$OUT/features/train_log.json" "$OUT/edm/train_log.json"; do
  [ -f "$f" ] && "$PY" - "$f" <<'EOF'
import json, sys
log = json.load(open(sys.argv[1]))
keep = ("model", "params", "test_accuracy", "training", "export", "classifier_check", "device", "torch", "total_seconds")
print(json.dumps({**{k: log[k] for k in keep if k in log and k != "export"}, "export_ok": "error" not in log.get("export", {})}))
EOF
done
exit "$edm_rc"
