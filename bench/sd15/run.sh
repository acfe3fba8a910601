#!/usr/bin/env bash
# The Stable Diffusion path at full size, on the SD 1.5 stand-in (models/sd-standin): check-model,
# a 4-sample teacher with prompts and guidance, two LD3 training steps with the VAE decoder in the
# loss, sampling with the learned grid, and export-schedule. Each step runs under /usr/bin/time -v
# (wall time, peak RSS) and writes its output to $OUT/<step>.log. bench/sd15/calls.ts times
# ONNX Runtime's own session creation for the same files, ld3's load to its first network call,
# and network calls at batch 1 with CFG.
#
#   /usr/bin/python3 models/sd-standin/export.py --size full --out models/sd-standin/out/sd15-fp32
#   /usr/bin/python3 models/sd-standin/export.py --size full --dtype fp16 \
#       --from models/sd-standin/out/sd15-fp32 --out models/sd-standin/out/sd15-fp16
#   bash bench/sd15/run.sh models/sd-standin/out/sd15-fp32 /tmp/sd15-fp32
#
# Not part of CI: on 2 CPU cores a run takes about an hour per precision. Environment:
#   TEACHER_STEPS (10), STUDENT_STEPS (3), SAMPLES (4, the teacher's), ROUNDS_V2 (1: with one
#   round of phase 1, two LD3 steps), SKIP (a regular expression of step names not to run, e.g.
#   "check-model|calls" to continue a run in the same output folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
FOLDER=${1:?export folder}
OUT=${2:?output folder}
TEACHER_STEPS=${TEACHER_STEPS:-10}
STUDENT_STEPS=${STUDENT_STEPS:-3}
PROMPT=${PROMPT:-"a photo of an astronaut riding a horse on the moon"}
SAMPLES=${SAMPLES:-4}
ROUNDS_V2=${ROUNDS_V2:-1}
SKIP=${SKIP:-^$}
mkdir -p "$OUT"
export ORT_DISABLE_TELEMETRY=1

step() {
  local name=$1
  shift
  if [[ "$name" =~ $SKIP ]]; then return 0; fi
  echo "== $name: $*" | tee "$OUT/$name.log"
  local rc=0
  /usr/bin/time -v "$@" >>"$OUT/$name.log" 2>&1 || rc=$?
  grep -E "Elapsed|Maximum resident" "$OUT/$name.log"
  # check-model judges a random-weight network's outputs: its semantic checks fail, as they should.
  if [ "$rc" != 0 ] && [ "$name" != check-model ]; then tail -20 "$OUT/$name.log"; exit 1; fi
}

DENO=(deno run --allow-all)

step check-model "${DENO[@]}" tasks/check_model.ts --config "$FOLDER"
step calls-ort "${DENO[@]}" bench/sd15/calls.ts ort "$FOLDER"
step calls-ld3 "${DENO[@]}" bench/sd15/calls.ts ld3 "$FOLDER"
step generate "${DENO[@]}" tasks/generate.ts --config "$FOLDER" --prompt "$PROMPT" --guidance_scale 7.5 \
  --total_samples "$SAMPLES" --sampling_batch_size 1 --steps "$TEACHER_STEPS" --data_dir "$OUT/data"
DATA="$OUT/data/uni_pc_NFE${TEACHER_STEPS}_edm"
# Two training steps: one training sample, one round of each phase; one validation sample.
# The teacher's guidance and negative prompt come from the dataset.
step train "${DENO[@]}" tasks/train.ts --config "$FOLDER" --data_dir "$DATA" --steps "$STUDENT_STEPS" \
  --num_train 1 --num_valid 1 --training_rounds_v1 1 --training_rounds_v2 "$ROUNDS_V2" \
  --log_path "$OUT/logs"
GRID=$(ls -d "$OUT"/logs/*/)grid.json
step sample "${DENO[@]}" tasks/sample.ts --config "$FOLDER" --prompt "$PROMPT" --guidance_scale 7.5 \
  --load_from "$GRID" --num_samples 1 --out "$OUT/ld3.png"
step export-schedule "${DENO[@]}" tasks/export_schedule.ts "$GRID" --format comfyui --config "$FOLDER"
