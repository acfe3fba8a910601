/**
 * Evaluating one schedule: a solver on one grid, run on seeded samples, scored by FID, by the
 * distance to a teacher dataset and, for the Gaussian-mixture model, by the error against the
 * exact ODE solution. The library behind `deno task eval` and `deno task bench:schedules`.
 *
 * Sample `i` starts from the same noise as in `generate` (`z_i = normalNoise(seed, i)` rounded
 * to float32, `x_T = priorScale · z_i`); with a teacher dataset the stored `z` are used, so
 * student and teacher start from bit-identical `x_T`. The result is a plain JSON document
 * ({@linkcode EvalResult}); every metric is a deterministic function of the model, grid,
 * solver, samples and seed (only `seconds` and `created` vary between runs).
 *
 * @module
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import { writeJsonAtomic } from "../io/atomic.ts";
import { loadModelConfig, type ModelConfig } from "../onnx/config.ts";
import {
  columnArrays,
  type EvalColumn,
  readEvalCheckpoint,
  removeEvalCheckpoint,
  restoreColumns,
  writeEvalCheckpoint,
} from "./eval_checkpoint.ts";
import {
  type FeatureModelSpec,
  fidReference,
  gmmExactSolver,
  gmmReferenceName,
  isFeatureModel,
  openFeatureModel,
} from "./_eval_inputs.ts";
import { type ModelIdentity, modelIdentity } from "./_model_identity.ts";
import { type Dataset, type GridRecord, readDataset, type SolverRecord } from "../io/dataset.ts";
import { sameShape, sampleSize } from "../denoiser.ts";
import { l1Distance, l2Distance, rmsDistance } from "../metrics/distance.ts";
import type { FeatureModel } from "../metrics/features.ts";
import { type FeatureStats, featureStats, fidFromStats, statsDim } from "../metrics/fid.ts";
import type { Gmm } from "../gmm.ts";
import { gmmFromOnnx } from "../onnx/gmm_onnx.ts";
import type { SampleLoss } from "../metrics/losses.ts";
import { loadLpips, type LpipsLoss } from "../metrics/lpips.ts";
import { gridLambdas } from "../step_grid.ts";
import { type LoadedModel, loadModel } from "../onnx/model.ts";
import {
  conditionTable,
  gridRecord,
  initialNoise,
  prepareSampler,
  type SamplerOptions,
  solverRecord,
  validateSamplerOptions,
} from "./sampling.ts";
import { runPlan } from "../solvers/plan.ts";
import { checkCount } from "../_check.ts";

/** Identifies an evaluation result document. */
export const EVAL_FORMAT = "ld3-eval";
/** Current version of {@linkcode EvalResult}. */
export const EVAL_VERSION = 1;

// The feature-model spec lives with the helpers the schedule benchmark shares.
export { type FeatureModelSpec, isFeatureModel };

/**
 * The feature model of a config's `eval.features` section as a {@linkcode FeatureModelSpec}
 * (YAML `input_range` becomes `inputRange`); `undefined` when the config names none.
 */
export function featureSpecFromConfig(config: ModelConfig): FeatureModelSpec | undefined {
  const f = config.eval?.features;
  if (f === undefined) return undefined;
  return { path: f.path, input: f.input, output: f.output, inputRange: f.input_range };
}

/** Options of the classifier check ({@linkcode EvaluateOptions.quality}). */
export interface QualityOptions {
  /** Name of the class-logits output of the feature model. @default {"logits"} */
  logits?: string;
  /** A sample counts as recognisable when its top-class probability is at least this. @default {0.9} */
  threshold?: number;
}

/** The classifier check of a set of samples ({@linkcode classifierQuality}). */
export interface QualityMetrics {
  /** The probability threshold. */
  threshold: number;
  /** Fraction of samples whose top-class probability is at least `threshold`. */
  confident: number;
  /** Mean top-class probability. */
  mean_top_prob: number;
  /** Number of samples per predicted class (arg-max), indexed by class. */
  histogram: number[];
}

/**
 * The "readable sample" check: softmax of each row of class logits, the fraction whose top
 * probability reaches `threshold`, the mean top probability and the histogram of predicted
 * classes. Softmax is computed in float64 with the row maximum subtracted, so large logits do
 * not overflow.
 *
 * @example
 * ```ts
 * import { classifierQuality } from "./evaluate.ts";
 * const q = classifierQuality(new Float64Array([10, 0, 0, 1]), 2, 2, 0.9);
 * if (q.confident !== 0.5 || q.histogram[0] !== 1 || q.histogram[1] !== 1) throw new Error();
 * ```
 *
 * @param logits `count × classes` values, row-major.
 * @param count Number of samples.
 * @param classes Number of classes (at least 2).
 * @param threshold Top-class probability that counts as confident. @default {0.9}
 * @throws {RangeError} If the sizes do not match.
 */
export function classifierQuality(
  logits: ArrayLike<number>,
  count: number,
  classes: number,
  threshold = 0.9,
): QualityMetrics {
  if (!(Number.isSafeInteger(classes) && classes >= 2)) {
    throw new RangeError(`classes must be an integer >= 2: got ${classes}`);
  }
  if (!(Number.isSafeInteger(count) && count >= 1) || logits.length !== count * classes) {
    throw new RangeError(
      `logits must hold count × classes = ${count} × ${classes} values: got ${logits.length}`,
    );
  }
  const histogram = new Array<number>(classes).fill(0);
  let confident = 0;
  let sumTop = 0;
  for (let i = 0; i < count; i++) {
    const o = i * classes;
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[o + c] > logits[o + best]) best = c;
    let z = 0;
    for (let c = 0; c < classes; c++) z += Math.exp(logits[o + c] - logits[o + best]);
    const top = 1 / z;
    histogram[best]++;
    sumTop += top;
    if (top >= threshold) confident++;
  }
  return { threshold, confident: confident / count, mean_top_prob: sumTop / count, histogram };
}

/**
 * A reference ODE solver: the exact (or high-accuracy) `x_eps` of the samples `indices`,
 * starting from `xT` (`indices.length × sample size` values, concatenated).
 */
export type ReferenceSolver = (
  xT: Float64Array,
  indices: readonly number[],
) => Float64Array | Promise<Float64Array>;

/** One batch of evaluated samples, handed to {@linkcode EvaluateOptions.onBatch}. */
export interface EvalBatch {
  /** Sample indices of the batch. */
  indices: readonly number[];
  /** Decoded images in [-1, 1], `indices.length × prod(imageShape)`. */
  images: Float32Array;
  /** `[C, H, W]` of one image. */
  imageShape: readonly number[];
}

/** Options of {@linkcode evaluateSchedule}: the grid choice plus samples and metrics. */
export interface EvaluateOptions extends SamplerOptions {
  /** Number of samples; with a teacher dataset at most its size. @default {1000, or the teacher dataset's size} */
  numSamples?: number;
  /** Noise seed; with a teacher dataset it must equal the dataset's seed. @default {0, or the teacher dataset's seed} */
  seed?: number;
  /** Samples per solver batch. @default {the model config's batch_size} */
  batchSize?: number;
  /**
   * Feature model for FID and the classifier check: a spec to load, or an already loaded model
   * (not closed here).
   * @default {the config's `eval.features` (unless `configEval` is false)}
   */
  features?: FeatureModelSpec | FeatureModel;
  /**
   * FID reference statistics: an `.npz` path (`mu`, `sigma`) or the statistics themselves.
   * @default {the config's `eval.fid_ref` (unless `configEval` is false)}
   */
  fidRef?: string | FeatureStats;
  /**
   * Fill a missing `features` / `fidRef` from the model config's `eval` section. FID is computed
   * whenever reference statistics are known, so pass `false` to evaluate without it.
   * @default {true}
   */
  configEval?: boolean;
  /**
   * The classifier check ({@linkcode classifierQuality}) on the feature model's class logits:
   * `true` for the defaults. Needs a feature model with a logits output. @default {false}
   */
  quality?: boolean | QualityOptions;
  /** A teacher dataset folder (from `generate`): per-sample L2/L1 of student vs teacher. */
  teacherDir?: string;
  /**
   * LPIPS distance to the teacher as well (needs `teacherDir`): the path of an LPIPS ONNX model
   * (`lib/metrics/lpips.ts`; loaded and closed here) or a loaded one (left open), or `false` for none.
   * @default {the config's `eval.lpips` when there is a teacher (unless `configEval` is false)}
   */
  lpips?: string | SampleLoss | false;
  /**
   * Exact-solution error for a Gaussian-mixture model: `true` reads the mixture from the
   * model's ONNX graph (one built by `buildGmmOnnx`), or pass the {@linkcode Gmm}.
   * @default {false}
   */
  exactGmm?: boolean | Gmm;
  /** RK4 steps of the exact GMM solution (`gmmReferenceSolve`); 200 are within 1e-6 of 4000 on gmm-mnist. @default {200} */
  exactSteps?: number;
  /** A reference solver of your own for the exact-solution error (instead of `exactGmm`). */
  reference?: ReferenceSolver;
  /** Called once before the first batch (`done` 0) and after each batch with samples done and total. */
  onProgress?: (done: number, total: number) => void;
  /** Called with each batch's decoded images (e.g. to keep a preview grid). */
  onBatch?: (batch: EvalBatch) => void;
  /** Execution device when the model is given as a config. @default {the config's} */
  device?: string;
  /**
   * A resumable checkpoint (`.npz`, `lib/pipelines/eval_checkpoint.ts`): the per-sample results so far,
   * written every `checkpointSeconds` while sampling. A run that finds one of the same
   * evaluation continues after its last batch (with identical metrics); one of another
   * evaluation is an error. Removed when the evaluation finishes. @default {undefined (none)}
   */
  checkpoint?: string;
  /** Seconds between checkpoint writes. @default {30} */
  checkpointSeconds?: number;
  /** Keep the first N decoded images (checkpointed too) for `onPreview`. @default {0} */
  previewImages?: number;
  /**
   * Called once at the end with the first `previewImages` images in [-1, 1], those of a resumed
   * run's earlier part included (unlike `onBatch`, which sees only the batches run now).
   */
  onPreview?: (images: Float32Array, count: number, imageShape: readonly number[]) => void;
}

/** Mean and sample standard deviation (divides by `count − 1`; 0 for one sample). */
export interface MeanStd {
  mean: number;
  std: number;
}

/** The metrics an evaluation computed; absent ones were not requested. */
export interface EvalMetrics {
  /** Fréchet distance of the samples' features to the reference statistics. */
  fid?: number;
  /** Feature dimension and reference file of the FID (paths as {@linkcode resultPath} writes them). */
  fidInfo?: { dim: number; features: string; ref: string };
  /** The classifier check: confident fraction, mean top probability, class histogram. */
  quality?: QualityMetrics & { logits: string };
  /**
   * Per-sample distance to the teacher's output ("L2" = mean squared difference over C·H·W);
   * `dir` as {@linkcode resultPath} writes it.
   */
  teacher?: {
    l2: MeanStd;
    l1: MeanStd;
    /** LPIPS to the teacher, when an LPIPS model was given (`lpips_model` names it). */
    lpips?: MeanStd;
    lpips_model?: string;
    dir: string;
    solver: string;
    nfe: number;
  };
  /** Per-sample RMS error of the raw solver output against the reference ODE solution. */
  exact?: { rms: MeanStd; reference: string };
}

/** The JSON document of one evaluation. */
export interface EvalResult extends ModelIdentity {
  format: typeof EVAL_FORMAT;
  version: number;
  /** Solver and its options. */
  solver: SolverRecord;
  /** Network evaluations per sample. */
  nfe: number;
  /** The grid: how it was chosen, step times t1, evaluation times t2, their σ/α and λ. */
  grid: GridRecord & { kind: string; lambda1: number[] };
  /** What was sampled. */
  options: {
    num_samples: number;
    seed: number;
    batch_size: number;
    noise: "seed" | "teacher";
  };
  metrics: EvalMetrics;
  /** Wall time of sampling and scoring, in seconds (a resumed run adds its earlier parts). */
  seconds: number;
  /** ISO time of the run. */
  created: string;
}

/** Mean and sample standard deviation of a list. */
export function meanStd(values: ArrayLike<number>): MeanStd {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN };
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0 };
}

//----------------------------------------------------------------------------
// Evaluation

type ModelInput = LoadedModel | ModelConfig | string;

function isLoadedModel(m: ModelInput): m is LoadedModel {
  return typeof m === "object" && "denoiser" in m;
}

/** The teacher dataset, checked against the model before anything runs. */
async function openTeacher(dir: string, model: LoadedModel): Promise<Dataset> {
  const data = await readDataset(dir);
  const m = data.manifest;
  if (m.model.sha256 !== model.modelHash) {
    throw new RangeError(
      `Teacher dataset ${dir} was made with another model (sha256 ${
        m.model.sha256.slice(0, 12)
      }…, this model ${model.modelHash.slice(0, 12)}…)`,
    );
  }
  if (!sameShape(m.shapes.z, model.sampleShape) || !sameShape(m.shapes.x, model.imageShape)) {
    throw new RangeError(
      `Teacher dataset ${dir} holds z [${m.shapes.z}] and x [${m.shapes.x}]: the model needs ` +
        `[${model.sampleShape}] and [${model.imageShape}]`,
    );
  }
  return data;
}

/**
 * Evaluates one schedule: samples `numSamples` seeded samples with the chosen solver and grid
 * and computes every metric the options ask for (at least one is required).
 *
 * @param model A loaded model (left open), a validated config, or a config path.
 * @returns The result document (see {@linkcode writeEvalResult}).
 * @throws {RangeError} For bad numbers, a missing metric, mismatching statistics or datasets.
 * @throws {TypeError} For a feature model or graph that does not fit.
 *
 * @example
 * ```ts ignore
 * const result = await evaluateSchedule("configs/gmm-mnist.yml", {
 *   solverName: "uni_pc", steps: 6, skipType: "logSNR", numSamples: 100,
 *   teacherDir: "train_data/uni_pc_NFE20_edm",
 * });
 * console.log(result.metrics.teacher?.l2.mean);
 * ```
 */
export async function evaluateSchedule(
  model: ModelInput,
  options: EvaluateOptions = {},
): Promise<EvalResult> {
  // Checks that need nothing loaded come first, so bad input fails fast.
  validateSamplerOptions(options);
  // The config (read, not yet loaded) supplies the FID defaults of its `eval` section.
  if (typeof model === "string") model = await loadModelConfig(model);
  const config = isLoadedModel(model) ? model.config : model;
  const fromConfig = options.configEval ?? true;
  const featureSpec = options.features ?? (fromConfig ? featureSpecFromConfig(config) : undefined);
  const fidRefOption = options.fidRef ?? (fromConfig ? config.eval?.fid_ref : undefined);
  const quality = options.quality === true ? {} : options.quality || undefined;
  const lpipsOption = options.lpips ??
    (fromConfig && options.teacherDir !== undefined ? config.eval?.lpips : undefined);
  if (lpipsOption && options.teacherDir === undefined) {
    throw new RangeError("The LPIPS distance is to a teacher: give teacherDir with lpips");
  }
  const threshold = quality?.threshold ?? 0.9;
  if (quality && !(threshold > 0 && threshold <= 1)) {
    throw new RangeError(`quality.threshold must be in (0, 1]: got ${threshold}`);
  }
  // Explicit features alone ask for FID; the config's features alone serve the quality check.
  const wantFid = fidRefOption !== undefined ||
    (options.features !== undefined && quality === undefined);
  if (wantFid && (featureSpec === undefined || fidRefOption === undefined)) {
    throw new RangeError(
      `FID needs both a feature model and reference statistics: got ${
        featureSpec === undefined ? "no features" : "no fidRef"
      }`,
    );
  }
  if (quality && featureSpec === undefined) {
    throw new RangeError(
      "The classifier check needs a feature model with a logits output: got no features",
    );
  }
  const wantExact = (options.exactGmm !== undefined && options.exactGmm !== false) ||
    options.reference !== undefined;
  if (!wantFid && !quality && options.teacherDir === undefined && !wantExact) {
    throw new RangeError(
      "Nothing to measure: give a teacher dataset, a feature model with reference statistics, " +
        "or an exact reference",
    );
  }
  if (options.numSamples !== undefined) checkCount("num_samples", options.numSamples, 1);
  if (options.seed !== undefined) checkCount("seed", options.seed, 0);
  if (options.batchSize !== undefined) checkCount("batch_size", options.batchSize, 1);
  const exactSteps = options.exactSteps ?? 200;
  checkCount("exact_steps", exactSteps, 1);
  const previewImages = options.previewImages ?? 0;
  checkCount("preview_images", previewImages, 0);
  const checkpointSeconds = options.checkpointSeconds ?? 30;
  if (!(checkpointSeconds >= 0)) {
    throw new RangeError(`checkpoint_seconds must be >= 0: got ${checkpointSeconds}`);
  }

  const owned = !isLoadedModel(model);
  const m = isLoadedModel(model)
    ? model
    : await loadModel(model, options.device ? { device: options.device } : {});
  let featureModel: FeatureModel | undefined;
  let ownsFeatures = false;
  let lpips: SampleLoss | undefined;
  let ownsLpips = false;
  try {
    const sampler = await prepareSampler(m, options);
    const schedule = m.denoiser.schedule;

    // Teacher: its z fix the samples (and the seed).
    let teacher: Dataset | undefined;
    let seed = options.seed ?? 0;
    let numSamples = options.numSamples ?? 1000;
    if (options.teacherDir !== undefined) {
      teacher = await openTeacher(options.teacherDir, m);
      const tSeed = teacher.manifest.noise.seed;
      if (options.seed !== undefined && options.seed !== tSeed) {
        throw new RangeError(
          `seed ${options.seed} differs from the teacher dataset's seed ${tSeed}: ` +
            `omit the seed to use the dataset's noise`,
        );
      }
      seed = tSeed;
      numSamples = options.numSamples ?? teacher.manifest.count;
      if (numSamples > teacher.manifest.count) {
        throw new RangeError(
          `num_samples ${numSamples} exceeds the ${teacher.manifest.count} samples of the ` +
            `teacher dataset ${options.teacherDir}`,
        );
      }
    }

    // FID: reference statistics and feature model, checked against each other up front.
    let ref: FeatureStats | undefined;
    let featureDim = 0;
    let classes = 0;
    const logitsName = quality?.logits ?? "logits";
    if (wantFid || quality) {
      if (wantFid && numSamples < 2) {
        throw new RangeError(`FID needs num_samples >= 2: got ${numSamples}`);
      }
      if (wantFid) ref = await fidReference(fidRefOption!);
      const opened = await openFeatureModel(featureSpec!, m.imageShape);
      featureModel = opened.model;
      ownsFeatures = opened.owned;
      if (!sameShape(featureModel.sampleShape, m.imageShape)) {
        throw new RangeError(
          `Feature model takes images [${featureModel.sampleShape}]: the model makes [${m.imageShape}]`,
        );
      }
      const probeImage = new Float32Array(sampleSize(m.imageShape));
      const probe = await featureModel.run(
        probeImage,
        1,
        quality ? [featureModel.outputName, logitsName] : [featureModel.outputName],
      );
      featureDim = probe[featureModel.outputName].dim;
      classes = quality ? probe[logitsName].dim : 0;
      const refDim = ref ? statsDim(ref, "fidRef") : featureDim;
      if (featureDim !== refDim) {
        throw new RangeError(
          `Reference statistics have dimension ${refDim} but the feature model outputs ${featureDim}`,
        );
      }
      if (quality && classes < 2) {
        throw new RangeError(
          `The classifier check needs at least 2 classes: output "${logitsName}" has ${classes}`,
        );
      }
    }

    // LPIPS: a path is loaded here (for the model's image shape) and closed at the end.
    if (typeof lpipsOption === "string") {
      lpips = await loadLpips(lpipsOption, {
        imageShape: m.imageShape,
        device: options.device ?? m.config.device,
      });
      ownsLpips = true;
    } else if (lpipsOption) lpips = lpipsOption;

    let reference: ReferenceSolver | undefined = options.reference;
    let referenceName = "custom";
    if (reference === undefined && wantExact) {
      const gmm = options.exactGmm === true
        ? gmmFromOnnx(await Deno.readFile(m.config.model.path), m.config.model.path)
        : options.exactGmm as Gmm;
      if (gmm.dim !== sampleSize(m.sampleShape)) {
        throw new RangeError(
          `Gaussian mixture has dimension ${gmm.dim}: the model's samples have ${
            sampleSize(m.sampleShape)
          }`,
        );
      }
      reference = gmmExactSolver(gmm, schedule, exactSteps);
      referenceName = gmmReferenceName(exactSteps);
    }

    const conditions = teacher ? undefined : conditionTable(m);
    const batchSize = options.batchSize ?? m.config.batch_size ?? 16;
    const zSize = sampleSize(m.sampleShape);
    const imageSize = sampleSize(m.imageShape);
    const l2 = new Float64Array(teacher ? numSamples : 0);
    const l1 = new Float64Array(teacher ? numSamples : 0);
    const lpipsValues = new Float64Array(teacher && lpips ? numSamples : 0);
    const exact = new Float64Array(reference ? numSamples : 0);
    const features = new Float64Array(wantFid ? numSamples * featureDim : 0);
    const logits = new Float64Array(quality ? numSamples * classes : 0);
    const previewCount = Math.min(previewImages, numSamples);
    const preview = new Float32Array(previewCount * imageSize);
    // Per-sample arrays and their row sizes: what a checkpoint saves and restores.
    const columns: Record<string, EvalColumn> = {
      l2: { data: l2, row: 1 },
      l1: { data: l1, row: 1 },
      lpips: { data: lpipsValues, row: 1 },
      exact: { data: exact, row: 1 },
      features: { data: features, row: featureDim },
      logits: { data: logits, row: classes },
      preview: { data: preview, row: imageSize, maxRows: previewCount },
    };

    const lpipsName = typeof lpipsOption === "string" ? resultPath(lpipsOption) : "(loaded)";
    let first = 0;
    let priorSeconds = 0;
    const fingerprint = options.checkpoint === undefined ? {} : {
      model: m.modelHash,
      solver: solverRecord(sampler),
      grid: { t1: Array.from(sampler.grid.t1), t2: Array.from(sampler.grid.t2) },
      num_samples: numSamples,
      seed,
      batch_size: batchSize,
      noise: teacher
        ? { teacher: resolve(teacher.dir), count: teacher.manifest.count }
        : { seed, prior_scale: schedule.priorScale },
      features: featureModel
        ? {
          model: isFeatureModel(featureSpec!) ? "(loaded)" : resolve(featureSpec!.path),
          output: featureModel.outputName,
          dim: wantFid ? featureDim : 0,
          logits: quality ? { name: logitsName, classes } : null,
        }
        : null,
      exact: reference ? referenceName : null,
      lpips: lpips ? lpipsName : null,
      preview: previewCount,
    };
    if (options.checkpoint !== undefined) {
      const saved = await readEvalCheckpoint(options.checkpoint, fingerprint);
      if (saved) {
        if (
          saved.done > numSamples || (saved.done % batchSize !== 0 && saved.done !== numSamples)
        ) {
          throw new RangeError(
            `Checkpoint ${options.checkpoint} has ${saved.done} samples done: not a batch boundary of ${numSamples}`,
          );
        }
        restoreColumns(saved, columns, options.checkpoint);
        first = saved.done;
        priorSeconds = saved.seconds;
      }
    }
    const started = performance.now();
    let lastSave = started;
    options.onProgress?.(first, numSamples);
    for (let start = first; start < numSamples; start += batchSize) {
      const count = Math.min(batchSize, numSamples - start);
      const indices = Array.from({ length: count }, (_, k) => start + k);
      let xT: Float64Array;
      let teacherX: Float32Array | undefined;
      let condition: Float32Array | undefined;
      if (teacher) {
        const samples = await Promise.all(indices.map((i) => teacher!.read(i)));
        xT = new Float64Array(count * zSize);
        teacherX = new Float32Array(count * imageSize);
        samples.forEach((s, b) => {
          for (let j = 0; j < zSize; j++) xT[b * zSize + j] = schedule.priorScale * s.z[j];
          teacherX!.set(s.x, b * imageSize);
        });
        if (samples[0].c) {
          const csize = samples[0].c.length;
          condition = new Float32Array(count * csize);
          samples.forEach((s, b) => condition!.set(s.c!, b * csize));
        }
      } else {
        xT = initialNoise(seed, indices, {
          shape: m.sampleShape,
          priorScale: schedule.priorScale,
        }).xT;
        if (conditions) {
          const csize = conditions.data.length / conditions.rows;
          condition = new Float32Array(count * csize);
          indices.forEach((i, b) => {
            const row = i % conditions.rows;
            condition!.set(conditions.data.subarray(row * csize, (row + 1) * csize), b * csize);
          });
        }
      }
      const out = await runPlan(sampler.plan, m.denoiser, xT, condition ? { condition } : {});
      const images = await m.decode(out);
      if (teacherX) {
        l2.set(l2Distance(images, teacherX, count), start);
        l1.set(l1Distance(images, teacherX, count), start);
        if (lpips) {
          lpipsValues.set(await lpips.value(Float64Array.from(images), teacherX, count), start);
        }
      }
      if (reference) {
        const exactX = await reference(xT, indices);
        exact.set(rmsDistance(exactX, out, count), start);
      }
      if (featureModel) {
        const names = [
          ...(wantFid ? [featureModel.outputName] : []),
          ...(quality ? [logitsName] : []),
        ];
        const outs = await featureModel.run(images, count, names);
        if (wantFid) features.set(outs[featureModel.outputName].data, start * featureDim);
        if (quality) logits.set(outs[logitsName].data, start * classes);
      }
      if (start < previewCount) {
        const take = Math.min(previewCount - start, count);
        preview.set(images.subarray(0, take * imageSize), start * imageSize);
      }
      options.onBatch?.({ indices, images, imageShape: m.imageShape });
      options.onProgress?.(start + count, numSamples);
      if (
        options.checkpoint !== undefined && start + count < numSamples &&
        performance.now() - lastSave >= checkpointSeconds * 1000
      ) {
        await writeEvalCheckpoint(options.checkpoint, {
          fingerprint,
          done: start + count,
          seconds: priorSeconds + (performance.now() - started) / 1000,
          arrays: columnArrays(columns, start + count),
        });
        lastSave = performance.now();
      }
    }
    if (previewCount > 0) options.onPreview?.(preview, previewCount, m.imageShape);

    const metrics: EvalMetrics = {};
    if (ref && featureModel) {
      metrics.fid = fidFromStats(featureStats(features, numSamples, featureDim), ref);
      metrics.fidInfo = {
        dim: featureDim,
        features: isFeatureModel(featureSpec!) ? "(loaded)" : resultPath(featureSpec!.path),
        ref: typeof fidRefOption === "string" ? resultPath(fidRefOption) : "(given)",
      };
    }
    if (quality) {
      metrics.quality = {
        ...classifierQuality(logits, numSamples, classes, threshold),
        logits: logitsName,
      };
    }
    if (teacher) {
      metrics.teacher = {
        l2: meanStd(l2),
        l1: meanStd(l1),
        ...(lpips ? { lpips: meanStd(lpipsValues), lpips_model: lpipsName } : {}),
        dir: resultPath(teacher.dir),
        solver: teacher.manifest.solver.name,
        nfe: teacher.manifest.solver.nfe,
      };
    }
    if (reference) metrics.exact = { rms: meanStd(exact), reference: referenceName };
    const seconds = priorSeconds + (performance.now() - started) / 1000;
    // The result is complete: the caller writes it, the partial state has done its job.
    if (options.checkpoint !== undefined) await removeEvalCheckpoint(options.checkpoint);

    return {
      format: EVAL_FORMAT,
      version: EVAL_VERSION,
      ...modelIdentity(m),
      solver: solverRecord(sampler),
      nfe: sampler.nfe,
      grid: {
        kind: sampler.gridKind,
        ...gridRecord(sampler, schedule),
        lambda1: Array.from(gridLambdas(schedule, sampler.grid.t1)),
      },
      options: {
        num_samples: numSamples,
        seed,
        batch_size: batchSize,
        noise: teacher ? "teacher" : "seed",
      },
      metrics,
      seconds,
      created: new Date().toISOString(),
    };
  } finally {
    if (ownsFeatures) await featureModel?.close();
    if (ownsLpips) await (lpips as LpipsLoss).close();
    if (owned) await m.close();
  }
}

/**
 * How a result JSON names a file: relative to the working directory when the file is inside
 * it (so results committed with the project carry no machine's absolute paths), else absolute.
 *
 * @example
 * ```ts
 * console.log(resultPath(`${Deno.cwd()}/models/a.onnx`)); // "models/a.onnx" (on POSIX)
 * ```
 */
export function resultPath(path: string): string {
  const absolute = resolve(path);
  const rel = relative(Deno.cwd(), absolute);
  if (rel === "") return ".";
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return absolute;
  return rel;
}

/** Writes an evaluation result as indented JSON, atomically. */
export async function writeEvalResult(path: string, result: EvalResult): Promise<void> {
  await writeJsonAtomic(path, result);
}

/** A short human summary of a result's metrics, e.g. `FID 12.34, L2 to teacher 0.0123 ± 0.004`. */
export function formatMetrics(metrics: EvalMetrics): string {
  const parts: string[] = [];
  const g = (v: number) => v === 0 ? "0" : Number.isFinite(v) ? v.toPrecision(4) : String(v);
  if (metrics.fid !== undefined) parts.push(`FID ${metrics.fid.toFixed(2)}`);
  if (metrics.quality) {
    parts.push(
      `${
        (100 * metrics.quality.confident).toFixed(1)
      } % with top-class probability >= ${metrics.quality.threshold}`,
    );
  }
  if (metrics.teacher) {
    parts.push(`L2 to teacher ${g(metrics.teacher.l2.mean)} ± ${g(metrics.teacher.l2.std)}`);
    parts.push(`L1 ${g(metrics.teacher.l1.mean)}`);
    if (metrics.teacher.lpips) parts.push(`LPIPS ${g(metrics.teacher.lpips.mean)}`);
  }
  if (metrics.exact) {
    parts.push(`exact RMS error ${g(metrics.exact.rms.mean)} ± ${g(metrics.exact.rms.std)}`);
  }
  return parts.join(", ");
}
