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
import { onnx, ort } from "../deps.ts";
import { checkDevice, explainProviderError, parseDevice } from "./device.ts";
import { type Dim, elemTypeName, type ModelProto, type ValueInfoProto } from "./build.ts";

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
  /** The graph's real inputs, in declaration order. */
  readonly inputs: readonly TensorSignature[];
  /** The graph's outputs, in declaration order. */
  readonly outputs: readonly TensorSignature[];
  /**
   * The external-data files the graph keeps weights in (each initializer's `location`, first use
   * first); empty when every weight is inside the file (`onnx_external.ts`).
   */
  readonly externalData: readonly string[];
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
 * @param source The file the bytes came from, named in errors.
 * @throws {TypeError} when the bytes are not an ONNX model with a graph
 */
export function readOnnxSignature(bytes: Uint8Array, source?: string): OnnxSignature {
  const where = source === undefined ? "" : ` ${source}`;
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new TypeError(`Not an ONNX model:${where}: ${(e as Error).message}`);
  }
  const graph = model.graph;
  if (!graph) throw new TypeError(`Not an ONNX model:${where}: no graph`);
  // Before IR 4 initializers were also listed as inputs; those are weights, not feeds.
  const weights = new Set((graph.initializer ?? []).map((t) => t.name));
  const externalData = new Set<string>();
  for (const t of graph.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const location = (t.externalData ?? []).find((e) => e.key === "location")?.value;
    if (location) externalData.add(location);
  }
  return {
    inputs: (graph.input ?? []).filter((i) => !weights.has(i.name)).map(signatureOf),
    outputs: (graph.output ?? []).map(signatureOf),
    externalData: [...externalData],
  };
}

/**
 * The batch a graph was exported with, when input `name`'s first axis is fixed: such a network
 * must be called with exactly that many samples (ld3 pads the last call).
 */
export function fixedBatch(signature: OnnxSignature, name: string): number | undefined {
  const dim = signature.inputs.find((s) => s.name === name)?.dims[0];
  return typeof dim === "number" ? dim : undefined;
}

/**
 * Runs `session` on `feeds` and hands the outputs to `read`, then disposes every output tensor,
 * also when `read` throws. On the CPU `dispose` only drops the tensor's reference, so arrays
 * `read` returns (a tensor's `data`) stay valid.
 */
export async function withOutputs<T>(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  read: (outputs: ort.InferenceSession.ReturnType) => T,
): Promise<T> {
  const outputs = await session.run(feeds);
  try {
    return read(outputs);
  } finally {
    for (const tensor of Object.values(outputs)) tensor.dispose();
  }
}

/** Where ONNX Runtime leaves the outputs of a run. */
export type OutputLocation = "cpu" | "gpu-buffer";

/** Options of {@linkcode createSession}. */
export interface CreateSessionOptions {
  /** Execution device: `cpu`, `cuda`, `cuda:<index>` or `webgpu`. @default {"cpu"} */
  device?: string;
  /** Intra-op thread count. @default {defaultThreads()} */
  intraOpNumThreads?: number;
  /**
   * Where the outputs of a run stay. `"gpu-buffer"` (WebGPU only) keeps them on the device,
   * for feeding to the next run without a round trip; onnxruntime-node cannot copy such a
   * tensor back to JS memory, so the denoiser adapter does not use it.
   * @default {"cpu"}
   */
  preferredOutputLocation?: OutputLocation;
  /**
   * ONNX Runtime configuration entries (`extra` of its session options), e.g. where the weights
   * of a graph made in memory live (`derivedSessionOptions` in `derived.ts`).
   */
  extra?: ort.InferenceSession.SessionOptions["extra"];
  /**
   * Keep the memory of a run in ONNX Runtime's CPU arena for the next one (faster for small
   * networks); `false` gives it back after each run (large networks).
   * @default {true}
   */
  memArena?: boolean;
}

/**
 * The CPU threads ONNX Runtime gets per session when a caller names none: one per core the
 * process may use (`navigator.hardwareConcurrency`). ONNX Runtime's own default counts physical
 * cores and so used one thread on the 2-vCPU machines ld3 was measured on (docs/performance.md).
 *
 * @example
 * ```ts
 * console.log(defaultThreads() >= 1); // true
 * ```
 */
export function defaultThreads(): number {
  const cores = globalThis.navigator?.hardwareConcurrency;
  return Number.isInteger(cores) && cores > 0 ? cores : 1;
}

/**
 * The session options every ld3 session of a network shares (the model's own, its VJP
 * graphs, feature and loss networks): the device's providers, every graph optimisation, and
 * `threads` intra-op threads that sleep rather than spin while they wait for work and take it
 * in small blocks as they come free. A spinning thread keeps its core busy between operators;
 * on a machine whose cores other processes also want, that made two threads slower than one;
 * without spinning, small blocks (`dynamic_block_base`) won back what spinning had given on
 * idle cores (docs/performance.md). The thread count changes no result: ONNX Runtime splits an
 * operator's work, not its sums.
 *
 * @throws {RangeError} for a bad device name or thread count
 */
export function sessionOptionsFor(
  device: string,
  threads: number = defaultThreads(),
): ort.InferenceSession.SessionOptions {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`threads must be an integer >= 1: got ${threads}`);
  }
  return {
    executionProviders: executionProviders(device),
    graphOptimizationLevel: "all",
    intraOpNumThreads: threads,
    ...(threads > 1
      ? { extra: { session: { intra_op: { allow_spinning: "0" }, dynamic_block_base: "4" } } }
      : {}),
  };
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
 * data: `sessionSource` in `onnx_external.ts`) on a device. A GPU provider whose native
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
      ...sessionOptionsFor(device, options.intraOpNumThreads),
      ...(location !== "cpu" ? { preferredOutputLocation: location } : {}),
      ...(options.memArena === false ? { enableCpuMemArena: false } : {}),
    };
    // The caller's entries join the threads' own (`sessionOptionsFor`), section by section.
    if (options.extra) sessionOptions.extra = mergeExtra(sessionOptions.extra, options.extra);
    return typeof source === "string"
      ? await ort.InferenceSession.create(source, sessionOptions)
      : await ort.InferenceSession.create(source, sessionOptions);
  } catch (e) {
    throw explainProviderError(device, e);
  }
}

/** ONNX Runtime configuration entries `b` over `a`, merged one section (`session`, …) deep. */
function mergeExtra(
  a: ort.InferenceSession.SessionOptions["extra"],
  b: ort.InferenceSession.SessionOptions["extra"],
): ort.InferenceSession.SessionOptions["extra"] {
  const out: Record<string, unknown> = { ...(a as Record<string, unknown> ?? {}) };
  for (const [key, value] of Object.entries(b as Record<string, unknown> ?? {})) {
    const old = out[key];
    out[key] = typeof old === "object" && old !== null && typeof value === "object"
      ? { ...old, ...value }
      : value;
  }
  return out as ort.InferenceSession.SessionOptions["extra"];
}

/** Lowercase hex SHA-256 of some bytes (used to identify a model file). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
