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
import { executionProviders, readOnnxSignature, type TensorSignature } from "../onnx/session.ts";
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
  const signature = readOnnxSignature(bytes);
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
  const float64 = sig0.elemType === ElemType.double;
  const dtype = float64 ? "float64" : "float32";
  const declaredChannels = typeof sig0.dims[1] === "number" ? sig0.dims[1] : undefined;
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: executionProviders(options.device ?? "cpu"),
    graphOptimizationLevel: "all",
  };
  const session = await ort.InferenceSession.create(bytes, sessionOptions);
  const vjpSession = await VjpSession.create(bytes, {
    wrt: [in0],
    of: outName,
    returnOutput: true,
    sessionOptions,
  });
  const modelChannels = declaredChannels ?? 3;

  /** Layout of a batch: its image shape and the channels fed to the model. */
  function layout(a: Float64Array, b: ImageArray, batch: number) {
    if (a.length !== b.length) {
      throw new RangeError(`Loss inputs must have equal lengths: got ${a.length} and ${b.length}`);
    }
    const size = a.length / batch;
    if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(size) || size < 1) {
      throw new RangeError(`Loss batch ${batch} does not divide ${a.length} values`);
    }
    const [c, h, w] = resolveImageShape(size, options.imageShape, sig0!);
    const channels = declaredChannels ?? c;
    if (c !== channels && !(c === 1 && channels === 3)) {
      throw new TypeError(
        `LPIPS model ${path} takes ${channels} channels: cannot feed ${c}-channel images`,
      );
    }
    return { c, h, w, channels, size };
  }

  /** Samples `start … start+count−1` of `src` as the model's input tensor. */
  function toModel(
    src: ImageArray,
    start: number,
    count: number,
    l: ReturnType<typeof layout>,
  ): ort.Tensor {
    const part = src.subarray(start * l.size, (start + count) * l.size);
    const data = l.c === l.channels
      ? (float64 ? Float64Array.from(part) : Float32Array.from(part))
      : repeatChannels(part, count, l.h * l.w, l.channels);
    return new ort.Tensor(
      dtype,
      float64 && data instanceof Float32Array ? Float64Array.from(data) : data,
      [count, l.channels, l.h, l.w],
    );
  }

  /** The `count` per-sample distances of an output tensor. */
  function distances(out: ort.Tensor, count: number): Float32Array | Float64Array {
    if (out.data.length !== count) {
      throw new TypeError(
        `LPIPS model ${path}: output "${outName}" has dims [${out.dims}], expected ${count} values`,
      );
    }
    return out.data as Float32Array | Float64Array;
  }

  async function value(a: Float64Array, b: ImageArray, batch: number): Promise<Float64Array> {
    const l = layout(a, b, batch);
    const result = new Float64Array(batch);
    for (let start = 0; start < batch; start += batchSize) {
      const count = Math.min(batchSize, batch - start);
      const outputs = await session.run({
        [in0]: toModel(a, start, count, l),
        [in1]: toModel(b, start, count, l),
      });
      try {
        result.set(distances(outputs[outName], count), start);
      } finally {
        for (const t of Object.values(outputs)) t.dispose();
      }
    }
    return result;
  }

  async function grad(
    a: Float64Array,
    b: ImageArray,
    batch: number,
  ): Promise<{ value: Float64Array; grad: Float64Array }> {
    const l = layout(a, b, batch);
    const result = new Float64Array(batch);
    const g = new Float64Array(a.length);
    const outDims = sigOut!.dims.length;
    for (let start = 0; start < batch; start += batchSize) {
      const count = Math.min(batchSize, batch - start);
      // ∂(Σ_b d_b)/∂in0: the cotangent of every per-sample distance is 1.
      const ones = float64 ? new Float64Array(count).fill(1) : new Float32Array(count).fill(1);
      const seedDims = outDims === 1 ? [count] : [count, ...new Array(outDims - 1).fill(1)];
      const { gradients, output } = await vjpSession.run(
        { [in0]: toModel(a, start, count, l), [in1]: toModel(b, start, count, l) },
        new ort.Tensor(dtype, ones, seedDims),
      );
      try {
        result.set(distances(output!, count), start);
        const gm = gradients[in0].data as Float32Array | Float64Array;
        const part = l.c === l.channels
          ? gm
          : sumRepeatedChannels(gm, count, l.h * l.w, l.channels);
        for (let i = 0; i < count * l.size; i++) {
          if (!Number.isFinite(part[i])) {
            // LPIPS's channel norm has an infinite derivative where a feature is all zero.
            throw new RangeError(
              `LPIPS gradient is not finite: ${part[i]} at sample ${
                start + Math.floor(i / l.size)
              }, element ${i % l.size} (a feature vector of ${path} is all zero there)`,
            );
          }
          g[start * l.size + i] = part[i];
        }
      } finally {
        output?.dispose();
        gradients[in0].dispose();
      }
    }
    return { value: result, grad: g };
  }

  return {
    name: "LPIPS",
    modelChannels,
    value,
    grad,
    async close() {
      await session.release();
      await vjpSession.release();
    },
  };
}
