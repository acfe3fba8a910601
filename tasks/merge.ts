/**
 * `deno task merge`: join the shards of a sharded `generate`, `eval` or `bench:schedules` into
 * the files one process writes (`lib/pipelines/merge.ts`).
 *
 * ```sh
 * deno task merge train_data/uni_pc_NFE20_edm     # a sharded generate's dataset folder
 * deno task merge results/eval.json               # a sharded eval's --out
 * deno task merge bench                           # a sharded bench:schedules' --out_dir
 * ```
 *
 * It checks first that the shards are one job (one fingerprint), one split and complete; a
 * missing or foreign shard is one `error:` line naming it (rerun it: it resumes).
 *
 * @module
 */
import { formatMetrics } from "../lib/pipelines/evaluate.ts";
import { mergeShards } from "../lib/pipelines/merge.ts";
import { defineTask, runCli } from "./_cli.ts";

/** The `merge` task. */
export const MERGE = defineTask({
  name: "merge",
  summary: "Join the shards of a sharded generate, eval or bench:schedules into the files one " +
    "process writes",
  details: [
    "Give the dataset folder (generate), the --out file (eval) or the --out_dir",
    "(bench:schedules) the shards wrote into. It refuses, in one line naming them, shards of",
    "another job or split and missing ones (rerun them: a rerun resumes).",
  ],
  positionals: { usage: "<folder>", min: 1, max: 1 },
  options: {},
  async run(_v, [path]) {
    const merged = await mergeShards(path);
    const metrics = merged.result ? `: ${formatMetrics(merged.result.metrics)}` : "";
    console.log(
      `merged ${merged.shards} ${merged.kind} shards into ${merged.wrote.join(", ")}${metrics}`,
    );
  },
});

if (import.meta.main) await runCli(MERGE);
