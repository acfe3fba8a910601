/**
 * The pipelines behind the tasks: sampling and teacher datasets (`generate`, `sample`),
 * evaluation and its checkpoints (`eval`), the schedule matrix and its report
 * (`bench:schedules`), schedule export (`export-schedule`), LD3 runs (`train`, in `train/`)
 * and the demo.
 *
 * @module
 */
export * from "./options.ts";
export * from "./sampler.ts";
export * from "./sampling.ts";
export * from "./generate.ts";
export * from "./evaluate.ts";
export * from "./eval_checkpoint.ts";
export * from "./grid_bench.ts";
export * from "./grid_bench_report.ts";
export * from "./grid_export.ts";
export * from "./dataset_merge.ts";
export * from "./eval_shards.ts";
export * from "./grid_bench_shards.ts";
export * from "./merge.ts";
export * from "./train/mod.ts";
export * from "./demo.ts";
export type { ModelIdentity } from "./_model_identity.ts";
