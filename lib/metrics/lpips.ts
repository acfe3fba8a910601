/**
 * The LPIPS perceptual loss (Zhang et al. 2018) as a {@linkcode SampleLoss}: a user-supplied
 * LPIPS ONNX model run by ONNX Runtime, with its gradient from a VJP graph (`lib/vjp`).
 *
 * The model takes `in0` (student) and `in1` (teacher), float `[B, C, H, W]` images in
 * [-1, 1], and outputs `distance`, one value per sample (`[B, 1, 1, 1]` or `[B]`).
 * `models/lpips-tiny/README.md` shows how to export the real LPIPS (VGG) this way.
 *
 * @module
 */
import { sampleSize } from "../denoiser.ts";
import { ort } from "../deps.ts";
import type { ImageArray, SampleLoss } from "./losses.ts";
import { ElemType } from "../onnx/build.ts";
import {
  type OnnxSignature,
  readOnnxSignature,
  sessionOptionsFor,
  type TensorSignature,
  withOutputs,
} from "../onnx/session.ts";
import { VjpSession } from "../vjp/mod.ts";

/** Options of {@linkcode loadLpips}. */
export interface LpipsOptions {
  /**
   * Shape `[C, H, W]` of one image as the trainer passes it. When absent: the model's fixed
   * `[C, H, W]` if it declares one, else a square image of 3 or 1 channels inferred from the
   * number of values per sample.
   */
  imageShape?: readonly number[];
  /**
   * Largest batch of one ONNX Runtime call.
   *
   * @default {16}
   */
  batchSize?: number;
  /**
   * Execution device.
   *
   * @default {"cpu"}
   */
  device?: string;
  /** CPU threads of its ONNX Runtime sessions. @default {defaultThreads()} */
  threads?: number;
  /** Name of the student input. @default {"in0"} */
  input0?: string;
  /** Name of the teacher input. @default {"in1"} */
  input1?: string;
  /** Name of the distance output. @default {"distance"} */
  output?: string;
}

/** An LPIPS loss backed by ONNX Runtime sessions, which {@linkcode LpipsLoss.close} releases. */
export interface LpipsLoss extends SampleLoss {
  /** Channels the model takes (3 for LPIPS); 1-channel images are repeated to match. */
  readonly modelChannels: number;
  /** Release the ONNX Runtime sessions. */
  close(): Promise<void>;
}

/**
 * Repeat each 1-channel image of a batch to `channels` channels (`[B, 1, H, W]` →
 * `[B, channels, H, W]`), into a new float32 array.
 */
export function repeatChannels(
  images: ArrayLike<number>,
  batch: number,
  plane: number,
  channels: number,
): Float32Array {
  const out = new Float32Array(batch * channels * plane);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      const dst = (b * channels + c) * plane;
      for (let i = 0; i < plane; i++) out[dst + i] = images[b * plane + i];
    }
  }
  return out;
}

/**
 * Adjoint of {@linkcode repeatChannels}: sum the gradient of each repeated channel back onto
 * the one source channel (`[B, channels, H, W]` → `[B, 1, H, W]`).
 */
export function sumRepeatedChannels(
  grad: ArrayLike<number>,
  batch: number,
  plane: number,
  channels: number,
): Float64Array {
  const out = new Float64Array(batch * plane);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      const src = (b * channels + c) * plane;
      for (let i = 0; i < plane; i++) out[b * plane + i] += grad[src + i];
    }
  }
  return out;
}

function isSquare(n: number): boolean {
  const r = Math.round(Math.sqrt(n));
  return r > 0 && r * r === n;
}

/** The `[C, H, W]` of one image: given, declared by the model, or inferred as square. */
function resolveImageShape(
  size: number,
  given: readonly number[] | undefined,
  declared: TensorSignature,
): number[] {
  if (given) {
    if (given.length !== 3 || sampleSize(given) !== size) {
      throw new RangeError(
        `LPIPS imageShape [${given}] does not hold the ${size} values of one sample`,
      );
    }
    return [...given];
  }
  const fixed = declared.dims.slice(1);
  if (fixed.length === 3 && fixed.every((v) => typeof v === "number")) {
    const [c, h, w] = fixed as number[];
    if (c * h * w === size) return [c, h, w];
    if (h * w === size) return [1, h, w];
  }
  // 3·s² is never a perfect square, so at most one of these holds.
  for (const c of [3, 1]) {
    if (size % c === 0 && isSquare(size / c)) {
      const side = Math.round(Math.sqrt(size / c));
      return [c, side, side];
    }
  }
  throw new RangeError(
    `LPIPS cannot infer the image shape of ${size}-value samples: pass options.imageShape`,
  );
}

/** An opened LPIPS model: its sessions and what feeding them needs. */
interface LpipsModel {
  readonly path: string;
  readonly in0: string;
  readonly in1: string;
  readonly outName: string;
  /** Largest batch of one ONNX Runtime call. */
  readonly batchSize: number;
  /** The declared student input, `[B, C, H, W]`. */
  readonly sig0: TensorSignature;
  /** Rank of the distance output (`[B]` or `[B, 1, 1, 1]`). */
  readonly outRank: number;
  /** Whether the model takes float64 images (else float32). */
  readonly float64: boolean;
  /** Channels the model declares, when fixed. */
  readonly declaredChannels: number | undefined;
  /** The caller's options, read at each call as before (`imageShape`). */
  readonly options: LpipsOptions;
  readonly session: ort.InferenceSession;
  readonly vjpSession: VjpSession;
}

/** Layout of a batch: its image shape and the channels fed to the model. */
interface BatchLayout {
  c: number;
  h: number;
  w: number;
  /** Channels fed to the model (3 for 1-channel images repeated). */
  channels: number;
  /** Values of one sample. */
  size: number;
}

/**
 * Load an LPIPS ONNX model as a per-sample loss. `value` runs the model; `grad` runs its VJP
 * with respect to the student images `in0`, seeded with one per sample, so sample b's
 * gradient is that of its own distance (the {@linkcode SampleLoss} contract), and it returns
 * the distances from the same run. Images are fed as they are (no resizing); 1-channel images
 * are repeated to the model's 3 channels, and the gradient is summed back over them.
 *
 * @example
 * ```ts ignore
 * const lpips = await loadLpips("models/lpips-tiny/lpips-tiny.onnx");
 * const d = await lpips.value(student, teacher, batch);
 * await lpips.close();
 * ```
 * @throws {TypeError} when the model lacks the inputs or output, or its channels do not fit
 * @throws {RangeError} from `grad` when the gradient is not finite
 */
export async function loadLpips(path: string, options: LpipsOptions = {}): Promise<LpipsLoss> {
  const in0 = options.input0 ?? "in0";
  const in1 = options.input1 ?? "in1";
  const outName = options.output ?? "distance";
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`LPIPS batchSize must be a positive integer: got ${batchSize}`);
  }
  const bytes = await Deno.readFile(path);
  const { sig0, sigOut } = lpipsSignature(path, readOnnxSignature(bytes, path), in0, in1, outName);
  const sessionOptions = sessionOptionsFor(options.device ?? "cpu", options.threads);
  const declaredChannels = typeof sig0.dims[1] === "number" ? sig0.dims[1] : undefined;
  const model: LpipsModel = {
    path,
    in0,
    in1,
    outName,
    batchSize,
    sig0,
    outRank: sigOut.dims.length,
    float64: sig0.elemType === ElemType.double,
    declaredChannels,
    options,
    session: await ort.InferenceSession.create(bytes, sessionOptions),
    vjpSession: await VjpSession.create(bytes, {
      wrt: [in0],
      of: outName,
      returnOutput: true,
      sessionOptions,
      cache: true,
    }),
  };
  return {
    name: "LPIPS",
    modelChannels: declaredChannels ?? 3,
    value: (a, b, batch) => lpipsValue(model, a, b, batch),
    grad: (a, b, batch) => lpipsGrad(model, a, b, batch),
    async close() {
      await model.session.release();
      await model.vjpSession.release();
    },
  };
}

/** The student input and the distance output of an LPIPS graph, refused unless usable. */
function lpipsSignature(
  path: string,
  signature: OnnxSignature,
  in0: string,
  in1: string,
  outName: string,
): { sig0: TensorSignature; sigOut: TensorSignature } {
  const sig0 = signature.inputs.find((s) => s.name === in0);
  const sig1 = signature.inputs.find((s) => s.name === in1);
  const sigOut = signature.outputs.find((s) => s.name === outName);
  if (!sig0 || !sig1 || !sigOut) {
    throw new TypeError(
      `LPIPS model ${path} needs inputs "${in0}", "${in1}" and output "${outName}": found ` +
        `inputs ${signature.inputs.map((s) => s.name).join(", ")}; outputs ${
          signature.outputs.map((s) => s.name).join(", ")
        }`,
    );
  }
  if (sig0.dims.length !== 4) {
    throw new TypeError(
      `LPIPS model ${path}: input "${in0}" must be [B, C, H, W]: got [${sig0.dims}]`,
    );
  }
  return { sig0, sigOut };
}

/** The {@linkcode BatchLayout} of `batch` samples `a` (students) and `b` (teachers). */
function layout(model: LpipsModel, a: Float64Array, b: ImageArray, batch: number): BatchLayout {
  if (a.length !== b.length) {
    throw new RangeError(`Loss inputs must have equal lengths: got ${a.length} and ${b.length}`);
  }
  const size = a.length / batch;
  if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(size) || size < 1) {
    throw new RangeError(`Loss batch ${batch} does not divide ${a.length} values`);
  }
  const [c, h, w] = resolveImageShape(size, model.options.imageShape, model.sig0);
  const channels = model.declaredChannels ?? c;
  if (c !== channels && !(c === 1 && channels === 3)) {
    throw new TypeError(
      `LPIPS model ${model.path} takes ${channels} channels: cannot feed ${c}-channel images`,
    );
  }
  return { c, h, w, channels, size };
}

/** Samples `start … start+count−1` of `src` as the model's input tensor. */
function toModel(
  model: LpipsModel,
  src: ImageArray,
  start: number,
  count: number,
  l: BatchLayout,
): ort.Tensor {
  const { float64 } = model;
  const part = src.subarray(start * l.size, (start + count) * l.size);
  const data = l.c === l.channels
    ? (float64 ? Float64Array.from(part) : Float32Array.from(part))
    : repeatChannels(part, count, l.h * l.w, l.channels);
  return new ort.Tensor(
    float64 ? "float64" : "float32",
    float64 && data instanceof Float32Array ? Float64Array.from(data) : data,
    [count, l.channels, l.h, l.w],
  );
}

/** The `count` per-sample distances of an output tensor. */
function distances(model: LpipsModel, out: ort.Tensor, count: number): Float32Array | Float64Array {
  if (out.data.length !== count) {
    throw new TypeError(
      `LPIPS model ${model.path}: output "${model.outName}" has dims [${out.dims}], expected ${count} values`,
    );
  }
  return out.data as Float32Array | Float64Array;
}

/** `value` of the loss: the per-sample distances, in calls of at most `batchSize`. */
async function lpipsValue(
  model: LpipsModel,
  a: Float64Array,
  b: ImageArray,
  batch: number,
): Promise<Float64Array> {
  const l = layout(model, a, b, batch);
  const result = new Float64Array(batch);
  for (let start = 0; start < batch; start += model.batchSize) {
    const count = Math.min(model.batchSize, batch - start);
    const feeds = {
      [model.in0]: toModel(model, a, start, count, l),
      [model.in1]: toModel(model, b, start, count, l),
    };
    await withOutputs(model.session, feeds, (outputs) => {
      result.set(distances(model, outputs[model.outName], count), start);
    });
  }
  return result;
}

/** `grad` of the loss: the distances and their gradient in the student images, one VJP run. */
async function lpipsGrad(
  model: LpipsModel,
  a: Float64Array,
  b: ImageArray,
  batch: number,
): Promise<{ value: Float64Array; grad: Float64Array }> {
  const l = layout(model, a, b, batch);
  const result = new Float64Array(batch);
  const g = new Float64Array(a.length);
  const outDims = model.outRank;
  for (let start = 0; start < batch; start += model.batchSize) {
    const count = Math.min(model.batchSize, batch - start);
    // ∂(Σ_b d_b)/∂in0: the cotangent of every per-sample distance is 1.
    const ones = model.float64 ? new Float64Array(count).fill(1) : new Float32Array(count).fill(1);
    const seedDims = outDims === 1 ? [count] : [count, ...new Array(outDims - 1).fill(1)];
    const { gradients, output } = await model.vjpSession.run(
      {
        [model.in0]: toModel(model, a, start, count, l),
        [model.in1]: toModel(model, b, start, count, l),
      },
      new ort.Tensor(model.float64 ? "float64" : "float32", ones, seedDims),
    );
    try {
      result.set(distances(model, output!, count), start);
      const gm = gradients[model.in0].data as Float32Array | Float64Array;
      const part = l.c === l.channels ? gm : sumRepeatedChannels(gm, count, l.h * l.w, l.channels);
      copyFiniteGradient(model, part, g, start, count, l.size);
    } finally {
      output?.dispose();
      gradients[model.in0].dispose();
    }
  }
  return { value: result, grad: g };
}

/** Copies the gradient of samples `start …` into `g`, refusing NaN or ±Inf. */
function copyFiniteGradient(
  model: LpipsModel,
  part: ArrayLike<number>,
  g: Float64Array,
  start: number,
  count: number,
  size: number,
): void {
  for (let i = 0; i < count * size; i++) {
    if (!Number.isFinite(part[i])) {
      // LPIPS's channel norm has an infinite derivative where a feature is all zero.
      throw new RangeError(
        `LPIPS gradient is not finite: ${part[i]} at sample ${
          start + Math.floor(i / size)
        }, element ${i % size} (a feature vector of ${model.path} is all zero there)`,
      );
    }
    g[start * size + i] = part[i];
  }
}
