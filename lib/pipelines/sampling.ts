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
import type { AnimationFrame } from "../io/animation.ts";
import { type Denoiser, sampleSize } from "../denoiser.ts";
import { gridSigmas } from "../step_grid.ts";
import { imageShapeOf } from "../io/image.ts";
import type { LoadedModel } from "../onnx/model.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";
import { normalNoise } from "../rng.ts";
import { runPlan } from "../solvers/plan.ts";
import { MODEL_OPTIONS, SAMPLER_OPTIONS, SAMPLES_OPTIONS } from "./options.ts";
import {
  type PreparedSampler,
  prepareSampler,
  type SamplerOptions,
  validateSamplerOptions,
  withModel,
} from "./sampler.ts";

/**
 * Conditions given to sampling: a table of rows (`data` of `shape` = `[rows, ...condition shape]`,
 * e.g. text embeddings from a `.npy`), or class `labels` of a class-conditional model (condition
 * `[K]`), turned into one-hot rows. Sample `i` gets row `i mod rows`.
 */
export type ConditionInput =
  | { data: ArrayLike<number>; shape: readonly number[]; prompts?: readonly string[] }
  | { labels: readonly number[] };

/** Conditions to cycle through: row `i mod rows` of `data` is sample `i`'s condition. */
export interface ConditionTable {
  /** `rows × prod(conditionShape)` values. */
  data: Float32Array;
  /** Number of rows. */
  rows: number;
  /** The prompt each row is the embedding of (text-conditioned models). */
  prompts?: readonly string[];
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
    const rows = given.data.length / size;
    if (given.prompts && given.prompts.length !== rows) {
      throw new RangeError(
        `Condition array holds ${rows} rows for ${given.prompts.length} prompts`,
      );
    }
    const data = Float32Array.from(given.data);
    return given.prompts ? { data, rows, prompts: [...given.prompts] } : { data, rows };
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
export interface RecordedEval {
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

/** One batch of samples through solver and decoder (`z` as stored, `x` decoded). */
export async function runBatch(
  model: LoadedModel,
  sampler: PreparedSampler,
  indices: readonly number[],
  options: { seed: number; conditions?: ConditionTable; trajectory?: boolean },
): Promise<{
  z: Float32Array[];
  x: Float32Array;
  latent?: Float32Array;
  c?: Float32Array[];
  prompts?: string[];
  evals?: RecordedEval[];
}> {
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
  const table = options.conditions;
  const prompts = table?.prompts && indices.map((i) => table.prompts![i % table.rows]);
  // Per-sample views of this batch's fresh noise array (nothing else holds or writes it).
  return {
    z: indices.map((_, b) => z.subarray(b * size, (b + 1) * size)),
    x,
    // A latent model's final latents too: the teacher of an LD3 loss measured on latents.
    ...(model.config.decoder ? { latent: Float32Array.from(out) } : {}),
    c,
    ...(prompts ? { prompts } : {}),
    evals,
  };
}

/** The options of {@linkcode sampleImages} (`deno task sample`). */
export const SAMPLE_IMAGES_OPTIONS = {
  ...SAMPLER_OPTIONS,
  ...SAMPLES_OPTIONS,
  numSamples: { ...SAMPLES_OPTIONS.numSamples, default: 16 },
  device: MODEL_OPTIONS.device,
  threads: MODEL_OPTIONS.threads,
} as const satisfies OptionDeclarations;

/** Options of {@linkcode sampleImages}: {@linkcode SAMPLE_IMAGES_OPTIONS} and these. */
export interface SampleImagesOptions
  extends SamplerOptions, Omit<OptionValues<typeof SAMPLE_IMAGES_OPTIONS>, "sigmas"> {
  /** Conditions to cycle through (conditional models); one-hot classes 0, 1, … by default. */
  condition?: ConditionInput;
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
  model: LoadedModel | string | URL,
  options: SampleImagesOptions = {},
): Promise<SampledImages> {
  validateSamplerOptions(options);
  const o = resolveOptions(SAMPLE_IMAGES_OPTIONS, { ...options, sigmas: undefined });
  return await withModel(model, { device: o.device, threads: o.threads }, async (m) => {
    const sampler = await prepareSampler(m, options);
    const conditions = conditionTable(m, options.condition);
    const batchSize = o.batchSize ?? m.config.batch_size ?? 16;
    const imageShape = imageShapeOf(m.imageShape);
    const imageSize = sampleSize(imageShape);
    const images = new Float32Array(o.numSamples * imageSize);
    const trajectory = options.trajectory
      ? emptyTrajectory(sampler.plan.nfe, o.numSamples, imageSize)
      : undefined;
    for (let start = 0; start < o.numSamples; start += batchSize) {
      const indices = range(start, Math.min(start + batchSize, o.numSamples));
      const { x, evals } = await runBatch(m, sampler, indices, {
        seed: o.seed,
        conditions,
        trajectory: trajectory !== undefined,
      });
      images.set(x, start * imageSize);
      if (trajectory && evals) {
        placeEvals(trajectory, evals, { start, numSamples: o.numSamples, imageSize });
      }
    }
    if (trajectory) trajectory.sigma.set(gridSigmas(m.denoiser.schedule, trajectory.t));
    return {
      images,
      shape: [o.numSamples, ...imageShape],
      sampler,
      ...(trajectory ? { trajectory } : {}),
    };
  });
}

function emptyTrajectory(nfe: number, numSamples: number, imageSize: number): SamplingTrajectory {
  return {
    images: new Float32Array(nfe * numSamples * imageSize),
    t: new Float64Array(nfe),
    sigma: new Float64Array(nfe),
  };
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

/** `[start, start + 1, …, end − 1]`. */
export function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, k) => start + k);
}
