/**
 * The schedule benchmark: every step schedule against every solver and NFE on one model. The
 * library behind `deno task bench:schedules`, usable from notebooks and `mod.ts` without the CLI.
 *
 * Solvers × NFE × schedules ({@linkcode SCHEDULE_BENCH_SCHEDULES}: the four hand-made skip types,
 * GITS and LD3), each cell scored with {@linkcode evaluateSchedule} by the distance to a teacher
 * dataset ({@linkcode LD3_TEACHER}, the LD3 default teacher), by FID when a feature
 * model and reference statistics are given, and by the exact-solution error on a Gaussian-mixture
 * model.
 *
 * 1. {@linkcode planScheduleBench} lays out the cells: GITS is "n/a" where `GITS_SIGMAS` has no
 *    table, LD3 reads `<ld3Dir>/<solver>-NFE<nfe>.json` ("n/a" without one), an NFE the solver
 *    cannot spend is an "error" cell.
 * 2. {@linkcode runScheduleBench} generates the teacher dataset when needed (resumable, via
 *    `generateDataset`), reports an estimate of the work, and evaluates every planned cell; with
 *    `resumeDir` each finished cell is saved and a rerun evaluates only what is missing.
 * 3. `schedule_bench_report.ts` turns the result into tables and plots
 *    (`scheduleBenchMarkdown`, `scheduleBenchMetricScene`, `scheduleBenchLambdaScene`) and
 *    `writeScheduleBench` writes them all:
 *
 * ```text
 * <out_dir>/schedules.md                    tables, best value per row in bold
 * <out_dir>/schedules.json                  every cell (format "ld3-bench-schedules", version 1)
 * <out_dir>/schedules.png, .svg             metric vs NFE, one panel per solver
 * <out_dir>/schedules_lambda.png, .svg      λ of each grid point vs step index, at the largest NFE
 * <out_dir>/schedules.html                  all of it in one self-contained page
 * ```
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { writeJsonAtomic } from "../io/atomic.ts";
import { datasetDirName, isSampleComplete, MANIFEST_FILE, readManifest } from "../io/dataset.ts";
import {
  type EvalMetrics,
  type EvaluateOptions,
  evaluateSchedule,
  type FeatureModelSpec,
  isFeatureModel,
  type ReferenceSolver,
} from "./evaluate.ts";
import {
  fidReference,
  gmmExactSolver,
  gmmReferenceName,
  openFeatureModel,
} from "./_eval_inputs.ts";
import { type ModelIdentity, modelIdentity } from "./_model_identity.ts";
import type { FeatureModel } from "../metrics/features.ts";
import type { FeatureStats } from "../metrics/fid.ts";
import { canonicalJson, type Fingerprint } from "../fingerprint.ts";
import { pathExists, removeIfExists } from "../io/fs.ts";
import type { Gmm } from "../gmm.ts";
import { gmmFromOnnx } from "../onnx/gmm_onnx.ts";
import { GITS_SIGMAS, SKIP_TYPES } from "../step_grid.ts";
import { loadGridFile } from "../io/grid_file.ts";
import type { LoadedModel } from "../onnx/model.ts";
import { sha256Hex } from "../onnx/session.ts";
import { ProgressBar, type ProgressBarOptions } from "../io/progress.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import { generateDataset } from "./generate.ts";
import { initialNoise } from "./sampling.ts";
import { LD3_TEACHER, prepareSampler, solverRecord } from "./sampler.ts";
import { SOLVER_NAMES, type SolverName, solverNfe, solverSteps } from "../solvers/mod.ts";
import { checkCount } from "../_check.ts";
import { type Shard, shardOwns } from "../shard.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";
import { FID_REF_OPTIONS, SAMPLES_OPTIONS } from "./options.ts";

/** `format` of `schedules.json`. */
export const SCHEDULE_BENCH_FORMAT = "ld3-bench-schedules";
/** `version` of `schedules.json`. */
export const SCHEDULE_BENCH_VERSION = 1;

/** The schedule columns, in table order: the four skip types, then GITS and LD3. */
export const SCHEDULE_BENCH_SCHEDULES = [...SKIP_TYPES, "gits", "ld3"] as const;
/** One of {@linkcode SCHEDULE_BENCH_SCHEDULES}. */
export type ScheduleBenchSchedule = typeof SCHEDULE_BENCH_SCHEDULES[number];

/** The solvers benchmarked by default. */
export const SCHEDULE_BENCH_SOLVERS: readonly SolverName[] = ["ipndm", "uni_pc", "dpm_solver++"];
/** The NFEs benchmarked by default. */
export const SCHEDULE_BENCH_NFES: readonly number[] = [4, 6, 8, 10];

/**
 * One cell of the matrix, as written to `schedules.json` (the snake_case field names are part
 * of the file format).
 */
export interface ScheduleBenchCell {
  /** Solver name. */
  solver: string;
  /** The row's NFE budget. */
  nfe: number;
  /** The column. */
  schedule: ScheduleBenchSchedule;
  /** `ok`, `n/a` (no GITS table / no LD3 file) or `error`. */
  status: "ok" | "n/a" | "error";
  /** The evaluation's metrics (`ok` cells once run). */
  metrics?: EvalMetrics;
  /** Why the cell failed (`error` cells). */
  error?: string;
  /** Wall-clock seconds of the cell's evaluation. */
  seconds?: number;
  /** λ at each point of the cell's grid, T first. */
  lambda1?: number[];
  /** The LD3 grid file (absolute path). */
  load_from?: string;
  /** `meta.train_seconds` of the LD3 grid file, when present. */
  ld3_train_seconds?: number;
  /** The NFE the cell's grid really spends, when it differs from the column's (GITS tables). */
  actual_nfe?: number;
}

/** A cell that {@linkcode runScheduleBench} evaluates, with how to build its grid. */
export interface ScheduleBenchPlannedCell {
  /** The cell (also in {@linkcode ScheduleBenchPlan.cells}); filled in when evaluated. */
  cell: ScheduleBenchCell;
  /** The LD3 grid file, for `ld3` cells. */
  loadFrom?: string;
  /** The grid file's `solverOptions.order`, when it names one. */
  order?: number;
}

/** The matrix laid out by {@linkcode planScheduleBench}. */
export interface ScheduleBenchPlan {
  /** Rows: solvers. */
  solvers: SolverName[];
  /** Rows: NFEs within each solver. */
  nfes: number[];
  /** Columns. */
  schedules: ScheduleBenchSchedule[];
  /** Every cell, solver-major, then NFE, then schedule. */
  cells: ScheduleBenchCell[];
  /** The cells to evaluate (neither `n/a` nor refused), in the order of `cells`. */
  planned: ScheduleBenchPlannedCell[];
}

/** The cells of the matrix: `--solvers` × `--nfes` × `--schedules` and the LD3 grids. */
export const SCHEDULE_BENCH_PLAN_OPTIONS = {
  solvers: {
    flag: "solvers",
    kind: "strings",
    choices: SOLVER_NAMES,
    default: SCHEDULE_BENCH_SOLVERS,
    help: "solvers (rows)",
  },
  nfes: {
    flag: "nfes",
    kind: "integers",
    min: 1,
    default: SCHEDULE_BENCH_NFES,
    help: "NFE budgets (rows within a solver)",
  },
  schedules: {
    flag: "schedules",
    kind: "strings",
    choices: SCHEDULE_BENCH_SCHEDULES,
    default: SCHEDULE_BENCH_SCHEDULES,
    help: "schedules (columns)",
  },
  ld3Dir: {
    flag: "ld3_dir",
    kind: "string",
    arg: "DIR",
    default: "ld3_grids",
    help: "folder of the learned grids <solver>-NFE<nfe>.json (a missing one shows —)",
  },
} as const satisfies OptionDeclarations;

/** Options of {@linkcode planScheduleBench}: {@linkcode SCHEDULE_BENCH_PLAN_OPTIONS}. */
export type ScheduleBenchPlanOptions = OptionValues<typeof SCHEDULE_BENCH_PLAN_OPTIONS>;

/** The options of {@linkcode runScheduleBench} (`deno task bench:schedules`) with a flag. */
export const SCHEDULE_BENCH_OPTIONS = {
  ...SCHEDULE_BENCH_PLAN_OPTIONS,
  ...SAMPLES_OPTIONS,
  numSamples: {
    ...SAMPLES_OPTIONS.numSamples,
    min: 2,
    default: 200,
    help: "samples per cell (the teacher dataset's first N)",
  },
  // 1000 keeps the teacher's noise disjoint from the seed-0 data LD3 grids are usually
  // trained on.
  seed: { ...SAMPLES_OPTIONS.seed, default: 1000, help: "noise seed of a generated teacher" },
  dataDir: {
    flag: "data_dir",
    kind: "string",
    arg: "DIR",
    defaultText: "generated in <out_dir>/teacher",
    help: "an existing teacher dataset folder (with manifest.json)",
  },
  ...FID_REF_OPTIONS,
  exact: {
    flag: "exact",
    kind: "string",
    choices: ["auto", "on", "off"],
    default: "auto",
    help: "exact-solution error: auto (Gaussian-mixture graphs built by buildGmmOnnx), on, off",
  },
  exactSteps: {
    flag: "exact_steps",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 200,
    help: "RK4 steps of the exact solution",
  },
} as const satisfies OptionDeclarations;

/** What {@linkcode runScheduleBench} expects to do, measured before it starts. */
export interface ScheduleBenchEstimate {
  /** Cells to evaluate (reused ones not counted). */
  cells: number;
  /** Finished cells reused from `resumeDir`. */
  reused: number;
  /** Samples per cell. */
  numSamples: number;
  /** Network evaluations of one sample each: every planned cell's NFE, plus the teacher's. */
  evaluations: number;
  /** Seconds per sample of one network evaluation (one batch, after a warm-up). */
  secondsPerEvaluation: number;
  /** Whether the exact-solution error is computed (a Gaussian-mixture reference). */
  exact: boolean;
  /** Seconds of the exact reference solutions (solved once per sample). */
  exactSeconds: number;
  /** Whether the teacher dataset is generated. */
  teacher: boolean;
  /** The estimated wall-clock seconds in all. */
  seconds: number;
}

/** Options of {@linkcode runScheduleBench}: {@linkcode SCHEDULE_BENCH_OPTIONS} and these. */
export interface ScheduleBenchOptions
  extends Omit<OptionValues<typeof SCHEDULE_BENCH_OPTIONS>, "fidRef"> {
  /**
   * Root under which the teacher dataset is generated (`<teacherRoot>/uni_pc_NFE20_edm`) when
   * `dataDir` is not given; an existing one there is reused. @default {"bench/teacher"}
   */
  teacherRoot?: string;
  /**
   * Feature model for FID (needs `fidRef`): a spec to load (closed at the end) or a loaded model
   * (left open). Without both, no FID. @default {undefined}
   */
  features?: FeatureModelSpec | FeatureModel;
  /** FID reference statistics: an `.npz` path or the statistics (needs `features`). @default {undefined} */
  fidRef?: string | FeatureStats;
  /**
   * A folder that makes the run resumable: every finished cell is saved there as
   * `<solver>-NFE<nfe>-<schedule>.json` with the fingerprint of its evaluation (model, grid,
   * samples, teacher, metrics); a rerun reuses each cell whose fingerprint still matches, and a
   * cell interrupted midway continues from its evaluation checkpoint (`.partial.npz`).
   * @default {undefined (nothing saved)}
   */
  resumeDir?: string;
  /** Progress bar over the cells (and the teacher's, if generated); `false` for none. @default {{}} */
  progress?: ProgressBarOptions | false;
  /** Called once with the estimate, after the checks and before the teacher and the cells run. */
  onEstimate?: (estimate: ScheduleBenchEstimate) => void;
  /** Called after each planned cell with the cell, cells done and cells planned. */
  onCell?: (cell: ScheduleBenchCell, done: number, total: number) => void;
  /**
   * Evaluate only this shard's cells: every `N`-th planned cell from `K` (`lib/shard.ts`); the
   * teacher must be complete. `runScheduleBenchShard` (`grid_bench_shards.ts`) records them.
   */
  shard?: Shard;
}

/** The `schedules.json` document. */
export interface ScheduleBenchDocument extends ModelIdentity {
  /** Always {@linkcode SCHEDULE_BENCH_FORMAT}. */
  format: typeof SCHEDULE_BENCH_FORMAT;
  /** {@linkcode SCHEDULE_BENCH_VERSION}. */
  version: number;
  /** Samples per cell. */
  num_samples: number;
  /** Noise seed of the teacher dataset (and so of every cell). */
  seed: number;
  /** The teacher (`dir` absolute). */
  teacher: { solverName: string; steps: number; skipType: string; dir: string };
  /** Rows: solvers. */
  solvers: string[];
  /** Rows: NFEs within each solver. */
  nfes: number[];
  /** Columns. */
  schedules: ScheduleBenchSchedule[];
  /** Every cell, solver-major. */
  cells: ScheduleBenchCell[];
  /** Wall-clock seconds of the cell evaluations. */
  seconds: number;
  /** ISO creation time. */
  created: string;
}

/** What {@linkcode runScheduleBench} returns: the `schedules.json` document plus run facts. */
export interface ScheduleBenchResult extends ScheduleBenchDocument {
  /** Cells evaluated (neither `n/a` nor refused when planned). */
  evaluated: number;
  /** The teacher folder as given or derived (relative paths stay relative), for the report. */
  teacherDir: string;
  /** The estimate made before the run. */
  estimate: ScheduleBenchEstimate;
}

//----------------------------------------------------------------------------
// Plan

/** Samples `0 … n − 1` of a dataset folder that are not complete yet (all of them without a manifest). */
async function missingSamples(dir: string, hasManifest: boolean, n: number): Promise<number> {
  if (!hasManifest) return n;
  const { shapes } = await readManifest(dir);
  let missing = 0;
  for (let i = 0; i < n; i++) if (!await isSampleComplete(dir, i, shapes)) missing++;
  return missing;
}

function checkPlanOptions(options: ScheduleBenchPlanOptions) {
  const o = resolveOptions(SCHEDULE_BENCH_PLAN_OPTIONS, options);
  return { ...o, solvers: o.solvers as SolverName[] };
}

/**
 * Lays out the matrix: one cell per solver × NFE × schedule. A `gits` cell is `n/a` where
 * `GITS_SIGMAS` has no table for the solver and NFE; an `ld3` cell reads
 * `<ld3Dir>/<solver>-NFE<nfe>.json` (its `solverOptions.order` and `meta.train_seconds`) and is
 * `n/a` without one; a hand-made or GITS cell whose NFE the solver cannot spend (Heun needs an
 * odd NFE) is an `error` cell. Everything else is planned for evaluation.
 *
 * @throws {RangeError} For an unknown solver or schedule, an empty list or a bad NFE.
 * @throws {TypeError} For an LD3 grid file that is not one.
 *
 * @example
 * ```ts ignore
 * const plan = await planScheduleBench({ solvers: ["uni_pc"], nfes: [4], ld3Dir: "ld3_grids" });
 * console.log(plan.cells.map((c) => `${c.schedule}: ${c.status}`));
 * ```
 */
export async function planScheduleBench(
  options: ScheduleBenchPlanOptions = {},
): Promise<ScheduleBenchPlan> {
  const { solvers, nfes, schedules, ld3Dir } = checkPlanOptions(options);
  const cells: ScheduleBenchCell[] = [];
  const planned: ScheduleBenchPlannedCell[] = [];
  for (const solver of solvers) {
    for (const nfe of nfes) {
      for (const schedule of schedules) {
        const cell: ScheduleBenchCell = { solver, nfe, schedule, status: "ok" };
        cells.push(cell);
        if (schedule === "gits" && !GITS_SIGMAS[solver]?.[nfe]) {
          cell.status = "n/a";
          continue;
        }
        if (schedule === "ld3") {
          const path = join(ld3Dir, `${solver}-NFE${nfe}.json`);
          if (!await pathExists(path)) {
            cell.status = "n/a";
            continue;
          }
          const file = await loadGridFile(path);
          const order = file.solverOptions?.order;
          const train = file.meta?.train_seconds;
          if (typeof train === "number") cell.ld3_train_seconds = train;
          cell.load_from = resolve(path);
          planned.push({
            cell,
            loadFrom: path,
            order: typeof order === "number" ? order : undefined,
          });
          continue;
        }
        try {
          solverSteps(solver, nfe);
        } catch (e) {
          cell.status = "error";
          cell.error = (e as Error).message;
          continue;
        }
        planned.push({ cell });
      }
    }
  }
  return { solvers, nfes, schedules, cells, planned };
}

//----------------------------------------------------------------------------
// Exact reference

/**
 * Caches a reference solver per sample index: each index is solved once, on the first batch
 * that holds it, and later calls (every cell of the benchmark starts from the same teacher
 * noise) reuse the solution. Only the indices not yet cached are passed to `reference`.
 *
 * @param reference The solver to cache; its answer for index `i` must depend on `i` only.
 * @returns A reference solver with the same answers.
 */
export function cacheReference(reference: ReferenceSolver): ReferenceSolver {
  const cache = new Map<number, Float64Array>();
  return async (xT, indices) => {
    if (indices.length === 0 || xT.length % indices.length !== 0) {
      throw new RangeError(
        `Reference batch must hold one sample per index: got ${xT.length} values for ${indices.length} indices`,
      );
    }
    const d = xT.length / indices.length;
    const todo: [index: number, slot: number][] = [];
    indices.forEach((i, b) => {
      if (!cache.has(i) && !todo.some(([j]) => j === i)) todo.push([i, b]);
    });
    if (todo.length > 0) {
      const x = new Float64Array(todo.length * d);
      todo.forEach(([, b], k) => x.set(xT.subarray(b * d, (b + 1) * d), k * d));
      const solved = await reference(x, todo.map(([i]) => i));
      if (solved.length !== x.length) {
        throw new RangeError(
          `Reference solver returned ${solved.length} values: expected ${x.length}`,
        );
      }
      todo.forEach(([i], k) => cache.set(i, solved.slice(k * d, (k + 1) * d)));
    }
    const out = new Float64Array(xT.length);
    indices.forEach((i, b) => out.set(cache.get(i)!, b * d));
    return out;
  };
}

/** Options of {@linkcode cachedGmmReference}. */
export interface GmmReferenceCacheOptions {
  /** RK4 steps of `gmmReferenceSolve`; 200 are within 1e-6 of 4000 on gmm-mnist. @default {200} */
  steps?: number;
}

/**
 * The exact solution of a Gaussian-mixture model's probability-flow ODE from the schedule's
 * `tMax` to `tMin` (`gmmReferenceSolve`), cached per sample index with
 * {@linkcode cacheReference}.
 *
 * @param gmm The mixture the model evaluates (e.g. from `gmmFromOnnx`).
 * @param schedule The model's schedule.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createGmm } from "../gmm.ts";
 * import { veSchedule } from "../noise_schedule.ts";
 *
 * const gmm = createGmm([[0, 0], [1, 1]], [0.1, 0.2]);
 * const reference = cachedGmmReference(gmm, veSchedule(), { steps: 20 });
 * const first = await reference(new Float64Array([80, -80]), [0]);
 * // Index 0 is solved once: the same answer whatever noise a later batch brings for it.
 * assert.deepEqual(await reference(new Float64Array([1, 2]), [0]), first);
 * ```
 */
export function cachedGmmReference(
  gmm: Gmm,
  schedule: NoiseSchedule,
  options: GmmReferenceCacheOptions = {},
): ReferenceSolver {
  return cacheReference(gmmExactSolver(gmm, schedule, options.steps ?? 200));
}

//----------------------------------------------------------------------------
// Run

/**
 * Seconds per sample of one network evaluation of `model`, measured on one batch of `batchSize`
 * samples at half the schedule's `tMax`, after one warm-up evaluation.
 */
export async function measureSecondsPerEval(
  model: LoadedModel,
  batchSize: number,
): Promise<number> {
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError(`batchSize must be a positive integer: got ${batchSize}`);
  }
  const indices = Array.from({ length: batchSize }, (_, i) => i);
  const { xT } = initialNoise(0, indices, {
    shape: model.sampleShape,
    priorScale: model.denoiser.schedule.priorScale,
  });
  const t = model.denoiser.schedule.tMax / 2;
  await model.denoiser.denoise(xT, t);
  const start = performance.now();
  await model.denoiser.denoise(xT, t);
  return (performance.now() - start) / 1000 / batchSize;
}

/** The exact reference every cell shares, and what one sample's solution costs. */
interface ExactBenchReference {
  reference: ReferenceSolver;
  secondsPerSample: number;
}

/** The exact reference and the seconds of one sample's solution, or undefined. */
async function exactReference(
  model: LoadedModel,
  mode: "auto" | "on" | "off",
  steps: number,
): Promise<ExactBenchReference | undefined> {
  if (mode === "off") return undefined;
  try {
    const gmm = gmmFromOnnx(await Deno.readFile(model.config.model.path));
    const schedule = model.denoiser.schedule;
    // One sample's solution, timed for the estimate (the RK4 cost does not depend on x).
    const probe = initialNoise(0, [0], {
      shape: model.sampleShape,
      priorScale: schedule.priorScale,
    });
    const start = performance.now();
    gmmExactSolver(gmm, schedule, steps)(probe.xT);
    const secondsPerSample = (performance.now() - start) / 1000;
    return { reference: cachedGmmReference(gmm, schedule, { steps }), secondsPerSample };
  } catch (e) {
    if (mode === "on") throw e;
    return undefined;
  }
}

/** The numbers of {@linkcode ScheduleBenchOptions}, with their defaults, checked. */
interface BenchSettings {
  numSamples: number;
  batchSize: number;
  /** Seed of a generated teacher. */
  seed: number;
  exactSteps: number;
  exactMode: "auto" | "on" | "off";
}

/** Checks the options that need nothing opened, so bad input fails before any work. */
function benchSettings(model: LoadedModel, options: ScheduleBenchOptions): BenchSettings {
  const { fidRef: _, ...rest } = options;
  const o = resolveOptions(SCHEDULE_BENCH_OPTIONS, rest);
  const batchSize = o.batchSize ?? model.config.batch_size;
  checkCount("batchSize", batchSize, 1);
  const { numSamples, seed, exactSteps, exact: exactMode } = o;
  if ((options.features === undefined) !== (options.fidRef === undefined)) {
    throw new TypeError(
      `FID needs both features and fidRef: got ${
        options.features === undefined ? "no features" : "no fidRef"
      }`,
    );
  }
  return { numSamples, batchSize, seed, exactSteps, exactMode };
}

/** Where the teacher dataset is, and how much of it is still to generate. */
interface BenchTeacher {
  /** Root a teacher of our own is generated under. */
  root: string;
  /** The dataset folder, as given or derived (relative paths stay relative). */
  dir: string;
  /** NFE of one teacher sample. */
  nfe: number;
  /** Whether the folder holds a manifest already. */
  hasManifest: boolean;
  /** Samples still to generate (0 for a given `dataDir`). */
  missing: number;
}

/** Finds the teacher dataset: the given `dataDir`, or the LD3 teacher under `teacherRoot`. */
async function locateTeacher(
  options: ScheduleBenchOptions,
  numSamples: number,
): Promise<BenchTeacher> {
  const root = options.teacherRoot ?? join("bench", "teacher");
  const nfe = solverNfe(LD3_TEACHER.solverName, LD3_TEACHER.steps);
  const dir = options.dataDir ??
    join(root, datasetDirName(LD3_TEACHER.solverName, nfe, LD3_TEACHER.skipType));
  const hasManifest = await pathExists(join(dir, MANIFEST_FILE));
  if (options.dataDir !== undefined && !hasManifest) {
    throw new RangeError(`Not an ld3 dataset (no ${MANIFEST_FILE}): ${options.dataDir}`);
  }
  // A teacher of our own is (re)generated until complete: an interrupted one resumes.
  const missing = options.dataDir !== undefined
    ? 0
    : await missingSamples(dir, hasManifest, numSamples);
  return { root, dir, nfe, hasManifest, missing };
}

/** The FID inputs every cell shares, opened once for the whole matrix. */
interface BenchFid {
  features: FeatureModel;
  fidRef: FeatureStats;
  /** Whether the feature model was loaded here (then the run closes it). */
  owned: boolean;
}

/** The feature model and reference statistics, when both are given. */
async function openBenchFid(
  model: LoadedModel,
  options: ScheduleBenchOptions,
): Promise<BenchFid | undefined> {
  if (options.features === undefined || options.fidRef === undefined) return undefined;
  const fidRef = await fidReference(options.fidRef);
  const opened = await openFeatureModel(options.features, model.imageShape, model.threads);
  return { features: opened.model, fidRef, owned: opened.owned };
}

/**
 * Generates (or completes) the LD3 teacher under `teacher.root`: `generateDataset` skips the
 * samples already there, so an interrupted teacher resumes.
 */
async function generateTeacher(
  model: LoadedModel,
  teacher: BenchTeacher,
  settings: BenchSettings,
  progress: ScheduleBenchOptions["progress"],
): Promise<void> {
  await generateDataset(model, {
    ...LD3_TEACHER,
    dataDir: teacher.root,
    totalSamples: settings.numSamples,
    samplingBatchSize: settings.batchSize,
    seed: settings.seed,
    progress: progress === false ? false : { label: "teacher", unit: "samples", ...progress },
  });
}

/** What the evaluation of every cell shares: samples, teacher, FID and the exact reference. */
interface CellContext {
  numSamples: number;
  batchSize: number;
  teacherDir: string;
  fid?: BenchFid;
  exact?: ExactBenchReference;
}

/** The grid part of a cell's evaluation: its LD3 grid file, or its skip type at the cell's NFE. */
function cellOptions(p: ScheduleBenchPlannedCell): EvaluateOptions {
  return {
    solverName: p.cell.solver,
    ...(p.loadFrom !== undefined ? { loadFrom: p.loadFrom, order: p.order } : {
      skipType: p.cell.schedule,
      steps: solverSteps(p.cell.solver as SolverName, p.cell.nfe),
    }),
  };
}

/** Where a cell is saved in `resumeDir`, and the fingerprint of its evaluation. */
interface CellSave {
  path: string;
  fingerprint: Fingerprint;
}

/**
 * The fingerprint fields every cell shares: what its metrics depend on besides its own solver
 * and grid (the model, the samples, the teacher, the FID inputs and the exact reference).
 */
async function commonCellFingerprint(
  model: LoadedModel,
  context: CellContext,
  options: ScheduleBenchOptions,
  teacherSeed: number,
  exactSteps: number,
): Promise<Fingerprint> {
  const { fid } = context;
  return {
    model: model.modelHash,
    num_samples: context.numSamples,
    batch_size: context.batchSize,
    teacher: { dir: resolve(context.teacherDir), seed: teacherSeed },
    fid: fid
      ? {
        features: isFeatureModel(options.features!)
          ? `(loaded) ${fid.features.outputName}`
          : `${resolve(options.features!.path)} ${fid.features.outputName}`,
        ref: await statsDigest(fid.fidRef),
      }
      : null,
    exact: context.exact ? gmmReferenceName(exactSteps) : null,
  };
}

/**
 * Gives each planned cell its save file in `resumeDir` and fills in the finished cells whose
 * fingerprint still matches. A cell whose sampler cannot be prepared is left to its evaluation,
 * which reports the error in the cell.
 *
 * @returns The save file of each cell that has one, and how many cells were reused.
 */
async function resumeCells(
  model: LoadedModel,
  planned: readonly ScheduleBenchPlannedCell[],
  resumeDir: string,
  common: Fingerprint,
): Promise<{ saves: Map<ScheduleBenchPlannedCell, CellSave>; reused: number }> {
  const saves = new Map<ScheduleBenchPlannedCell, CellSave>();
  let reused = 0;
  for (const p of planned) {
    let sampler;
    try {
      sampler = await prepareSampler(model, cellOptions(p));
    } catch {
      continue; // the evaluation reports it as the cell's error
    }
    const fingerprint = {
      ...common,
      solver: solverRecord(sampler),
      grid: { t1: Array.from(sampler.grid.t1), t2: Array.from(sampler.grid.t2) },
    };
    const path = join(resumeDir, cellFileName(p.cell));
    saves.set(p, { path, fingerprint });
    const saved = await readSavedCell(path, fingerprint);
    if (saved) {
      Object.assign(p.cell, saved);
      reused++;
    }
  }
  return { saves, reused };
}

/**
 * The estimate of the work left: the network evaluations of the cells to run and of the teacher
 * samples to generate, timed on one batch, plus the exact solutions.
 */
async function estimateBench(
  model: LoadedModel,
  todo: readonly ScheduleBenchPlannedCell[],
  context: CellContext,
  teacher: BenchTeacher,
  reused: number,
): Promise<ScheduleBenchEstimate> {
  const { numSamples, batchSize, exact } = context;
  const secondsPerEvaluation = await measureSecondsPerEval(
    model,
    Math.min(batchSize, numSamples),
  );
  const evaluations = todo.reduce((n, p) => n + p.cell.nfe, 0) * numSamples +
    teacher.missing * teacher.nfe;
  const exactSeconds = exact ? exact.secondsPerSample * numSamples : 0;
  return {
    cells: todo.length,
    reused,
    numSamples,
    evaluations,
    secondsPerEvaluation,
    exact: exact !== undefined,
    exactSeconds,
    teacher: teacher.missing > 0,
    seconds: evaluations * secondsPerEvaluation + exactSeconds,
  };
}

/** Evaluates one cell into `cell` (an `error` cell when it fails) and saves it when it can. */
async function evaluateCell(
  model: LoadedModel,
  p: ScheduleBenchPlannedCell,
  context: CellContext,
  save: CellSave | undefined,
): Promise<void> {
  const { cell } = p;
  const { fid, exact } = context;
  try {
    const result = await evaluateSchedule(model, {
      ...cellOptions(p),
      numSamples: context.numSamples,
      batchSize: context.batchSize,
      teacherDir: context.teacherDir,
      ...(fid ? { features: fid.features, fidRef: fid.fidRef } : { configEval: false }),
      ...(exact ? { reference: exact.reference } : {}),
      ...(save ? { checkpoint: await cellCheckpoint(save.path, save.fingerprint) } : {}),
    });
    cell.metrics = result.metrics;
    cell.seconds = result.seconds;
    cell.lambda1 = result.grid.lambda1;
    if (result.nfe !== cell.nfe) cell.actual_nfe = result.nfe;
    if (save) {
      await writeJsonAtomic(save.path, {
        format: BENCH_CELL_FORMAT,
        version: SCHEDULE_BENCH_VERSION,
        fingerprint: save.fingerprint,
        cell,
      });
    }
  } catch (e) {
    cell.status = "error";
    cell.error = (e as Error).message;
  }
}

/**
 * Evaluates the cells `todo` one after the other, with a progress bar and `onCell` after each.
 *
 * @returns The wall-clock seconds of the cells.
 */
async function evaluateCells(
  model: LoadedModel,
  todo: readonly ScheduleBenchPlannedCell[],
  context: CellContext,
  saves: Map<ScheduleBenchPlannedCell, CellSave>,
  options: ScheduleBenchOptions,
): Promise<number> {
  const started = performance.now();
  const bar = options.progress === false ? undefined : new ProgressBar(todo.length, {
    label: "cells",
    unit: "cells",
    ...options.progress,
  });
  let done = 0;
  for (const p of todo) {
    await evaluateCell(model, p, context, saves.get(p));
    bar?.increment();
    options.onCell?.(p.cell, ++done, todo.length);
  }
  bar?.finish();
  return (performance.now() - started) / 1000;
}

/**
 * Runs the schedule benchmark on a loaded model (left open): plans the cells
 * ({@linkcode planScheduleBench}), generates the teacher dataset unless one exists (resumable,
 * `generateDataset`), hands the estimate to `onEstimate`, and evaluates every planned cell with
 * {@linkcode evaluateSchedule} on the same `numSamples` teacher latents. A cell whose evaluation
 * fails becomes an `error` cell; the run goes on.
 *
 * @param model The loaded model.
 * @param options Cells, samples, teacher, metrics and progress.
 * @returns The `schedules.json` document plus the estimate and the teacher folder as given.
 * @throws {RangeError} For bad options or a `dataDir` that is not a dataset.
 * @throws {TypeError} For only one of `features` and `fidRef`, or `exact: "on"` on a model
 * that is not a Gaussian mixture.
 *
 * @example
 * ```ts ignore
 * const model = await loadModel("configs/gmm-mnist.yml");
 * const result = await runScheduleBench(model, {
 *   solvers: ["uni_pc"], nfes: [4, 6], numSamples: 50, teacherRoot: "bench/teacher",
 * });
 * await writeScheduleBench("bench", result, { schedule: model.denoiser.schedule });
 * await model.close();
 * ```
 */
export async function runScheduleBench(
  model: LoadedModel,
  options: ScheduleBenchOptions = {},
): Promise<ScheduleBenchResult> {
  const settings = benchSettings(model, options);
  const { numSamples, batchSize, seed } = settings;
  const teacher = await locateTeacher(options, numSamples);
  // FID: loaded once for every cell; a feature model loaded here is closed here.
  let fid: BenchFid | undefined;
  try {
    fid = await openBenchFid(model, options);
    const exact = await exactReference(model, settings.exactMode, settings.exactSteps);
    const plan = await planScheduleBench(options);
    const context: CellContext = { numSamples, batchSize, teacherDir: teacher.dir, fid, exact };

    // Every cell starts from the teacher's latents, so the teacher's seed is the run's: an
    // existing teacher's own, or the seed a new one is generated with (a teacher being completed
    // keeps its manifest's seed; generateDataset refuses another).
    const teacherSeed = teacher.hasManifest ? (await readManifest(teacher.dir)).noise.seed : seed;

    // Resume: what each cell's evaluation depends on, and the finished cells that still match.
    let saves = new Map<ScheduleBenchPlannedCell, CellSave>();
    let reused = 0;
    if (options.resumeDir !== undefined) {
      await Deno.mkdir(options.resumeDir, { recursive: true });
      const common = await commonCellFingerprint(
        model,
        context,
        options,
        teacherSeed,
        settings.exactSteps,
      );
      ({ saves, reused } = await resumeCells(model, plan.planned, options.resumeDir, common));
    }
    const shard = options.shard;
    if (shard && teacher.missing > 0) {
      const t = LD3_TEACHER;
      throw new RangeError(
        `The shards of bench:schedules share one teacher, ${teacher.dir}: make it first ` +
          `(deno task generate --config ${model.config.source} --solver_name ${t.solverName} ` +
          `--steps ${t.steps} --skip_type ${t.skipType} --seed ${seed} --total_samples ` +
          `${numSamples} --sampling_batch_size ${batchSize} --data_dir ${teacher.root}, sharded ` +
          `or not) or give --data_dir`,
      );
    }
    const todo = plan.planned.filter((p, i) =>
      p.cell.metrics === undefined && (!shard || shardOwns(i, shard))
    );
    const estimate = await estimateBench(model, todo, context, teacher, reused);
    options.onEstimate?.(estimate);

    if (teacher.missing > 0) await generateTeacher(model, teacher, settings, options.progress);
    const seconds = await evaluateCells(model, todo, context, saves, options);
    return {
      format: SCHEDULE_BENCH_FORMAT,
      version: SCHEDULE_BENCH_VERSION,
      ...modelIdentity(model),
      num_samples: numSamples,
      seed: teacherSeed,
      teacher: { ...LD3_TEACHER, dir: resolve(teacher.dir) },
      solvers: plan.solvers,
      nfes: plan.nfes,
      schedules: plan.schedules,
      cells: plan.cells,
      seconds,
      created: new Date().toISOString(),
      evaluated: plan.planned.length,
      teacherDir: teacher.dir,
      estimate,
    };
  } finally {
    if (fid?.owned) await fid.features.close();
  }
}

/** `format` of a saved cell in `resumeDir`. */
const BENCH_CELL_FORMAT = "ld3-bench-cell";

/** `<solver>-NFE<nfe>-<schedule>.json`. */
function cellFileName(cell: ScheduleBenchCell): string {
  return `${cell.solver}-NFE${cell.nfe}-${cell.schedule}.json`;
}

/** SHA-256 of reference statistics, so that a cell is tied to the statistics it was scored on. */
async function statsDigest(stats: FeatureStats): Promise<string> {
  const bytes = new Uint8Array(8 * (stats.mu.length + stats.sigma.length));
  const view = new Float64Array(bytes.buffer);
  view.set(stats.mu);
  view.set(stats.sigma, stats.mu.length);
  return await sha256Hex(bytes);
}

/** A saved cell's results, when the file exists and belongs to `fingerprint`. */
async function readSavedCell(
  path: string,
  fingerprint: Fingerprint,
): Promise<Partial<ScheduleBenchCell> | undefined> {
  let saved;
  try {
    saved = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined; // missing or unreadable: evaluate the cell again
  }
  if (
    saved?.format !== BENCH_CELL_FORMAT || saved.cell?.status !== "ok" ||
    saved.cell.metrics === undefined ||
    canonicalJson(saved.fingerprint) !== canonicalJson(fingerprint)
  ) return undefined;
  const { metrics, seconds, lambda1, actual_nfe } = saved.cell as ScheduleBenchCell;
  return { metrics, seconds, lambda1, ...(actual_nfe !== undefined ? { actual_nfe } : {}) };
}

/**
 * The evaluation checkpoint of a cell: named by its fingerprint, so a cell whose inputs changed
 * starts afresh instead of meeting another evaluation's checkpoint; stale ones are removed.
 */
async function cellCheckpoint(cellPath: string, fingerprint: Fingerprint): Promise<string> {
  const stem = cellPath.replace(/\.json$/, "");
  const id = (await sha256Hex(new TextEncoder().encode(canonicalJson(fingerprint)))).slice(0, 12);
  const keep = `${stem}.${id}.partial.npz`;
  const dir = dirname(cellPath);
  const prefix = `${basename(stem)}.`;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.name.startsWith(prefix) && entry.name.endsWith(".partial.npz") && path !== keep) {
      await removeIfExists(path);
    }
  }
  return keep;
}
