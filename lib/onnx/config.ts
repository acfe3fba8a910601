/**
 * Model configuration files: a YAML document that says how to call an ONNX denoiser.
 *
 * The config names the ONNX file, its input/output names, what the network predicts
 * (ε, x0, v or flow velocity), which time variable it takes, the forward process it was
 * trained with and the sample shape. Every field is validated when the file is read, so a
 * typo fails at load time with the field path and the bad value, never mid-sampling.
 *
 * Example (`configs/gmm-mnist.yml`):
 *
 * ```yaml
 * name: gmm-mnist
 * model:
 *   path: ../models/gmm-mnist/model.onnx
 *   inputs: { x: x, t: sigma }
 *   output: denoised
 *   prediction: x0
 *   time_input: sigma
 * schedule: { kind: ve, sigma_max: 80, sigma_min: 0.002 }
 * shape: [1, 28, 28]
 * ```
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { parseYaml } from "../deps.ts";
import { parseDevice } from "./device.ts";
import { fetchCached, isUrl, resolveReference, verifySha256 } from "../io/remote.ts";
import { readOnnxSignature } from "./session.ts";
import { readNpy } from "../io/npy.ts";
import {
  isPipelineFolder,
  mergeConfigDocuments,
  pipelineDocument,
  PipelineFolderError,
} from "./pipeline_folder.ts";
import {
  DEFAULT_BETA_RANGE,
  DISCRETE_BETA_PRESETS,
  type DiscreteBetaPreset,
  discreteBetas,
  flowSchedule,
  type NoiseSchedule,
  veSchedule,
  vpCosineSchedule,
  vpDiscreteSchedule,
  vpLinearSchedule,
} from "../noise_schedule.ts";

/** What the network outputs: noise ε, clean data x0, velocity v = αε − σx0, or flow velocity ε − x0. */
export type PredictionType = "eps" | "x0" | "v" | "flow";
/** The accepted {@linkcode PredictionType} values. */
export const PREDICTION_TYPES: readonly PredictionType[] = ["eps", "x0", "v", "flow"];

/**
 * The time variable fed to the network for solver time t:
 * - `sigma`: the EDM noise level σ_t/α_t (equals t for VE),
 * - `t`: the continuous time t itself,
 * - `discrete`: the DDPM step index `(t − 1/Nd)·Nd` (needs a `vp_discrete` schedule),
 * - `lambda`: the half-log-SNR λ_t,
 * - `log_sigma_quarter`: EDM's `c_noise = ¼ ln(σ_t/α_t)`.
 */
export type TimeInput = "sigma" | "t" | "discrete" | "lambda" | "log_sigma_quarter";
/** The accepted {@linkcode TimeInput} values. */
export const TIME_INPUTS: readonly TimeInput[] = [
  "sigma",
  "t",
  "discrete",
  "lambda",
  "log_sigma_quarter",
];

/** Shape of the time input: one value per sample (`[B]`) or one for the batch (`[]` or `[1]`). */
export type TimeShape = "batch" | "scalar";

/** Classifier-free guidance / conditioning input (YAML `model.condition`). */
export interface ConditionConfig {
  /** ONNX input name of the condition (e.g. a class one-hot or a text embedding). */
  input: string;
  /** Shape of one sample's condition, without the batch axis, e.g. `[10]`. */
  shape: number[];
  /** Guidance scale w: `out = u + w·(c − u)` on the raw network output. `1` = no guidance. @default {1} */
  guidance_scale: number;
  /**
   * The unconditional input: `"zeros"`; `"negative_prompt"`, the text encoder's embedding of the
   * negative prompt (the empty prompt unless one is given; needs a `text_encoder` section); or
   * the absolute path of a float `.npy` holding one sample's condition (written relative to the
   * config file in YAML). @default {"zeros"}
   */
  uncond: string;
}

/**
 * The text encoder of a text-conditioned model (YAML `text_encoder`): prompts are tokenised with
 * the tokenizer files of `tokenizer` (a Hugging Face tokenizer folder: `tokenizer.json`, or CLIP's
 * `vocab.json` and `merges.txt`) and encoded once each; `output` is the condition.
 */
export interface TextEncoderConfig {
  /** Absolute path of the text encoder's ONNX file (relative to the config file in YAML). */
  path: string;
  /** ONNX input name of the token ids. @default {"input_ids"} */
  input: string;
  /** ONNX output name of the per-token hidden states. @default {"last_hidden_state"} */
  output: string;
  /** Absolute path of the tokenizer folder (relative to the config file in YAML). */
  tokenizer: string;
  /** Tokens per prompt: longer prompts are cut, shorter ones padded. @default {77} */
  max_length: number;
}

/** The network itself (YAML `model`). */
export interface ModelSection {
  /** Absolute path of the ONNX file (written relative to the config file in YAML). */
  path: string;
  /** ONNX input names of the noisy sample (`x`) and the time variable (`t`). */
  inputs: { x: string; t: string };
  /** ONNX output name of the prediction. */
  output: string;
  /** What the output predicts. */
  prediction: PredictionType;
  /** Which time variable the network takes. */
  time_input: TimeInput;
  /** Shape of the time input. @default {"batch"} */
  time_shape: TimeShape;
  /** Conditioning and guidance; absent for unconditional models. */
  condition?: ConditionConfig;
}

/** VE / EDM schedule: α = 1, σ = t ∈ [sigma_min, sigma_max]. */
export interface VeScheduleConfig {
  /** Selects this schedule (YAML `schedule.kind`). */
  kind: "ve";
  /** Largest noise level σ_max (= t at T). @default {80} */
  sigma_max: number;
  /** Smallest noise level σ_min (= t at eps). @default {0.002} */
  sigma_min: number;
}

/** Continuous VP schedule with linear β(t). */
export interface VpLinearScheduleConfig {
  /** Selects this schedule (YAML `schedule.kind`). */
  kind: "vp_linear";
  /** β(0), the noise rate at t = 0. @default {0.1} */
  beta0: number;
  /** β(1), the noise rate at t = 1. @default {20} */
  beta1: number;
  /** Time T where sampling starts. @default {1} */
  t_max: number;
  /** Time eps where sampling ends. @default {0.001} */
  t_min: number;
}

/** Discrete DDPM/LDM schedule from `alphas_cumprod` (a `.npy` path) or a `betas` preset. */
export interface VpDiscreteScheduleConfig {
  /** Selects this schedule (YAML `schedule.kind`). */
  kind: "vp_discrete";
  /** Absolute path of a 1-D `.npy` of ᾱ_n (relative to the config file in YAML). */
  alphas_cumprod?: string;
  /** β preset when no `alphas_cumprod` file is given. @default {"scaled_linear"} */
  betas?: DiscreteBetaPreset;
  /** First β of a `linear` or `scaled_linear` preset. @default {the preset's: 1e-4, 0.00085} */
  beta_start?: number;
  /** Last β of a `linear` or `scaled_linear` preset. @default {the preset's: 0.02, 0.012} */
  beta_end?: number;
  /** Number of discrete steps Nd of the `betas` preset. @default {1000} */
  num_steps: number;
}

/** Cosine VP schedule (improved DDPM). */
export interface VpCosineScheduleConfig {
  /** Selects this schedule (YAML `schedule.kind`). */
  kind: "vp_cosine";
  /** Offset s of the improved-DDPM cosine schedule. @default {0.008} */
  s: number;
  /** Time T where sampling starts. @default {0.9946} */
  t_max: number;
  /** Time eps where sampling ends. @default {0.001} */
  t_min: number;
}

/** Rectified-flow schedule α = 1 − t, σ = t. */
export interface FlowScheduleConfig {
  /** Selects this schedule (YAML `schedule.kind`). */
  kind: "flow";
  /** Time T where sampling starts (σ = t). @default {0.999} */
  t_max: number;
  /** Time eps where sampling ends. @default {0.001} */
  t_min: number;
}

/** The forward process (YAML `schedule`). */
export type ScheduleConfig =
  | VeScheduleConfig
  | VpLinearScheduleConfig
  | VpDiscreteScheduleConfig
  | VpCosineScheduleConfig
  | FlowScheduleConfig;

/** Latent decoder of latent diffusion models (YAML `decoder`): image = decode(z / scale_factor). */
export interface DecoderConfig {
  /** Absolute path of the decoder ONNX file (relative to the config file in YAML). */
  path: string;
  /** ONNX input name of the latent. */
  input: string;
  /** ONNX output name of the image. */
  output: string;
  /** Latent scale factor (0.18215 for Stable Diffusion 1.x). @default {1} */
  scale_factor: number;
  /**
   * Shape of one decoded image, when the decoder's output dims are symbolic; without it ld3
   * decodes one latent at load to learn it. @default {the decoder's declared output dims}
   */
  image_shape?: number[];
}

/**
 * Value range a feature model expects (YAML `eval.features.input_range`); images in `[-1, 1]`
 * are mapped affinely onto it.
 */
export type InputRange = "[-1,1]" | "[0,1]" | "[0,255]";

/** Every {@linkcode InputRange}. */
export const INPUT_RANGES: readonly InputRange[] = ["[-1,1]", "[0,1]", "[0,255]"];

/**
 * The feature extractor for FID (YAML `eval.features`): an ONNX model that maps images to
 * feature vectors, e.g. the bundled MNIST classifier or a user's Inception-v3 export. A plain
 * string in YAML is short for `{ path: ... }`.
 */
export interface EvalFeaturesConfig {
  /** Absolute path of the feature ONNX file (written relative to the config file in YAML). */
  path: string;
  /** ONNX input name of the images. @default {"image"} */
  input: string;
  /** ONNX output name of the features. @default {"features"} */
  output: string;
  /** Value range the feature model expects; images are mapped from [-1, 1] to it. @default {"[-1,1]"} */
  input_range: InputRange;
}

/**
 * How to score samples of this model (YAML `eval`): the defaults of `deno task eval`,
 * `deno task bench:schedules` and `deno task demo` when no `--features` / `--fid_ref` is given.
 */
export interface EvalConfig {
  /** Feature extractor for FID; absent when the config names none. */
  features?: EvalFeaturesConfig;
  /**
   * Absolute path of the FID reference statistics, an `.npz` with `mu` and `sigma` (the EDM
   * fid-refs layout; written relative to the config file in YAML). Absent when none.
   */
  fid_ref?: string;
  /**
   * Absolute path of an LPIPS ONNX model (`lib/metrics/lpips.ts`): eval adds the LPIPS distance to the
   * teacher when a teacher dataset is given. Absent when none.
   */
  lpips?: string;
}

/**
 * A validated model config: the YAML document with defaults filled in and paths resolved.
 * Field names are the YAML keys.
 *
 * Example with every optional section (`configs/mnist-edm.yml` uses `eval`):
 *
 * ```yaml
 * name: mnist-edm
 * model:
 *   path: ../models/mnist-edm/model.onnx      # relative to this file
 *   inputs: { x: x, t: sigma }
 *   output: denoised
 *   prediction: x0                            # eps | x0 | v | flow
 *   time_input: sigma                         # sigma | t | discrete | lambda | log_sigma_quarter
 *   time_shape: batch                         # batch | scalar
 *   # condition: { input: y, shape: [10], guidance_scale: 2, uncond: zeros }
 * schedule: { kind: ve, sigma_max: 80, sigma_min: 0.002 }
 * shape: [1, 28, 28]
 * # decoder: { path: vae.onnx, input: z, output: image, scale_factor: 0.18215 }
 * data_range: [-1, 1]
 * device: cpu                                 # cpu | cuda | cuda:<index> | webgpu
 * batch_size: 64
 * # threads: 2                                # CPU threads per session; default one per core
 * eval:                                       # FID defaults of eval, bench:schedules, demo
 *   features:                                 # or just the path
 *     path: ../models/mnist-features/model.onnx
 *     input: image                            # default image
 *     output: features                        # default features
 *     input_range: "[-1,1]"                   # [-1,1] | [0,1] | [0,255]; default [-1,1]
 *   fid_ref: ../models/mnist-features/mnist_test_stats.npz
 *   lpips: lpips-vgg.onnx                     # optional: LPIPS to the teacher in eval
 * ```
 */
export interface ModelConfig {
  /** Short model name used in reports and error messages. */
  name: string;
  /** Path or URL of the YAML file this config was read from (as given to the loader). */
  source: string;
  /**
   * Expected SHA-256 (hex) of files the config names (YAML `sha256:`, keyed there by the path
   * as written, here by the resolved path or URL): checked before a file is used or cached.
   */
  sha256?: Record<string, string>;
  /** The ONNX network and how to call it. */
  model: ModelSection;
  /** The forward process the network was trained with. */
  schedule: ScheduleConfig;
  /** Shape of one sample (the latent for latent models), without the batch axis. */
  shape: number[];
  /** Latent decoder; absent for pixel-space models. */
  decoder?: DecoderConfig;
  /** The text encoder of a text-conditioned model; absent otherwise. */
  text_encoder?: TextEncoderConfig;
  /**
   * The export folder (Optimum / diffusers ONNX layout) the config was read from, or that its
   * YAML names with `pipeline:`; absent for a plain YAML config.
   */
  pipeline?: string;
  /** Range [lo, hi] of the decoded data (images are mapped from it to [-1, 1]). @default {[-1, 1]} */
  data_range: [number, number];
  /** Execution device: `cpu`, `cuda`, `cuda:<index>` or `webgpu`. @default {"cpu"} */
  device: string;
  /** Largest batch passed to one network call. @default {16} */
  batch_size: number;
  /**
   * CPU threads of each ONNX Runtime session (`--threads` overrides it).
   * @default {one per core: defaultThreads() in session.ts}
   */
  threads?: number;
  /** FID feature model and reference statistics; absent when the config has no `eval` section. */
  eval?: EvalConfig;
}

/** A config file problem, naming the file and the field path (e.g. `model.prediction`). */
export class ConfigError extends Error {
  /** Dotted path of the offending field (`""` for the whole document). */
  readonly field: string;
  /** The config file. */
  readonly file: string;
  /** `detail` says what is wrong with `field` of `file`; the message names all three. */
  constructor(file: string, field: string, detail: string) {
    super(`Invalid config ${file}: ${field ? `field "${field}" ` : ""}${detail}`);
    this.name = "ConfigError";
    this.field = field;
    this.file = file;
  }
}

type Obj = Record<string, unknown>;

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Field-by-field reader of an untrusted YAML document. */
class FieldReader {
  constructor(readonly file: string, readonly dir: string) {}

  fail(field: string, detail: string): never {
    throw new ConfigError(this.file, field, detail);
  }

  /** A mapping whose keys are all in `allowed` (any keys when `allowed` is null). */
  object(value: unknown, field: string, allowed: readonly string[] | null): Obj {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      this.fail(field, `must be a mapping: got ${show(value)}`);
    }
    const unknown = allowed ? Object.keys(value).filter((key) => !allowed.includes(key)) : [];
    if (allowed && unknown.length > 0) {
      const where = field ? `${field}.${unknown[0]}` : unknown[0];
      this.fail(where, `is not a known field (expected one of ${allowed.join(", ")})`);
    }
    return value as Obj;
  }

  required(obj: Obj, key: string, field: string): unknown {
    if (obj[key] === undefined || obj[key] === null) this.fail(field, "is required");
    return obj[key];
  }

  string(obj: Obj, key: string, field: string, fallback?: string): string {
    const v = fallback !== undefined && obj[key] == null
      ? fallback
      : this.required(obj, key, field);
    if (typeof v !== "string" || v.length === 0) {
      this.fail(field, `must be a non-empty string: got ${show(v)}`);
    }
    return v;
  }

  number(obj: Obj, key: string, field: string, fallback?: number): number {
    const v = fallback !== undefined && obj[key] == null
      ? fallback
      : this.required(obj, key, field);
    if (typeof v !== "number" || !Number.isFinite(v)) {
      this.fail(field, `must be a finite number: got ${show(v)}`);
    }
    return v;
  }

  positive(obj: Obj, key: string, field: string, fallback?: number): number {
    const v = this.number(obj, key, field, fallback);
    if (!(v > 0)) this.fail(field, `must be positive: got ${show(v)}`);
    return v;
  }

  integer(obj: Obj, key: string, field: string, fallback?: number): number {
    const v = this.number(obj, key, field, fallback);
    if (!Number.isInteger(v) || v < 1) {
      this.fail(field, `must be a positive integer: got ${show(v)}`);
    }
    return v;
  }

  oneOf<T extends string>(
    obj: Obj,
    key: string,
    field: string,
    choices: readonly T[],
    fallback?: T,
  ): T {
    const v = fallback !== undefined && obj[key] == null
      ? fallback
      : this.required(obj, key, field);
    if (!choices.includes(v as T)) {
      this.fail(field, `must be one of ${choices.join(", ")}: got ${show(v)}`);
    }
    return v as T;
  }

  shape(obj: Obj, key: string, field: string): number[] {
    const v = this.required(obj, key, field);
    if (!Array.isArray(v) || v.length === 0 || !v.every((d) => Number.isInteger(d) && d > 0)) {
      this.fail(field, `must be a non-empty list of positive integers: got ${show(v)}`);
    }
    return v as number[];
  }

  path(obj: Obj, key: string, field: string): string {
    return this.resolvePath(this.string(obj, key, field));
  }

  /** A path as written, relative to the config: a remote config's become URLs beside it. */
  resolvePath(value: string): string {
    if (isUrl(this.dir) || isUrl(value)) return resolveReference(this.dir, value);
    return resolve(this.dir, value);
  }
}

function readSchedule(r: FieldReader, value: unknown): ScheduleConfig {
  const kinds = ["ve", "vp_linear", "vp_discrete", "vp_cosine", "flow"] as const;
  if (value === undefined || value === null) r.fail("schedule", "is required");
  const kind = r.oneOf(r.object(value, "schedule", null), "kind", "schedule.kind", kinds);
  const f = (k: string) => `schedule.${k}`;
  switch (kind) {
    case "ve": {
      const o = r.object(value, "schedule", ["kind", "sigma_max", "sigma_min"]);
      const config: VeScheduleConfig = {
        kind,
        sigma_max: r.positive(o, "sigma_max", f("sigma_max"), 80),
        sigma_min: r.positive(o, "sigma_min", f("sigma_min"), 0.002),
      };
      if (!(config.sigma_max > config.sigma_min)) {
        r.fail(
          f("sigma_max"),
          `must exceed sigma_min ${config.sigma_min}: got ${config.sigma_max}`,
        );
      }
      return config;
    }
    case "vp_linear": {
      const o = r.object(value, "schedule", ["kind", "beta0", "beta1", "t_max", "t_min"]);
      const config: VpLinearScheduleConfig = {
        kind,
        beta0: r.number(o, "beta0", f("beta0"), 0.1),
        beta1: r.positive(o, "beta1", f("beta1"), 20),
        t_max: r.positive(o, "t_max", f("t_max"), 1),
        t_min: r.positive(o, "t_min", f("t_min"), 1e-3),
      };
      if (!(config.beta1 > config.beta0 && config.beta0 >= 0)) {
        r.fail(f("beta1"), `must exceed beta0 ${config.beta0} >= 0: got ${config.beta1}`);
      }
      return checkTimes(r, config);
    }
    case "vp_discrete":
      return readVpDiscrete(r, value);
    case "vp_cosine": {
      const o = r.object(value, "schedule", ["kind", "s", "t_max", "t_min"]);
      const config: VpCosineScheduleConfig = {
        kind,
        s: r.positive(o, "s", f("s"), 0.008),
        t_max: r.positive(o, "t_max", f("t_max"), 0.9946),
        t_min: r.positive(o, "t_min", f("t_min"), 1e-3),
      };
      if (!(config.t_max < 1)) r.fail(f("t_max"), `must be below 1: got ${config.t_max}`);
      return checkTimes(r, config);
    }
    case "flow": {
      const o = r.object(value, "schedule", ["kind", "t_max", "t_min"]);
      const config: FlowScheduleConfig = {
        kind,
        t_max: r.positive(o, "t_max", f("t_max"), 0.999),
        t_min: r.positive(o, "t_min", f("t_min"), 1e-3),
      };
      if (!(config.t_max < 1)) r.fail(f("t_max"), `must be below 1: got ${config.t_max}`);
      return checkTimes(r, config);
    }
  }
}

/** `schedule` of kind `vp_discrete`: an `alphas_cumprod` file, or a β preset and its range. */
function readVpDiscrete(r: FieldReader, value: unknown): VpDiscreteScheduleConfig {
  const f = (k: string) => `schedule.${k}`;
  const o = r.object(value, "schedule", [
    "kind",
    "alphas_cumprod",
    "betas",
    "beta_start",
    "beta_end",
    "num_steps",
  ]);
  if (o.alphas_cumprod != null) {
    for (const key of ["betas", "beta_start", "beta_end"]) {
      if (o[key] != null) r.fail(f(key), "cannot be combined with schedule.alphas_cumprod");
    }
    if (o.num_steps != null) {
      r.fail(f("num_steps"), "comes from the alphas_cumprod file; remove it");
    }
    return {
      kind: "vp_discrete",
      alphas_cumprod: r.path(o, "alphas_cumprod", f("alphas_cumprod")),
      num_steps: 0,
    };
  }
  const betas = r.oneOf(o, "betas", f("betas"), DISCRETE_BETA_PRESETS, "scaled_linear");
  const config: VpDiscreteScheduleConfig = {
    kind: "vp_discrete",
    betas,
    num_steps: r.integer(o, "num_steps", f("num_steps"), 1000),
  };
  if (betas === "squaredcos_cap_v2") {
    for (const key of ["beta_start", "beta_end"]) {
      if (o[key] != null) r.fail(f(key), `does not apply to betas ${betas}`);
    }
    return config;
  }
  if (o.beta_start == null && o.beta_end == null) return config;
  const defaults = DEFAULT_BETA_RANGE[betas];
  config.beta_start = r.positive(o, "beta_start", f("beta_start"), defaults.start);
  config.beta_end = r.positive(o, "beta_end", f("beta_end"), defaults.end);
  if (!(config.beta_end > config.beta_start && config.beta_end < 1)) {
    r.fail(
      f("beta_end"),
      `must lie between beta_start ${config.beta_start} and 1: got ${config.beta_end}`,
    );
  }
  return config;
}

function readDevice(r: FieldReader, top: Obj): string {
  const device = r.string(top, "device", "device", "cpu");
  try {
    parseDevice(device);
  } catch {
    r.fail("device", `must be cpu, cuda, cuda:<index> or webgpu: got ${show(device)}`);
  }
  return device;
}

function readEval(r: FieldReader, value: unknown): EvalConfig {
  const e = r.object(value, "eval", ["features", "fid_ref", "lpips"]);
  const config: EvalConfig = {};
  if (e.features != null) {
    const f = typeof e.features === "string"
      ? { path: e.features }
      : r.object(e.features, "eval.features", ["path", "input", "output", "input_range"]);
    config.features = {
      path: r.path(f, "path", "eval.features.path"),
      input: r.string(f, "input", "eval.features.input", "image"),
      output: r.string(f, "output", "eval.features.output", "features"),
      input_range: r.oneOf(f, "input_range", "eval.features.input_range", INPUT_RANGES, "[-1,1]"),
    };
  }
  if (e.fid_ref != null) config.fid_ref = r.path(e, "fid_ref", "eval.fid_ref");
  if (e.lpips != null) config.lpips = r.path(e, "lpips", "eval.lpips");
  return config;
}

function checkTimes<T extends { t_max: number; t_min: number }>(r: FieldReader, config: T): T {
  if (!(config.t_max > config.t_min)) {
    r.fail("schedule.t_max", `must exceed t_min ${config.t_min}: got ${config.t_max}`);
  }
  return config;
}

/** `model.condition`: the condition input, its shape and classifier-free guidance. */
function readCondition(r: FieldReader, value: unknown, model: ModelSection): ConditionConfig {
  const c = r.object(value, "model.condition", ["input", "shape", "guidance_scale", "uncond"]);
  const uncond = r.string(c, "uncond", "model.condition.uncond", "zeros");
  const condition: ConditionConfig = {
    input: r.string(c, "input", "model.condition.input"),
    shape: r.shape(c, "shape", "model.condition.shape"),
    guidance_scale: r.number(c, "guidance_scale", "model.condition.guidance_scale", 1),
    uncond: uncond === "zeros" || uncond === "negative_prompt"
      ? uncond
      : r.path(c, "uncond", "model.condition.uncond"),
  };
  if ([model.inputs.x, model.inputs.t].includes(condition.input)) {
    r.fail(
      "model.condition.input",
      `must differ from the x and t inputs: got ${show(condition.input)}`,
    );
  }
  return condition;
}

/** `text_encoder`: the text encoder's graph, its names, the tokenizer folder and length. */
function readTextEncoder(r: FieldReader, value: unknown): TextEncoderConfig {
  const t = r.object(value, "text_encoder", ["path", "input", "output", "tokenizer", "max_length"]);
  return {
    path: r.path(t, "path", "text_encoder.path"),
    input: r.string(t, "input", "text_encoder.input", "input_ids"),
    output: r.string(t, "output", "text_encoder.output", "last_hidden_state"),
    tokenizer: r.path(t, "tokenizer", "text_encoder.tokenizer"),
    max_length: r.integer(t, "max_length", "text_encoder.max_length", 77),
  };
}

/**
 * Validate a parsed YAML document as a model config (no file system access).
 *
 * @param doc the parsed YAML value
 * @param source the config file path, for messages and to resolve relative paths
 * @throws {ConfigError} naming the first bad field
 */
export function validateModelConfig(doc: unknown, source: string): ModelConfig {
  const base = isUrl(source) ? new URL(source).href : dirname(resolve(source));
  const r = new FieldReader(source, base);
  const top = r.object(doc, "", [
    "name",
    "model",
    "schedule",
    "shape",
    "decoder",
    "data_range",
    "device",
    "batch_size",
    "threads",
    "eval",
    "sha256",
    "text_encoder",
    "pipeline",
  ]);
  if (top.pipeline != null) {
    r.fail("pipeline", "is read by loadModelConfig, which reads the export folder it names");
  }
  const name = r.string(top, "name", "name");

  const m = r.object(r.required(top, "model", "model"), "model", [
    "path",
    "inputs",
    "output",
    "prediction",
    "time_input",
    "time_shape",
    "condition",
  ]);
  const inputs = r.object(r.required(m, "inputs", "model.inputs"), "model.inputs", ["x", "t"]);
  const model: ModelSection = {
    path: r.path(m, "path", "model.path"),
    inputs: {
      x: r.string(inputs, "x", "model.inputs.x"),
      t: r.string(inputs, "t", "model.inputs.t"),
    },
    output: r.string(m, "output", "model.output"),
    prediction: r.oneOf(m, "prediction", "model.prediction", PREDICTION_TYPES),
    time_input: r.oneOf(m, "time_input", "model.time_input", TIME_INPUTS),
    time_shape: r.oneOf(m, "time_shape", "model.time_shape", ["batch", "scalar"], "batch"),
  };
  if (m.condition != null) model.condition = readCondition(r, m.condition, model);
  if (model.inputs.x === model.inputs.t) {
    r.fail("model.inputs.t", `must differ from model.inputs.x: got ${show(model.inputs.t)}`);
  }

  const schedule = readSchedule(r, top.schedule);
  if (model.time_input === "discrete" && schedule.kind !== "vp_discrete") {
    r.fail(
      "model.time_input",
      `"discrete" needs schedule.kind vp_discrete: got ${show(schedule.kind)}`,
    );
  }

  const textEncoder = top.text_encoder != null ? readTextEncoder(r, top.text_encoder) : undefined;
  if (model.condition?.uncond === "negative_prompt" && !textEncoder) {
    r.fail("model.condition.uncond", '"negative_prompt" needs a text_encoder section');
  }
  let decoder: DecoderConfig | undefined;
  if (top.decoder != null) {
    const d = r.object(top.decoder, "decoder", [
      "path",
      "input",
      "output",
      "scale_factor",
      "image_shape",
    ]);
    decoder = {
      path: r.path(d, "path", "decoder.path"),
      input: r.string(d, "input", "decoder.input"),
      output: r.string(d, "output", "decoder.output"),
      scale_factor: r.positive(d, "scale_factor", "decoder.scale_factor", 1),
      ...(d.image_shape != null
        ? { image_shape: r.shape(d, "image_shape", "decoder.image_shape") }
        : {}),
    };
  }

  const range: unknown = top.data_range ?? [-1, 1];
  if (
    !Array.isArray(range) || range.length !== 2 ||
    !range.every((v) => typeof v === "number" && Number.isFinite(v)) || !(range[1] > range[0])
  ) {
    r.fail("data_range", `must be two numbers [lo, hi] with lo < hi: got ${show(range)}`);
  }

  return {
    name,
    source,
    model,
    schedule,
    shape: r.shape(top, "shape", "shape"),
    decoder,
    ...(textEncoder ? { text_encoder: textEncoder } : {}),
    data_range: [(range as number[])[0], (range as number[])[1]],
    device: readDevice(r, top),
    batch_size: r.integer(top, "batch_size", "batch_size", 16),
    ...(top.threads != null ? { threads: r.integer(top, "threads", "threads") } : {}),
    ...(top.eval != null ? { eval: readEval(r, top.eval) } : {}),
    ...(top.sha256 != null ? { sha256: readHashes(r, top.sha256) } : {}),
  };
}

/** `sha256:` — the expected hash of files the config names, keyed by their path as written. */
function readHashes(r: FieldReader, value: unknown): Record<string, string> {
  const o = r.object(value, "sha256", null);
  const hashes: Record<string, string> = {};
  for (const key of Object.keys(o)) {
    const hex = o[key];
    if (typeof hex !== "string" || !/^[0-9a-fA-F]{64}$/.test(hex)) {
      r.fail(`sha256.${key}`, `must be 64 hexadecimal digits: got ${show(hex)}`);
    }
    hashes[r.resolvePath(key)] = (hex as string).toLowerCase();
  }
  return hashes;
}

/**
 * Parse and validate config text.
 *
 * @throws {ConfigError} for malformed YAML or a bad field
 */
export function parseModelConfig(text: string, source: string): ModelConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(source, "", `malformed YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  return validateModelConfig(doc, source);
}

/**
 * Read, parse and validate a model config file or URL, checking that every file it names exists
 * (or can be fetched, for a remote config: see `lib/io/remote.ts`), matches its `sha256:` entry
 * when it has one, and that its schedule can be built. Remote files are downloaded once into
 * the cache, and the returned config names their local copies.
 *
 * @throws {ConfigError} for an unreadable file, malformed YAML, a bad field, a missing file or a
 * hash that does not match
 */
export async function loadModelConfig(pathOrUrl: string | URL): Promise<ModelConfig> {
  const source = pathOrUrl instanceof URL ? pathOrUrl.href : pathOrUrl;
  const config = !isUrl(source) && await isPipelineFolder(source)
    ? { ...validateModelConfig(await folderDocument(source), source), pipeline: resolve(source) }
    : await readConfigFile(source);
  for (const [field, get, set] of CONFIG_FILES) {
    const path = get(config);
    if (path === undefined) continue;
    set(config, await localFile(config, field, path));
  }
  if (config.text_encoder) await checkFolder(config, "text_encoder.tokenizer");
  await scheduleFromConfig(config);
  return config;
}

/** The config document of an export folder, its problems as {@linkcode ConfigError}s. */
async function folderDocument(folder: string): Promise<Record<string, unknown>> {
  try {
    return await pipelineDocument(folder);
  } catch (e) {
    if (e instanceof PipelineFolderError) {
      throw new ConfigError(
        e.file,
        e.field,
        e.message.slice(e.file.length + 2).replace(/^field "[^"]*" /, ""),
      );
    }
    throw e;
  }
}

/** A YAML config file or URL; one that names an export folder (`pipeline:`) laid over it. */
async function readConfigFile(source: string): Promise<ModelConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(isUrl(source) ? await fetchCached(source) : source);
  } catch (e) {
    throw new ConfigError(source, "", `cannot be read: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(source, "", `malformed YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  const pipeline = (doc as Record<string, unknown> | null)?.pipeline;
  if (pipeline == null || typeof doc !== "object" || Array.isArray(doc)) {
    return validateModelConfig(doc, source);
  }
  if (typeof pipeline !== "string" || pipeline === "" || isUrl(source)) {
    throw new ConfigError(
      source,
      "pipeline",
      `must name a local export folder (with ${"model_index.json"}): got ${
        JSON.stringify(pipeline)
      }`,
    );
  }
  const folder = resolve(dirname(resolve(source)), pipeline);
  if (!await isPipelineFolder(folder)) {
    throw new ConfigError(
      source,
      "pipeline",
      `is not an export folder with model_index.json: ${folder}`,
    );
  }
  const { pipeline: _, ...over } = doc as Record<string, unknown>;
  const merged = mergeConfigDocuments(await folderDocument(folder), over);
  return { ...validateModelConfig(merged, source), pipeline: folder };
}

/** Checks that a folder a config names exists. */
async function checkFolder(config: ModelConfig, field: "text_encoder.tokenizer"): Promise<void> {
  const path = config.text_encoder!.tokenizer;
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(path);
  } catch { /* reported below */ }
  if (!info?.isDirectory) {
    throw new ConfigError(config.source, field, `names a folder that does not exist: ${path}`);
  }
}

/** Every file a config may name: its field, and how to read and replace its path. */
const CONFIG_FILES: readonly [
  string,
  (c: ModelConfig) => string | undefined,
  (c: ModelConfig, path: string) => void,
][] = [
  ["model.path", (c) => c.model.path, (c, p) => c.model.path = p],
  ["decoder.path", (c) => c.decoder?.path, (c, p) => c.decoder!.path = p],
  ["text_encoder.path", (c) => c.text_encoder?.path, (c, p) => c.text_encoder!.path = p],
  [
    "model.condition.uncond",
    (c) =>
      ["zeros", "negative_prompt"].includes(c.model.condition?.uncond ?? "zeros")
        ? undefined
        : c.model.condition?.uncond,
    (c, p) => c.model.condition!.uncond = p,
  ],
  [
    "schedule.alphas_cumprod",
    (c) => c.schedule.kind === "vp_discrete" ? c.schedule.alphas_cumprod : undefined,
    (c, p) => (c.schedule as VpDiscreteScheduleConfig).alphas_cumprod = p,
  ],
  ["eval.features.path", (c) => c.eval?.features?.path, (c, p) => c.eval!.features!.path = p],
  ["eval.fid_ref", (c) => c.eval?.fid_ref, (c, p) => c.eval!.fid_ref = p],
  ["eval.lpips", (c) => c.eval?.lpips, (c, p) => c.eval!.lpips = p],
];

/**
 * The local file behind a config field: a URL downloaded into the cache (an ONNX model with its
 * external-data files beside it), a path checked to be a file; either checked against the
 * config's `sha256:` entry.
 */
async function localFile(config: ModelConfig, field: string, path: string): Promise<string> {
  const expected = config.sha256?.[path];
  if (isUrl(path)) {
    try {
      const local = await fetchCached(path, { sha256: expected });
      if (path.endsWith(".onnx")) await fetchExternalData(path, local, config);
      return local;
    } catch (e) {
      throw new ConfigError(config.source, field, (e as Error).message);
    }
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new ConfigError(config.source, field, `names a file that does not exist: ${path}`);
  }
  if (!info.isFile) throw new ConfigError(config.source, field, `is not a file: ${path}`);
  if (expected !== undefined) {
    try {
      await verifySha256(path, expected);
    } catch (e) {
      throw new ConfigError(config.source, field, (e as Error).message);
    }
  }
  return path;
}

/** The external-data files of a remote ONNX model, fetched into the cache beside it. */
async function fetchExternalData(url: string, local: string, config: ModelConfig) {
  const { externalData } = readOnnxSignature(await Deno.readFile(local));
  for (const name of externalData) {
    const fileUrl = resolveReference(url, name);
    await fetchCached(fileUrl, { sha256: config.sha256?.[fileUrl] });
  }
}

/**
 * Build the {@linkcode NoiseSchedule} of a config (reads `alphas_cumprod` for `vp_discrete`).
 *
 * @throws {ConfigError} when the schedule parameters are rejected
 */
export async function scheduleFromConfig(config: ModelConfig): Promise<NoiseSchedule> {
  const s = config.schedule;
  try {
    switch (s.kind) {
      case "ve":
        return veSchedule({ sigmaMax: s.sigma_max, sigmaMin: s.sigma_min });
      case "vp_linear":
        return vpLinearSchedule({ beta0: s.beta0, beta1: s.beta1, tMax: s.t_max, tMin: s.t_min });
      case "vp_cosine":
        return vpCosineSchedule({ s: s.s, tMax: s.t_max, tMin: s.t_min });
      case "flow":
        return flowSchedule({ tMax: s.t_max, tMin: s.t_min });
      case "vp_discrete": {
        if (s.alphas_cumprod === undefined) {
          const range = s.beta_start !== undefined && s.beta_end !== undefined
            ? { start: s.beta_start, end: s.beta_end }
            : undefined;
          return vpDiscreteSchedule({
            betas: discreteBetas(s.betas ?? "scaled_linear", s.num_steps, range),
          });
        }
        const array = await readNpy(s.alphas_cumprod);
        if (array.shape.length !== 1 || array.data instanceof BigInt64Array) {
          throw new RangeError(
            `${s.alphas_cumprod} must hold a 1-D float array: got ${array.dtype} [${array.shape}]`,
          );
        }
        return vpDiscreteSchedule({ alphasCumprod: array.data });
      }
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const field = s.kind === "vp_discrete" && s.alphas_cumprod
      ? "schedule.alphas_cumprod"
      : "schedule";
    throw new ConfigError(config.source, field, `is rejected: ${(e as Error).message}`);
  }
}
