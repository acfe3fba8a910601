/**
 * Sampling a model with a chosen solver and grid: the library behind `deno task sample` and
 * `deno task generate` (the LD3 teacher dataset).
 *
 * Sample `i` always starts from `x_T = priorScale · z_i` with
 * `z_i = float32(normalNoise(seed, i))`: the noise depends on `(seed, i)` only, never on the
 * batch, and it is rounded to float32 *before* use so that the `z` stored in a dataset
 * reproduces the teacher's starting point exactly.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import {
  datasetDirName,
  type DatasetManifest,
  type GridRecord,
  isSampleComplete,
  openDatasetForWriting,
  PNG_DIR,
  samplePath,
  samplePngPath,
  type SolverRecord,
  writeSample,
} from "../io/dataset.ts";
import type { AnimationFrame } from "../io/animation.ts";
import { type Denoiser, sampleSize } from "../denoiser.ts";
import {
  gitsGrid,
  gridFromSigmas,
  gridSigmas,
  SKIP_TYPES,
  skipGrid,
  type SkipType,
  toGrid,
} from "../step_grid.ts";
import { gridOfFile, loadGridFile } from "../io/grid_file.ts";
import { imageShapeOf, imagesToPngGrid, imageToPng } from "../io/image.ts";
import { type LoadedModel, loadModel } from "../onnx/model.ts";
import { readNpz } from "../io/npz.ts";
import { ProgressBar, type ProgressBarOptions } from "../io/progress.ts";
import { normalNoise } from "../rng.ts";
import type { Grid, SolverPlan } from "../solvers/plan.ts";
import { planSolver, runPlan, SOLVER_NAMES, type SolverName, solverNfe } from "../solvers/mod.ts";
import { pathExists } from "../io/fs.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import { checkCount } from "../_check.ts";

/** A skip type, or `gits` for the published GITS tables. */
export type GridKind = SkipType | "gits";
/** All grid kinds accepted by `--skip_type`. */
export const GRID_KINDS: readonly GridKind[] = [...SKIP_TYPES, "gits"];

/** How to pick the solver and its grid (the `--solver_name … --skip_type …` options). */
export interface SamplerOptions {
  /** Solver. @default {"uni_pc"} */
  solverName?: string;
  /** Number of solver steps N (ignored with `loadFrom`/`gits`, whose grid fixes it). @default {20} */
  steps?: number;
  /** Solver order (dpm_solver, dpm_solver++, uni_pc, ipndm). @default {the solver's default} */
  order?: number;
  /** UniPC variant. @default {"bh1"} */
  unipcVariant?: "bh1" | "bh2";
  /** Step schedule family. @default {"edm"} */
  skipType?: string;
  /** EDM schedule exponent ρ. @default {7} */
  rho?: number;
  /** A grid JSON file (e.g. learned by LD3) to use instead of `skipType`. */
  loadFrom?: string;
  /**
   * An explicit grid as EDM-equivalent noise levels σ/α, largest first (T … eps), e.g. from a
   * paper or another tool; excludes `skipType` and `loadFrom` and fixes the steps.
   */
  sigmas?: ArrayLike<number>;
}

/** A solver unrolled on a grid, ready to run. */
export interface PreparedSampler {
  solverName: SolverName;
  solverOptions: { order?: number; variant?: "bh1" | "bh2" };
  grid: Grid;
  plan: SolverPlan;
  steps: number;
  nfe: number;
  /** The skip type, `gits`, or `file` for a grid file. */
  gridKind: string;
  rho?: number;
  loadFrom?: string;
}

/** The solver of a prepared sampler as result files record it. */
export function solverRecord(sampler: PreparedSampler): SolverRecord {
  return {
    name: sampler.solverName,
    ...sampler.solverOptions,
    steps: sampler.steps,
    nfe: sampler.nfe,
  };
}

/** The grid of a prepared sampler as result files record it (the caller adds its kind key). */
export function gridRecord(sampler: PreparedSampler, schedule: NoiseSchedule): GridRecord {
  return {
    ...(sampler.rho !== undefined ? { rho: sampler.rho } : {}),
    ...(sampler.loadFrom !== undefined ? { load_from: sampler.loadFrom } : {}),
    t1: Array.from(sampler.grid.t1),
    t2: Array.from(sampler.grid.t2),
    sigma1: Array.from(gridSigmas(schedule, sampler.grid.t1)),
    sigma2: Array.from(gridSigmas(schedule, sampler.grid.t2)),
  };
}

function checkPositiveInteger(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
    throw new RangeError(`${name} must be a positive integer: got ${value}`);
  }
}

/**
 * Checks the sampler options that need no model (names and numbers), so bad input fails
 * before anything is loaded.
 */
export function validateSamplerOptions(options: SamplerOptions): void {
  const solverName = options.solverName ?? "uni_pc";
  if (!(SOLVER_NAMES as readonly string[]).includes(solverName)) {
    throw new RangeError(
      `Unknown solver: "${solverName}" (expected one of ${SOLVER_NAMES.join(", ")})`,
    );
  }
  if (options.sigmas !== undefined && (options.skipType ?? options.loadFrom) !== undefined) {
    throw new RangeError(
      `Give one grid: sigmas cannot be combined with ${
        options.loadFrom !== undefined ? "loadFrom" : `skipType "${options.skipType}"`
      }`,
    );
  }
  if (options.loadFrom === undefined && options.sigmas === undefined) {
    const skipType = options.skipType ?? "edm";
    if (!(GRID_KINDS as readonly string[]).includes(skipType)) {
      throw new RangeError(
        `Unknown skip type: "${skipType}" (expected one of ${GRID_KINDS.join(", ")})`,
      );
    }
  }
  checkPositiveInteger("steps", options.steps);
  checkPositiveInteger("order", options.order);
  if (options.rho !== undefined && !(Number.isFinite(options.rho) && options.rho > 0)) {
    throw new RangeError(`rho must be a positive number: got ${options.rho}`);
  }
  if (options.unipcVariant !== undefined && !["bh1", "bh2"].includes(options.unipcVariant)) {
    throw new RangeError(`unipc_variant must be bh1 or bh2: got "${options.unipcVariant}"`);
  }
}

/** Builds the grid and the solver plan for a model's schedule. */
export async function prepareSampler(
  model: LoadedModel,
  options: SamplerOptions = {},
): Promise<PreparedSampler> {
  validateSamplerOptions(options);
  const solverName = (options.solverName ?? "uni_pc") as SolverName;
  const schedule = model.denoiser.schedule;
  const solverOptions: PreparedSampler["solverOptions"] = {};
  if (options.order !== undefined) solverOptions.order = options.order;
  if (solverName === "uni_pc" && options.unipcVariant) solverOptions.variant = options.unipcVariant;
  let grid: Grid;
  let gridKind: string;
  let rho: number | undefined;
  let loadFrom: string | undefined;
  if (options.sigmas !== undefined) {
    grid = toGrid(gridFromSigmas(schedule, options.sigmas));
    gridKind = "sigmas";
    if (options.steps !== undefined && options.steps !== grid.t1.length - 1) {
      throw new RangeError(
        `steps ${options.steps} does not match the ${grid.t1.length - 1} steps of the sigma list`,
      );
    }
  } else if (options.loadFrom !== undefined) {
    loadFrom = resolve(options.loadFrom);
    grid = gridOfFile(await loadGridFile(options.loadFrom), schedule);
    gridKind = "file";
    if (options.steps !== undefined && options.steps !== grid.t1.length - 1) {
      throw new RangeError(
        `steps ${options.steps} does not match the ${
          grid.t1.length - 1
        } steps of ${options.loadFrom}`,
      );
    }
  } else {
    gridKind = options.skipType ?? "edm";
    const steps = options.steps ?? 20;
    if (gridKind === "gits") {
      grid = toGrid(gitsGrid(schedule, solverName, steps));
    } else {
      if (gridKind === "edm") rho = options.rho ?? 7;
      grid = toGrid(skipGrid(gridKind as SkipType, schedule, steps, rho ? { rho } : {}));
    }
  }
  const steps = grid.t1.length - 1;
  const plan = planSolver(solverName, schedule, grid, solverOptions);
  const nfe = solverNfe(solverName, steps, solverOptions);
  return { solverName, solverOptions, grid, plan, steps, nfe, gridKind, rho, loadFrom };
}

/**
 * Conditions given to sampling: a table of rows (`data` of `shape` = `[rows, ...condition shape]`,
 * e.g. text embeddings from a `.npy`), or class `labels` of a class-conditional model (condition
 * `[K]`), turned into one-hot rows. Sample `i` gets row `i mod rows`.
 */
export type ConditionInput =
  | { data: ArrayLike<number>; shape: readonly number[] }
  | { labels: readonly number[] };

/** Conditions to cycle through: row `i mod rows` of `data` is sample `i`'s condition. */
export interface ConditionTable {
  /** `rows × prod(conditionShape)` values. */
  data: Float32Array;
  /** Number of rows. */
  rows: number;
}

/**
 * The conditions of a conditional model: the given table or class labels (one-hot), or, when
 * none is given and the condition is a vector `[K]`, one-hot class `i mod K`.
 *
 * @throws {TypeError} When the model needs a condition that cannot be defaulted.
 */
export function conditionTable(
  model: LoadedModel,
  given?: ConditionInput,
): ConditionTable | undefined {
  const shape = model.conditionShape;
  if (!shape) {
    if (given) throw new TypeError(`Model ${model.config.name} takes no condition`);
    return undefined;
  }
  const size = sampleSize(shape);
  if (given && !("labels" in given)) {
    if (given.data.length === 0 || given.data.length % size !== 0) {
      throw new RangeError(
        `Condition array [${given.shape}] is not a list of [${shape}] conditions`,
      );
    }
    return { data: Float32Array.from(given.data), rows: given.data.length / size };
  }
  // Class labels, given or 0, 1, …, K − 1 by default: one-hot rows of a vector condition [K].
  if (shape.length !== 1) {
    throw new TypeError(
      given
        ? `Model ${model.config.name} takes conditions of shape [${shape}], not class labels: ` +
          `pass a condition file`
        : `Model ${model.config.name} needs conditions of shape [${shape}]: pass a condition file`,
    );
  }
  const labels = given ? given.labels : Array.from({ length: size }, (_, k) => k);
  if (labels.length === 0) throw new RangeError("labels must name at least one class");
  const data = new Float32Array(labels.length * size);
  labels.forEach((label, row) => {
    if (!(Number.isSafeInteger(label) && label >= 0 && label < size)) {
      throw new RangeError(`labels must be classes 0…${size - 1}: got ${label}`);
    }
    data[row * size + label] = 1;
  });
  return { data, rows: labels.length };
}

/**
 * The initial latents of samples `indices`, concatenated: `z` (float32 standard normal, as
 * stored) and `x_T = priorScale · z` (float64, computed from the rounded `z`).
 */
export function initialNoise(
  seed: number,
  indices: readonly number[],
  options: { shape: readonly number[]; priorScale: number },
): { z: Float32Array; xT: Float64Array } {
  const size = sampleSize(options.shape);
  const z = new Float32Array(indices.length * size);
  for (let b = 0; b < indices.length; b++) z.set(normalNoise(seed, indices[b], size), b * size);
  // A plain loop: `Float64Array.from(z, fn)` calls a closure per value and cost as much as the
  // random numbers themselves.
  const xT = new Float64Array(z.length);
  const scale = options.priorScale;
  for (let k = 0; k < z.length; k++) xT[k] = scale * z[k];
  return { z, xT };
}

/** One network evaluation of a batch, as recorded by {@linkcode recordingDenoiser}. */
interface RecordedEval {
  /** The time passed to the network. */
  t: number;
  /** The decoded data prediction `D(x_t, t)` of every sample of the batch. */
  images: Float32Array;
}

/**
 * The model's denoiser, wrapped so that every call also decodes its data prediction into
 * `evals`. Decoding right away keeps one float32 image per evaluation instead of the float64
 * latent, and the solver sees exactly the prediction the model returned (never a copy).
 */
function recordingDenoiser(
  model: LoadedModel,
  evals: RecordedEval[],
): { denoise: Denoiser["denoise"] } {
  return {
    async denoise(x, t, info) {
      const prediction = await model.denoiser.denoise(x, t, info);
      evals.push({ t, images: await model.decode(prediction) });
      return prediction;
    },
  };
}

/** One batch of samples through solver and decoder. */
async function runBatch(
  model: LoadedModel,
  sampler: PreparedSampler,
  indices: readonly number[],
  options: { seed: number; conditions?: ConditionTable; trajectory?: boolean },
): Promise<{ z: Float32Array[]; x: Float32Array; c?: Float32Array[]; evals?: RecordedEval[] }> {
  const size = sampleSize(model.sampleShape);
  const { z, xT } = initialNoise(options.seed, indices, {
    shape: model.sampleShape,
    priorScale: model.denoiser.schedule.priorScale,
  });
  let condition: Float32Array | undefined;
  let c: Float32Array[] | undefined;
  if (options.conditions) {
    const table = options.conditions;
    const csize = table.data.length / table.rows;
    // Views, not copies: the table is never written after it is built.
    c = indices.map((i) =>
      table.data.subarray((i % table.rows) * csize, (i % table.rows + 1) * csize)
    );
    condition = new Float32Array(indices.length * csize);
    c.forEach((row, b) => condition!.set(row, b * csize));
  }
  const evals: RecordedEval[] | undefined = options.trajectory ? [] : undefined;
  const denoiser = evals ? recordingDenoiser(model, evals) : model.denoiser;
  const out = await runPlan(sampler.plan, denoiser, xT, condition ? { condition } : {});
  const x = await model.decode(out);
  // Per-sample views of this batch's fresh noise array (nothing else holds or writes it).
  return { z: indices.map((_, b) => z.subarray(b * size, (b + 1) * size)), x, c, evals };
}

/**
 * The LD3 default teacher, as the reference tool generates it: UniPC, 20 steps (20 NFE) on the
 * EDM grid. The demo, the schedule benchmark and the learned-grid matrix all distil from it.
 */
export const LD3_TEACHER = { solverName: "uni_pc", steps: 20, skipType: "edm" } as const;

/** Options of {@linkcode sampleImages}. */
export interface SampleImagesOptions extends SamplerOptions {
  /** Number of images. @default {16} */
  numSamples?: number;
  /** Noise seed. @default {0} */
  seed?: number;
  /** Samples per solver batch. @default {the model config's batch_size} */
  batchSize?: number;
  /** Conditions to cycle through (conditional models); one-hot classes 0, 1, … by default. */
  condition?: ConditionInput;
  /** Execution device when `model` is a config path. @default {the config's} */
  device?: string;
  /**
   * Also record the sampling trajectory: the decoded data prediction `D(x_t, t)` of every
   * network evaluation (see {@linkcode SamplingTrajectory}). Costs one decode per evaluation
   * and `nfe × numSamples` images of memory. @default {false}
   */
  trajectory?: boolean;
}

/**
 * What the model "sees" during a solve: after each network evaluation, its data prediction
 * `D(x_t, t)` (the x0-prediction) decoded to images. Watching it sharpen shows where a
 * schedule spends its evaluations.
 */
export interface SamplingTrajectory {
  /**
   * `nfe × numSamples × prod(imageShape)` values in [-1, 1]: evaluation `k`'s predictions of
   * all samples, in sample order, then evaluation `k + 1`'s.
   */
  images: Float32Array;
  /** The time passed to the network at each evaluation, in evaluation order. */
  t: Float64Array;
  /** The EDM-equivalent noise level σ_t/α_t of each evaluation time. */
  sigma: Float64Array;
}

/** Images from {@linkcode sampleImages}. */
export interface SampledImages {
  /** `numSamples × prod(imageShape)` values, in the model's image range ([-1, 1]). */
  images: Float32Array;
  /** `[numSamples, C, H, W]`. */
  shape: number[];
  /** The sampler used (grid, plan, NFE). */
  sampler: PreparedSampler;
  /** The recorded trajectory, when `trajectory` was asked for. */
  trajectory?: SamplingTrajectory;
}

async function openModel(model: LoadedModel | string, device?: string) {
  if (typeof model !== "string") return { model, owned: false };
  return { model: await loadModel(model, device ? { device } : {}), owned: true };
}

/**
 * Samples images: noise `z_i` for `i < numSamples`, the solver on the chosen grid, then the
 * decoder.
 *
 * @param model A loaded model or the path of its YAML config.
 *
 * @example
 * ```ts ignore
 * const { images, shape } = await sampleImages("configs/gmm-mnist.yml", {
 *   solverName: "dpm_solver++", steps: 5, skipType: "logSNR", numSamples: 8,
 * });
 * await Deno.writeFile("out.png", imagesToPngGrid(images, shape, { nrow: 4 }));
 * ```
 */
export async function sampleImages(
  model: LoadedModel | string,
  options: SampleImagesOptions = {},
): Promise<SampledImages> {
  validateSamplerOptions(options);
  const numSamples = options.numSamples ?? 16;
  checkCount("num_samples", numSamples, 1);
  const seed = options.seed ?? 0;
  checkCount("seed", seed, 0);
  if (options.batchSize !== undefined) checkCount("batch_size", options.batchSize, 1);
  const opened = await openModel(model, options.device);
  try {
    const m = opened.model;
    const sampler = await prepareSampler(m, options);
    const conditions = conditionTable(m, options.condition);
    const batchSize = options.batchSize ?? m.config.batch_size ?? 16;
    const imageShape = imageShapeOf(m.imageShape);
    const imageSize = sampleSize(imageShape);
    const images = new Float32Array(numSamples * imageSize);
    const nfe = sampler.plan.nfe;
    const trajectory: SamplingTrajectory | undefined = options.trajectory
      ? {
        images: new Float32Array(nfe * numSamples * imageSize),
        t: new Float64Array(nfe),
        sigma: new Float64Array(nfe),
      }
      : undefined;
    for (let start = 0; start < numSamples; start += batchSize) {
      const indices = range(start, Math.min(start + batchSize, numSamples));
      const { x, evals } = await runBatch(m, sampler, indices, {
        seed,
        conditions,
        trajectory: trajectory !== undefined,
      });
      images.set(x, start * imageSize);
      if (trajectory && evals) placeEvals(trajectory, evals, { start, numSamples, imageSize });
    }
    if (trajectory) trajectory.sigma.set(gridSigmas(m.denoiser.schedule, trajectory.t));
    return {
      images,
      shape: [numSamples, ...imageShape],
      sampler,
      ...(trajectory ? { trajectory } : {}),
    };
  } finally {
    if (opened.owned) await opened.model.close();
  }
}

/**
 * Copies one batch's recorded evaluations into the trajectory: evaluation `k` of the batch
 * starting at sample `start` lands at `(k · numSamples + start) · imageSize`, so frames come
 * out in sample order whatever the batch size.
 */
function placeEvals(
  trajectory: SamplingTrajectory,
  evals: readonly RecordedEval[],
  layout: { start: number; numSamples: number; imageSize: number },
): void {
  const nfe = trajectory.t.length;
  if (evals.length !== nfe) {
    throw new RangeError(`Solver made ${evals.length} network evaluations: expected ${nfe}`);
  }
  evals.forEach((e, k) => {
    // Every batch runs the same plan, so the first batch's times stand for all.
    if (layout.start === 0) trajectory.t[k] = e.t;
    trajectory.images.set(e.images, (k * layout.numSamples + layout.start) * layout.imageSize);
  });
}

/**
 * The frames of a sampling GIF: the x0-prediction after each network evaluation, captioned
 * `NFE k/N  σ = …`, then the final samples, captioned `final sample`. Feed them to `imagesGif`
 * (`lib/io/animation.ts`) with `sampled.shape`.
 *
 * @throws {TypeError} When `sampled` holds no trajectory (sample with `trajectory: true`).
 */
export function trajectoryFrames(sampled: SampledImages): AnimationFrame[] {
  const trajectory = sampled.trajectory;
  if (!trajectory) {
    throw new TypeError("Sampled images hold no trajectory: sample with trajectory: true");
  }
  const nfe = trajectory.t.length;
  const count = sampled.images.length;
  const frames: AnimationFrame[] = [];
  for (let k = 0; k < nfe; k++) {
    frames.push({
      images: trajectory.images.subarray(k * count, (k + 1) * count),
      caption: `NFE ${k + 1}/${nfe}  σ = ${formatSigma(trajectory.sigma[k])}`,
    });
  }
  frames.push({ images: sampled.images, caption: "final sample" });
  return frames;
}

/**
 * Trajectories of several samplers side by side: frame `k` stacks every run's prediction after
 * its `k`-th network evaluation (one block of rows per run, in the given order), captioned
 * `NFE k/N  rows: a, b, c`; then the final samples. Runs must share the NFE and image shape —
 * sample them from the same seed to compare schedules on the same noise.
 *
 * @throws {TypeError} When a run holds no trajectory.
 * @throws {RangeError} When there are no runs, or the runs differ in NFE, count or shape.
 */
export function stackedTrajectoryFrames(
  runs: readonly { label: string; sampled: SampledImages }[],
): AnimationFrame[] {
  if (runs.length === 0) throw new RangeError("runs must hold at least one sampled run: got 0");
  const perRun = runs.map(({ label, sampled }) => {
    try {
      return trajectoryFrames(sampled);
    } catch (e) {
      throw new TypeError(`runs "${label}": ${(e as Error).message}`);
    }
  });
  const first = runs[0].sampled;
  runs.forEach(({ label, sampled }, r) => {
    if (perRun[r].length !== perRun[0].length) {
      throw new RangeError(
        `runs "${label}" has NFE ${perRun[r].length - 1}: "${runs[0].label}" has ${
          perRun[0].length - 1
        }`,
      );
    }
    if (sampled.shape.join() !== first.shape.join()) {
      throw new RangeError(
        `runs "${label}" has shape [${sampled.shape}]: "${runs[0].label}" has [${first.shape}]`,
      );
    }
  });
  const nfe = perRun[0].length - 1;
  const rows = runs.map((r) => r.label).join(", ");
  const count = first.images.length;
  return perRun[0].map((_, k) => {
    const images = new Float32Array(runs.length * count);
    perRun.forEach((frames, r) => images.set(frames[k].images as Float32Array, r * count));
    const step = k < nfe ? `NFE ${k + 1}/${nfe}` : "final sample";
    return { images, caption: `${step}  rows: ${rows}` };
  });
}

/** Three significant digits without trailing zeros: 80, 1.53, 0.002. */
function formatSigma(sigma: number): string {
  return String(Number(sigma.toPrecision(3)));
}

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, k) => start + k);
}

/** Options of {@linkcode generateDataset}: the reference tool's `gen_data.py` options. */
export interface GenerateDatasetOptions extends SamplerOptions {
  /** Root folder; the dataset goes to `<dataDir>/<solver>_NFE<nfe>_<skip_type>/`. @default {"train_data"} */
  dataDir?: string;
  /** Number of samples M. @default {100} */
  totalSamples?: number;
  /** Samples per solver batch. @default {10} */
  samplingBatchSize?: number;
  /** Noise seed. @default {0} */
  seed?: number;
  /** Also write `png/<i>.png` and `grid.png` (first 64 samples). @default {false} */
  savePng?: boolean;
  /** Conditions to cycle through (conditional models); one-hot classes 0, 1, … by default. */
  condition?: ConditionInput;
  /** Execution device when `model` is a config path. @default {the config's} */
  device?: string;
  /** Progress bar options; `false` for none. @default {{}} */
  progress?: ProgressBarOptions | false;
  /** Creation time written to a new manifest. @default {new Date()} */
  created?: Date;
}

/** What {@linkcode generateDataset} did. */
export interface GenerateDatasetResult {
  /** The dataset folder. */
  dir: string;
  /** Its manifest. */
  manifest: DatasetManifest;
  /** Samples computed by this run. */
  generated: number;
  /** Samples already complete and skipped. */
  skipped: number;
  /** Wall time of the sampling loop (solver, decoder and writes) in seconds. */
  seconds: number;
}

/**
 * Writes the LD3 teacher dataset (see `lib/io/dataset.ts` for the layout): for each sample `i`
 * the standard-normal latent `z_i`, the teacher output `x_i` (decoded) and any condition.
 *
 * All options are checked and the model and grid are loaded before the dataset folder is
 * created, so bad input leaves nothing behind. Re-running with the same parameters skips
 * complete samples; a folder made with other parameters is refused.
 *
 * @param model A loaded model or the path of its YAML config.
 */
export async function generateDataset(
  model: LoadedModel | string,
  options: GenerateDatasetOptions = {},
): Promise<GenerateDatasetResult> {
  validateSamplerOptions(options);
  const total = options.totalSamples ?? 100;
  checkCount("total_samples", total, 1);
  const batchSize = options.samplingBatchSize ?? 10;
  checkCount("sampling_batch_size", batchSize, 1);
  const seed = options.seed ?? 0;
  checkCount("seed", seed, 0);
  const opened = await openModel(model, options.device);
  try {
    const m = opened.model;
    const sampler = await prepareSampler(m, options);
    const conditions = conditionTable(m, options.condition);
    const schedule = m.denoiser.schedule;
    const dir = join(
      options.dataDir ?? "train_data",
      datasetDirName(sampler.solverName, sampler.nfe, sampler.gridKind),
    );
    const shapes: DatasetManifest["shapes"] = {
      z: [...m.sampleShape],
      x: [...m.imageShape],
    };
    if (m.conditionShape) shapes.c = [...m.conditionShape];
    const draft: DatasetManifest = {
      format: "ld3-dataset",
      version: 1,
      config: JSON.parse(JSON.stringify(m.config)),
      model: { name: m.config.name, sha256: m.modelHash },
      solver: solverRecord(sampler),
      grid: { skip_type: sampler.gridKind, ...gridRecord(sampler, schedule) },
      noise: { generator: "philox4x32-10", seed, prior_scale: schedule.priorScale },
      shapes,
      count: total,
      created: (options.created ?? new Date()).toISOString(),
    };
    const manifest = await openDatasetForWriting(dir, draft);
    if (options.savePng) await Deno.mkdir(join(dir, PNG_DIR), { recursive: true });

    const todo: number[] = [];
    for (let i = 0; i < total; i++) {
      const done = await isSampleComplete(dir, i, shapes) &&
        (!options.savePng || await pathExists(samplePngPath(dir, i)));
      if (!done) todo.push(i);
    }
    // Nothing left to sample (a finished dataset reused): no "0/0" bar.
    const bar = options.progress === false || todo.length === 0
      ? undefined
      : new ProgressBar(todo.length, {
        label: "generate",
        unit: "samples",
        ...options.progress,
      });
    const pngShape = imageShapeOf(shapes.x);
    const xSize = sampleSize(shapes.x);
    const started = performance.now();
    // Writes of batch k overlap the solve of batch k+1 (at most one batch in flight), so file
    // I/O hides behind network time; a failed write stops the run at the next batch.
    let pending: Promise<void> = Promise.resolve();
    let writeError: unknown;
    const writeBatch = async (indices: number[], batch: Awaited<ReturnType<typeof runBatch>>) => {
      await Promise.all(indices.map(async (index, b) => {
        const x = batch.x.subarray(b * xSize, (b + 1) * xSize);
        await writeSample(dir, { index, z: batch.z[b], x, c: batch.c?.[b] }, shapes);
        if (options.savePng) {
          await writeFileAtomic(samplePngPath(dir, index), imageToPng(x, pngShape));
        }
      }));
      bar?.increment(indices.length);
    };
    for (let k = 0; k < todo.length; k += batchSize) {
      const indices = todo.slice(k, k + batchSize);
      const batch = await runBatch(m, sampler, indices, { seed, conditions });
      await pending;
      if (writeError !== undefined) throw writeError;
      pending = writeBatch(indices, batch).catch((e) => {
        writeError = e;
      });
    }
    await pending;
    if (writeError !== undefined) throw writeError;
    const seconds = (performance.now() - started) / 1000;
    bar?.finish();
    if (options.savePng) await writeGridPng(dir, manifest, Math.min(total, 64));
    return { dir, manifest, generated: todo.length, skipped: total - todo.length, seconds };
  } finally {
    if (opened.owned) await opened.model.close();
  }
}

/** `grid.png`: the first `count` teacher outputs, 8 per row. */
async function writeGridPng(dir: string, manifest: DatasetManifest, count: number) {
  const shape = imageShapeOf(manifest.shapes.x);
  const size = sampleSize(shape);
  const images = new Float32Array(count * size);
  for (let i = 0; i < count; i++) {
    const arrays = await readNpz(samplePath(dir, i));
    images.set(arrays.x.data as Float32Array, i * size);
  }
  await writeFileAtomic(join(dir, "grid.png"), imagesToPngGrid(images, [count, ...shape]));
}
