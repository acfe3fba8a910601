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
import { lockOutput } from "../io/lock.ts";
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
import {
  type Dataset,
  type DatasetSample,
  type GridRecord,
  readDataset,
  type SolverRecord,
} from "../io/dataset.ts";
import { sameShape, sampleSize } from "../denoiser.ts";
import type { Fingerprint } from "../fingerprint.ts";
import { l1Distance, l2Distance, rmsDistance } from "../metrics/distance.ts";
import type { FeatureModel } from "../metrics/features.ts";
import { type FeatureStats, fidFromStats, statsDim } from "../metrics/fid.ts";
import { type FeatureMoments, momentsStats, treeMoments } from "../metrics/fid_moments.ts";
import type { Gmm } from "../gmm.ts";
import { gmmFromOnnx } from "../onnx/gmm_onnx.ts";
import type { SampleLoss } from "../metrics/losses.ts";
import { loadLpips, type LpipsLoss } from "../metrics/lpips.ts";
import { gridLambdas } from "../step_grid.ts";
import { type LoadedModel, loadModel } from "../onnx/model.ts";
import {
  type ConditionInput,
  type ConditionTable,
  conditionTable,
  initialNoise,
} from "./sampling.ts";
import {
  gridRecord,
  type PreparedSampler,
  prepareSampler,
  type SamplerOptions,
  solverRecord,
  validateSamplerOptions,
} from "./sampler.ts";
import { runPlan } from "../solvers/plan.ts";
import { checkCount } from "../_check.ts";
import { type Shard, shardSamples } from "../shard.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";
import { FID_REF_OPTIONS, MODEL_OPTIONS, SAMPLER_OPTIONS, SAMPLES_OPTIONS } from "./options.ts";

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

/** `--threshold`, `--logits`: the classifier check ({@linkcode classifierQuality}). */
export const QUALITY_OPTIONS = {
  threshold: {
    flag: "threshold",
    kind: "number",
    above: 0,
    max: 1,
    default: 0.9,
    help: "top-class probability the classifier check counts as confident",
  },
  logits: {
    flag: "logits",
    kind: "string",
    arg: "NAME",
    default: "logits",
    help: "the feature model's class-logits output (classifier check)",
  },
} as const satisfies OptionDeclarations;

/** Options of the classifier check ({@linkcode EvaluateOptions.quality}). */
export type QualityOptions = OptionValues<typeof QUALITY_OPTIONS>;

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

/** The options of {@linkcode evaluateSchedule} (`deno task eval`) that have a command line. */
export const EVAL_OPTIONS = {
  ...SAMPLER_OPTIONS,
  ...SAMPLES_OPTIONS,
  numSamples: {
    ...SAMPLES_OPTIONS.numSamples,
    default: 1000,
    defaultText: "1000, or the teacher dataset's size",
    help: "samples; with a teacher dataset at most its size",
  },
  seed: {
    ...SAMPLES_OPTIONS.seed,
    defaultText: "0, or the teacher dataset's",
    help: "noise seed; with a teacher dataset it must be the dataset's",
  },
  teacherDir: {
    flag: "data_dir",
    kind: "string",
    arg: "DIR",
    help: "teacher dataset (from generate): per-sample L2/L1 distance to it",
  },
  ...FID_REF_OPTIONS,
  exactGmm: {
    flag: "exact_gmm",
    kind: "boolean",
    default: false,
    help: "exact-solution error (Gaussian-mixture models built by buildGmmOnnx)",
  },
  exactSteps: {
    flag: "exact_steps",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 200,
    help: "RK4 steps of the exact solution (200 are within 1e-6 of 4000 on gmm-mnist)",
  },
  checkpoint: {
    flag: "checkpoint",
    kind: "string",
    arg: "FILE",
    help: "resumable partial results (.npz), saved while sampling and removed at the end; " +
      "rerun the same evaluation to continue",
  },
  checkpointSeconds: {
    flag: "checkpoint_seconds",
    kind: "number",
    arg: "S",
    min: 0,
    default: 30,
    help: "seconds between checkpoint writes",
  },
  device: MODEL_OPTIONS.device,
  threads: MODEL_OPTIONS.threads,
} as const satisfies OptionDeclarations;

/**
 * Options of {@linkcode evaluateSchedule}: the sampler, samples and metrics of
 * {@linkcode EVAL_OPTIONS}, and these.
 */
export interface EvaluateOptions
  extends
    SamplerOptions,
    Omit<OptionValues<typeof EVAL_OPTIONS>, "sigmas" | "fidRef" | "exactGmm"> {
  /**
   * The conditions of seeded samples, cycled (e.g. the embeddings of prompts: `textConditioning`
   * in `prompts.ts`); a teacher dataset's samples carry their own.
   * @default {class labels 0, 1, … for class-conditional models}
   */
  condition?: ConditionInput;
  /**
   * Feature model for FID and the classifier check: a spec to load, or an already loaded model
   * (not closed here).
   * @default {the config's `eval.features` (unless `configEval` is false)}
   */
  features?: FeatureModelSpec | FeatureModel;
  /**
   * FID reference statistics: an `.npz` path (`mu`, `sigma`) or the statistics themselves
   * (`--fid_ref`). @default {the config's `eval.fid_ref` (unless `configEval` is false)}
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
  /**
   * LPIPS distance to the teacher as well (needs `teacherDir`): the path of an LPIPS ONNX model
   * (`lib/metrics/lpips.ts`; loaded and closed here) or a loaded one (left open), or `false` for none.
   * @default {the config's `eval.lpips` when there is a teacher (unless `configEval` is false)}
   */
  lpips?: string | SampleLoss | false;
  /**
   * Exact-solution error for a Gaussian-mixture model: `true` reads the mixture from the
   * model's ONNX graph (one built by `buildGmmOnnx`), or pass the {@linkcode Gmm}
   * (`--exact_gmm`). @default {false}
   */
  exactGmm?: boolean | Gmm;
  /** A reference solver of your own for the exact-solution error (instead of `exactGmm`). */
  reference?: ReferenceSolver;
  /** Called once before the first batch (`done` 0) and after each batch with samples done and total. */
  onProgress?: (done: number, total: number) => void;
  /** Called with each batch's decoded images (e.g. to keep a preview grid). */
  onBatch?: (batch: EvalBatch) => void;
  /** Keep the first N decoded images (checkpointed too) for `onPreview`. @default {0} */
  previewImages?: number;
  /**
   * Called once at the end with the first `previewImages` images in [-1, 1], those of a resumed
   * run's earlier part included (unlike `onBatch`, which sees only the batches run now).
   */
  onPreview?: (images: Float32Array, count: number, imageShape: readonly number[]) => void;
  /**
   * Evaluate only this shard's samples (`lib/shard.ts`): {@linkcode evaluateRun} and the shard
   * functions of `eval_shards.ts` take it; {@linkcode evaluateSchedule} refuses it.
   */
  shard?: Shard;
}

/** Mean and sample standard deviation (divides by `count − 1`; 0 for one sample). */
export interface MeanStd {
  /** Mean over the samples. */
  mean: number;
  /** Sample standard deviation (divides by count − 1). */
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
  /** Always {@linkcode EVAL_FORMAT}. */
  format: typeof EVAL_FORMAT;
  /** Document version ({@linkcode EVAL_VERSION} when written). */
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
  /** The metrics computed. */
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
//
// `evaluateSchedule` in steps: the request (what to measure, checked before anything loads),
// the inputs (model, sampler, samples, feature model, LPIPS, exact reference, per-sample
// columns), an optional resume from a checkpoint, the sampling loop that fills the columns, and
// the metrics and result document computed from them.

/** The model to evaluate: loaded, a config, or a config path or URL to load (and close after). */
export type ModelInput = LoadedModel | ModelConfig | string | URL;

function isLoadedModel(m: ModelInput): m is LoadedModel {
  return typeof m === "object" && "denoiser" in m;
}

/**
 * What the options ask to measure, with the defaults of the config's `eval` section filled in
 * and every check that needs nothing loaded done.
 */
interface EvalRequest {
  /** Feature model for FID and the classifier check, given or from the config. */
  featureSpec?: FeatureModelSpec | FeatureModel;
  /** FID reference statistics, given or from the config. */
  fidRef?: string | FeatureStats;
  /** Whether FID is computed (then `featureSpec` and `fidRef` are both set). */
  wantFid: boolean;
  /** The classifier check's options, when it is asked for. */
  quality?: QualityOptions;
  /** Top-class probability the classifier check counts as confident. */
  threshold: number;
  /** The LPIPS model for the distance to the teacher, given or from the config. */
  lpips?: string | SampleLoss | false;
  /** Whether the exact-solution error is computed (a Gaussian mixture or a custom reference). */
  wantExact: boolean;
  /** RK4 steps of the exact Gaussian-mixture solution. */
  exactSteps: number;
  /** Decoded images kept for `onPreview`. */
  previewImages: number;
  /** Seconds between checkpoint writes. */
  checkpointSeconds: number;
}

/** The metrics of an {@linkcode EvalRequest}, resolved against the config and checked. */
function requestedMetrics(
  config: ModelConfig,
  options: EvaluateOptions,
): Pick<EvalRequest, "featureSpec" | "fidRef" | "wantFid" | "quality" | "threshold" | "lpips"> {
  const fromConfig = options.configEval ?? true;
  const featureSpec = options.features ?? (fromConfig ? featureSpecFromConfig(config) : undefined);
  const fidRef = options.fidRef ?? (fromConfig ? config.eval?.fid_ref : undefined);
  const quality = options.quality === true ? {} : options.quality || undefined;
  const lpips = options.lpips ??
    (fromConfig && options.teacherDir !== undefined ? config.eval?.lpips : undefined);
  if (lpips && options.teacherDir === undefined) {
    throw new RangeError("The LPIPS distance is to a teacher: give teacherDir with lpips");
  }
  const { threshold } = resolveOptions(QUALITY_OPTIONS, { threshold: quality?.threshold });
  // Explicit features alone ask for FID; the config's features alone serve the quality check.
  const wantFid = fidRef !== undefined || (options.features !== undefined && quality === undefined);
  if (wantFid && (featureSpec === undefined || fidRef === undefined)) {
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
  return { featureSpec, fidRef, wantFid, quality, threshold, lpips };
}

/**
 * The whole {@linkcode EvalRequest}: the metrics, then the counts. At least one metric is
 * required, since an evaluation that measures nothing would only burn time.
 */
function evalRequest(config: ModelConfig, options: EvaluateOptions): EvalRequest {
  const metrics = requestedMetrics(config, options);
  const wantExact = (options.exactGmm !== undefined && options.exactGmm !== false) ||
    options.reference !== undefined;
  if (!metrics.wantFid && !metrics.quality && options.teacherDir === undefined && !wantExact) {
    throw new RangeError(
      "Nothing to measure: give a teacher dataset, a feature model with reference statistics, " +
        "or an exact reference",
    );
  }
  const { exactSteps, checkpointSeconds } = resolveOptions(EVAL_OPTIONS, {
    ...options,
    sigmas: undefined,
    fidRef: undefined,
    exactGmm: undefined,
  });
  const previewImages = options.previewImages ?? 0;
  checkCount("previewImages", previewImages, 0);
  return { ...metrics, wantExact, exactSteps, previewImages, checkpointSeconds };
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

/** Which samples are evaluated: seeded noise, or a teacher dataset's stored noise. */
interface EvalSamples {
  /** The teacher dataset, whose z fix the samples and the seed. */
  teacher?: Dataset;
  /** Noise seed (the teacher's own with a teacher). */
  seed: number;
  /** Samples this run evaluates: `first … first + numSamples − 1`. */
  numSamples: number;
  /** The first of them (a shard's; 0 for the whole evaluation). */
  first: number;
  /** Samples of the whole evaluation. */
  total: number;
}

/** The samples of an evaluation; a teacher's seed and size win over the defaults. */
async function chooseSamples(m: LoadedModel, options: EvaluateOptions): Promise<EvalSamples> {
  const seed = options.seed ?? EVAL_OPTIONS.seed.default;
  const numSamples = options.numSamples ?? EVAL_OPTIONS.numSamples.default;
  if (options.teacherDir === undefined) return { seed, numSamples, first: 0, total: numSamples };
  const teacher = await openTeacher(options.teacherDir, m);
  const { count, noise } = teacher.manifest;
  if (options.seed !== undefined && options.seed !== noise.seed) {
    throw new RangeError(
      `seed ${options.seed} differs from the teacher dataset's seed ${noise.seed}: ` +
        `omit the seed to use the dataset's noise`,
    );
  }
  const teacherSamples = options.numSamples ?? count;
  if (teacherSamples > count) {
    throw new RangeError(
      `num_samples ${teacherSamples} exceeds the ${count} samples of the ` +
        `teacher dataset ${options.teacherDir}`,
    );
  }
  return {
    teacher,
    seed: noise.seed,
    numSamples: teacherSamples,
    first: 0,
    total: teacherSamples,
  };
}

/** The models an evaluation opened itself: it closes them at the end (a caller's stay open). */
interface Opened {
  features?: FeatureModel;
  lpips?: LpipsLoss;
}

/** The feature model of FID and the classifier check, with the sizes of its outputs. */
interface FeatureSetup {
  /** The opened model; undefined when neither FID nor the classifier check is asked for. */
  model?: FeatureModel;
  /** FID reference statistics, when FID is computed. */
  ref?: FeatureStats;
  /** Feature dimension (0 without a feature model). */
  dim: number;
  /** Classes of the logits output (0 without the classifier check). */
  classes: number;
  /** Name of the logits output. */
  logitsName: string;
  /** Whether each batch's features are kept (for FID) and its logits (for the classifier check). */
  fid: boolean;
  quality: boolean;
}

/**
 * Opens the feature model and the FID reference and checks them against each other and the
 * model up front: a mismatch found after sampling would waste the whole run.
 */
async function openFeatureSetup(
  m: LoadedModel,
  request: EvalRequest,
  numSamples: number,
  opened: Opened,
): Promise<FeatureSetup> {
  const { wantFid, quality } = request;
  const logitsName = quality?.logits ?? QUALITY_OPTIONS.logits.default;
  const wanted = { logitsName, fid: wantFid, quality: quality !== undefined };
  if (!wantFid && !quality) return { dim: 0, classes: 0, ...wanted };
  if (wantFid && numSamples < 2) {
    throw new RangeError(`FID needs num_samples >= 2: got ${numSamples}`);
  }
  const ref = wantFid ? await fidReference(request.fidRef!) : undefined;
  const features = await openFeatureModel(request.featureSpec!, m.imageShape, m.threads);
  const model = features.model;
  if (features.owned) opened.features = model;
  if (!sameShape(model.sampleShape, m.imageShape)) {
    throw new RangeError(
      `Feature model takes images [${model.sampleShape}]: the model makes [${m.imageShape}]`,
    );
  }
  // One blank image tells the output sizes, before any sample is spent.
  const probe = await model.run(
    new Float32Array(sampleSize(m.imageShape)),
    1,
    quality ? [model.outputName, logitsName] : [model.outputName],
  );
  const dim = probe[model.outputName].dim;
  const classes = quality ? probe[logitsName].dim : 0;
  const refDim = ref ? statsDim(ref, "fidRef") : dim;
  if (dim !== refDim) {
    throw new RangeError(
      `Reference statistics have dimension ${refDim} but the feature model outputs ${dim}`,
    );
  }
  if (quality && classes < 2) {
    throw new RangeError(
      `The classifier check needs at least 2 classes: output "${logitsName}" has ${classes}`,
    );
  }
  return { model, ref, dim, classes, ...wanted };
}

/** An LPIPS model and how the result names it. */
interface LpipsSetup {
  loss: SampleLoss;
  name: string;
}

/** The LPIPS model: a path is loaded here (for the model's image shape) and closed at the end. */
async function openLpips(
  m: LoadedModel,
  lpips: EvalRequest["lpips"],
  device: string | undefined,
  opened: Opened,
): Promise<LpipsSetup | undefined> {
  if (typeof lpips === "string") {
    const loss = await loadLpips(lpips, {
      imageShape: m.imageShape,
      device: device ?? m.config.device,
      threads: m.threads,
    });
    opened.lpips = loss;
    return { loss, name: resultPath(lpips) };
  }
  return lpips ? { loss: lpips, name: "(loaded)" } : undefined;
}

/** The reference solution of the exact-solution error, and how the result names it. */
interface ExactReference {
  solve: ReferenceSolver;
  name: string;
}

/** A custom reference solver, or the exact solution of the model's Gaussian mixture. */
async function exactReference(
  m: LoadedModel,
  options: EvaluateOptions,
  request: EvalRequest,
): Promise<ExactReference | undefined> {
  if (options.reference !== undefined) return { solve: options.reference, name: "custom" };
  if (!request.wantExact) return undefined;
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
  const steps = request.exactSteps;
  return {
    solve: gmmExactSolver(gmm, m.denoiser.schedule, steps),
    name: gmmReferenceName(steps),
  };
}

/** Everything an evaluation runs with, opened and checked against the model. */
interface EvalInputs {
  m: LoadedModel;
  sampler: PreparedSampler;
  samples: EvalSamples;
  batchSize: number;
  features: FeatureSetup;
  lpips?: LpipsSetup;
  reference?: ExactReference;
  /** Conditions of seeded samples (a teacher's samples carry their own). */
  conditions?: ConditionTable;
}

/**
 * The per-sample results, one array per metric, filled batch by batch so that a checkpoint can
 * save them and the metrics come out the same whatever the batches; the array of a metric not
 * computed is empty.
 */
interface SampleColumns {
  /** Squared, absolute and LPIPS distance of each sample to the teacher's. */
  l2: Float64Array;
  l1: Float64Array;
  lpips: Float64Array;
  /** RMS error of each sample against the exact solution. */
  exact: Float64Array;
  /** `dim` features, and `classes` logits, per sample. */
  features: Float64Array;
  logits: Float64Array;
  /** The first `previewCount` decoded images. */
  preview: Float32Array;
  previewCount: number;
  /** The same arrays with their row sizes: what a checkpoint saves and restores. */
  table: Record<string, EvalColumn>;
}

/** An evaluation's inputs and the columns it fills. */
interface EvalSetup extends EvalInputs {
  columns: SampleColumns;
}

/**
 * Opens every input and checks it against the model. The order decides which error a run with
 * several bad inputs reports, so the `eval` task's messages depend on it.
 */
async function openInputs(
  m: LoadedModel,
  request: EvalRequest,
  options: EvaluateOptions,
  opened: Opened,
): Promise<EvalInputs> {
  const sampler = await prepareSampler(m, options);
  const samples = await chooseSamples(m, options);
  const features = await openFeatureSetup(m, request, samples.numSamples, opened);
  const lpips = await openLpips(m, request.lpips, options.device, opened);
  const reference = await exactReference(m, options, request);
  const conditions = samples.teacher ? undefined : conditionTable(m, options.condition);
  const batchSize = options.batchSize ?? m.config.batch_size ?? 16;
  // A shard evaluates its batches of the whole evaluation: each sample in its own batch.
  if (options.shard) {
    const { first, end } = shardSamples(samples.total, batchSize, options.shard);
    Object.assign(samples, { first, numSamples: end - first });
  }
  return { m, sampler, samples, batchSize, features, lpips, reference, conditions };
}

/** The columns of the metrics `inputs` and `request` compute, all zero. */
function sampleColumns(inputs: EvalInputs, request: EvalRequest): SampleColumns {
  const n = inputs.samples.numSamples;
  const teacher = inputs.samples.teacher !== undefined;
  const { dim, classes } = inputs.features;
  const imageSize = sampleSize(inputs.m.imageShape);
  // The first previewImages samples of the whole evaluation that are this run's.
  const first = inputs.samples.first;
  const previewCount = Math.max(0, Math.min(request.previewImages, first + n) - first);
  const columns = {
    l2: new Float64Array(teacher ? n : 0),
    l1: new Float64Array(teacher ? n : 0),
    lpips: new Float64Array(teacher && inputs.lpips ? n : 0),
    exact: new Float64Array(inputs.reference ? n : 0),
    features: new Float64Array(request.wantFid ? n * dim : 0),
    logits: new Float64Array(request.quality ? n * classes : 0),
    preview: new Float32Array(previewCount * imageSize),
  };
  const table: Record<string, EvalColumn> = {
    l2: { data: columns.l2, row: 1 },
    l1: { data: columns.l1, row: 1 },
    lpips: { data: columns.lpips, row: 1 },
    exact: { data: columns.exact, row: 1 },
    features: { data: columns.features, row: dim },
    logits: { data: columns.logits, row: classes },
    preview: { data: columns.preview, row: imageSize, maxRows: previewCount },
  };
  return { ...columns, previewCount, table };
}

/**
 * What a checkpoint belongs to: everything the per-sample results depend on, so that a resumed
 * run can only continue the very same evaluation.
 */
function evalFingerprint(setup: EvalSetup, request: EvalRequest): Fingerprint {
  const { m, sampler, samples, features } = setup;
  const { teacher, seed } = samples;
  return {
    model: m.modelHash,
    solver: solverRecord(sampler),
    grid: { t1: Array.from(sampler.grid.t1), t2: Array.from(sampler.grid.t2) },
    num_samples: samples.numSamples,
    ...(samples.numSamples !== samples.total
      ? { samples: { first: samples.first, total: samples.total } }
      : {}),
    seed,
    batch_size: setup.batchSize,
    noise: teacher
      ? { teacher: resolve(teacher.dir), count: teacher.manifest.count }
      : { seed, prior_scale: m.denoiser.schedule.priorScale },
    features: features.model
      ? {
        model: isFeatureModel(request.featureSpec!)
          ? "(loaded)"
          : resolve(request.featureSpec!.path),
        output: features.model.outputName,
        dim: request.wantFid ? features.dim : 0,
        logits: request.quality ? { name: features.logitsName, classes: features.classes } : null,
      }
      : null,
    exact: setup.reference ? setup.reference.name : null,
    lpips: setup.lpips ? setup.lpips.name : null,
    preview: setup.columns.previewCount,
    ...(setup.conditions?.prompts ? { prompts: [...setup.conditions.prompts] } : {}),
  };
}

/** Where the sampling loop starts: after a checkpoint's samples, with its seconds so far. */
interface Resumed {
  done: number;
  priorSeconds: number;
}

/** Restores the columns from the checkpoint at `path`, if there is one of this evaluation. */
async function resumeFromCheckpoint(
  path: string,
  fingerprint: Fingerprint,
  setup: EvalSetup,
): Promise<Resumed> {
  const saved = await readEvalCheckpoint(path, fingerprint);
  if (!saved) return { done: 0, priorSeconds: 0 };
  const { numSamples } = setup.samples;
  // Batches are the unit of work: a checkpoint between batch boundaries is not one of ours.
  if (
    saved.done > numSamples || (saved.done % setup.batchSize !== 0 && saved.done !== numSamples)
  ) {
    throw new RangeError(
      `Checkpoint ${path} has ${saved.done} samples done: not a batch boundary of ${numSamples}`,
    );
  }
  restoreColumns(saved, setup.columns.table, path);
  return { done: saved.done, priorSeconds: saved.seconds };
}

/** A batch's starting latents x_T, and its conditions and teacher outputs where there are some. */
interface BatchInput {
  xT: Float64Array;
  condition?: Float32Array;
  teacherX?: Float32Array;
}

/** Samples `indices` of the teacher: its stored z (times the prior scale), outputs, conditions. */
async function teacherBatch(
  m: LoadedModel,
  teacher: Dataset,
  indices: readonly number[],
): Promise<BatchInput> {
  const zSize = sampleSize(m.sampleShape);
  const imageSize = sampleSize(m.imageShape);
  const priorScale = m.denoiser.schedule.priorScale;
  // Read together; of several bad samples the first by index is named, whichever failed first.
  const settled = await Promise.allSettled(indices.map((i) => teacher.read(i)));
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const samples = settled.map((r) => (r as PromiseFulfilledResult<DatasetSample>).value);
  const xT = new Float64Array(indices.length * zSize);
  const teacherX = new Float32Array(indices.length * imageSize);
  samples.forEach((s, b) => {
    for (let j = 0; j < zSize; j++) xT[b * zSize + j] = priorScale * s.z[j];
    teacherX.set(s.x, b * imageSize);
  });
  if (!samples[0].c) return { xT, teacherX };
  const csize = samples[0].c.length;
  const condition = new Float32Array(indices.length * csize);
  samples.forEach((s, b) => condition.set(s.c!, b * csize));
  return { xT, teacherX, condition };
}

/** Samples `indices` from seeded noise, as `generate` makes them; sample i gets row i mod rows. */
function seededBatch(
  m: LoadedModel,
  seed: number,
  indices: readonly number[],
  conditions: ConditionTable | undefined,
): BatchInput {
  const { xT } = initialNoise(seed, indices, {
    shape: m.sampleShape,
    priorScale: m.denoiser.schedule.priorScale,
  });
  if (!conditions) return { xT };
  const csize = conditions.data.length / conditions.rows;
  const condition = new Float32Array(indices.length * csize);
  indices.forEach((i, b) => {
    const row = i % conditions.rows;
    condition.set(conditions.data.subarray(row * csize, (row + 1) * csize), b * csize);
  });
  return { xT, condition };
}

/**
 * Scores one batch into the columns at row `start`: the distances to the teacher, the error
 * against the exact solution (of the raw solver output `out`), the features and logits of the
 * decoded `images`, and the preview images.
 */
async function scoreBatch(
  setup: EvalSetup,
  start: number,
  indices: readonly number[],
  batch: { input: BatchInput; out: Float64Array; images: Float32Array },
): Promise<void> {
  const { columns, features, lpips, reference } = setup;
  const { input, out, images } = batch;
  const count = indices.length;
  if (input.teacherX) {
    columns.l2.set(l2Distance(images, input.teacherX, count), start);
    columns.l1.set(l1Distance(images, input.teacherX, count), start);
    if (lpips) {
      const values = await lpips.loss.value(Float64Array.from(images), input.teacherX, count);
      columns.lpips.set(values, start);
    }
  }
  if (reference) {
    const exactX = await reference.solve(input.xT, indices);
    columns.exact.set(rmsDistance(exactX, out, count), start);
  }
  if (features.model) {
    const { model, fid, quality, logitsName } = features;
    const names = [...(fid ? [model.outputName] : []), ...(quality ? [logitsName] : [])];
    const outs = await model.run(images, count, names);
    if (fid) columns.features.set(outs[model.outputName].data, start * features.dim);
    if (quality) columns.logits.set(outs[logitsName].data, start * features.classes);
  }
  if (start < columns.previewCount) {
    const imageSize = sampleSize(setup.m.imageShape);
    const take = Math.min(columns.previewCount - start, count);
    columns.preview.set(images.subarray(0, take * imageSize), start * imageSize);
  }
}

/** Where the sampling loop starts and what its checkpoint writes record. */
interface LoopStart extends Resumed {
  /** `performance.now()` when this run's part of the work began. */
  started: number;
  fingerprint: Fingerprint;
}

/**
 * Samples and scores every batch from `from.done` on, reporting progress after each and saving
 * a checkpoint every `checkpointSeconds` (never after the last batch: the result follows).
 */
async function sampleAndScore(
  setup: EvalSetup,
  options: EvaluateOptions,
  checkpointSeconds: number,
  from: LoopStart,
): Promise<void> {
  const { m, sampler, samples, batchSize } = setup;
  const { numSamples, teacher } = samples;
  let lastSave = from.started;
  options.onProgress?.(from.done, numSamples);
  for (let start = from.done; start < numSamples; start += batchSize) {
    const count = Math.min(batchSize, numSamples - start);
    const indices = Array.from({ length: count }, (_, k) => samples.first + start + k);
    const input = teacher
      ? await teacherBatch(m, teacher, indices)
      : seededBatch(m, samples.seed, indices, setup.conditions);
    const condition = input.condition;
    const out = await runPlan(sampler.plan, m.denoiser, input.xT, condition ? { condition } : {});
    const images = await m.decode(out);
    await scoreBatch(setup, start, indices, { input, out, images });
    options.onBatch?.({ indices, images, imageShape: m.imageShape });
    const done = start + count;
    options.onProgress?.(done, numSamples);
    if (
      options.checkpoint !== undefined && done < numSamples &&
      performance.now() - lastSave >= checkpointSeconds * 1000
    ) {
      await writeEvalCheckpoint(options.checkpoint, {
        fingerprint: from.fingerprint,
        done,
        seconds: from.priorSeconds + (performance.now() - from.started) / 1000,
        arrays: columnArrays(setup.columns.table, done),
      });
      lastSave = performance.now();
    }
  }
}

/**
 * What the metrics of an evaluation are named and sized by, besides its per-sample columns:
 * JSON, so that a shard records it and a merge computes the same metrics from merged columns.
 */
export interface EvalMetricsInfo {
  /** FID: the feature dimension and how the result names the feature model and statistics. */
  fid?: { dim: number; features: string; ref: string };
  /** The classifier check: its threshold, logits output and class count. */
  quality?: { threshold: number; logits: string; classes: number };
  /** The teacher distances: the teacher dataset and the LPIPS model, as the result names them. */
  teacher?: { dir: string; solver: string; nfe: number; lpips_model?: string };
  /** The exact-solution error's reference. */
  exact?: { reference: string };
}

/** The per-sample values the metrics are computed from (an empty array: not computed). */
export interface EvalMetricColumns {
  /** Per-sample L2 (mean squared difference) to the teacher. */
  l2: Float64Array;
  /** Per-sample L1 (mean absolute difference) to the teacher. */
  l1: Float64Array;
  /** Per-sample LPIPS to the teacher. */
  lpips: Float64Array;
  /** Per-sample RMS error against the exact ODE solution. */
  exact: Float64Array;
  /** `classes` logits per sample. */
  logits: Float64Array;
}

/** FID's inputs: the samples' feature moments about `shift`, and the reference statistics. */
export interface EvalFidInput {
  /** Feature moments of the samples, about `shift`. */
  moments: FeatureMoments;
  /** The shift `c` the moments are about (the reference mean, so no digits cancel). */
  shift: ArrayLike<number>;
  /** Reference statistics (μ, Σ) of the real data. */
  ref: FeatureStats;
}

/**
 * The metrics of `n` samples from their per-sample columns and, for FID, their feature moments
 * (`lib/metrics/fid_moments.ts`): what one evaluation computes at its end, and what a merge of
 * its shards computes from theirs — the same function of the same numbers.
 */
export function metricsFromColumns(
  info: EvalMetricsInfo,
  columns: EvalMetricColumns,
  n: number,
  fid?: EvalFidInput,
): EvalMetrics {
  const metrics: EvalMetrics = {};
  if (info.fid && fid) {
    metrics.fid = fidFromStats(momentsStats(fid.moments, fid.shift), fid.ref);
    metrics.fidInfo = { ...info.fid };
  }
  if (info.quality) {
    const { threshold, logits, classes } = info.quality;
    metrics.quality = { ...classifierQuality(columns.logits, n, classes, threshold), logits };
  }
  if (info.teacher) {
    const { lpips_model, ...teacher } = info.teacher;
    metrics.teacher = {
      l2: meanStd(columns.l2),
      l1: meanStd(columns.l1),
      ...(lpips_model !== undefined ? { lpips: meanStd(columns.lpips), lpips_model } : {}),
      ...teacher,
    };
  }
  if (info.exact) metrics.exact = { rms: meanStd(columns.exact), ...info.exact };
  return metrics;
}

/** What the metrics of `setup` are named and sized by. */
function metricsInfo(setup: EvalSetup, request: EvalRequest): EvalMetricsInfo {
  const { features, samples, lpips, reference } = setup;
  const info: EvalMetricsInfo = {};
  if (features.ref && features.model) {
    const spec = request.featureSpec!;
    info.fid = {
      dim: features.dim,
      features: isFeatureModel(spec) ? "(loaded)" : resultPath(spec.path),
      ref: typeof request.fidRef === "string" ? resultPath(request.fidRef) : "(given)",
    };
  }
  if (request.quality) {
    const { threshold } = request;
    info.quality = { threshold, logits: features.logitsName, classes: features.classes };
  }
  if (samples.teacher) {
    info.teacher = {
      dir: resultPath(samples.teacher.dir),
      solver: samples.teacher.manifest.solver.name,
      nfe: samples.teacher.manifest.solver.nfe,
      ...(lpips ? { lpips_model: lpips.name } : {}),
    };
  }
  if (reference) info.exact = { reference: reference.name };
  return info;
}

/** The result document of a finished evaluation, its metrics still empty. */
function evalResult(setup: EvalSetup, seconds: number): EvalResult {
  const { m, sampler, samples } = setup;
  const schedule = m.denoiser.schedule;
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
      num_samples: samples.total,
      seed: samples.seed,
      batch_size: setup.batchSize,
      noise: samples.teacher ? "teacher" : "seed",
    },
    metrics: {},
    seconds,
    created: new Date().toISOString(),
  };
}

/**
 * A finished run of an evaluation, or of one shard of it ({@linkcode evaluateRun}): its
 * per-sample columns and what its metrics need besides.
 */
export interface EvalRun {
  /** The result document with empty `metrics` (`options.num_samples` is the whole evaluation's). */
  result: EvalResult;
  /** What the metrics are named and sized by. */
  info: EvalMetricsInfo;
  /** The samples run: `first … first + count − 1` of `total`. */
  samples: { first: number; count: number; total: number };
  /** Samples per batch: a batch is one block of the FID moments. */
  batchSize: number;
  /** The per-sample columns of the samples run, and `dim` features per sample (FID). */
  columns: EvalMetricColumns & { features: Float64Array; dim: number };
  /** The first decoded images of the whole evaluation that are this run's (`count` of them). */
  preview: { images: Float32Array; count: number };
  /** `[C, H, W]` of one decoded image. */
  imageShape: number[];
  /** FID reference statistics, when FID is computed. */
  fidRef?: FeatureStats;
  /** What the run's samples depend on (its checkpoint's fingerprint, without `samples`). */
  fingerprint: Fingerprint;
}

/** The metrics of a whole evaluation's run; FID from its features summed batch by batch. */
export function evalRunMetrics(run: EvalRun): EvalMetrics {
  const { columns, fidRef, samples, batchSize } = run;
  const fid = fidRef && run.info.fid
    ? {
      moments: treeMoments(columns.features, samples.count, batchSize, fidRef.mu),
      shift: fidRef.mu,
      ref: fidRef,
    }
    : undefined;
  return metricsFromColumns(run.info, columns, samples.count, fid);
}

/**
 * Evaluates one schedule: samples `numSamples` seeded samples with the chosen solver and grid
 * and computes every metric the options ask for (at least one is required).
 *
 * @param model A loaded model (left open), a validated config, or a config path.
 * @returns The result document (see {@linkcode writeEvalResult}).
 * @throws {RangeError} For bad numbers, a missing metric, mismatching statistics or datasets.
 * @throws {TypeError} For a feature model or graph that does not fit.
 * @throws {LockedError} When another evaluation owns the `checkpoint` (`lib/io/lock.ts`).
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
  if (options.shard !== undefined) {
    throw new TypeError(
      "evaluateSchedule() runs a whole evaluation: run a shard with evaluateShard()",
    );
  }
  const run = await evaluateRun(model, options);
  run.result.metrics = evalRunMetrics(run);
  return run.result;
}

/**
 * Runs an evaluation, or with `shard` one shard of it, up to its per-sample results: what
 * {@linkcode evaluateSchedule} computes its metrics from, and what a shard keeps for the merge.
 * The checkpoint is locked while it runs and removed once the run is complete.
 */
export async function evaluateRun(
  model: ModelInput,
  options: EvaluateOptions = {},
): Promise<EvalRun> {
  // Checks that need nothing loaded come first, so bad input fails fast.
  validateSamplerOptions(options);
  // The checkpoint is this evaluation's while it runs (its folder made, writable, not shared).
  const lock = options.checkpoint === undefined
    ? undefined
    : await lockOutput(options.checkpoint, { what: "eval" });
  try {
    return await evaluateOwned(model, options);
  } finally {
    await lock?.release();
  }
}

/** The {@linkcode EvalRun} of a finished setup. */
function evalRun(setup: EvalSetup, request: EvalRequest, seconds: number): EvalRun {
  const { columns, samples, features } = setup;
  const { samples: _range, preview: _preview, ...fingerprint } = evalFingerprint(setup, request);
  return {
    result: evalResult(setup, seconds),
    info: metricsInfo(setup, request),
    samples: { first: samples.first, count: samples.numSamples, total: samples.total },
    batchSize: setup.batchSize,
    columns: { ...columns, dim: features.dim },
    preview: { images: columns.preview, count: columns.previewCount },
    imageShape: [...setup.m.imageShape],
    ...(features.ref && request.wantFid ? { fidRef: features.ref } : {}),
    fingerprint: { ...fingerprint, num_samples: samples.total },
  };
}

/** {@linkcode evaluateRun} once its checkpoint is locked. */
async function evaluateOwned(model: ModelInput, options: EvaluateOptions): Promise<EvalRun> {
  // The config (read, not yet loaded) supplies the FID defaults of its `eval` section.
  if (typeof model === "string" || model instanceof URL) model = await loadModelConfig(model);
  const request = evalRequest(isLoadedModel(model) ? model.config : model, options);
  const owned = !isLoadedModel(model);
  const m = isLoadedModel(model)
    ? model
    : await loadModel(model, { device: options.device, threads: options.threads });
  const opened: Opened = {};
  try {
    const inputs = await openInputs(m, request, options, opened);
    const setup: EvalSetup = { ...inputs, columns: sampleColumns(inputs, request) };
    const checkpoint = options.checkpoint;
    const fingerprint = checkpoint === undefined ? {} : evalFingerprint(setup, request);
    const resumed = checkpoint === undefined
      ? { done: 0, priorSeconds: 0 }
      : await resumeFromCheckpoint(checkpoint, fingerprint, setup);
    const started = performance.now();
    await sampleAndScore(setup, options, request.checkpointSeconds, {
      ...resumed,
      started,
      fingerprint,
    });
    const { preview, previewCount } = setup.columns;
    if (previewCount > 0) options.onPreview?.(preview, previewCount, m.imageShape);
    const seconds = resumed.priorSeconds + (performance.now() - started) / 1000;
    const run = evalRun(setup, request, seconds);
    // The result is complete: the caller writes it, the partial state has done its job.
    if (checkpoint !== undefined) await removeEvalCheckpoint(checkpoint);
    return run;
  } finally {
    await opened.features?.close();
    await opened.lpips?.close();
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
