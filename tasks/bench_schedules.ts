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
 * per solver) and `<out_dir>/schedules_lambda.png` (λ of each grid point vs step index).
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
 * A thin CLI: it parses and checks the options, resolves the FID defaults from the config and
 * calls `runScheduleBench` (`lib/pipelines/grid_bench.ts`) and `writeScheduleBench`
 * (`lib/pipelines/grid_bench_report.ts`), which notebooks and `mod.ts` users call directly.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type FeatureModelSpec, featureSpecFromConfig } from "../lib/pipelines/evaluate.ts";
import { trainLd3Grids } from "../lib/pipelines/train/grid_set.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { formatDuration } from "../lib/io/progress.ts";
import {
  runScheduleBench,
  SCHEDULE_BENCH_SCHEDULES as SCHEDULES,
  type ScheduleBenchEstimate,
  type ScheduleBenchSchedule,
} from "../lib/pipelines/grid_bench.ts";
import { writeScheduleBench } from "../lib/pipelines/grid_bench_report.ts";
import { isSolverName, type SolverName } from "../lib/solvers/mod.ts";
import { intOption, optionHelp, RUN_OPTIONS, runTask } from "./_data_cli.ts";
import { pathExists } from "../lib/io/fs.ts";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const REAL_CONFIG = join(ROOT, "configs/mnist-edm.yml");
const GMM_CONFIG = join(ROOT, "configs/gmm-mnist.yml");

const USAGE = `Usage: deno task bench:schedules [options]
  --config FILE       model config (default configs/mnist-edm.yml when present, else configs/gmm-mnist.yml)
  --solvers LIST      comma-separated (default ipndm,uni_pc,dpm_solver++)
  --nfes LIST         comma-separated NFEs (default 4,6,8,10)
  --schedules LIST    subset of ${SCHEDULES.join(",")} (default all)
  --num_samples N     samples per cell (default 200)
  --batch_size N      samples per solver batch (default: the config's batch_size)
  --seed N            teacher noise seed (default 1000)
  --data_dir DIR      an existing teacher dataset folder (default: generated in <out_dir>/teacher)
  --ld3_dir DIR       learned grids <solver>-NFE<nfe>.json (default ld3_grids)
  --train_ld3         first train the missing LD3 grids into --ld3_dir (demo settings: a seed-0
                      UniPC-20 teacher of --ld3_samples, 1 + 2 rounds from EDM; resumable, in
                      <out_dir>/ld3), so the whole matrix is one command
  --ld3_samples N     teacher samples of --train_ld3, half train, half validate (default 100)
  --features FILE     feature ONNX for FID (default: the config's eval.features)
  --fid_ref FILE      reference statistics .npz for FID (default: the config's eval.fid_ref)
  --exact             exact-solution error: auto (GMM graphs), on, off (default auto)
  --out_dir DIR       output folder (default bench); finished cells are kept in <out_dir>/cells,
                      so a rerun skips them (delete that folder to evaluate everything again)
${optionHelp("device", 20)}`;

function listOption(name: string, value: string | undefined, fallback: string[]): string[] {
  if (value === undefined) return fallback;
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new TypeError(`--${name} must be a non-empty list: got "${value}"`);
  return items;
}

/** The line printed before the work starts: cells, evaluations and the estimated time. */
function estimateLine(modelName: string, e: ScheduleBenchEstimate): string {
  const perEvalMs = (e.secondsPerEvaluation * 1000).toFixed(2);
  return `bench:schedules on ${modelName}: ${e.cells} cells × ${e.numSamples} samples, ` +
    `${e.evaluations} sample-evaluations at ${perEvalMs} ms` +
    (e.exact ? ` + exact solutions` : "") +
    ` — estimated ${formatDuration(e.seconds)}` +
    (e.reused > 0 ? `; ${e.reused} finished cells reused` : "");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      solvers: { type: "string" },
      nfes: { type: "string" },
      schedules: { type: "string" },
      num_samples: { type: "string" },
      batch_size: { type: "string" },
      data_dir: { type: "string" },
      ld3_dir: { type: "string" },
      features: { type: "string" },
      fid_ref: { type: "string" },
      exact: { type: "string" },
      out_dir: { type: "string" },
      train_ld3: { type: "boolean" },
      ld3_samples: { type: "string" },
      ...RUN_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const configPath = values.config ?? (await pathExists(REAL_CONFIG) ? REAL_CONFIG : GMM_CONFIG);
  const solvers = listOption("solvers", values.solvers, ["ipndm", "uni_pc", "dpm_solver++"]);
  for (const s of solvers) {
    if (!isSolverName(s)) throw new RangeError(`Unknown solver in --solvers: "${s}"`);
  }
  const nfes = listOption("nfes", values.nfes, ["4", "6", "8", "10"]).map((v) => {
    const n = intOption("nfes", v)!;
    if (n < 1) throw new RangeError(`--nfes must hold positive integers: got ${n}`);
    return n;
  });
  const schedules = listOption("schedules", values.schedules, [
    ...SCHEDULES,
  ]) as ScheduleBenchSchedule[];
  for (const s of schedules) {
    if (!(SCHEDULES as readonly string[]).includes(s)) {
      throw new RangeError(`Unknown schedule in --schedules: "${s}" (expected ${SCHEDULES})`);
    }
  }
  const numSamples = intOption("num_samples", values.num_samples) ?? 200;
  if (numSamples < 2) throw new RangeError(`--num_samples must be >= 2: got ${numSamples}`);
  const seed = intOption("seed", values.seed) ?? 1000;
  const outDir = values.out_dir ?? "bench";
  const ld3Dir = values.ld3_dir ?? "ld3_grids";
  const exactMode = values.exact ?? "auto";
  if (!["auto", "on", "off"].includes(exactMode)) {
    throw new RangeError(`--exact must be auto, on or off: got "${exactMode}"`);
  }

  if (values.train_ld3) {
    if (!schedules.includes("ld3")) {
      throw new TypeError("--train_ld3 trains the ld3 column: --schedules leaves it out");
    }
    const ld3Samples = intOption("ld3_samples", values.ld3_samples) ?? 100;
    await trainLd3Grids(configPath, {
      solvers,
      nfes,
      ld3Dir,
      workDir: join(outDir, "ld3"),
      samples: ld3Samples,
      device: values.device,
      onGrid: (g) =>
        console.log(
          `ld3 grid ${g.solver} NFE ${g.nfe}: ${g.status}` +
            (g.trainSeconds !== undefined ? ` in ${formatDuration(g.trainSeconds)}` : "") +
            ` (${g.path})`,
        ),
    });
  } else if (values.ld3_samples !== undefined) {
    throw new TypeError("--ld3_samples needs --train_ld3");
  }

  const model = await loadModel(configPath, values.device ? { device: values.device } : {});
  try {
    const batchSize = intOption("batch_size", values.batch_size) ?? model.config.batch_size;
    // FID: explicit files, else the config's eval section (the bundled classifier and the
    // MNIST test statistics for the bundled model). Loaded once for every cell.
    const spec: FeatureModelSpec | undefined = values.features !== undefined
      ? { path: values.features }
      : featureSpecFromConfig(model.config);
    const fidRefPath = values.fid_ref ?? model.config.eval?.fid_ref;
    if ((spec === undefined) !== (fidRefPath === undefined)) {
      throw new TypeError(
        `FID needs both --features and --fid_ref (or the config's eval section): got ${
          spec === undefined ? "no features" : "no fid_ref"
        }`,
      );
    }
    const result = await runScheduleBench(model, {
      solvers: solvers as SolverName[],
      nfes,
      schedules,
      ld3Dir,
      numSamples,
      batchSize,
      seed,
      dataDir: values.data_dir,
      teacherRoot: join(outDir, "teacher"),
      resumeDir: join(outDir, "cells"),
      ...(spec !== undefined && fidRefPath !== undefined
        ? { features: spec, fidRef: fidRefPath }
        : {}),
      exact: exactMode as "auto" | "on" | "off",
      onEstimate: (e) => console.log(estimateLine(model.config.name, e)),
    });

    const { markdown } = await writeScheduleBench(outDir, result, {
      command: ["deno task bench:schedules", ...Deno.args].join(" "),
      schedule: model.denoiser.schedule,
    });
    console.log(markdown.trimEnd());
    console.log(
      `\nwrote ${join(outDir, "schedules.md")}, schedules.json, schedules.png, ` +
        `schedules_lambda.png (${formatDuration(result.seconds)})`,
    );
  } finally {
    await model.close();
  }
}

if (import.meta.main) await runTask(main);
