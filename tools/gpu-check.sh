#!/usr/bin/env bash
# Measure ld3 on a GPU machine with no network, in one short run (about 3 minutes, never more
# than DEADLINE seconds), and print one table.
#
# Prepare here, on a networked machine:   bash tools/make-gpu-bundle.sh --verify
# Run there, from the repository root:    OUT=/some/folder bash tools/gpu-check.sh
# (with .gpu/bundle carried along). A CPU dry run of the same stages with a tiny UNet:
#                                         bash tools/gpu-check.sh --cpu-dry-run
#
# Stages (each under its own timeout; a failed stage is recorded and the next one runs):
#   1. unpack Deno, node_modules and the Vulkan loader from .gpu/bundle into $WORK, over a copy
#      of the working tree (the checkout itself is not modified)
#   2. build a CIFAR-10-sized DDPM++-like UNet with random weights (~53M parameters, attention
#      at 16x16, EDM preconditioning inside) with the machine's PyTorch; export it to ONNX
#   3. PyTorch eager on the same GPU: forward, and forward + VJP w.r.t. x, at batch 128
#   4. tools/gpu_bench.ts with --device webgpu, then --device cuda: sampling images/s at NFE 10,
#      bare forward (outputs to JS vs. left on the GPU), forward + VJP through lib/vjp
#   5. `deno task sample` end to end on webgpu (process wall time, PNG written)
#   6. LD3 training, when tasks/train.ts exists: a 4-sample teacher set, then a short run
#      (TRAIN_ARGS are appended to its options)
#   7. the table: $OUT/gpu-table.md and $OUT/gpu-results.json; the log is $OUT/gpu-check.log
#
# Environment: OUT (required unless --cpu-dry-run), PYTHON [python3], BUNDLE [.gpu/bundle],
# WORK [/tmp/ld3-gpu], DEADLINE [290] seconds, BATCH [128], NFE [10], DEVICES [webgpu cuda],
# TRAIN_ARGS [""].
set -uo pipefail

DRY=0
[ "${1:-}" = "--cpu-dry-run" ] && DRY=1
if [ "$DRY" = 1 ]; then
  : "${OUT:=/tmp/ld3-gpu-dry-out}"
  : "${PYTHON:=/usr/bin/python3}"
  : "${BATCH:=4}" "${NFE:=2}" "${DEVICES:=cpu webgpu cuda}" "${WORK:=/tmp/ld3-gpu-dry}"
  SMALL=--small
  TORCH_DEVICE=cpu
else
  : "${OUT:?set OUT to the folder whose files come back}"
  SMALL=
  TORCH_DEVICE=cuda
fi
PYTHON=${PYTHON:-python3}
BUNDLE=${BUNDLE:-.gpu/bundle}
WORK=${WORK:-/tmp/ld3-gpu}
DEADLINE=${DEADLINE:-290}
BATCH=${BATCH:-128}
NFE=${NFE:-10}
DEVICES=${DEVICES:-webgpu cuda}
TRAIN_ARGS=${TRAIN_ARGS:-}
export PYTHONUNBUFFERED=1

mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
T0=$(date +%s)
log() { printf '[%s +%3ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
# Seconds a stage may take: its own limit, cut to what is left before DEADLINE (10 s kept for
# the table).
budget() {
  local left=$((DEADLINE - ($(date +%s) - T0) - 10))
  [ "$left" -lt "$1" ] && echo $((left > 5 ? left : 5)) || echo "$1"
}
stage() { # stage NAME LIMIT COMMAND...: run under a timeout, log the outcome, never abort
  local name=$1 limit
  limit=$(budget "$2")
  shift 2
  log "stage $name (limit ${limit}s)"
  timeout -k 5 "$limit" "$@"
  local rc=$?
  if [ $rc = 0 ]; then log "stage $name: ok"; else log "stage $name: FAILED (exit $rc${rc:+$([ $rc = 124 ] && echo ', timed out')})"; fi
  return $rc
}

REPO=$(pwd)
[ -f "$REPO/deno.json" ] || { echo "run from the repository root" >&2; exit 2; }
rm -rf "$WORK"
mkdir -p "$WORK/bin" "$WORK/unet" "$WORK/repo"
log "ld3 gpu-check: dry=$DRY batch=$BATCH nfe=$NFE devices=[$DEVICES] work=$WORK out=$OUT"
if [ "$DRY" = 0 ]; then nvidia-smi -L || true; fi
CARD=$([ "$DRY" = 1 ] && echo "CPU ($(nproc) cores, dry run)" || nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
echo "${CARD:-unknown}" >"$WORK/card.txt"

# ---- 1. unpack ------------------------------------------------------------------------------
unpack() {
  set -e
  for f in deno.xz node_modules.tar.xz libvulkan1.deb libglvnd0.deb; do
    [ -f "$BUNDLE/$f" ] || { echo "missing $BUNDLE/$f: run tools/make-gpu-bundle.sh first"; return 1; }
  done
  # A copy of the working tree, so that unpacking node_modules never touches the checkout.
  tar -C "$REPO" --exclude=./.git --exclude=./.gpu --exclude=./node_modules --exclude=./.out \
    -cf - . | tar -C "$WORK/repo" -xf -
  xz -dc "$BUNDLE/deno.xz" >"$WORK/bin/deno"
  chmod +x "$WORK/bin/deno"
  tar -C "$WORK/repo" -xJf "$BUNDLE/node_modules.tar.xz"
  dpkg -x "$BUNDLE/libvulkan1.deb" "$WORK/vulkan"
  dpkg -x "$BUNDLE/libglvnd0.deb" "$WORK/vulkan"
  "$WORK/bin/deno" --version | head -1
}
stage unpack 60 bash -c "$(declare -f unpack); BUNDLE='$BUNDLE' REPO='$REPO' WORK='$WORK' unpack"
export PATH="$WORK/bin:$PATH" DENO_DIR="$WORK/deno_dir" DENO_NO_UPDATE_CHECK=1
export NPM_CONFIG_REGISTRY=http://127.0.0.1:9/ # nothing may be fetched: fail fast if it tries
VK_LIB=$(find "$WORK/vulkan" -name 'libvulkan.so.1' 2>/dev/null | head -1)
# Libraries the machine already has come first: the bundled ones only fill gaps.
[ -n "$VK_LIB" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$VK_LIB")"
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] &&
  ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  ICD=$(find /usr/local/nvidia /usr/share /etc /usr/lib -name 'nvidia_icd*.json' 2>/dev/null | head -1)
  [ -n "$ICD" ] && export VK_DRIVER_FILES="$ICD"
fi
log "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
cd "$WORK/repo" || exit 1
DENO=(deno run --cached-only --allow-all)

# ---- 2. the UNet ----------------------------------------------------------------------------
stage export 120 "$PYTHON" tools/gpu_unet.py export --out "$WORK/unet" --batch "$BATCH" $SMALL

# ---- 3. PyTorch eager -----------------------------------------------------------------------
stage eager 90 "$PYTHON" tools/gpu_unet.py time --device "$TORCH_DEVICE" --batch "$BATCH" \
  --nfe "$NFE" --json "$WORK/eager.json" $SMALL

# ---- 4. ONNX Runtime through ld3, per device --------------------------------------------------
for dev in $DEVICES; do
  stage "ort-$dev" 150 "${DENO[@]}" tools/gpu_bench.ts --config "$WORK/unet/unet.yml" \
    --device "$dev" --batch "$BATCH" --nfe "$NFE" --json "$WORK/ort-$dev.json"
done

# ---- 5. deno task sample, end to end ----------------------------------------------------------
E2E_DEV=$(for d in $DEVICES; do [ -f "$WORK/ort-$d.json" ] && grep -q images_per_s "$WORK/ort-$d.json" && echo "$d" && break; done)
if [ -n "$E2E_DEV" ]; then
  s=$(date +%s.%N)
  if stage "sample-$E2E_DEV" 90 "${DENO[@]}" tasks/sample.ts --config "$WORK/unet/unet.yml" \
    --device "$E2E_DEV" --solver_name uni_pc --steps "$NFE" --num_samples "$BATCH" \
    --batch_size "$BATCH" --out "$OUT/samples-$E2E_DEV.png"; then
    echo "{\"device\": \"$E2E_DEV\", \"wall_s\": $(awk "BEGIN { print $(date +%s.%N) - $s }")}" >"$WORK/e2e.json"
  fi
else
  log "stage sample: skipped (no device sampled in stage 4)"
fi

# ---- 6. LD3 training steps ----------------------------------------------------------------------
if [ -f tasks/train.ts ] && [ -f tasks/generate.ts ]; then
  # A tiny teacher set (4 samples, 20 UniPC steps), then a short training run: 2 training and 2
  # validation samples, one round of each phase; its wall time over its steps bounds one step.
  TDEV=${E2E_DEV:-cpu}
  stage teacher 60 "${DENO[@]}" tasks/generate.ts --config "$WORK/unet/unet.yml" --device "$TDEV" \
    --total_samples 4 --sampling_batch_size 4 --steps 20 --data_dir "$WORK/data" >"$OUT/train.log" 2>&1
  DATA=$(ls -d "$WORK"/data/*/ 2>/dev/null | head -1)
  s=$(date +%s.%N)
  if [ -n "$DATA" ] && stage train 90 "${DENO[@]}" tasks/train.ts --config "$WORK/unet/unet.yml" \
    --device "$TDEV" --data_dir "$DATA" --num_train 2 --num_valid 2 --main_train_batch_size 2 \
    --main_valid_batch_size 2 --training_rounds_v1 1 --training_rounds_v2 1 --loss_type L2 \
    --steps "$NFE" --log_path "$WORK/logs" --quiet $TRAIN_ARGS >>"$OUT/train.log" 2>&1; then
    echo "{\"wall_s\": $(awk "BEGIN { print $(date +%s.%N) - $s }"), \"device\": \"$TDEV\", \"args\": \"2 train + 2 valid samples, 1+1 rounds, L2${TRAIN_ARGS:+, $TRAIN_ARGS}\"}" >"$WORK/train.json"
  fi
  tail -5 "$OUT/train.log"
else
  echo '{"note": "not measured: trainer not available (tasks/train.ts is missing)"}' >"$WORK/train.json"
  log "stage train: not measured: trainer not available"
fi

# ---- 7. the table ---------------------------------------------------------------------------------
log "table"
"$PYTHON" - "$WORK" "$OUT" "$BATCH" "$NFE" "$DEVICES" <<'EOF'
import json, os, sys
work, out, batch, nfe, devices = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split()
def load(name):
    try:
        with open(os.path.join(work, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
card = open(os.path.join(work, "card.txt")).read().strip()
eager, export, e2e, train = load("eager.json"), load("unet/export.json"), load("e2e.json"), load("train.json")
ort = {d: load(f"ort-{d}.json") for d in devices}
def ms(v): return "—" if v is None else f"{1000 * v:.1f}"
def num(v, f="{:.1f}"): return "—" if v is None else f.format(v)
def ratio(a, b): return "—" if a is None or b is None else f"{a / b:.2f}×"
rows = []
head = ("| card | provider | images/s (NFE %d, batch %d) | slowdown vs eager (target ≤ 1.5×) | forward ms | "
        "forward ms, outputs left on GPU | forward+VJP ms (LD3-step network part) | vs eager fwd+bwd (target ≤ 2×) | notes |" % (nfe, batch))
rows.append(head)
rows.append("|" + "---|" * 9)
if eager:
    rows.append(f"| {card} | PyTorch {eager['torch']} eager | {num(eager['images_per_s'])} | 1.00× | {ms(eager['forward_s'])} | — | "
                f"{ms(eager['forward_backward_s'])} | 1.00× | cudnn tf32 {eager.get('cudnn_tf32')}, matmul tf32 {eager.get('matmul_tf32')} |")
else:
    rows.append(f"| {card} | PyTorch eager | not measured | — | — | — | — | — | stage failed |")
for d, r in ort.items():
    if r is None:
        rows.append(f"| {card} | ORT {d} | not measured | — | — | — | — | — | stage failed or timed out (see log) |")
        continue
    errors = [v for k, v in r.items() if "error" in k]
    notes = [f"error: {errors[0][:240]}"] if errors else []
    if r.get("session_s") is not None:
        notes.insert(0, f"session {r['session_s']:.1f}s, first batch {r.get('first_sample_s', 0):.1f}s")
    ips = r.get("images_per_s")
    slow = None if ips is None or not eager else eager["images_per_s"] / ips
    fv = r.get("forward_vjp_s")
    rows.append(f"| {card} | ORT {d} (ld3) | {num(ips)} | {num(slow, '{:.2f}×')} | {ms(r.get('forward_s_cpu'))} | "
                f"{ms(r.get('forward_s_gpu-buffer'))} | {ms(fv)} | {ratio(fv, eager and eager['forward_backward_s'])} | "
                f"{'; '.join(notes).replace('|', '/')} |")
lines = [f"ld3 GPU check: {card}; UNet {export['params'] / 1e6:.1f}M parameters, ONNX {export['onnx_bytes'] / 2**20:.0f} MiB"
         if export else f"ld3 GPU check: {card}; UNet export failed", "", *rows, ""]
if e2e:
    lines.append(f"`deno task sample` end to end on {e2e['device']} ({batch} images, NFE {nfe}, process start to PNG): {e2e['wall_s']:.1f} s")
lines.append("Seconds per LD3 step: " + (f"tasks/train.ts on {train['device']} ran {train['wall_s']:.1f} s ({train['args']}; see train.log for its steps)"
             if train and "wall_s" in train else (train or {}).get("note", "not measured: the train stage failed (see train.log)")))
text = "\n".join(lines) + "\n"
print(text)
with open(os.path.join(out, "gpu-table.md"), "w") as f:
    f.write(text)
with open(os.path.join(out, "gpu-results.json"), "w") as f:
    json.dump({"card": card, "batch": batch, "nfe": nfe, "export": export, "eager": eager, "ort": ort,
               "end_to_end": e2e, "train": train}, f, indent=2)
EOF
log "done in $(($(date +%s) - T0))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
