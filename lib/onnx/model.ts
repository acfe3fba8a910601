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
 * @module
 */
import type { DenoiseInfo, Denoiser } from "../denoiser.ts";
import { sampleSize } from "../denoiser.ts";
import { ort } from "../deps.ts";
import {
  type DecoderConfig,
  loadModelConfig,
  type ModelConfig,
  scheduleFromConfig,
} from "./config.ts";
import { readUncond, timeTensorMaker } from "./_model_inputs.ts";
import { ElemType } from "./build.ts";
import { onnxModelHash, sessionSource } from "./external.ts";
import {
  createSession,
  fixedBatch,
  type OnnxSignature,
  readOnnxSignature,
  type TensorSignature,
} from "./session.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import { checkDevice } from "./device.ts";

/** A network output held NaN or ±Inf. */
export class NonFiniteError extends Error {
  /** Index of the network call within the solve, when the solver reported it. */
  readonly step: number | undefined;
  /** Solver time t of the call. */
  readonly t: number;
  /** Model name from the config. */
  readonly model: string;
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
    // Deno has Float16Array, so onnxruntime-common hands float16 data over as one, and the
    // Node-API binding of onnxruntime-node reads it as empty (checked with 1.30): no float16 I/O.
    const hint = found.elemType === ElemType.float16
      ? " (export with float32 inputs and outputs, casting inside the graph if it computes in " +
        "float16: onnxruntime-node under Deno cannot pass float16 tensors)"
      : "";
    problems.push(
      `${what}: expected element type ${typeNames.join(" or ")}, found ${describe(found)}${hint}`,
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

/**
 * Check an ONNX signature against a config's `model` section.
 *
 * @throws {TypeError} listing every mismatch, with the model file and the names found
 */
export function checkModelSignature(signature: OnnxSignature, config: ModelConfig): void {
  const m = config.model;
  const problems: string[] = [];
  const input = (name: string) => signature.inputs.find((s) => s.name === name);
  const rank = 1 + config.shape.length;
  checkTensor(
    problems,
    `input "${m.inputs.x}" (model.inputs.x)`,
    input(m.inputs.x),
    signature.inputs,
    {
      types: FLOAT_TYPES,
      ranks: [rank],
      dims: config.shape,
    },
  );
  checkTensor(
    problems,
    `input "${m.inputs.t}" (model.inputs.t)`,
    input(m.inputs.t),
    signature.inputs,
    {
      types: TIME_TYPES,
      ranks: m.time_shape === "batch" ? [1] : [0, 1],
    },
  );
  const t = input(m.inputs.t);
  if (
    m.time_shape === "scalar" && t?.dims.length === 1 && typeof t.dims[0] === "number" &&
    t.dims[0] !== 1
  ) {
    problems.push(
      `input "${m.inputs.t}" (model.time_shape scalar): expected [] or [1], found ${describe(t)}`,
    );
  }
  if (m.condition) {
    checkTensor(
      problems,
      `input "${m.condition.input}" (model.condition.input)`,
      input(m.condition.input),
      signature.inputs,
      { types: FLOAT_TYPES, ranks: [1 + m.condition.shape.length], dims: m.condition.shape },
    );
  }
  // Tensors that carry the batch must agree on it: a fixed axis beside a dynamic one (an export
  // that named only some tensors in dynamic_axes) would fail at the first call of another size.
  const xBatch = input(m.inputs.x)?.dims[0];
  const output = signature.outputs.find((s) => s.name === m.output);
  const batched = [
    m.time_shape === "batch"
      ? {
        kind: "input",
        name: m.inputs.t,
        field: "model.inputs.t",
        dim: input(m.inputs.t)?.dims[0],
      }
      : undefined,
    m.condition
      ? {
        kind: "input",
        name: m.condition.input,
        field: "model.condition.input",
        dim: input(m.condition.input)?.dims[0],
      }
      : undefined,
    { kind: "output", name: m.output, field: "model.output", dim: output?.dims[0] },
  ];
  for (const b of batched) {
    const dim = b?.dim;
    if (b === undefined || dim === undefined || xBatch === undefined) continue;
    const fixed = (v: unknown) => typeof v === "number";
    if ((fixed(dim) || fixed(xBatch)) && dim !== xBatch) {
      const show = (v: unknown) => fixed(v) ? `fixed at ${v}` : "dynamic";
      const hint = b.field === "model.inputs.t" && dim === 1
        ? "; a network that takes one time per call wants model.time_shape: scalar"
        : "; export both with the same batch axis (dynamic_axes)";
      problems.push(
        `${b.kind} "${b.name}" (${b.field}): batch axis ${show(dim)}, but the batch of ` +
          `"${m.inputs.x}" is ${show(xBatch)}${hint}`,
      );
    }
  }
  const fed = new Set([m.inputs.x, m.inputs.t, m.condition?.input]);
  for (const s of signature.inputs) {
    if (!fed.has(s.name)) {
      problems.push(`input "${s.name}" ${describe(s)} is not named in the config`);
    }
  }
  checkTensor(
    problems,
    `output "${m.output}" (model.output)`,
    output,
    signature.outputs,
    { types: FLOAT_TYPES, ranks: [rank], dims: config.shape },
  );
  if (problems.length > 0) {
    throw new TypeError(
      `ONNX model ${m.path} does not match config ${config.source}:\n  ${problems.join("\n  ")}`,
    );
  }
}

function checkDecoderSignature(signature: OnnxSignature, config: ModelConfig): void {
  const d = config.decoder;
  if (!d) return;
  const problems: string[] = [];
  checkTensor(
    problems,
    `input "${d.input}" (decoder.input)`,
    signature.inputs.find((s) => s.name === d.input),
    signature.inputs,
    { types: FLOAT_TYPES, ranks: [1 + config.shape.length], dims: config.shape },
  );
  const out = signature.outputs.find((s) => s.name === d.output);
  checkTensor(problems, `output "${d.output}" (decoder.output)`, out, signature.outputs, {
    types: FLOAT_TYPES,
    ranks: out ? [Math.max(out.dims.length, 2)] : [],
  });
  for (const s of signature.inputs) {
    if (s.name !== d.input) {
      problems.push(`input "${s.name}" ${describe(s)} is not named in the config`);
    }
  }
  if (problems.length > 0) {
    throw new TypeError(
      `ONNX decoder ${d.path} does not match config ${config.source}:\n  ${problems.join("\n  ")}`,
    );
  }
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

function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

/**
 * Whether every value is finite, in one branch-free pass: a float64 sum of float32 values
 * cannot overflow (|v| < 3.5e38, so even 10⁹ of them stay below 1e308), and one NaN or ±Inf
 * makes the sum non-finite. Only when it fails does {@linkcode firstNonFinite} look for where.
 */
function allFinite(values: Float32Array): boolean {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum - sum === 0;
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

/**
 * Wrap an ONNX Runtime session as a {@linkcode Denoiser} described by a model config.
 *
 * @throws {TypeError} when the session's inputs/outputs do not match the config
 */
export async function onnxDenoiser(
  session: ort.InferenceSession,
  config: ModelConfig,
  options: OnnxDenoiserOptions = {},
): Promise<Denoiser> {
  const m = config.model;
  const signature = options.signature ?? readOnnxSignature(await Deno.readFile(m.path));
  checkModelSignature(signature, config);
  // The session is the authority on names (a caller may pass a session of another file).
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
  const schedule = options.schedule ?? await scheduleFromConfig(config);
  const d = sampleSize(config.shape);
  const tSig = signature.inputs.find((s) => s.name === m.inputs.t) as TensorSignature;
  // A network exported with a fixed batch size gets exactly that many samples per call.
  const exportBatch = fixedBatch(signature, m.inputs.x);
  const maxBatch = exportBatch ?? config.batch_size;

  const condSize = m.condition ? sampleSize(m.condition.shape) : 0;
  const uncond = await readUncond(m.condition, condSize);
  const guidance = m.condition?.guidance_scale ?? 1;

  const timeTensor = timeTensorMaker(m.time_shape, tSig);

  /** Raw network output for `n` samples, in calls of at most `maxBatch` samples. */
  async function runNetwork(
    x: Float32Array,
    n: number,
    tValue: number,
    cond: Float32Array | undefined,
  ): Promise<Float32Array> {
    if (n <= maxBatch && (exportBatch === undefined || exportBatch === n)) {
      // The common case, one call of exactly n samples: hand back ONNX Runtime's own output
      // array (a fresh JS array per run, still valid after `dispose`, which only drops the
      // tensor's reference on CPU) instead of copying it.
      const feeds: Record<string, ort.Tensor> = {
        [m.inputs.x]: new ort.Tensor("float32", x, [n, ...config.shape]),
        [m.inputs.t]: timeTensor(tValue, n),
      };
      if (m.condition && cond) {
        feeds[m.condition.input] = new ort.Tensor("float32", cond, [n, ...m.condition.shape]);
      }
      const result = await session.run(feeds);
      const y = result[m.output];
      try {
        if (y.data.length !== n * d) {
          throw new TypeError(
            `ONNX model ${m.path}: output "${m.output}" has dims [${y.dims}], expected [${n}, ${config.shape}]`,
          );
        }
        return y.data as Float32Array;
      } finally {
        for (const tensor of Object.values(result)) tensor.dispose();
      }
    }
    const out = new Float32Array(n * d);
    for (let start = 0; start < n; start += maxBatch) {
      const count = Math.min(maxBatch, n - start);
      const callSize = exportBatch ?? count;
      let xs = x.subarray(start * d, (start + count) * d);
      let cs = cond?.subarray(start * condSize, (start + count) * condSize);
      if (callSize !== count) {
        // Pad a short final chunk up to the fixed batch (the padding outputs are dropped).
        const padded = new Float32Array(callSize * d);
        padded.set(xs);
        xs = padded;
        if (cs) {
          const paddedCond = new Float32Array(callSize * condSize);
          paddedCond.set(cs);
          cs = paddedCond;
        }
      }
      const feeds: Record<string, ort.Tensor> = {
        [m.inputs.x]: new ort.Tensor("float32", xs, [callSize, ...config.shape]),
        [m.inputs.t]: timeTensor(tValue, callSize),
      };
      if (m.condition && cs) {
        feeds[m.condition.input] = new ort.Tensor("float32", cs, [callSize, ...m.condition.shape]);
      }
      const result = await session.run(feeds);
      const y = result[m.output];
      try {
        if (y.data.length !== callSize * d) {
          throw new TypeError(
            `ONNX model ${m.path}: output "${m.output}" has dims [${y.dims}], expected [${callSize}, ${config.shape}]`,
          );
        }
        out.set((y.data as Float32Array).subarray(0, count * d), start * d);
      } finally {
        for (const tensor of Object.values(result)) tensor.dispose();
      }
    }
    return out;
  }

  async function denoise(
    x: Float64Array,
    t: number,
    info: DenoiseInfo = {},
  ): Promise<Float64Array> {
    if (x.length === 0 || x.length % d !== 0) {
      throw new RangeError(`denoise: x must hold a multiple of ${d} values: got ${x.length}`);
    }
    const n = x.length / d;
    let cond: Float32Array | undefined;
    if (m.condition) {
      if (info.condition) {
        if (info.condition.length !== n * condSize) {
          throw new RangeError(
            `denoise: condition must hold ${n}×${condSize} values: got ${info.condition.length}`,
          );
        }
        cond = info.condition;
      } else {
        // No condition given: sample unconditionally.
        cond = new Float32Array(n * condSize);
        for (let b = 0; b < n; b++) cond.set(uncond, b * condSize);
      }
    } else if (info.condition) {
      throw new TypeError(
        `denoise: model "${config.name}" has no condition input (model.condition)`,
      );
    }
    // One float32 staging buffer is reused across calls (the network only reads it during
    // `session.run`); a call that overlaps another one in flight gets its own.
    const x32 = stagingBuffer?.length === x.length ? stagingBuffer : new Float32Array(x.length);
    stagingBuffer = undefined;
    x32.set(x); // float64 → float32 rounding, as Float32Array.from(x)
    try {
      return await denoiseStaged(x, x32, n, cond, t, info);
    } finally {
      stagingBuffer = x32;
    }
  }

  let stagingBuffer: Float32Array | undefined;

  async function denoiseStaged(
    x: Float64Array,
    x32: Float32Array,
    n: number,
    cond: Float32Array | undefined,
    t: number,
    info: DenoiseInfo,
  ): Promise<Float64Array> {
    const tValue = networkTime(config, schedule, t);
    let raw: Float32Array;
    if (m.condition && cond && guidance !== 1) {
      // One call of 2B: [unconditional; conditional], then u + w·(c − u) on the raw output.
      raw = new Float32Array(n * d);
      const chunk = Math.max(1, Math.floor(config.batch_size / 2));
      for (let start = 0; start < n; start += chunk) {
        const count = Math.min(chunk, n - start);
        const xs = new Float32Array(2 * count * d);
        xs.set(x32.subarray(start * d, (start + count) * d));
        xs.set(x32.subarray(start * d, (start + count) * d), count * d);
        const cs = new Float32Array(2 * count * condSize);
        for (let b = 0; b < count; b++) cs.set(uncond, b * condSize);
        cs.set(cond.subarray(start * condSize, (start + count) * condSize), count * condSize);
        const both = await runNetwork(xs, 2 * count, tValue, cs);
        checkFinite(both, x32, t, info.step);
        for (let i = 0; i < count * d; i++) {
          const u = both[i];
          raw[start * d + i] = u + guidance * (both[count * d + i] - u);
        }
      }
    } else {
      raw = await runNetwork(x32, n, tValue, cond);
    }
    checkFinite(raw, x32, t, info.step);
    return toDataPrediction(m.prediction, schedule, t, x, raw);
  }

  function checkFinite(raw: Float32Array, x32: Float32Array, t: number, step?: number): void {
    if (allFinite(raw)) return;
    const bad = firstNonFinite(raw);
    if (bad < 0) return;
    const inputBad = firstNonFinite(x32) >= 0;
    throw new NonFiniteError(
      config.name,
      t,
      step,
      `output "${m.output}" of ${m.path} holds ${raw[bad]} at sample ${Math.floor(bad / d)}, ` +
        `element ${bad % d}${inputBad ? " (the input x already held non-finite values)" : ""}`,
    );
  }

  return { schedule, sampleShape: [...config.shape], denoise };
}

// ---------------------------------------------------------------------------------------------
// Loading

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
    const result = await session.run({
      [input]: new ort.Tensor("float32", latent, [callSize, ...config.shape]),
    });
    const y = result[output];
    const perImage = y.data.length / callSize;
    parts.push(Float32Array.from((y.data as Float32Array).subarray(0, count * perImage)));
    dims = [count, ...y.dims.slice(1)];
    for (const tensor of Object.values(result)) tensor.dispose();
  }
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p, offset);
    offset += p.length;
  }
  return { data, dims };
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

/**
 * Load a model from a config file path (or an already validated config): open the ONNX
 * network (and decoder), check their signatures against the config, and build the denoiser.
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
  configOrPath: string | ModelConfig,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  const config = typeof configOrPath === "string"
    ? await loadModelConfig(configOrPath)
    : configOrPath;
  const device = options.device ?? config.device;
  checkDevice(device); // fail on a bad or unavailable device before reading any weights
  const bytes = await Deno.readFile(config.model.path);
  const signature = readOnnxSignature(bytes);
  checkModelSignature(signature, config);
  const modelHash = await onnxModelHash(config.model.path, bytes, signature.externalData);
  let decoderSignature: OnnxSignature | undefined;
  let decoderBytes: Uint8Array | undefined;
  if (config.decoder) {
    decoderBytes = await Deno.readFile(config.decoder.path);
    decoderSignature = readOnnxSignature(decoderBytes);
    checkDecoderSignature(decoderSignature, config);
  }

  const sessions: ort.InferenceSession[] = [];
  try {
    const session = await createSession(
      sessionSource(config.model.path, bytes, signature.externalData),
      { device },
    );
    sessions.push(session);
    const denoiser = await onnxDenoiser(session, config, { signature });
    let decoderSession: ort.InferenceSession | undefined;
    let imageShape = [...config.shape];
    if (decoderBytes && decoderSignature) {
      const decoderSource = sessionSource(
        config.decoder!.path,
        decoderBytes,
        decoderSignature.externalData,
      );
      decoderSession = await createSession(decoderSource, { device });
      sessions.push(decoderSession);
      imageShape = await decoderImageShape(decoderSession, decoderSignature, config);
    }
    const d = sampleSize(config.shape);
    const decoderBatch = decoderSignature
      ? fixedBatch(decoderSignature, config.decoder!.input)
      : undefined;
    let closed = false;
    return {
      config,
      denoiser,
      modelHash,
      sampleShape: [...config.shape],
      imageShape,
      conditionShape: config.model.condition ? [...config.model.condition.shape] : undefined,
      async decode(x: Float64Array): Promise<Float32Array> {
        if (x.length % d !== 0) {
          throw new RangeError(`decode: x must hold a multiple of ${d} values: got ${x.length}`);
        }
        if (!decoderSession || !config.decoder) {
          return toUnitRange(Float32Array.from(x), config.data_range);
        }
        const z = new Float32Array(x.length);
        for (let i = 0; i < x.length; i++) z[i] = x[i] / config.decoder.scale_factor;
        const images = await runDecoder(decoderSession, config, z, x.length / d, decoderBatch);
        return toUnitRange(images.data, config.data_range);
      },
      async close() {
        if (closed) return;
        closed = true;
        for (const s of sessions) await s.release();
      },
    };
  } catch (e) {
    for (const s of sessions) await s.release();
    throw e;
  }
}
