/**
 * Reverse mode through ONNX models: any model loaded by {@linkcode loadModel} becomes a
 * {@linkcode DifferentiableDenoiser} (and its decoder a {@linkcode DifferentiableDecoder}) for
 * LD3 training.
 *
 * The network's own vector–Jacobian product comes from a VJP graph built by `lib/vjp`
 * ({@linkcode VjpSession}), seeded at the configured output and taken with respect to the
 * sample input and the time input. Around it, the adapter applies the chain rule of every
 * step `model.ts` takes between solver and network, each a small float64 function here:
 *
 * - the time input `τ(t)` ({@linkcode networkTimeDerivative}, exact per `time_input`),
 * - the data prediction, which is linear in `x` and the network output:
 *   `D = a(t)·x + b(t)·out` ({@linkcode dataPredictionCoefficients}),
 * - classifier-free guidance `out = u + w·(c − u)`, linear in the two network outputs,
 * - the same batching, padding and float32 casts as the forward pass.
 *
 * @module
 */
import { join } from "node:path";
import type { DenoiseInfo, Denoiser } from "../denoiser.ts";
import { sampleSize } from "../denoiser.ts";
import { ort, type OrtSessionOptions } from "../deps.ts";
import type { DecoderConfig, ModelConfig, PredictionType, TimeInput } from "../onnx/config.ts";
import {
  type DenoiserVjp,
  type DifferentiableDecoder,
  type DifferentiableDenoiser,
  dLambdaDt,
  dLogAlphaDt,
  type SavedForward,
  type VjpInfo,
} from "../differentiable.ts";
import { type LoadedModel, networkTime, NonFiniteError, toDataPrediction } from "../onnx/model.ts";
import {
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
} from "../onnx/_model_inputs.ts";
import { ElemType } from "../onnx/build.ts";
import {
  fixedBatch,
  type OnnxSignature,
  readOnnxSignature,
  sessionOptionsFor,
  type TensorSignature,
} from "../onnx/session.ts";
import { type DerivedSource, encodeModel, readDerivedSource } from "../onnx/derived.ts";
import { halfPrecisionIo, withFloat32Interface } from "../onnx/float_io.ts";
import { LARGE_MODEL_BYTES } from "../onnx/external.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import { SplitVjpSession, type VjpSaved, VjpSession } from "../vjp/mod.ts";

// ---------------------------------------------------------------------------------------------
// Pure float64 derivatives of the adapter's scalar maps

/**
 * `dτ/dt` of the network time input `τ(t)` of `model.ts`'s `networkTime`, exact for each kind:
 * `t` → 1; `sigma` → 1 for VE, else `d(σ/α)/dt = −(σ/α)·dλ/dt`; `log_sigma_quarter` →
 * `−¼·dλ/dt`; `lambda` → `dλ/dt`; `discrete` → `Nd = round(1/tMin)`. The λ derivative is
 * closed-form for VE and flow and a 4-point stencil otherwise ({@linkcode dLambdaDt}).
 *
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * console.log(networkTimeDerivative("log_sigma_quarter", veSchedule(), 2)); // 0.125
 * ```
 */
export function networkTimeDerivative(
  timeInput: TimeInput,
  schedule: NoiseSchedule,
  t: number,
): number {
  switch (timeInput) {
    case "t":
      return 1;
    case "sigma":
      return schedule.kind === "ve"
        ? 1
        : -(schedule.sigma(t) / schedule.alpha(t)) * dLambdaDt(schedule, t);
    case "log_sigma_quarter":
      return -0.25 * dLambdaDt(schedule, t);
    case "lambda":
      return dLambdaDt(schedule, t);
    case "discrete":
      return Math.round(1 / schedule.tMin);
  }
}

/**
 * The data prediction is linear in the input and the network output, `D = a·x + b·out`:
 * its coefficients at time t and their time derivatives.
 */
export interface PredictionCoefficients {
  /** `∂D/∂x`, a multiple of the identity. */
  readonly a: number;
  /** `∂D/∂out`, a multiple of the identity. */
  readonly b: number;
  /** `da/dt`. */
  readonly da: number;
  /** `db/dt`. */
  readonly db: number;
}

/**
 * Coefficients of `D = a·x + b·out` for each prediction type (those of `toDataPrediction`):
 * x0: `a = 0, b = 1`; ε: `a = 1/α, b = −σ/α`; v: `a = α, b = −σ`; flow: `a = 1, b = −σ`.
 * Derivatives use `α' = α·dlogα/dt` and `σ' = σ·(dlogα/dt − dλ/dt)`.
 *
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const c = dataPredictionCoefficients("eps", veSchedule(), 3);
 * console.log(c.a, c.b, c.db); // 1 -3 -1
 * ```
 */
export function dataPredictionCoefficients(
  prediction: PredictionType,
  schedule: NoiseSchedule,
  t: number,
): PredictionCoefficients {
  if (prediction === "x0") return { a: 0, b: 1, da: 0, db: 0 };
  const alpha = schedule.alpha(t);
  const sigma = schedule.sigma(t);
  const dLogAlpha = dLogAlphaDt(schedule, t);
  const dSigma = sigma * (dLogAlpha - dLambdaDt(schedule, t));
  switch (prediction) {
    case "eps":
      // d(σ/α)/dt = (σ/α)(dlogσ − dlogα) = −(σ/α)·dλ/dt.
      return {
        a: 1 / alpha,
        b: -sigma / alpha,
        da: -dLogAlpha / alpha,
        db: (sigma / alpha) * dLambdaDt(schedule, t),
      };
    case "v":
      return { a: alpha, b: -sigma, da: alpha * dLogAlpha, db: -dSigma };
    case "flow":
      return { a: 1, b: -sigma, da: 0, db: -dSigma };
  }
}

// ---------------------------------------------------------------------------------------------
// The denoiser

/** Options of {@linkcode differentiableDenoiser}. */
export interface DifferentiableDenoiserOptions {
  /** The ONNX bytes of the network; read from `config.model.path` when absent. */
  modelBytes?: Uint8Array;
  /**
   * Execution device of the VJP models.
   *
   * @default {model.config.device}
   */
  device?: string;
  /**
   * ONNX Runtime options of the VJP models; replaces the device's defaults.
   *
   * @default {sessionOptionsFor(device, threads)}
   */
  sessionOptions?: OrtSessionOptions;
  /**
   * Receives the one-time warning that an integer time input has no gradient.
   *
   * @default {console.warn}
   */
  onWarning?: (message: string) => void;
  /**
   * CPU threads of the VJP sessions (ignored with `sessionOptions`).
   *
   * @default {model.threads}
   */
  threads?: number;
  /**
   * Whether the forward calls of a trajectory keep the activations their VJPs read
   * (`denoiseForVjp`), so that no VJP runs the network's forward pass again: `true`, `false`
   * (every VJP recomputes its forward), or `"auto"`: keep them while one call's residuals fit
   * in {@linkcode RESIDUAL_BUDGET_BYTES} (a trajectory holds one such set per network call
   * until its backward pass, so a large network at a large batch recomputes instead).
   *
   * @default {"auto"}
   */
  keepResiduals?: boolean | "auto";
  /**
   * Keep built VJP graphs in the disk cache (`lib/vjp/cache.ts`), so that a second run on the
   * same network and shapes starts without building them.
   *
   * @default {true}
   */
  cache?: boolean;
}

/**
 * The most bytes one forward call may keep for its VJP under `keepResiduals: "auto"`: 256 MiB.
 * The bundled MNIST UNet keeps about 8 MB per sample (training batches of 2 keep 16 MB per call);
 * a network whose activations would exceed this recomputes its forward in each VJP instead.
 */
export const RESIDUAL_BUDGET_BYTES = 256 * 2 ** 20;

/** An ONNX-backed {@linkcode DifferentiableDenoiser} that owns VJP sessions. */
export interface OnnxDifferentiableDenoiser extends DifferentiableDenoiser {
  /**
   * False when the network takes an integer time input (discrete timesteps): `vjp` then
   * returns `t = 0`, so LD3's decoupled times θ2 receive no gradient through the network.
   */
  readonly hasTimeGradient: boolean;
  /** Release the VJP sessions (the forward session belongs to the {@linkcode LoadedModel}). */
  close(): Promise<void>;
}

/** The network-level VJP of one batch. */
interface NetworkVjp {
  /** Network output (float32, as the forward pass sees it). */
  raw: Float32Array;
  /** `⟨cot, ∂out/∂x⟩` per sample. */
  gx: Float64Array;
  /** `Σ_batch ⟨cot, ∂out/∂τ⟩`. */
  gTau: number;
}

/** What every `vjp` call needs, fixed when the denoiser is made differentiable. */
interface GradAdapter extends FeedLayout {
  readonly config: ModelConfig;
  readonly schedule: NoiseSchedule;
  readonly vjpSession: VjpSession;
  /** The forward and backward parts, when forward calls may keep residuals. */
  readonly split: SplitVjpSession | undefined;
  /** `keepResiduals`: `"auto"` checks each call's residual size against the budget. */
  readonly keep: boolean | "auto";
  /** Under `"auto"`: whether calls of n samples keep their residuals, by n. */
  readonly keepsAt: Map<number, boolean>;
  /** An int64 time input (discrete steps) has no gradient. */
  readonly timeIsInteger: boolean;
  /**
   * Rows per one-graph VJP call: `maxBatch`, or 1 for networks of {@linkcode LEAN_WEIGHT_BYTES}
   * and more, whose VJP keeps every activation of a call (a Stable Diffusion UNet's at 64×64
   * latents take gigabytes per row): the halves of a guided sample then run one after the other.
   */
  readonly vjpBatch: number;
  /** One sample's unconditional input (empty without `model.condition`). */
  readonly uncond: Float32Array;
  /** Warns, once per denoiser, that the time input has no gradient. */
  readonly warnNoTimeGradient: () => void;
}

function sumPrefix(data: ArrayLike<number>, count: number): number {
  let s = 0;
  for (let i = 0; i < count; i++) s += data[i];
  return s;
}

/**
 * Make a loaded ONNX model differentiable: `denoise` is the model's own forward pass, and
 * `vjp(x, t, cot)` returns `⟨cot, ∂D/∂x⟩` per sample and `Σ_batch ⟨cot, ∂D/∂t⟩` through the
 * network, its time input, the prediction-type conversion and classifier-free guidance.
 *
 * `denoiseForVjp` is `denoise` (bit for bit: the model's own nodes and session options) run
 * through the forward part of a split VJP graph, which also keeps the activations the backward
 * reads; `vjp` given them (`info.saved`) runs the backward part alone. A trajectory so pays one
 * forward and one backward per network call, not a forward and a whole VJP (forward again, then
 * backward). Where nothing was kept (`keepResiduals`, guidance, a call that takes several
 * chunks) one `vjp` call runs the one-graph VJP per chunk, which also returns the network
 * output. Float32 networks get float32 inputs and cotangents and give float32 gradients; the
 * surrounding chain rule runs in float64. A network whose time input is int64 (discrete DDPM
 * steps) has no time gradient: `vjp` returns `t = 0` and warns once.
 *
 * @example
 * ```ts ignore
 * const model = await loadModel("configs/gmm-mnist.yml");
 * const denoiser = await differentiableDenoiser(model);
 * const g = await denoiser.vjp(x, 1.0, cotangent);
 * await denoiser.close();
 * await model.close();
 * ```
 * @throws {TypeError} when the ONNX file lacks the configured inputs or output, or the
 * unconditional `.npy` does not fit the condition shape
 */
export async function differentiableDenoiser(
  model: LoadedModel,
  options: DifferentiableDenoiserOptions = {},
): Promise<OnnxDifferentiableDenoiser> {
  const config = model.config;
  const m = config.model;
  const { bytes, signature, tSig, dir, lean } = await networkGraph(config, options.modelBytes);
  const layout = feedLayout(config, signature, tSig);
  const timeIsInteger = tSig.elemType === ElemType.int64;
  const device = options.device ?? config.device;
  const what = {
    wrt: timeIsInteger ? [m.inputs.x] : [m.inputs.x, m.inputs.t],
    of: m.output,
    externalDataFolder: dir,
    sessionOptions: options.sessionOptions ??
      gradSessionOptions(device, options.threads ?? model.threads, lean),
    cache: options.cache ?? true,
  };
  const vjpSession = await VjpSession.create(bytes, { ...what, returnOutput: true });
  const keep = options.keepResiduals ?? "auto";
  // Like the model's own batched calls, the split VJP shares out a batch's samples between
  // one-thread sessions on the model's worker threads (unless the caller chose the session
  // options).
  const workers = keep !== false && !options.sessionOptions && model.sessionWorkers
    ? await model.sessionWorkers.get()
    : undefined;
  const split = keep === false ? undefined : await SplitVjpSession.create(bytes, {
    ...what,
    workers,
    workerSessionOptions: gradSessionOptions(device, 1, lean),
  });
  const warn = options.onWarning ?? ((message: string) => console.warn(message));
  let warned = false;
  const adapter: GradAdapter = {
    ...layout,
    config,
    schedule: model.denoiser.schedule,
    vjpSession,
    split,
    keep,
    keepsAt: new Map(),
    timeIsInteger,
    vjpBatch: lean && layout.exportBatch === undefined ? 1 : layout.maxBatch,
    uncond: model.uncond ?? await readUncond(m.condition, layout.condSize),
    warnNoTimeGradient() {
      if (warned) return;
      warned = true;
      warn(
        `Model "${config.name}" takes an integer time input "${m.inputs.t}": the denoiser has ` +
          `no time gradient, so LD3's decoupled times (θ2) are not trained through the network`,
      );
    },
  };
  const forward = model.denoiser;
  return {
    schedule: adapter.schedule,
    sampleShape: [...config.shape],
    hasTimeGradient: !timeIsInteger,
    denoise: (x, t, info) => forward.denoise(x, t, info),
    denoiseForVjp: (x, t, info = {}) => denoiseKeeping(adapter, forward, x, t, info),
    vjp: (x, t, cotangent, info = {}) => denoiserVjp(adapter, x, t, cotangent, info),
    close: async () => {
      await vjpSession.release();
      await split?.release();
    },
  };
}

/** What {@linkcode denoiseKeeping} saves: the forward part's residuals and raw output. */
interface SavedCall extends SavedForward {
  readonly adapter: GradAdapter;
  readonly net: VjpSaved;
  /** The raw network output (float32, as the forward pass saw it). */
  readonly raw: Float32Array;
}

function isSavedCall(a: GradAdapter, saved: SavedForward | undefined): saved is SavedCall {
  return saved !== undefined && (saved as Partial<SavedCall>).adapter === a;
}

/**
 * `denoise` through the split VJP's forward part, which computes the model's own output (the
 * same nodes, the same session options) and keeps the residuals of the backward part. Calls
 * the split cannot serve as one network call (guidance, several chunks, a fixed export batch
 * other than n) or whose residuals exceed the budget run the plain forward and keep nothing.
 */
async function denoiseKeeping(
  a: GradAdapter,
  forward: Denoiser,
  x: Float64Array,
  t: number,
  info: DenoiseInfo,
): Promise<{ output: Float64Array; saved?: SavedForward }> {
  const { config, schedule } = a;
  const m = config.model;
  const n = sampleCount(x, a.d, "denoise");
  const cond = conditionBatch("denoise", config, n, a.uncond, info.condition);
  const guided = m.condition && cond && a.guidance !== 1;
  const oneCall = n <= a.maxBatch && (a.exportBatch === undefined || a.exportBatch === n);
  if (!a.split || guided || !oneCall) return { output: await forward.denoise(x, t, info) };
  const x32 = Float32Array.from(x);
  const feeds = networkFeeds(config, a, x32, n, networkTime(config, schedule, t), cond);
  if (a.keep === "auto" && !a.keepsAt.has(n)) {
    a.keepsAt.set(n, await a.split.residualBytes(feeds) <= RESIDUAL_BUDGET_BYTES);
  }
  if (a.keep === "auto" && !a.keepsAt.get(n)) return { output: await forward.denoise(x, t, info) };
  const { output, saved } = await a.split.forward(feeds);
  const raw = output.data as Float32Array;
  if (raw.length !== n * a.d) {
    throw new TypeError(
      `ONNX model ${m.path}: output "${m.output}" has dims [${output.dims}], expected [${n}, ${config.shape}]`,
    );
  }
  checkFinite(a, raw, `output "${m.output}"`, t, info.step);
  const call: SavedCall = {
    adapter: a,
    net: saved,
    raw,
    bytes: saved.bytes + raw.byteLength,
    release: () => saved.release(),
  };
  return { output: toDataPrediction(m.prediction, schedule, t, x, raw), saved: call };
}

/** The network VJP from a forward call's residuals: the backward part alone. */
async function savedNetworkVjp(
  a: GradAdapter,
  saved: SavedCall,
  n: number,
  cot: Float32Array,
): Promise<NetworkVjp> {
  const m = a.config.model;
  const seed = new ort.Tensor("float32", cot, [n, ...a.config.shape]);
  const gradients = await a.split!.backward(saved.net, seed);
  try {
    const gx = Float64Array.from(gradients[m.inputs.x].data as Float32Array);
    let gTau = 0;
    if (!a.timeIsInteger) {
      const gt = gradients[m.inputs.t].data as Float32Array | Float64Array;
      gTau = m.time_shape === "batch" ? sumPrefix(gt, n) : gt[0];
    }
    return { raw: saved.raw, gx, gTau };
  } finally {
    for (const tensor of Object.values(gradients)) tensor.dispose();
  }
}

/**
 * ONNX Runtime options of a gradient graph on `device` with `threads` intra-op threads
 * (`sessionOptionsFor`, as the model's own sessions). `lean` ones, for networks of 64 MiB of
 * weights and more, map the weights from the model's files instead of copying them into packed
 * buffers, so the forward model's session and this one share one copy of the weights, and hand
 * the memory of a run back after it, so the UNet's and the decoder's gradient graphs do not hold
 * their peaks at once. (Where the weights live is told by `externalDataFolder`, `VjpSession`.)
 */
export function gradSessionOptions(
  device: string,
  threads?: number,
  lean = false,
): OrtSessionOptions {
  const base = sessionOptionsFor(device, threads);
  if (!lean) return base;
  const extra = (base.extra ?? {}) as Record<string, Record<string, unknown>>;
  return {
    ...base,
    enableCpuMemArena: false,
    extra: { ...extra, session: { ...extra.session, disable_prepacking: "1" } },
  };
}

/** Weights from this many bytes on make a network's gradient sessions lean. */
const LEAN_WEIGHT_BYTES = LARGE_MODEL_BYTES;

/** Bytes of the weights of a derived graph: those inside it and those its files hold. */
async function weightBytes(source: DerivedSource): Promise<number> {
  let total = 0;
  const files = new Set<string>();
  for (const t of source.model.graph?.initializer ?? []) {
    total += t.rawData?.length ?? 0;
    const location = t.externalData?.find((e) => e.key === "location")?.value;
    if (location) files.add(location);
  }
  for (const f of files) total += (await Deno.stat(join(source.dir, f))).size;
  return total;
}

/**
 * A graph of an ONNX file ready for its VJP: large weights left in the model's files (referenced,
 * never read into JavaScript), a float16 network behind its float32 interface (`float_io.ts`);
 * `lean` when its weights take {@linkcode LEAN_WEIGHT_BYTES} or more.
 */
async function derivedGraph(
  path: string,
  bytes: Uint8Array | undefined,
): Promise<{ bytes: Uint8Array; signature: OnnxSignature; dir: string; lean: boolean }> {
  const source = await readDerivedSource(path, bytes);
  const model = halfPrecisionIo(readOnnxSignature(encodeModel(source.model), path)).length > 0
    ? withFloat32Interface(source.model)
    : source.model;
  const derived = encodeModel(model);
  return {
    bytes: derived,
    signature: readOnnxSignature(derived, path),
    dir: source.dir,
    lean: await weightBytes(source) >= LEAN_WEIGHT_BYTES,
  };
}

/**
 * The network's ONNX graph, its weights left in the model's files, and the inputs and output the
 * config names, which the VJP needs.
 */
async function networkGraph(
  config: ModelConfig,
  modelBytes: Uint8Array | undefined,
): Promise<
  { bytes: Uint8Array; signature: OnnxSignature; tSig: TensorSignature; dir: string; lean: boolean }
> {
  const m = config.model;
  const { bytes, signature, dir, lean } = await derivedGraph(m.path, modelBytes);
  const find = (list: readonly TensorSignature[], name: string, field: string) => {
    const s = list.find((v) => v.name === name);
    if (!s) {
      throw new TypeError(`ONNX model ${m.path} has no "${name}" (${field}): cannot build its VJP`);
    }
    return s;
  };
  find(signature.inputs, m.inputs.x, "model.inputs.x");
  const tSig = find(signature.inputs, m.inputs.t, "model.inputs.t");
  find(signature.outputs, m.output, "model.output");
  return { bytes, signature, tSig, dir, lean };
}

/** `vjp` of {@linkcode differentiableDenoiser}: the chain rule around the network's VJP. */
async function denoiserVjp(
  a: GradAdapter,
  x: Float64Array,
  t: number,
  cotangent: Float64Array,
  info: VjpInfo,
): Promise<DenoiserVjp> {
  const { config, schedule } = a;
  const m = config.model;
  const n = sampleCount(x, a.d, "vjp");
  if (cotangent.length !== x.length) {
    throw new RangeError(
      `vjp: cotangent must have the length of x (${x.length}): got ${cotangent.length}`,
    );
  }
  if (a.timeIsInteger) a.warnNoTimeGradient();
  const cond = conditionBatch("vjp", config, n, a.uncond, info.condition);
  const x32 = Float32Array.from(x);
  const tau = networkTime(config, schedule, t);
  const { a: ca, b, da, db } = dataPredictionCoefficients(m.prediction, schedule, t);
  // D = a·x + b·out, so the network output's cotangent is b·cot.
  const cotOut = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) cotOut[i] = b * cotangent[i];
  const net = isSavedCall(a, info.saved)
    ? await savedNetworkVjp(a, info.saved, n, cotOut)
    : m.condition && cond && a.guidance !== 1
    ? await guidedNetworkVjp(a, x32, n, tau, cond, cotOut, t, info.step)
    : await networkVjp(a, x32, n, tau, cond, cotOut);
  checkFinite(a, net.raw, `output "${m.output}"`, t, info.step);
  checkFinite(a, net.gx, `VJP of input "${m.inputs.x}"`, t, info.step);
  const gx = new Float64Array(x.length);
  // ∂D/∂t at a fixed network output is da·x + db·out; the network adds τ'(t)·∂/∂τ.
  let gt = 0;
  for (let i = 0; i < x.length; i++) {
    gx[i] = ca * cotangent[i] + net.gx[i];
    gt += cotangent[i] * (da * x[i] + db * net.raw[i]);
  }
  if (!a.timeIsInteger) {
    if (!Number.isFinite(net.gTau)) {
      throw new NonFiniteError(
        config.name,
        t,
        info.step,
        `VJP of time input "${m.inputs.t}" of ${m.path} is ${net.gTau}`,
      );
    }
    gt += networkTimeDerivative(m.time_input, schedule, t) * net.gTau;
  }
  return { x: gx, t: gt };
}

/**
 * The network VJP under guidance `out = (1 − w)·u + w·c`: one network batch [uncond; cond] per
 * chunk, as in `denoise`, the cotangent split between the halves by their weights.
 */
async function guidedNetworkVjp(
  a: GradAdapter,
  x32: Float32Array,
  n: number,
  tau: number,
  cond: Float32Array,
  cotOut: Float32Array,
  t: number,
  step: number | undefined,
): Promise<NetworkVjp> {
  const { d, guidance } = a;
  const raw = new Float32Array(n * d);
  const gx = new Float64Array(n * d);
  let gTau = 0;
  const chunk = guidanceChunk(a.config);
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const span = count * d;
    const { xs, cs } = guidanceBatch(a, a.uncond, x32, cond, start, count);
    const cots = new Float32Array(2 * span);
    for (let i = 0; i < span; i++) {
      const c = cotOut[start * d + i];
      cots[i] = (1 - guidance) * c;
      cots[span + i] = guidance * c;
    }
    const both = await networkVjp(a, xs, 2 * count, tau, cs, cots);
    checkFinite(a, both.raw, `output "${a.config.model.output}"`, t, step);
    for (let i = 0; i < span; i++) {
      const u = both.raw[i];
      raw[start * d + i] = u + guidance * (both.raw[span + i] - u);
      gx[start * d + i] = both.gx[i] + both.gx[span + i];
    }
    gTau += both.gTau;
  }
  return { raw, gx, gTau };
}

/** VJP of the raw network for `n` samples, in chunks of at most `vjpBatch` rows. */
async function networkVjp(
  a: GradAdapter,
  x: Float32Array,
  n: number,
  tau: number,
  cond: Float32Array | undefined,
  cot: Float32Array,
): Promise<NetworkVjp> {
  const { config, d, condSize } = a;
  const m = config.model;
  const raw = new Float32Array(n * d);
  const gx = new Float64Array(n * d);
  let gTau = 0;
  for (let start = 0; start < n; start += a.vjpBatch) {
    const count = Math.min(a.vjpBatch, n - start);
    // Padding samples get a zero cotangent, so they add nothing to any gradient.
    const callSize = a.exportBatch ?? count;
    const cs = cond && padChunk(cond, condSize, start, count, callSize);
    const feeds = networkFeeds(
      config,
      a,
      padChunk(x, d, start, count, callSize),
      callSize,
      tau,
      cs,
    );
    const seed = new ort.Tensor("float32", padChunk(cot, d, start, count, callSize), [
      callSize,
      ...config.shape,
    ]);
    const { gradients, output } = await a.vjpSession.run(feeds, seed);
    try {
      raw.set((output!.data as Float32Array).subarray(0, count * d), start * d);
      const g = gradients[m.inputs.x].data as Float32Array;
      for (let i = 0; i < count * d; i++) gx[start * d + i] = g[i];
      if (!a.timeIsInteger) {
        const gt = gradients[m.inputs.t].data as Float32Array | Float64Array;
        // A [B] time input has one gradient per sample; a scalar one already sums the batch.
        gTau += m.time_shape === "batch" ? sumPrefix(gt, count) : gt[0];
      }
    } finally {
      output?.dispose();
      for (const tensor of Object.values(gradients)) tensor.dispose();
    }
  }
  return { raw, gx, gTau };
}

/** Refuse NaN or ±Inf in `values` (an output or a gradient), naming the sample and element. */
function checkFinite(
  a: GradAdapter,
  values: ArrayLike<number>,
  what: string,
  t: number,
  step?: number,
): void {
  const bad = firstNonFinite(values);
  if (bad < 0) return;
  throw new NonFiniteError(
    a.config.name,
    t,
    step,
    `${what} of ${a.config.model.path} holds ${values[bad]} at sample ${
      Math.floor(bad / a.d)
    }, element ${bad % a.d}`,
  );
}

// ---------------------------------------------------------------------------------------------
// The decoder

/** Options of {@linkcode differentiableDecoder}. */
export interface DifferentiableDecoderOptions {
  /** The ONNX bytes of the decoder; read from `config.decoder.path` when absent. */
  decoderBytes?: Uint8Array;
  /**
   * Execution device of the VJP model.
   *
   * @default {model.config.device}
   */
  device?: string;
  /**
   * ONNX Runtime options of the VJP model; replaces the device's defaults.
   *
   * @default {sessionOptionsFor(device, threads)}
   */
  sessionOptions?: OrtSessionOptions;
  /**
   * CPU threads of the VJP session (ignored with `sessionOptions`).
   *
   * @default {model.threads}
   */
  threads?: number;
}

/** An ONNX-backed {@linkcode DifferentiableDecoder} that owns a VJP session. */
export interface OnnxDifferentiableDecoder extends DifferentiableDecoder {
  /** Release the VJP sessions (the forward session belongs to the {@linkcode LoadedModel}). */
  close(): Promise<void>;
}

/**
 * The model's decoder with its VJP: `image = r(decoder(z / scale_factor))`, where
 * `r(y) = 2(y − lo)/(hi − lo) − 1` maps `data_range` to [-1, 1] (the same map as
 * {@linkcode LoadedModel.decode}). A model without a decoder gets the affine map `r` alone,
 * so pixel models whose data range is not [-1, 1] compare images on the same scale.
 *
 * @throws {TypeError} when the decoder ONNX file lacks the configured input or output
 */
export async function differentiableDecoder(
  model: LoadedModel,
  options: DifferentiableDecoderOptions = {},
): Promise<OnnxDifferentiableDecoder> {
  const config = model.config;
  const [lo, hi] = config.data_range;
  const dec = config.decoder;
  const opened = dec ? await openDecoderVjp(dec, config, model.threads, options) : undefined;
  const g: DecoderGrad = {
    model,
    d: sampleSize(config.shape),
    imageSize: sampleSize(model.imageShape),
    rangeScale: 2 / (hi - lo),
    decoder: dec && opened ? { config: dec, ...opened } : undefined,
  };
  return {
    imageSize: g.imageSize,
    async decode(x, batch) {
      checkDecoderBatch(g, x, batch, "decode");
      return Float64Array.from(await model.decode(x));
    },
    vjp: (x, cotangent, batch) => decoderVjp(g, x, cotangent, batch),
    close: async () => {
      await opened?.session.release();
    },
  };
}

/** What the decoder's `vjp` needs, fixed when it is made differentiable. */
interface DecoderGrad {
  readonly model: LoadedModel;
  /** Values of one latent. */
  readonly d: number;
  /** Values of one image. */
  readonly imageSize: number;
  /** Slope of the map from `data_range` to [-1, 1]. */
  readonly rangeScale: number;
  /** The decoder network, absent for a pixel model (the affine map alone). */
  readonly decoder: {
    readonly config: DecoderConfig;
    readonly session: VjpSession;
    /** The batch the decoder was exported with, when fixed. */
    readonly exportBatch: number | undefined;
  } | undefined;
}

/** The VJP session of a decoder's graph, its weights read back in, and its fixed batch. */
async function openDecoderVjp(
  dec: DecoderConfig,
  config: ModelConfig,
  threads: number,
  options: DifferentiableDecoderOptions,
): Promise<{ session: VjpSession; exportBatch: number | undefined }> {
  const { bytes, signature, dir, lean } = await derivedGraph(dec.path, options.decoderBytes);
  if (!signature.inputs.some((s) => s.name === dec.input)) {
    throw new TypeError(`ONNX decoder ${dec.path} has no input "${dec.input}" (decoder.input)`);
  }
  if (!signature.outputs.some((s) => s.name === dec.output)) {
    throw new TypeError(
      `ONNX decoder ${dec.path} has no output "${dec.output}" (decoder.output)`,
    );
  }
  const exportBatch = fixedBatch(signature, dec.input);
  const session = await VjpSession.create(bytes, {
    wrt: [dec.input],
    of: dec.output,
    externalDataFolder: dir,
    sessionOptions: options.sessionOptions ??
      gradSessionOptions(options.device ?? config.device, options.threads ?? threads, lean),
    cache: true,
  });
  return { session, exportBatch };
}

function checkDecoderBatch(g: DecoderGrad, x: Float64Array, batch: number, what: string): void {
  if (!Number.isInteger(batch) || batch < 1 || x.length !== batch * g.d) {
    throw new RangeError(
      `${what}: x must hold batch × ${g.d} values for batch ${batch}: got ${x.length}`,
    );
  }
}

/** `vjp` of {@linkcode differentiableDecoder}: through the affine map, then the network. */
async function decoderVjp(
  g: DecoderGrad,
  x: Float64Array,
  cotangent: Float64Array,
  batch: number,
): Promise<Float64Array> {
  checkDecoderBatch(g, x, batch, "vjp");
  const { d, imageSize, rangeScale, decoder } = g;
  if (cotangent.length !== batch * imageSize) {
    throw new RangeError(
      `vjp: cotangent must hold batch × ${imageSize} values: got ${cotangent.length}`,
    );
  }
  if (!decoder) return Float64Array.from(cotangent, (c) => c * rangeScale);
  const { config: dec, session, exportBatch } = decoder;
  const gx = new Float64Array(x.length);
  // Calls of at most batch_size, or of exactly a fixed export batch: padding rows get a zero
  // cotangent, and their gradients are dropped.
  const chunk = exportBatch ?? g.model.config.batch_size;
  for (let start = 0; start < batch; start += chunk) {
    const count = Math.min(chunk, batch - start);
    const callSize = exportBatch ?? count;
    const z = new Float32Array(callSize * d);
    for (let i = 0; i < count * d; i++) z[i] = x[start * d + i] / dec.scale_factor;
    const cot = new Float32Array(callSize * imageSize);
    for (let i = 0; i < count * imageSize; i++) {
      cot[i] = rangeScale * cotangent[start * imageSize + i];
    }
    const { gradients } = await session.run(
      { [dec.input]: new ort.Tensor("float32", z, [callSize, ...g.model.config.shape]) },
      new ort.Tensor("float32", cot, [callSize, ...g.model.imageShape]),
    );
    const gz = gradients[dec.input].data as Float32Array;
    for (let i = 0; i < count * d; i++) gx[start * d + i] = gz[i] / dec.scale_factor;
    gradients[dec.input].dispose();
  }
  return gx;
}
