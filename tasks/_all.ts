/**
 * Every task, in the order the docs list them: the source of `docs/tasks.md`, of the task table
 * in the README and of the `deno task` descriptions in `deno.json` (`deno task docs` writes
 * them, `tests/tasks/docs_test.ts` checks them).
 *
 * @module
 */
import type { TaskInfo } from "./_cli.ts";
import { BENCH } from "./bench.ts";
import { BENCH_SCHEDULES } from "./bench_schedules.ts";
import { CHECK_MODEL } from "./check_model.ts";
import { DEMO } from "./demo.ts";
import { EVAL } from "./eval.ts";
import { EXPORT_SCHEDULE } from "./export_schedule.ts";
import { GENERATE } from "./generate.ts";
import { GRAD_MODEL } from "./grad_model.ts";
import { MERGE } from "./merge.ts";
import { SAMPLE } from "./sample.ts";
import { TRAIN } from "./train.ts";

/** A task and the script that runs it. */
export interface TaskEntry {
  task: TaskInfo;
  /** The script under `tasks/`. */
  script: string;
}

/** Every `deno task` that runs a script of `tasks/`. */
export const TASKS: readonly TaskEntry[] = [
  { task: DEMO, script: "demo.ts" },
  { task: GENERATE, script: "generate.ts" },
  { task: TRAIN, script: "train.ts" },
  { task: SAMPLE, script: "sample.ts" },
  { task: EVAL, script: "eval.ts" },
  { task: EXPORT_SCHEDULE, script: "export_schedule.ts" },
  { task: CHECK_MODEL, script: "check_model.ts" },
  { task: BENCH_SCHEDULES, script: "bench_schedules.ts" },
  { task: MERGE, script: "merge.ts" },
  { task: BENCH, script: "bench.ts" },
  { task: GRAD_MODEL, script: "grad_model.ts" },
];
