/**
 * What the ONNX denoiser (`model.ts`) and its gradient twin (`model_grad.ts`) share, kept in one
 * place so that both feed the network identically and refuse the same inputs with the same
 * words: the batch layout of a model, its feeds (time input, condition, padded chunks,
 * classifier-free guidance batches) and the search for non-finite values.
 *
 * @module
 */
import type { ConditionConfig, ModelConfig, TimeShape } from "./config.ts";
import { sampleSize } from "../denoiser.ts";
import { ort } from "../deps.ts";
import { readNpy } from "../io/npy.ts";
import { ElemType } from "./build.ts";
import { fixedBatch, type OnnxSignature, type TensorSignature } from "./session.ts";

/**
 * One sample's unconditional input of classifier-free guidance: zeros, or the `.npy` named by
 * `model.condition.uncond` (which must hold `condSize` float values).
 */
export async function readUncond(
  condition: ConditionConfig | undefined,
  condSize: number,
): Promise<Float32Array> {
  if (!condition || condition.uncond === "zeros") return new Float32Array(condSize);
  const array = await readNpy(condition.uncond);
  if (array.data.length !== condSize || array.data instanceof BigInt64Array) {
    throw new TypeError(
      `model.condition.uncond ${condition.uncond}: expected ${condSize} float values, found ${array.dtype} [${array.shape}]`,
    );
  }
  return Float32Array.from(array.data as ArrayLike<number>);
}

/**
 * A maker of the network's time input for `n` samples: one value per sample (`batch`) or one
 * for the call (`scalar`, rank 0 or `[1]` as the graph declares), in the graph's element type
 * (int64 times are rounded).
 */
export function timeTensorMaker(
  timeShape: TimeShape,
  tSig: TensorSignature,
): (value: number, n: number) => ort.Tensor {
  return (value, n) => {
    const dims = timeShape === "batch" ? [n] : tSig.dims.length === 0 ? [] : [1];
    const count = timeShape === "batch" ? n : 1;
    if (tSig.elemType === ElemType.int64) {
      return new ort.Tensor(
        "int64",
        new BigInt64Array(count).fill(BigInt(Math.round(value))),
        dims,
      );
    }
    if (tSig.elemType === ElemType.double) {
      return new ort.Tensor("float64", new Float64Array(count).fill(value), dims);
    }
    return new ort.Tensor("float32", new Float32Array(count).fill(value), dims);
  };
}

/** How a model's samples reach its network: sizes, call batches and the time input. */
export interface FeedLayout {
  /** Values of one sample. */
  readonly d: number;
  /** Values of one sample's condition (0 without `model.condition`). */
  readonly condSize: number;
  /** Classifier-free guidance scale w (1: no guidance). */
  readonly guidance: number;
  /** The batch the graph was exported with, when its first axis is fixed. */
  readonly exportBatch: number | undefined;
  /** Most samples in one network call: the fixed export batch, else `batch_size`. */
  readonly maxBatch: number;
  /** The time input of one call of `n` samples. */
  readonly timeTensor: (value: number, n: number) => ort.Tensor;
}

/** The {@linkcode FeedLayout} of a config's network, whose time input is declared as `tSig`. */
export function feedLayout(
  config: ModelConfig,
  signature: OnnxSignature,
  tSig: TensorSignature,
): FeedLayout {
  const m = config.model;
  // A network exported with a fixed batch size gets exactly that many samples per call.
  const exportBatch = fixedBatch(signature, m.inputs.x);
  return {
    d: sampleSize(config.shape),
    condSize: m.condition ? sampleSize(m.condition.shape) : 0,
    guidance: m.condition?.guidance_scale ?? 1,
    exportBatch,
    maxBatch: exportBatch ?? config.batch_size,
    timeTensor: timeTensorMaker(m.time_shape, tSig),
  };
}

/**
 * The number of samples in `x`, refusing an empty batch or a partial sample; `what` names the
 * caller in the message (`denoise`, `vjp`).
 */
export function sampleCount(x: ArrayLike<number>, d: number, what: string): number {
  if (x.length === 0 || x.length % d !== 0) {
    throw new RangeError(`${what}: x must hold a multiple of ${d} values: got ${x.length}`);
  }
  return x.length / d;
}

/**
 * The conditions of `n` samples: the caller's, or `uncond` (one sample's unconditional input)
 * repeated when none is given, which samples unconditionally. A model without
 * `model.condition` takes none.
 */
export function conditionBatch(
  what: string,
  config: ModelConfig,
  n: number,
  uncond: Float32Array,
  given: Float32Array | undefined,
): Float32Array | undefined {
  const condSize = uncond.length;
  if (!config.model.condition) {
    if (given) {
      throw new TypeError(
        `${what}: model "${config.name}" has no condition input (model.condition)`,
      );
    }
    return undefined;
  }
  if (given) {
    if (given.length !== n * condSize) {
      throw new RangeError(
        `${what}: condition must hold ${n}×${condSize} values: got ${given.length}`,
      );
    }
    return given;
  }
  const cond = new Float32Array(n * condSize);
  for (let b = 0; b < n; b++) cond.set(uncond, b * condSize);
  return cond;
}

/**
 * Samples `start … start+count−1` of `src` (`size` values each) for a call of `callSize`
 * samples: a view when they fill the call, else a copy padded with zero samples up to a fixed
 * export batch (their outputs are dropped, and a zero cotangent makes them add no gradient).
 */
export function padChunk(
  src: Float32Array,
  size: number,
  start: number,
  count: number,
  callSize: number,
): Float32Array {
  const part = src.subarray(start * size, (start + count) * size);
  if (callSize === count) return part;
  const padded = new Float32Array(callSize * size);
  padded.set(part);
  return padded;
}

/** The feeds of one network call on `callSize` samples: x, the time input, the condition. */
export function networkFeeds(
  config: ModelConfig,
  layout: FeedLayout,
  x: Float32Array,
  callSize: number,
  tValue: number,
  cond: Float32Array | undefined,
): Record<string, ort.Tensor> {
  const m = config.model;
  const feeds: Record<string, ort.Tensor> = {
    [m.inputs.x]: new ort.Tensor("float32", x, [callSize, ...config.shape]),
    [m.inputs.t]: layout.timeTensor(tValue, callSize),
  };
  if (m.condition && cond) {
    feeds[m.condition.input] = new ort.Tensor("float32", cond, [callSize, ...m.condition.shape]);
  }
  return feeds;
}

/** Samples per chunk under classifier-free guidance, where each sample runs twice. */
export function guidanceChunk(config: ModelConfig): number {
  return Math.max(1, Math.floor(config.batch_size / 2));
}

/**
 * Classifier-free guidance runs the network once on 2·count samples: the chunk's x twice,
 * beside `[unconditional; conditional]` conditions. `out = u + w·(c − u)` then combines the two
 * halves of the output.
 */
export function guidanceBatch(
  layout: FeedLayout,
  uncond: Float32Array,
  x32: Float32Array,
  cond: Float32Array,
  start: number,
  count: number,
): { xs: Float32Array; cs: Float32Array } {
  const { d, condSize } = layout;
  const xs = new Float32Array(2 * count * d);
  xs.set(x32.subarray(start * d, (start + count) * d));
  xs.set(x32.subarray(start * d, (start + count) * d), count * d);
  const cs = new Float32Array(2 * count * condSize);
  for (let b = 0; b < count; b++) cs.set(uncond, b * condSize);
  cs.set(cond.subarray(start * condSize, (start + count) * condSize), count * condSize);
  return { xs, cs };
}

/** Index of the first NaN or ±Inf of `values`, or −1 when all are finite. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

/**
 * Whether every value is finite, in one branch-free pass: a float64 sum of float32 values
 * cannot overflow (|v| < 3.5e38, so even 10⁹ of them stay below 1e308), and one NaN or ±Inf
 * makes the sum non-finite. Only when it fails does {@linkcode firstNonFinite} look for where.
 */
export function allFinite(values: Float32Array): boolean {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum - sum === 0;
}
