/**
 * `deno task bench:schedules`: every schedule against every solver and NFE on one model.
 *
 * Solvers {ipndm, uni_pc, dpm_solver++} × NFE {4, 6, 8, 10} × schedules {time_uniform,
 * time_quadratic, logSNR, edm, gits, ld3}, each scored by the distance to a teacher dataset
 * (uni_pc, 20 steps, EDM grid — the LD3 default teacher), by FID when a feature model and
 * reference statistics are available, and by the exact-solution error on a Gaussian-mixture
 * model (FID defaults to the config's `eval` section: the bundled classifier and MNIST test
 * statistics for `configs/mnist-edm.yml`). Writes `<out_dir>/schedules.md` (tables),
 * `<out_dir>/schedules.json` (every cell), `<out_dir>/schedules.png` (metric vs NFE, one panel
 * per solver), `<out_dir>/schedules_lambda.png` (λ of each grid point vs step index), both
 * also as SVG, and `<out_dir>/schedules.html` (all of it in one self-contained page).
 *
 * ```sh
 * deno task bench:schedules [--config configs/gmm-mnist.yml] [--num_samples 200] \
 *   [--solvers ipndm,uni_pc,dpm_solver++] [--nfes 4,6,8,10] [--ld3_dir ld3_grids] \
 *   [--features models/mnist-features/model.onnx --fid_ref ref.npz] [--out_dir bench]
 * ```
 *
 * LD3 cells read `<ld3_dir>/<solver>-NFE<nfe>.json` (a grid file, `lib/io/grid_file.ts`); its
 * `solverOptions.order` is used, and `meta.train_seconds` (when present) fills the LD3
 * training-time table. A missing file shows "—". GITS cells exist where `GITS_SIGMAS` has a
 * table. The teacher uses seed 1000 by default so that its noise is disjoint from the seed-0
 * data LD3 grids are usually trained on.
 *
 * A thin CLI: it resolves the FID defaults from the config and calls `runScheduleBench`
 * (`lib/pipelines/grid_bench.ts`) and `writeScheduleBench` (`lib/pipelines/grid_bench_report.ts`),
 * which notebooks and `mod.ts` users call directly.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { pathExists } from "../lib/io/fs.ts";
import { formatDuration } from "../lib/io/progress.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { declareOptions } from "../lib/options.ts";
import { type FeatureModelSpec, featureSpecFromConfig } from "../lib/pipelines/evaluate.ts";
import {
  runScheduleBench,
  SCHEDULE_BENCH_OPTIONS,
  type ScheduleBenchEstimate,
} from "../lib/pipelines/grid_bench.ts";
import { writeScheduleBench } from "../lib/pipelines/grid_bench_report.ts";
import { runScheduleBenchShard } from "../lib/pipelines/grid_bench_shards.ts";
import { SHARD_OPTIONS } from "../lib/shard.ts";
import { MODEL_OPTIONS } from "../lib/pipelines/options.ts";
import { GRID_SET_OPTIONS, trainLd3Grids } from "../lib/pipelines/train/grid_set.ts";
import { defineTask, FEATURES_OPTIONS, runCli } from "./_cli.ts";
import { announceShard, commandWithoutShard } from "./_shard.ts";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const REAL_CONFIG = join(ROOT, "configs/mnist-edm.yml");
const GMM_CONFIG = join(ROOT, "configs/gmm-mnist.yml");

/** The line printed before the work starts: cells, evaluations and the estimated time. */
function estimateLine(modelName: string, e: ScheduleBenchEstimate): string {
  const perEvalMs = (e.secondsPerEvaluation * 1000).toFixed(2);
  return `bench:schedules on ${modelName}: ${e.cells} cells × ${e.numSamples} samples, ` +
    `${e.evaluations} sample-evaluations at ${perEvalMs} ms` +
    (e.exact ? ` + exact solutions` : "") +
    ` — estimated ${formatDuration(e.seconds)}` +
    (e.reused > 0 ? `; ${e.reused} finished cells reused` : "");
}

/** The task's own options: the model, where files go, and the LD3 column's training. */
const BENCH_TASK_OPTIONS = declareOptions({
  config: {
    ...MODEL_OPTIONS.config,
    required: false,
    defaultText: "configs/mnist-edm.yml when present, else configs/gmm-mnist.yml",
  },
  device: MODEL_OPTIONS.device,
  threads: MODEL_OPTIONS.threads,
  ...FEATURES_OPTIONS,
  outDir: {
    flag: "out_dir",
    kind: "string",
    arg: "DIR",
    default: "bench",
    help: "output folder; finished cells are kept in <out_dir>/cells, so a rerun skips them",
  },
  trainLd3: {
    flag: "train_ld3",
    kind: "boolean",
    default: false,
    help: "first train the missing LD3 grids into --ld3_dir (the demo's settings: a seed-0 " +
      "UniPC-20 teacher of --ld3_samples, 1 + 2 rounds from EDM; resumable, in <out_dir>/ld3)",
  },
  ...SHARD_OPTIONS,
});

/** The `bench:schedules` task. */
export const BENCH_SCHEDULES = defineTask({
  name: "bench:schedules",
  summary: "The schedule matrix: solvers × NFEs × grids (hand-made, GITS, LD3) scored by " +
    "FID and teacher distance; resumable",
  details: [
    "Writes <out_dir>/schedules.md (tables), schedules.json (every cell), schedules.png and",
    "schedules_lambda.png (also as .svg) and schedules.html (all of it in one page);",
    "--train_ld3 makes the LD3 column in the same command. With --shard K/N (or in a Slurm",
    "array / Indexed Job) it evaluates every N-th cell from K on an existing teacher;",
    "`deno task merge <out_dir>` then writes the report.",
  ],
  options: { ...SCHEDULE_BENCH_OPTIONS, ld3Samples: GRID_SET_OPTIONS.samples },
  taskOptions: BENCH_TASK_OPTIONS,
  async run(v) {
    const shard = announceShard("bench:schedules", v);
    const configPath = v.config ?? (await pathExists(REAL_CONFIG) ? REAL_CONFIG : GMM_CONFIG);
    if (shard && v.trainLd3) {
      throw new TypeError(
        "--train_ld3 with --shard: train the LD3 grids once, then run the shards",
      );
    }
    if (v.trainLd3) {
      await trainLd3Column(configPath, v);
    } else if (v.ld3Samples !== undefined) {
      throw new TypeError("--ld3_samples needs --train_ld3");
    }
    const model = await loadModel(configPath, { device: v.device, threads: v.threads });
    try {
      // FID: explicit files, else the config's eval section (the bundled classifier and the
      // MNIST test statistics for the bundled model). Loaded once for every cell.
      const spec: FeatureModelSpec | undefined = v.features !== undefined
        ? { path: v.features }
        : featureSpecFromConfig(model.config);
      const fidRef = v.fidRef ?? model.config.eval?.fid_ref;
      if ((spec === undefined) !== (fidRef === undefined)) {
        throw new TypeError(
          `FID needs both --features and --fid_ref (or the config's eval section): got ${
            spec === undefined ? "no features" : "no fid_ref"
          }`,
        );
      }
      const { features: _, shard: _shard, ...given } = v;
      const options = {
        ...given,
        teacherRoot: join(v.outDir, "teacher"),
        resumeDir: join(v.outDir, "cells"),
        ...(spec !== undefined && fidRef !== undefined ? { features: spec, fidRef } : {}),
        onEstimate: (e: ScheduleBenchEstimate) => console.log(estimateLine(model.config.name, e)),
      };
      if (shard) {
        const command = commandWithoutShard("bench:schedules", Deno.args);
        const { record, path } = await runScheduleBenchShard(model, v.outDir, {
          ...options,
          shard,
          command,
        });
        console.log(
          `${path}: ${record.cells.length} cells; when all shards are done: ` +
            `deno task merge ${v.outDir}`,
        );
        return;
      }
      const result = await runScheduleBench(model, options);
      const { markdown } = await writeScheduleBench(v.outDir, result, {
        command: ["deno task bench:schedules", ...Deno.args].join(" "),
        schedule: model.denoiser.schedule,
      });
      console.log(markdown.trimEnd());
      console.log(
        `\nwrote ${join(v.outDir, "schedules.md")}, schedules.json, schedules.png, ` +
          `schedules_lambda.png, schedules.html (${formatDuration(result.seconds)})`,
      );
    } finally {
      await model.close();
    }
  },
});

/** `--train_ld3`: the missing LD3 grids of the matrix, trained before it runs. */
async function trainLd3Column(
  configPath: string,
  v: {
    schedules?: string[];
    solvers?: string[];
    nfes?: number[];
    ld3Dir?: string;
    outDir: string;
    ld3Samples?: number;
    device?: string;
    threads?: number;
  },
): Promise<void> {
  if (v.schedules !== undefined && !v.schedules.includes("ld3")) {
    throw new TypeError("--train_ld3 trains the ld3 column: --schedules leaves it out");
  }
  const plan = SCHEDULE_BENCH_OPTIONS;
  await trainLd3Grids(configPath, {
    solvers: v.solvers ?? plan.solvers.default,
    nfes: v.nfes ?? plan.nfes.default,
    ld3Dir: v.ld3Dir ?? plan.ld3Dir.default,
    workDir: join(v.outDir, "ld3"),
    samples: v.ld3Samples,
    device: v.device,
    threads: v.threads,
    onGrid: (g) =>
      console.log(
        `ld3 grid ${g.solver} NFE ${g.nfe}: ${g.status}` +
          (g.trainSeconds !== undefined ? ` in ${formatDuration(g.trainSeconds)}` : "") +
          ` (${g.path})`,
      ),
  });
}

if (import.meta.main) await runCli(BENCH_SCHEDULES);
