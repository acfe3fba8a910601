/**
 * A thin layer over ONNX Runtime: create a session for a device (CPU, CUDA or WebGPU; see
 * `device.ts`), and read the declared inputs and outputs (element type and shape) of an ONNX
 * file without running it.
 *
 * ORT's JS API only exposes input and output *names*; ld3 checks types and ranks against the
 * model config before the first run, so it decodes the graph signature from the protobuf.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { onnx, ort } from "./deps.ts";
import { checkDevice, explainProviderError, parseDevice } from "./device.ts";
import { type Dim, elemTypeName, type ModelProto, type ValueInfoProto } from "./onnx_build.ts";

export type { Device, DeviceKind, ParsedDevice } from "./device.ts";
export { DeviceUnavailableError, parseDevice } from "./device.ts";

/** The declared type of one graph input or output. */
export interface TensorSignature {
  /** Input or output name. */
  readonly name: string;
  /** ONNX element type number (1 float, 7 int64, 11 double, …). */
  readonly elemType: number;
  /** Readable element type, e.g. `"float"`. */
  readonly elemTypeName: string;
  /** Dimensions: a number when fixed, a string when symbolic (or `"?"` when unnamed). */
  readonly dims: readonly Dim[];
}

/** The signature of an ONNX graph: its real inputs (initializers excluded) and outputs. */
export interface OnnxSignature {
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
}

function toNumber(v: number | { toNumber(): number }): number {
  return typeof v === "number" ? v : v.toNumber();
}

function signatureOf(info: ValueInfoProto): TensorSignature {
  const tensorType = info.type?.tensorType;
  const elemType = tensorType?.elemType ?? 0;
  const dims = (tensorType?.shape?.dim ?? []).map((d): Dim => {
    if (d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue) > 0) {
      return toNumber(d.dimValue);
    }
    return d.dimParam || "?";
  });
  return { name: info.name ?? "", elemType, elemTypeName: elemTypeName(elemType), dims };
}

/**
 * Decode the input/output signature of ONNX model bytes.
 *
 * @throws {TypeError} when the bytes are not an ONNX model with a graph
 */
export function readOnnxSignature(bytes: Uint8Array): OnnxSignature {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new TypeError(`Not an ONNX model: ${(e as Error).message}`);
  }
  const graph = model.graph;
  if (!graph) throw new TypeError("Not an ONNX model: no graph");
  // Before IR 4 initializers were also listed as inputs; those are weights, not feeds.
  const weights = new Set((graph.initializer ?? []).map((t) => t.name));
  return {
    inputs: (graph.input ?? []).filter((i) => !weights.has(i.name)).map(signatureOf),
    outputs: (graph.output ?? []).map(signatureOf),
  };
}

/**
 * The external-data files an ONNX graph keeps weights in (the `location` of each initializer stored
 * outside the file, first use first); empty when every weight is inside. Exports over 2 GB (a
 * Stable Diffusion UNet in float32) must use external data: protobuf cannot hold them.
 */
export function externalDataFiles(bytes: Uint8Array): string[] {
  const model = onnx.ModelProto.decode(bytes);
  const files = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const location = (t.externalData ?? []).find((e) => e.key === "location")?.value;
    if (location) files.add(location);
  }
  return [...files];
}

/** Bytes per element of the ONNX element types a weight can have (`TensorProto.DataType`). */
const ELEMENT_BYTES: Record<number, number> = {
  1: 4, // float
  2: 1, // uint8
  3: 1, // int8
  4: 2, // uint16
  5: 2, // int16
  6: 4, // int32
  7: 8, // int64
  9: 1, // bool
  10: 2, // float16
  11: 8, // double
  12: 4, // uint32
  13: 8, // uint64
  16: 2, // bfloat16
};

/** Protobuf cannot encode a message of 2 GiB or more. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

/**
 * The ONNX file at `path` (whose bytes are `bytes`) with every external-data weight read back
 * into the graph, for code that builds new graphs from it in memory (LD3's gradient graphs);
 * the bytes themselves when nothing is external.
 *
 * @throws {RangeError} naming the model when the weights do not fit one protobuf message (2 GB)
 * @throws {Error} naming the file when an external-data file is missing or too short
 */
export async function inlineExternalData(path: string, bytes: Uint8Array): Promise<Uint8Array> {
  const model = onnx.ModelProto.decode(bytes);
  const external = (model.graph?.initializer ?? []).filter((t) =>
    t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL
  );
  if (external.length === 0) return bytes;
  let total = bytes.length;
  const reads = external.map((t) => {
    const entry = (key: string) => t.externalData?.find((e) => e.key === key)?.value;
    const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
    const length = entry("length") !== undefined
      ? Number(entry("length"))
      : count * (ELEMENT_BYTES[t.dataType ?? 0] ?? NaN);
    if (!Number.isSafeInteger(length)) {
      throw new TypeError(`ONNX model ${path}: weight "${t.name}" has an unreadable external size`);
    }
    total += length;
    return {
      tensor: t,
      file: entry("location") ?? "",
      offset: Number(entry("offset") ?? 0),
      length,
    };
  });
  if (total >= PROTOBUF_LIMIT) {
    throw new RangeError(
      `ONNX model ${path} has ${(total / 2 ** 30).toFixed(1)} GiB of weights: one graph holds at ` +
        `most 2 GiB, so ld3 cannot build its gradient graph (LD3 training); sampling, generate and ` +
        `eval work with it`,
    );
  }
  for (const r of reads) {
    const file = join(dirname(path), r.file);
    let handle: Deno.FsFile;
    try {
      handle = await Deno.open(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new Error(
        `ONNX model ${path} keeps its weights in ${r.file}, which is missing: ${file}`,
      );
    }
    try {
      await handle.seek(r.offset, Deno.SeekMode.Start);
      const data = new Uint8Array(r.length);
      let filled = 0;
      while (filled < r.length) {
        const n = await handle.read(data.subarray(filled));
        if (n === null) {
          throw new Error(
            `ONNX model ${path}: ${file} ends before weight "${r.tensor.name}" ` +
              `(${r.offset} + ${r.length} bytes)`,
          );
        }
        filled += n;
      }
      r.tensor.rawData = data;
      r.tensor.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      r.tensor.externalData = [];
    } finally {
      handle.close();
    }
  }
  return onnx.ModelProto.encode(model).finish();
}

/**
 * What to open a session on for the ONNX file at `path` whose bytes are `bytes`: the bytes
 * themselves, or the path when the graph has external data, which ONNX Runtime resolves only
 * relative to a model file (from bytes it refuses them).
 */
export function sessionSource(path: string, bytes: Uint8Array): Uint8Array | string {
  return externalDataFiles(bytes).length > 0 ? path : bytes;
}

/**
 * Lowercase hex SHA-256 identifying the ONNX model at `path` (whose bytes are `bytes`): of the file,
 * or for a graph with external data, of the file followed by each data file in
 * {@linkcode externalDataFiles} order, streamed so multi-GB weights are never held twice.
 *
 * @throws {Error} naming the file when an external-data file is missing
 */
export async function onnxModelHash(path: string, bytes: Uint8Array): Promise<string> {
  const files = externalDataFiles(bytes);
  if (files.length === 0) return await sha256Hex(bytes);
  const hash = createHash("sha256");
  hash.update(bytes);
  for (const name of files) {
    const file = join(dirname(path), name);
    let handle: Deno.FsFile;
    try {
      handle = await Deno.open(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new Error(
        `ONNX model ${path} keeps its weights in ${name}, which is missing: ${file} ` +
          `(copy it beside the model)`,
      );
    }
    try {
      const chunk = new Uint8Array(1 << 22);
      for (let n = await handle.read(chunk); n !== null; n = await handle.read(chunk)) {
        hash.update(chunk.subarray(0, n));
      }
    } finally {
      handle.close();
    }
  }
  return hash.digest("hex");
}

/** Where ONNX Runtime leaves the outputs of a run. */
export type OutputLocation = "cpu" | "gpu-buffer";

/** Options of {@linkcode createSession}. */
export interface CreateSessionOptions {
  /** Execution device: `cpu`, `cuda`, `cuda:<index>` or `webgpu`. @default {"cpu"} */
  device?: string;
  /** Intra-op thread count; ORT picks one per core when unset. */
  intraOpNumThreads?: number;
  /**
   * Where the outputs of a run stay. `"gpu-buffer"` (WebGPU only) keeps them on the device,
   * for feeding to the next run without a round trip; onnxruntime-node cannot copy such a
   * tensor back to JS memory, so the denoiser adapter does not use it.
   * @default {"cpu"}
   */
  preferredOutputLocation?: OutputLocation;
}

/**
 * The ORT execution providers for a device name.
 *
 * @throws {RangeError} for a device name other than `cpu`, `cuda[:<index>]`, `webgpu`
 */
export function executionProviders(device: string): ort.InferenceSession.ExecutionProviderConfig[] {
  const { kind, index } = parseDevice(device);
  switch (kind) {
    case "cpu":
      return ["cpu"];
    case "cuda":
      return [{ name: "cuda", deviceId: index }];
    case "webgpu":
      return ["webgpu"];
  }
}

/**
 * Create an ORT inference session from ONNX bytes (or a model file's path, for graphs with external
 * data: {@linkcode sessionSource}) on a device. A GPU provider whose native
 * libraries are missing, or which finds no GPU, fails with one
 * {@linkcode DeviceUnavailableError} naming what is missing, never by running on the CPU.
 *
 * @throws {RangeError} for a bad device name or an output location the device cannot hold
 * @throws {DeviceUnavailableError} when the device's provider cannot start
 */
export async function createSession(
  source: Uint8Array | string,
  options: CreateSessionOptions = {},
): Promise<ort.InferenceSession> {
  const device = options.device ?? "cpu";
  const { kind } = checkDevice(device);
  const location = options.preferredOutputLocation ?? "cpu";
  if (location !== "cpu" && !(location === "gpu-buffer" && kind === "webgpu")) {
    throw new RangeError(
      `preferredOutputLocation "${location}" needs device webgpu: got "${device}"`,
    );
  }
  try {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: executionProviders(device),
      graphOptimizationLevel: "all",
      ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      ...(location !== "cpu" ? { preferredOutputLocation: location } : {}),
    };
    return typeof source === "string"
      ? await ort.InferenceSession.create(source, sessionOptions)
      : await ort.InferenceSession.create(source, sessionOptions);
  } catch (e) {
    throw explainProviderError(device, e);
  }
}

/** Lowercase hex SHA-256 of some bytes (used to identify a model file). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
