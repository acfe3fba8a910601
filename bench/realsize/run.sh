#!/usr/bin/env bash
# LD3 end to end on the full-size real-size models (issue 13), no manual steps:
# export (if missing) → check-model → a 4-sample teacher set → 2 LD3 training steps (iPNDM,
# NFE 6, batch 2) → sample --load_from the learned grid.
#
#   bash bench/realsize/run.sh [ddpmpp] [dit]      # default: both; writes bench/realsize/out/
#
# Small on purpose (minutes per model on 2 CPU cores): the weights are random, so this shows
# that the path runs at this size, not what LD3 gains.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=bench/realsize/out
PY=${PYTHON:-/usr/bin/python3}
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(ddpmpp dit)

declare -A FOLDER=([ddpmpp]=ddpmpp-cifar10 [dit]=dit-xl2-flow)

for m in "${MODELS[@]}"; do
  folder=${FOLDER[$m]:?unknown model $m (ddpmpp or dit)}
  config=bench/realsize/$m.yml
  out=$OUT/$m
  echo "== $m"
  [ -f "models/$folder/out/model.onnx" ] || "$PY" "models/$folder/export.py" 2>/dev/null
  rm -rf "$out"
  mkdir -p "$out"
  SECONDS=0
  deno task check-model --config "$config"
  echo "-- check-model: ${SECONDS}s"
  SECONDS=0
  deno task generate --config "$config" --total_samples 4 --sampling_batch_size 2 \
    --steps 8 --solver_name uni_pc --data_dir "$out/teacher"
  data=$(dirname "$(ls "$out"/teacher/*/manifest.json | head -1)")
  echo "-- generate: ${SECONDS}s"
  SECONDS=0
  deno task train --config "$config" --data_dir "$data" --log_path "$out/logs" \
    --solver_name ipndm --steps 6 --loss_type L2 --num_train 2 --num_valid 2 \
    --main_train_batch_size 2 --main_valid_batch_size 2 \
    --training_rounds_v1 1 --training_rounds_v2 1 --quiet
  grid=$(ls "$out"/logs/*/grid.json | head -1)
  echo "-- train: ${SECONDS}s"
  SECONDS=0
  deno task sample --config "$config" --solver_name ipndm --load_from "$grid" \
    --num_samples 2 --batch_size 2 --out "$out/samples.png"
  echo "-- sample: ${SECONDS}s"
done
