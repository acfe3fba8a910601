/**
 * Runs a feature-extractor ONNX model (the bundled MNIST classifier, or an Inception-v3 export
 * a user supplies) over images in batches and returns float64 features for FID.
 *
 * Images come in the project's convention, `[-1, 1]`, `count × C × H × W` flat; the model may
 * expect another range ({@linkcode FeatureModelOptions.inputRange}) and a float or uint8
 * input. Resizing (e.g. to Inception's 299 × 299) is not done here.
 *
 * @module
 */
import { ort } from "../deps.ts";
import type { InputRange } from "../onnx/config.ts";
import { concatFloat64 } from "../_arrays.ts";
import {
  createSession,
  type OnnxSignature,
  readOnnxSignature,
  type TensorSignature,
} from "../onnx/session.ts";

/** Options of {@linkcode loadFeatureModel}. */
export interface FeatureModelOptions {
  /** Name of the image input. @default "image" */
  inputName?: string;
  /** Name of the feature output. @default "features" */
  outputName?: string;
  /** Images per network call. @default 250 */
  batchSize?: number;
  /**
   * Shape of one input image without the batch axis, e.g. `[1, 28, 28]`.
   * @default the fixed non-batch dimensions declared by the model
   */
  sampleShape?: readonly number[];
  /**
   * Range the model expects. A uint8 input is always fed `[0, 255]`, rounded and clipped.
   * @default "[-1,1]"
   */
  inputRange?: InputRange;
  /** ORT intra-op threads; one per core when unset. */
  intraOpNumThreads?: number;
  /** Called after each batch with the number of images done and the total. */
  onBatch?: (done: number, total: number) => void;
}

/** Outputs of one {@linkcode FeatureModel.run}: per name, `count × dim` float64 values. */
export type FeatureOutputs = Record<string, { data: Float64Array; dim: number }>;

/** A loaded feature extractor. */
export interface FeatureModel {
  /** Shape of one input image without the batch axis. */
  readonly sampleShape: readonly number[];
  /** Model input name. */
  readonly inputName: string;
  /** Feature output name. */
  readonly outputName: string;
  /**
   * Features of `count` images (`[-1, 1]`, flat `count × prod(sampleShape)`), row-major
   * `count × D`.
   */
  features(images: Float32Array | Float64Array, count: number): Promise<Float64Array>;
  /** Several outputs at once (e.g. `features` and `logits`), each flattened per image. */
  run(
    images: Float32Array | Float64Array,
    count: number,
    outputNames: readonly string[],
  ): Promise<FeatureOutputs>;
  /** Releases the ORT session. */
  close(): Promise<void>;
}

const ELEM_FLOAT = 1;
const ELEM_UINT8 = 2;
const ELEM_DOUBLE = 11;

function resolveSampleShape(
  signature: TensorSignature,
  override: readonly number[] | undefined,
): number[] {
  if (override !== undefined) {
    if (override.length === 0 || !override.every((d) => Number.isInteger(d) && d > 0)) {
      throw new RangeError(
        `Field sampleShape must be positive integers: got [${override.join(", ")}]`,
      );
    }
    return [...override];
  }
  const rest = signature.dims.slice(1);
  if (rest.length === 0 || !rest.every((d) => typeof d === "number")) {
    throw new TypeError(
      `Input "${signature.name}" has no fixed sample shape: got dims [${
        signature.dims.join(", ")
      }]: pass sampleShape`,
    );
  }
  return rest as number[];
}

/** Maps `[-1, 1]` values to the model's input range and element type. */
function toModelInput(
  images: Float32Array | Float64Array,
  start: number,
  end: number,
  elemType: number,
  range: InputRange,
): Float32Array | Float64Array | Uint8Array {
  const n = end - start;
  if (elemType === ELEM_UINT8) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = Math.round((images[start + i] + 1) * 127.5);
      out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    return out;
  }
  const out = elemType === ELEM_DOUBLE ? new Float64Array(n) : new Float32Array(n);
  const scale = range === "[0,255]" ? 127.5 : range === "[0,1]" ? 0.5 : 1;
  const offset = range === "[-1,1]" ? 0 : scale;
  for (let i = 0; i < n; i++) out[i] = images[start + i] * scale + offset;
  return out;
}

/** An opened feature model and what feeding it needs. */
interface FeatureSession {
  readonly session: ort.InferenceSession;
  readonly inputName: string;
  /** Every output the model has. */
  readonly outputNames: ReadonlySet<string>;
  readonly batchSize: number;
  readonly sampleShape: readonly number[];
  /** Values of one image. */
  readonly sampleSize: number;
  /** ONNX element type of the input. */
  readonly elemType: number;
  readonly tensorType: "uint8" | "float64" | "float32";
  readonly range: InputRange;
  /** The caller's options, read at each batch as before (`onBatch`). */
  readonly options: FeatureModelOptions;
}

/**
 * Loads a feature-extractor ONNX model from a path or bytes.
 *
 * @throws {TypeError} If the named input or output is missing or has an unsupported type.
 * @throws {RangeError} For a bad batch size or sample shape.
 */
export async function loadFeatureModel(
  model: string | Uint8Array,
  options: FeatureModelOptions = {},
): Promise<FeatureModel> {
  const bytes = typeof model === "string" ? await Deno.readFile(model) : model;
  const inputName = options.inputName ?? "image";
  const outputName = options.outputName ?? "features";
  const batchSize = options.batchSize ?? 250;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`Field batchSize must be a positive integer: got ${batchSize}`);
  }
  const range = options.inputRange ?? "[-1,1]";
  if (range !== "[-1,1]" && range !== "[0,1]" && range !== "[0,255]") {
    throw new RangeError(`Field inputRange must be "[-1,1]", "[0,1]" or "[0,255]": got ${range}`);
  }
  const signature = readOnnxSignature(bytes, typeof model === "string" ? model : undefined);
  const input = featureInput(signature, inputName);
  const outputNames = new Set(signature.outputs.map((s) => s.name));
  if (!outputNames.has(outputName)) {
    throw new TypeError(
      `Field outputName names no model output: got "${outputName}", outputs are ${
        JSON.stringify([...outputNames])
      }`,
    );
  }
  const sampleShape = resolveSampleShape(input, options.sampleShape);
  const elemType = input.elemType;
  const f: FeatureSession = {
    inputName,
    outputNames,
    batchSize,
    sampleShape,
    sampleSize: sampleShape.reduce((a, b) => a * b, 1),
    elemType,
    tensorType: elemType === ELEM_UINT8
      ? "uint8"
      : elemType === ELEM_DOUBLE
      ? "float64"
      : "float32",
    range,
    options,
    session: await createSession(bytes, { intraOpNumThreads: options.intraOpNumThreads }),
  };
  const run = (images: Float32Array | Float64Array, count: number, names: readonly string[]) =>
    runFeatures(f, images, count, names);
  return {
    sampleShape,
    inputName,
    outputName,
    run,
    async features(images, count) {
      return (await run(images, count, [outputName]))[outputName].data;
    },
    async close() {
      await f.session.release();
    },
  };
}

/** The image input called `name`, refused when missing or of a type the model cannot be fed. */
function featureInput(signature: OnnxSignature, name: string): TensorSignature {
  const input = signature.inputs.find((s) => s.name === name);
  if (input === undefined) {
    throw new TypeError(
      `Field inputName names no model input: got "${name}", inputs are ${
        JSON.stringify(signature.inputs.map((s) => s.name))
      }`,
    );
  }
  if (![ELEM_FLOAT, ELEM_UINT8, ELEM_DOUBLE].includes(input.elemType)) {
    throw new TypeError(
      `Input "${name}" must be float, double or uint8: got ${input.elemTypeName}`,
    );
  }
  return input;
}

/** {@linkcode FeatureModel.run}: checks the request, runs it in batches, joins the batches. */
async function runFeatures(
  f: FeatureSession,
  images: Float32Array | Float64Array,
  count: number,
  names: readonly string[],
): Promise<FeatureOutputs> {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`Count must be a positive integer: got ${count}`);
  }
  if (images.length !== count * f.sampleSize) {
    throw new RangeError(
      `Images must hold count × ${f.sampleSize} = ${
        count * f.sampleSize
      } values: got ${images.length}`,
    );
  }
  for (const name of names) {
    if (!f.outputNames.has(name)) {
      throw new TypeError(`Output name is not a model output: got "${name}"`);
    }
  }
  const parts: Record<string, Float64Array[]> = {};
  const dims: Record<string, number> = {};
  for (const name of names) parts[name] = [];
  for (let start = 0; start < count; start += f.batchSize) {
    const b = Math.min(f.batchSize, count - start);
    await runFeatureBatch(f, images, start, b, names, parts, dims);
    f.options.onBatch?.(start + b, count);
  }
  const out: FeatureOutputs = {};
  for (const name of names) {
    out[name] = { data: concatFloat64(parts[name]), dim: dims[name] };
  }
  return out;
}

/**
 * Runs images `start … start+b−1` and appends each named output to `parts`, checking that it
 * has the batch first and the same size per image as in earlier batches (kept in `dims`).
 */
async function runFeatureBatch(
  f: FeatureSession,
  images: Float32Array | Float64Array,
  start: number,
  b: number,
  names: readonly string[],
  parts: Record<string, Float64Array[]>,
  dims: Record<string, number>,
): Promise<void> {
  const data = toModelInput(
    images,
    start * f.sampleSize,
    (start + b) * f.sampleSize,
    f.elemType,
    f.range,
  );
  const feed = new ort.Tensor(f.tensorType, data, [b, ...f.sampleShape]);
  const result = await f.session.run({ [f.inputName]: feed }, names);
  for (const name of names) {
    const t = result[name];
    const values = t.data as Float32Array | Float64Array;
    const dim = values.length / b;
    if (!Number.isInteger(dim) || dim < 1 || t.dims[0] !== b) {
      throw new RangeError(
        `Output "${name}" must have batch ${b} first: got dims [${t.dims.join(", ")}]`,
      );
    }
    if (dims[name] !== undefined && dims[name] !== dim) {
      throw new RangeError(
        `Output "${name}" changed size between batches: got ${dim} after ${dims[name]}`,
      );
    }
    dims[name] = dim;
    parts[name].push(Float64Array.from(values));
    t.dispose();
  }
  feed.dispose();
}
