/**
 * ONNX networks as ld3 {@linkcode Denoiser}s.
 *
 * {@linkcode loadModel} reads a model config, opens the ONNX file in ONNX Runtime, checks the
 * graph's inputs and outputs against the config before anything runs, and wraps the session
 * in an adapter that turns any network output (ε, x0, v, flow velocity; optionally with
 * classifier-free guidance) into the data prediction `D(x, t)` the solvers use. The adapter
 * batches, converts float64 ↔ float32 at the network boundary, builds the time input the
 * network expects and refuses NaN/Inf outputs with the step and time they appeared at.
 *
 * The sections follow the order in which {@linkcode loadModel} (the last one) uses them: the
 * signature checks, the per-call math and the adapter ({@linkcode onnxDenoiser}), the decoder;
 * each is a few named steps.
 * What the gradient twin (`lib/grad/model_grad.ts`) shares with the adapter (feeds, batching,
 * the non-finite search) lives in `_model_inputs.ts`; reading and opening an ONNX file once
 * lives in `external.ts`.
 *
 * @module
 */
import type { DenoiseInfo, Denoiser } from "../denoiser.ts";
import { sameShape, sampleSize } from "../denoiser.ts";
import { ort, type OrtSession } from "../deps.ts";
import {
  type DecoderConfig,
  loadModelConfig,
  type ModelConfig,
  scheduleFromConfig,
} from "./config.ts";
import {
  allFinite,
  conditionBatch,
  type FeedLayout,
  feedLayout,
  firstNonFinite,
  guidanceBatch,
  guidanceChunk,
  networkFeeds,
  padChunk,
  readUncond,
  sampleCount,
} from "./_model_inputs.ts";
import { ElemType } from "./build.ts";
import { type OnnxFile, onnxModelHash, openOnnxFile, readOnnxFile } from "./external.ts";
import {
  defaultThreads,
  fixedBatch,
  type OnnxSignature,
  readOnnxSignature,
  sessionOptionsFor,
  type TensorSignature,
  withOutputs,
} from "./session.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import { checkDevice, parseDevice } from "./device.ts";
import { loadTextEncoder } from "./text_encoder.ts";
import { LazySessionWorkers } from "./workers.ts";

/** A network output held NaN or ±Inf. */
export class NonFiniteError extends Error {
  /** Index of the network call within the solve, when the solver reported it. */
  readonly step: number | undefined;
  /** Solver time t of the call. */
  readonly t: number;
  /** Model name from the config. */
  readonly model: string;
  /** `detail` says which values were non-finite; the message names the model, step and t. */
  constructor(model: string, t: number, step: number | undefined, detail: string) {
    super(
      `Model "${model}" produced a non-finite output at solver step ${
        step ?? "?"
      }, t=${t}: ${detail}`,
    );
    this.name = "NonFiniteError";
    this.model = model;
    this.t = t;
    this.step = step;
  }
}

/** Options of {@linkcode loadModel}. */
export interface LoadModelOptions {
  /** Execution device (`cpu`, `cuda[:<index>]`, `webgpu`); overrides the config's `device`. @default {config.device} */
  device?: string;
  /**
   * One sample's unconditional input of classifier-free guidance, e.g. the embedding of a
   * negative prompt (`lib/pipelines/prompts.ts`); overrides `model.condition.uncond`. With
   * `uncond: negative_prompt` and none given, the text encoder's embedding of the empty prompt.
   */
  uncond?: Float32Array;
  /** Classifier-free guidance scale; overrides (and is recorded as) `model.condition.guidance_scale`. */
  guidanceScale?: number;
  /**
   * CPU threads of each ONNX Runtime session; overrides the config's `threads`.
   * @default {config.threads ?? defaultThreads()}
   */
  threads?: number;
}

/** A loaded model: the denoiser, its decoder and what identifies it. */
export interface LoadedModel {
  /** The validated config. */
  readonly config: ModelConfig;
  /** The data-prediction denoiser the solvers call. */
  readonly denoiser: Denoiser;
  /** Lowercase hex SHA-256 of the ONNX file (identifies the weights in grid files and caches). */
  readonly modelHash: string;
  /** Shape of one sample the solver works on (the latent for latent models). */
  readonly sampleShape: number[];
  /** Shape of one decoded image (equals `sampleShape` without a decoder). */
  readonly imageShape: number[];
  /** Shape of one sample's condition, for conditional models. */
  readonly conditionShape?: number[];
  /** One sample's unconditional input of classifier-free guidance (conditional models). */
  readonly uncond?: Float32Array;
  /**
   * The CPU threads of its sessions; sessions opened for the same network later (VJP graphs,
   * feature models) take the same count.
   */
  readonly threads: number;
  /**
   * How many one-thread worker sessions share out the samples of a batched call (`workers.ts`;
   * {@linkcode WORKER_MIN_MODEL_BYTES}); 0 when every call runs on one session.
   */
  readonly batchWorkers: number;
  /**
   * Those worker threads (opened on first use, closed with the model), for other sessions of
   * the same network to run on the same threads (the VJP parts of a differentiable denoiser).
   */
  readonly sessionWorkers?: LazySessionWorkers;
  /**
   * Decode a batch of samples to images in [-1, 1]: runs the decoder on `z / scale_factor`
   * when one is configured, then maps `data_range` to [-1, 1].
   */
  decode(x: Float64Array): Promise<Float32Array>;
  /** Release the ONNX Runtime sessions. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Signature checks

function describe(s: TensorSignature): string {
  return `${s.elemTypeName} [${s.dims.join(", ")}]`;
}

/** Check one tensor's element type, rank and fixed dims (index ≥ 1) against expectations. */
function checkTensor(
  problems: string[],
  what: string,
  found: TensorSignature | undefined,
  available: readonly TensorSignature[],
  expect: { types: readonly number[]; ranks: readonly number[]; dims?: readonly number[] },
): void {
  if (!found) {
    problems.push(
      `${what} not found (available: ${available.map((s) => `"${s.name}"`).join(", ")})`,
    );
    return;
  }
  const typeNames = expect.types.map((t) => Object.entries(ElemType).find(([, v]) => v === t)?.[0]);
  if (!expect.types.includes(found.elemType)) {
    problems.push(
      `${what}: expected element type ${typeNames.join(" or ")}, found ${describe(found)}`,
    );
  }
  if (!expect.ranks.includes(found.dims.length)) {
    problems.push(`${what}: expected rank ${expect.ranks.join(" or ")}, found ${describe(found)}`);
    return;
  }
  if (expect.dims) {
    for (let i = 0; i < expect.dims.length; i++) {
      const dim = found.dims[i + 1];
      if (typeof dim === "number" && dim !== expect.dims[i]) {
        problems.push(
          `${what}: expected [batch, ${expect.dims.join(", ")}], found ${describe(found)}`,
        );
        return;
      }
    }
  }
}

const FLOAT_TYPES = [ElemType.float];
const TIME_TYPES = [ElemType.float, ElemType.double, ElemType.int64];

/** {@linkcode checkTensor} of the tensor of `list` called `name`. */
function checkNamed(
  problems: string[],
  what: string,
  list: readonly TensorSignature[],
  name: string,
  expect: Parameters<typeof checkTensor>[4],
): void {
  checkTensor(problems, what, list.find((s) => s.name === name), list, expect);
}

/** What a tensor of samples must be: float32 `[batch, ...shape]`. */
function sampleTensor(config: ModelConfig) {
  return { types: FLOAT_TYPES, ranks: [1 + config.shape.length], dims: config.shape };
}

/** Graph inputs the config does not feed: ONNX Runtime would refuse every call without them. */
function checkUnfedInputs(
  problems: string[],
  inputs: readonly TensorSignature[],
  fed: ReadonlySet<string | undefined>,
): void {
  for (const s of inputs) {
    if (!fed.has(s.name)) {
      problems.push(`input "${s.name}" ${describe(s)} is not named in the config`);
    }
  }
}

/** Throws every problem found at once, so one fix-and-retry round fixes them all. */
function throwProblems(problems: string[], what: string, config: ModelConfig): void {
  if (problems.length > 0) {
    throw new TypeError(
      `${what} does not match config ${config.source}:\n  ${problems.join("\n  ")}`,
    );
  }
}

/** The inputs of `model`: x, the time input (and its scalar form), the condition. */
function checkModelInputs(problems: string[], signature: OnnxSignature, config: ModelConfig) {
  const m = config.model;
  const inputs = signature.inputs;
  const x = `input "${m.inputs.x}" (model.inputs.x)`;
  checkNamed(problems, x, inputs, m.inputs.x, sampleTensor(config));
  const t = inputs.find((s) => s.name === m.inputs.t);
  checkTensor(problems, `input "${m.inputs.t}" (model.inputs.t)`, t, inputs, {
    types: TIME_TYPES,
    ranks: m.time_shape === "batch" ? [1] : [0, 1],
  });
  if (
    m.time_shape === "scalar" && t?.dims.length === 1 && typeof t.dims[0] === "number" &&
    t.dims[0] !== 1
  ) {
    problems.push(
      `input "${m.inputs.t}" (model.time_shape scalar): expected [] or [1], found ${describe(t)}`,
    );
  }
  if (m.condition) {
    const c = m.condition;
    checkNamed(problems, `input "${c.input}" (model.condition.input)`, inputs, c.input, {
      types: FLOAT_TYPES,
      ranks: [1 + c.shape.length],
      dims: c.shape,
    });
  }
}

/**
 * Tensors that carry the batch must agree on it: a fixed axis beside a dynamic one (an export
 * that named only some tensors in dynamic_axes) would fail at the first call of another size.
 */
function checkBatchAxes(problems: string[], signature: OnnxSignature, config: ModelConfig) {
  const m = config.model;
  const batchOf = (list: readonly TensorSignature[], name: string) =>
    list.find((s) => s.name === name)?.dims[0];
  const xBatch = batchOf(signature.inputs, m.inputs.x);
  const batched = [
    m.time_shape === "batch"
      ? { kind: "input", name: m.inputs.t, field: "model.inputs.t" }
      : undefined,
    m.condition
      ? { kind: "input", name: m.condition.input, field: "model.condition.input" }
      : undefined,
    { kind: "output", name: m.output, field: "model.output" },
  ];
  const fixed = (v: unknown) => typeof v === "number";
  const show = (v: unknown) => fixed(v) ? `fixed at ${v}` : "dynamic";
  for (const b of batched) {
    if (b === undefined) continue;
    const dim = batchOf(b.kind === "input" ? signature.inputs : signature.outputs, b.name);
    if (dim === undefined || xBatch === undefined) continue;
    if ((fixed(dim) || fixed(xBatch)) && dim !== xBatch) {
      const hint = b.field === "model.inputs.t" && dim === 1
        ? "; a network that takes one time per call wants model.time_shape: scalar"
        : "; export both with the same batch axis (dynamic_axes)";
      problems.push(
        `${b.kind} "${b.name}" (${b.field}): batch axis ${show(dim)}, but the batch of ` +
          `"${m.inputs.x}" is ${show(xBatch)}${hint}`,
      );
    }
  }
}

/**
 * Check an ONNX signature against a config's `model` section.
 *
 * @throws {TypeError} listing every mismatch, with the model file and the names found
 */
export function checkModelSignature(signature: OnnxSignature, config: ModelConfig): void {
  const m = config.model;
  const problems: string[] = [];
  checkModelInputs(problems, signature, config);
  checkBatchAxes(problems, signature, config);
  checkUnfedInputs(
    problems,
    signature.inputs,
    new Set([m.inputs.x, m.inputs.t, m.condition?.input]),
  );
  const what = `output "${m.output}" (model.output)`;
  checkNamed(problems, what, signature.outputs, m.output, sampleTensor(config));
  throwProblems(problems, `ONNX model ${m.path}`, config);
}

function checkDecoderSignature(signature: OnnxSignature, config: ModelConfig): void {
  const d = config.decoder;
  if (!d) return;
  const problems: string[] = [];
  const what = `input "${d.input}" (decoder.input)`;
  checkNamed(problems, what, signature.inputs, d.input, sampleTensor(config));
  const out = signature.outputs.find((s) => s.name === d.output);
  checkTensor(problems, `output "${d.output}" (decoder.output)`, out, signature.outputs, {
    types: FLOAT_TYPES,
    ranks: out ? [Math.max(out.dims.length, 2)] : [],
  });
  checkUnfedInputs(problems, signature.inputs, new Set([d.input]));
  throwProblems(problems, `ONNX decoder ${d.path}`, config);
}

// ---------------------------------------------------------------------------------------------
// Pure per-call math

/** The network's time input for solver time t, per `model.time_input`. */
export function networkTime(config: ModelConfig, schedule: NoiseSchedule, t: number): number {
  switch (config.model.time_input) {
    case "t":
      return t;
    case "sigma":
      return schedule.kind === "ve" ? t : schedule.sigma(t) / schedule.alpha(t);
    case "log_sigma_quarter":
      return 0.25 * Math.log(schedule.kind === "ve" ? t : schedule.sigma(t) / schedule.alpha(t));
    case "lambda":
      return schedule.lambda(t);
    case "discrete": {
      // vp_discrete has tMin = 1/Nd; the network was trained on n − 1 = (t − 1/Nd)·Nd.
      const nd = Math.round(1 / schedule.tMin);
      return (t - schedule.tMin) * nd;
    }
  }
}

/**
 * Turn the raw network output into a data prediction at time t, in place into `out`:
 * ε: `(x − σ·ε̂)/α`; v: `α·x − σ·v̂`; flow: `x − σ·v̂` (σ = t); x0: unchanged.
 */
export function toDataPrediction(
  prediction: ModelConfig["model"]["prediction"],
  schedule: NoiseSchedule,
  t: number,
  x: Float64Array,
  raw: Float32Array,
): Float64Array {
  const out = new Float64Array(x.length);
  const alpha = schedule.alpha(t);
  const sigma = schedule.sigma(t);
  switch (prediction) {
    case "x0":
      for (let i = 0; i < x.length; i++) out[i] = raw[i];
      break;
    case "eps":
      for (let i = 0; i < x.length; i++) out[i] = (x[i] - sigma * raw[i]) / alpha;
      break;
    case "v":
      for (let i = 0; i < x.length; i++) out[i] = alpha * x[i] - sigma * raw[i];
      break;
    case "flow":
      for (let i = 0; i < x.length; i++) out[i] = x[i] - sigma * raw[i];
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The adapter

/** Options of {@linkcode onnxDenoiser}. */
export interface OnnxDenoiserOptions {
  /** The graph signature, to check before the first run; read from `model.path` when absent. */
  signature?: OnnxSignature;
  /** The schedule; built from the config when absent. */
  schedule?: NoiseSchedule;
}

/** What every call of the adapter needs, fixed when the model loads. */
interface Adapter extends FeedLayout {
  readonly session: ort.InferenceSession;
  /** One-thread sessions in worker threads for calls of several samples, when the model has them. */
  readonly workers: LazySessionWorkers | undefined;
  readonly config: ModelConfig;
  readonly schedule: NoiseSchedule;
  /** One sample's unconditional input (empty without `model.condition`). */
  readonly uncond: Float32Array;
}

/**
 * Wrap an ONNX Runtime session as a {@linkcode Denoiser} described by a model config.
 *
 * @throws {TypeError} when the session's inputs/outputs do not match the config
 */
export async function onnxDenoiser(
  session: OrtSession,
  config: ModelConfig,
  options: OnnxDenoiserOptions = {},
): Promise<Denoiser> {
  const signature = options.signature ?? readOnnxSignature(
    await Deno.readFile(config.model.path),
    config.model.path,
  );
  checkModelSignature(signature, config);
  return await checkedDenoiser(session, config, signature, options.schedule, undefined);
}

/** The session is the authority on names (a caller may pass a session of another file). */
function checkSessionNames(session: ort.InferenceSession, config: ModelConfig): void {
  const m = config.model;
  const missing = [m.inputs.x, m.inputs.t, ...(m.condition ? [m.condition.input] : [])]
    .filter((n) => !session.inputNames.includes(n));
  if (missing.length > 0 || !session.outputNames.includes(m.output)) {
    throw new TypeError(
      `ONNX session for ${m.path} lacks ${
        [...missing, m.output].map((n) => `"${n}"`).join(", ")
      }: ` +
        `inputs ${session.inputNames.join(", ")}; outputs ${session.outputNames.join(", ")}`,
    );
  }
}

/**
 * {@linkcode onnxDenoiser} for a signature that already passed {@linkcode checkModelSignature}:
 * checks the session's names, then builds the adapter.
 */
async function checkedDenoiser(
  session: ort.InferenceSession,
  config: ModelConfig,
  signature: OnnxSignature,
  schedule: NoiseSchedule | undefined,
  uncond: Float32Array | undefined,
  workers?: LazySessionWorkers,
): Promise<Denoiser> {
  const m = config.model;
  checkSessionNames(session, config);
  const tSig = signature.inputs.find((s) => s.name === m.inputs.t) as TensorSignature;
  const resolved = schedule ?? await scheduleFromConfig(config);
  const layout = feedLayout(config, signature, tSig);
  const adapter: Adapter = {
    ...layout,
    session,
    workers,
    config,
    schedule: resolved,
    uncond: uncond ?? await readUncond(m.condition, layout.condSize),
  };
  if (adapter.uncond.length !== layout.condSize) {
    throw new TypeError(
      `Unconditional input of model "${config.name}" holds ${adapter.uncond.length} values: ` +
        `its condition [${m.condition?.shape}] has ${layout.condSize}`,
    );
  }
  // One float32 staging buffer is reused across calls (the network only reads it during
  // `session.run`); a call that overlaps another one in flight gets its own.
  let stagingBuffer: Float32Array | undefined;
  async function denoise(
    x: Float64Array,
    t: number,
    info: DenoiseInfo = {},
  ): Promise<Float64Array> {
    const n = sampleCount(x, adapter.d, "denoise");
    const cond = conditionBatch("denoise", config, n, adapter.uncond, info.condition);
    const x32 = stagingBuffer?.length === x.length ? stagingBuffer : new Float32Array(x.length);
    stagingBuffer = undefined;
    x32.set(x); // float64 → float32 rounding, as Float32Array.from(x)
    try {
      return await denoiseStaged(adapter, x, x32, n, cond, t, info);
    } finally {
      stagingBuffer = x32;
    }
  }
  return { schedule: resolved, sampleShape: [...config.shape], denoise };
}

/** The data prediction of `n` samples whose float32 copy is `x32`. */
async function denoiseStaged(
  a: Adapter,
  x: Float64Array,
  x32: Float32Array,
  n: number,
  cond: Float32Array | undefined,
  t: number,
  info: DenoiseInfo,
): Promise<Float64Array> {
  const tValue = networkTime(a.config, a.schedule, t);
  const raw = a.config.model.condition && cond && a.guidance !== 1
    ? await guidedNetwork(a, x32, n, tValue, cond, t, info.step)
    : await runNetwork(a, x32, n, tValue, cond);
  checkFinite(a, raw, x32, t, info.step);
  return toDataPrediction(a.config.model.prediction, a.schedule, t, x, raw);
}

/** Guided raw output: one call of 2B, [unconditional; conditional], then u + w·(c − u). */
async function guidedNetwork(
  a: Adapter,
  x32: Float32Array,
  n: number,
  tValue: number,
  cond: Float32Array,
  t: number,
  step: number | undefined,
): Promise<Float32Array> {
  const { d, guidance } = a;
  const raw = new Float32Array(n * d);
  const chunk = guidanceChunk(a.config);
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const { xs, cs } = guidanceBatch(a, a.uncond, x32, cond, start, count);
    const both = await runNetwork(a, xs, 2 * count, tValue, cs);
    checkFinite(a, both, x32, t, step);
    for (let i = 0; i < count * d; i++) {
      const u = both[i];
      raw[start * d + i] = u + guidance * (both[count * d + i] - u);
    }
  }
  return raw;
}

/** Raw network output for `n` samples, in calls of at most `maxBatch` samples. */
async function runNetwork(
  a: Adapter,
  x: Float32Array,
  n: number,
  tValue: number,
  cond: Float32Array | undefined,
): Promise<Float32Array> {
  if (n <= a.maxBatch && (a.exportBatch === undefined || a.exportBatch === n)) {
    // The common case, one call of exactly n samples: hand back ONNX Runtime's own output
    // array (a fresh JS array per run) instead of copying it.
    return await runCall(a, x, n, tValue, cond);
  }
  const { d, condSize } = a;
  const out = new Float32Array(n * d);
  for (let start = 0; start < n; start += a.maxBatch) {
    const count = Math.min(a.maxBatch, n - start);
    // A short final chunk is padded up to the fixed batch (the padding outputs are dropped).
    const callSize = a.exportBatch ?? count;
    const xs = padChunk(x, d, start, count, callSize);
    const cs = cond && padChunk(cond, condSize, start, count, callSize);
    const y = await runCall(a, xs, callSize, tValue, cs);
    out.set(y.subarray(0, count * d), start * d);
  }
  return out;
}

/**
 * One network call on `callSize` samples: its raw output, checked for its dims (not only its
 * size: a [B, 1, 14, 56] output where [B, 1, 28, 28] is meant would otherwise pass as images).
 */
function runCall(
  a: Adapter,
  x: Float32Array,
  callSize: number,
  tValue: number,
  cond: Float32Array | undefined,
): Promise<Float32Array> {
  const { config, d } = a;
  const m = config.model;
  const feeds = networkFeeds(config, a, x, callSize, tValue, cond);
  const expected = [callSize, ...config.shape];
  const check = (y: { data: ArrayLike<unknown>; dims: readonly number[] }) => {
    if (y.data.length !== callSize * d || !sameShape(y.dims, expected)) {
      throw new TypeError(
        `ONNX model ${m.path}: output "${m.output}" has dims [${y.dims}], expected ` +
          `[${expected}] (config shape [${config.shape}])`,
      );
    }
    return y.data as Float32Array;
  };
  if (a.workers && callSize > 1) {
    return a.workers.get()
      .then((w) => w.run(feeds, callSize, [m.output]))
      .then((out) => check(out[m.output]));
  }
  return withOutputs(a.session, feeds, (result) => check(result[m.output]));
}

/** Refuse a raw output holding NaN or ±Inf, naming where, and whether the input already did. */
function checkFinite(
  a: Adapter,
  raw: Float32Array,
  x32: Float32Array,
  t: number,
  step?: number,
): void {
  if (allFinite(raw)) return;
  const bad = firstNonFinite(raw);
  if (bad < 0) return;
  const m = a.config.model;
  const inputBad = firstNonFinite(x32) >= 0;
  throw new NonFiniteError(
    a.config.name,
    t,
    step,
    `output "${m.output}" of ${m.path} holds ${raw[bad]} at sample ${Math.floor(bad / a.d)}, ` +
      `element ${bad % a.d}${inputBad ? " (the input x already held non-finite values)" : ""}`,
  );
}

// ---------------------------------------------------------------------------------------------
// The decoder

/**
 * Decode `n` latents (already divided by `scale_factor`) in calls of at most `batch_size`, or of
 * exactly the decoder's fixed batch when it was exported with one (the last call padded, the
 * padding's images dropped).
 */
async function runDecoder(
  session: ort.InferenceSession,
  config: ModelConfig,
  z: Float32Array,
  n: number,
  exportBatch: number | undefined,
): Promise<{ data: Float32Array; dims: number[] }> {
  const { input, output } = config.decoder as DecoderConfig;
  const d = sampleSize(config.shape);
  const chunk = exportBatch ?? config.batch_size;
  const parts: Float32Array[] = [];
  let dims: number[] = [];
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const callSize = exportBatch ?? count;
    const latent = new Float32Array(callSize * d);
    latent.set(z.subarray(start * d, (start + count) * d));
    const feeds = { [input]: new ort.Tensor("float32", latent, [callSize, ...config.shape]) };
    await withOutputs(session, feeds, (result) => {
      const y = result[output];
      const perImage = y.data.length / callSize;
      parts.push(Float32Array.from((y.data as Float32Array).subarray(0, count * perImage)));
      dims = [count, ...y.dims.slice(1)];
    });
  }
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p, offset);
    offset += p.length;
  }
  return { data, dims };
}

/** A decoder session and what decoding needs to know of its graph. */
interface OpenDecoder {
  readonly session: ort.InferenceSession;
  /** The batch the decoder was exported with, when fixed. */
  readonly exportBatch: number | undefined;
  /** Shape of one decoded image. */
  readonly imageShape: number[];
}

/** The image shape a decoder produces: from its declared output dims, else by one probe. */
async function decoderImageShape(
  session: ort.InferenceSession,
  signature: OnnxSignature,
  config: ModelConfig,
): Promise<number[]> {
  const name = (config.decoder as DecoderConfig).output;
  const dims = signature.outputs.find((s) => s.name === name)?.dims ?? [];
  const rest = dims.slice(1);
  if (rest.length > 0 && rest.every((v) => typeof v === "number")) return rest as number[];
  const given = config.decoder?.image_shape;
  if (given) return [...given];
  // Symbolic image dims: decode one zero latent to learn them.
  const probe = await runDecoder(
    session,
    config,
    new Float32Array(sampleSize(config.shape)),
    1,
    fixedBatch(signature, config.decoder!.input),
  );
  return probe.dims.slice(1);
}

/**
 * Map decoded data from `data_range` to [-1, 1], in place.
 */
function toUnitRange(images: Float32Array, range: [number, number]): Float32Array {
  const [lo, hi] = range;
  if (lo === -1 && hi === 1) return images;
  for (let i = 0; i < images.length; i++) images[i] = (2 * (images[i] - lo)) / (hi - lo) - 1;
  return images;
}

/** {@linkcode LoadedModel.decode}: through the decoder when one is open, then to [-1, 1]. */
async function decodeSamples(
  config: ModelConfig,
  decoder: OpenDecoder | undefined,
  x: Float64Array,
): Promise<Float32Array> {
  const d = sampleSize(config.shape);
  if (x.length % d !== 0) {
    throw new RangeError(`decode: x must hold a multiple of ${d} values: got ${x.length}`);
  }
  if (!decoder || !config.decoder) return toUnitRange(Float32Array.from(x), config.data_range);
  const z = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) z[i] = x[i] / config.decoder.scale_factor;
  const images = await runDecoder(decoder.session, config, z, x.length / d, decoder.exportBatch);
  if (!sameShape(images.dims.slice(1), decoder.imageShape)) {
    throw new TypeError(
      `ONNX decoder ${config.decoder.path} produced images [${images.dims.slice(1)}]: expected ` +
        `[${decoder.imageShape}] (decoder.image_shape, or its declared output)`,
    );
  }
  return toUnitRange(images.data, config.data_range);
}

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * Load a model from a config file path (or an already validated config): open the ONNX
 * network (and decoder), check their signatures against the config, and build the denoiser.
 *
 * Every check that needs no session runs first (device, signatures), so a bad config fails
 * before any weights reach ONNX Runtime; the sessions opened are released on any later failure.
 *
 * @example
 * ```ts
 * const model = await loadModel("configs/gmm-mnist.yml");
 * const x = new Float64Array(784).fill(0);
 * const d = await model.denoiser.denoise(x, 1.0);
 * await model.close();
 * ```
 * @throws {ConfigError} for a bad config
 * @throws {RangeError} for an unsupported device name
 * @throws {DeviceUnavailableError} when the device's ONNX Runtime provider cannot start
 * @throws {TypeError} when the ONNX inputs/outputs do not match the config
 */
export async function loadModel(
  configOrPath: string | URL | ModelConfig,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  const loaded = typeof configOrPath === "string" || configOrPath instanceof URL
    ? await loadModelConfig(configOrPath)
    : configOrPath;
  const config = withGuidance(loaded, options.guidanceScale);
  const device = options.device ?? config.device;
  checkDevice(device); // fail on a bad or unavailable device before reading any weights
  const threads = options.threads ?? config.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`threads must be an integer >= 1: got ${threads}`);
  }
  const network = await readOnnxFile(config.model.path);
  checkModelSignature(network.signature, config);
  // The hash reads every weight; it runs while ONNX Runtime reads them too.
  const hashing = onnxModelHash(network.path, network.bytes, network.signature.externalData);
  hashing.catch(() => {}); // awaited below; a failure before then must not go unhandled
  const decoderFile = config.decoder ? await readOnnxFile(config.decoder.path) : undefined;
  if (decoderFile) checkDecoderSignature(decoderFile.signature, config);
  const uncond = options.uncond ?? await negativePromptUncond(config, device);

  const sessions: ort.InferenceSession[] = [];
  const workers = batchWorkers(network, device, threads);
  try {
    const session = await openOnnxFile(network, device, threads);
    sessions.push(session);
    const denoiser = await checkedDenoiser(
      session,
      config,
      network.signature,
      undefined,
      uncond,
      workers,
    );
    let decoder: OpenDecoder | undefined;
    if (decoderFile) {
      const decoderSession = await openOnnxFile(decoderFile, device, threads);
      sessions.push(decoderSession);
      decoder = {
        session: decoderSession,
        exportBatch: fixedBatch(decoderFile.signature, config.decoder!.input),
        imageShape: await decoderImageShape(decoderSession, decoderFile.signature, config),
      };
    }
    const modelHash = await hashing;
    return loadedModel(
      config,
      denoiser,
      { modelHash, threads, workers },
      decoder,
      sessions,
      uncond,
    );
  } catch (e) {
    for (const s of sessions) await s.release();
    throw e;
  }
}

/** The config with another guidance scale recorded in it (the config itself without one). */
function withGuidance(config: ModelConfig, scale: number | undefined): ModelConfig {
  const c = config.model.condition;
  if (scale === undefined) return config;
  if (!c) {
    throw new TypeError(
      `guidance_scale needs a conditional model: "${config.name}" has no model.condition`,
    );
  }
  if (!Number.isFinite(scale)) throw new RangeError(`guidance_scale must be finite: got ${scale}`);
  return { ...config, model: { ...config.model, condition: { ...c, guidance_scale: scale } } };
}

/**
 * The unconditional input of `uncond: negative_prompt` when no embedding is given: the text
 * encoder's embedding of the empty prompt (the encoder is released again at once).
 */
async function negativePromptUncond(
  config: ModelConfig,
  device: string,
): Promise<Float32Array | undefined> {
  if (config.model.condition?.uncond !== "negative_prompt") return undefined;
  const encoder = await loadTextEncoder(config, device);
  try {
    return await encoder.encode([""]);
  } finally {
    await encoder.close();
  }
}

/**
 * Networks whose ONNX file (weights inside) holds this many bytes or more (1 MiB) run the
 * calls of several samples on one-thread sessions in worker threads, one per thread of
 * `threads`, the samples shared out between them (`workers.ts`). The weights stand in for the
 * work of a call: a 0.56 M-parameter UNet (1.8 MB) takes milliseconds per sample, the
 * Gaussian-mixture model (0.3 MB) microseconds, less than handing a batch to a worker costs.
 * Networks with external weights (over 2 GB) would hold one copy of their weights per worker,
 * and their large operators keep intra-op threads busy anyway; float16 networks (their float32
 * interface is built in memory) and files over 64 MiB (read without their weights) run on the
 * one session too.
 */
export const WORKER_MIN_MODEL_BYTES = 2 ** 20;

/** The workers of a network's batched calls, per {@linkcode WORKER_MIN_MODEL_BYTES}. */
function batchWorkers(
  file: OnnxFile,
  device: string,
  threads: number,
): LazySessionWorkers | undefined {
  const cpu = parseDevice(device).kind === "cpu";
  // A float16 network runs behind a float32 interface that only the main session is given.
  const eligible = file.signature.externalData.length === 0 && file.halfPrecision.length === 0 &&
    file.bytes !== undefined && file.bytes.length >= WORKER_MIN_MODEL_BYTES;
  if (!cpu || threads < 2 || !eligible) return undefined;
  // Each worker reads the file itself: sending it the bytes costs more.
  return new LazySessionWorkers(file.path, threads, sessionOptionsFor(device, 1));
}

/** The {@linkcode LoadedModel} around opened sessions, which `close` releases once. */
function loadedModel(
  config: ModelConfig,
  denoiser: Denoiser,
  { modelHash, threads, workers }: {
    modelHash: string;
    threads: number;
    workers: LazySessionWorkers | undefined;
  },
  decoder: OpenDecoder | undefined,
  sessions: readonly ort.InferenceSession[],
  uncond: Float32Array | undefined,
): LoadedModel {
  let closed = false;
  return {
    config,
    denoiser,
    modelHash,
    threads,
    batchWorkers: workers ? threads : 0,
    sessionWorkers: workers,
    sampleShape: [...config.shape],
    imageShape: decoder?.imageShape ?? [...config.shape],
    conditionShape: config.model.condition ? [...config.model.condition.shape] : undefined,
    ...(uncond ? { uncond } : {}),
    decode: (x: Float64Array) => decodeSamples(config, decoder, x),
    async close() {
      if (closed) return;
      closed = true;
      for (const s of sessions) await s.release();
      await workers?.close();
    },
  };
}
