#!/bin/bash
# A teacher dataset and its evaluation on a Slurm cluster, SHARDS tasks wide, each step waiting
# for the one before (afterok): generate (array) → merge → eval on the merged teacher (array)
# → merge. Run from the ld3 checkout on a shared file system:
#
#   bash examples/slurm/pipeline.sh
#   SHARDS=16 TOTAL=50000 BATCH=128 bash examples/slurm/pipeline.sh
#
# It prints the four job ids. Settings (environment): SHARDS, LOGS (the jobs' output folder),
# and those of generate.sbatch and eval.sbatch. SOURCE_DATE_EPOCH (default: now) is the
# manifest's creation time in every shard, so the merged dataset is byte for byte what one
# `deno task generate` with the same SOURCE_DATE_EPOCH writes.
set -euo pipefail
here="$(dirname "$0")"
shards="${SHARDS:-4}"
logs="${LOGS:-logs}"
mkdir -p "$logs"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(date +%s)}"
teacher="${DATA_DIR:-train_data}/uni_pc_NFE20_edm"
out="${OUT:-results/eval.json}"
submit() { sbatch --parsable --output="$logs/%x-%A_%a.out" --error="$logs/%x-%A_%a.err" "$@"; }
generate=$(submit --array="0-$((shards - 1))" "$here/generate.sbatch")
teacher_merge=$(submit --dependency="afterok:$generate" "$here/merge.sbatch" "$teacher")
evaluate=$(TEACHER="$teacher" submit --dependency="afterok:$teacher_merge" \
  --array="0-$((shards - 1))" "$here/eval.sbatch")
eval_merge=$(submit --dependency="afterok:$evaluate" "$here/merge.sbatch" "$out")
echo "$generate $teacher_merge $evaluate $eval_merge"
