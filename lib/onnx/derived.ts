/**
 * Graphs that ld3 derives from an ONNX file — a float32 interface around a float16 network
 * (`float_io.ts`), LD3's gradient graphs (`lib/vjp`) — with the weights left in the files they
 * came from. A derived graph names every large weight by reference (ONNX external data): the
 * model's own external-data files, or, for a graph that keeps its weights inside the `.onnx`
 * file, the byte range of each weight in that file. ONNX Runtime opens the derived bytes with
 * {@linkcode derivedSessionOptions}, which points it at the model's folder; it then reads (on the
 * CPU: maps) the weights from disk. So no graph has to fit protobuf's 2 GiB, and ld3 never holds
 * a second copy of the weights in JavaScript.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, normalize } from "node:path";
import { onnx, type ort } from "../deps.ts";
import { ELEMENT_BYTES, type ModelProto } from "./build.ts";
import { scanOnnxFile } from "./proto_scan.ts";

/** A weight message (`TensorProto`) as decoded. */
type Tensor = InstanceType<typeof onnx.TensorProto>;

/** Weights at least this large are referenced, not copied, in a derived graph. */
const REFERENCE_BYTES = 1 << 16;
/**
 * External weights up to this size are read into the derived graph: gradient rules read small
 * constants (shapes, scales) by value, and Optimum stores every tensor of 100 bytes or more
 * outside the graph.
 */
const INLINE_BYTES = 1 << 14;

/** An ONNX file decoded for deriving graphs from it. */
export interface DerivedSource {
  /** The `.onnx` file. */
  readonly path: string;
  /** Its folder, where every weight the graph references lives. */
  readonly dir: string;
  /** The decoded model: large weights as references into files of `dir`, small ones inline. */
  readonly model: ModelProto;
}

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

function entry(t: Tensor, key: string): string | undefined {
  return t.externalData?.find((e) => e.key === key)?.value ?? undefined;
}

/** The external-data file of `t`, checked to stay inside the model's folder (as ORT checks). */
function dataFile(path: string, t: Tensor): string {
  const location = entry(t, "location") ?? "";
  if (isAbsolute(location) || normalize(location).split(/[\\/]/)[0] === "..") {
    throw new Error(
      `ONNX model ${path} names external data outside its folder: "${location}" (ld3, like ` +
        `ONNX Runtime, reads only files beside the model)`,
    );
  }
  return join(dirname(path), location);
}

/** Reads `length` bytes at `offset` of `file`, naming the model and the weight when short. */
async function readRange(path: string, t: Tensor, file: string, length: number) {
  const offset = Number(entry(t, "offset") ?? 0);
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(file);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(
      `ONNX model ${path} keeps its weights in ${entry(t, "location")}, which is missing: ` +
        `${file} (copy it beside the model)`,
    );
  }
  try {
    await handle.seek(offset, Deno.SeekMode.Start);
    const data = new Uint8Array(length);
    for (let filled = 0; filled < length;) {
      const n = await handle.read(data.subarray(filled));
      if (n === null) {
        throw new Error(
          `ONNX model ${path}: ${entry(t, "location")} ends before weight "${t.name}" ` +
            `(${offset} + ${length} bytes)`,
        );
      }
      filled += n;
    }
    return data;
  } finally {
    handle.close();
  }
}

/** The byte length of an external weight: its `length` entry, else its element count × size. */
function externalLength(path: string, t: Tensor): number {
  const given = entry(t, "length");
  const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  const length = given !== undefined ? Number(given) : count * (ELEMENT_BYTES[t.dataType] ?? NaN);
  if (!Number.isSafeInteger(length)) {
    throw new TypeError(`ONNX model ${path}: weight "${t.name}" has an unreadable external size`);
  }
  return length;
}

/** Marks `t` as stored at `offset` of `location` (relative to the model's folder). */
function setReference(t: Tensor, location: string, offset: number, length: number): void {
  t.rawData = new Uint8Array(0);
  t.dataLocation = EXTERNAL;
  t.externalData = [
    onnx.StringStringEntryProto.create({ key: "location", value: location }),
    onnx.StringStringEntryProto.create({ key: "offset", value: String(offset) }),
    onnx.StringStringEntryProto.create({ key: "length", value: String(length) }),
  ];
}

/**
 * One weight prepared for a derived graph: a small external one read in, a large inline one
 * turned into a reference to its own bytes in the `.onnx` file (protobuf keeps `raw_data`
 * contiguous, and the decoder hands it out as a view of the file's bytes).
 */
async function prepareWeight(
  path: string,
  bytes: Uint8Array | undefined,
  t: Tensor,
): Promise<void> {
  if (t.dataLocation === EXTERNAL) {
    const file = dataFile(path, t);
    const length = externalLength(path, t);
    if (length > INLINE_BYTES) return;
    t.rawData = await readRange(path, t, file, length);
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
    t.externalData = [];
    return;
  }
  const raw = t.rawData;
  if (!raw || !bytes || raw.buffer !== bytes.buffer) return;
  // A view of a small weight would keep the whole file's bytes alive: copy it.
  if (raw.length < REFERENCE_BYTES) t.rawData = raw.slice();
  else setReference(t, basename(path), raw.byteOffset - bytes.byteOffset, raw.length);
}

/** Every weight of a graph: its initializers and the tensors of its Constant nodes. */
function weightsOf(model: ModelProto): Tensor[] {
  const graph = model.graph;
  const constants = (graph?.node ?? []).flatMap((n) =>
    (n.attribute ?? []).filter((a) => a.t).map((a) => a.t as Tensor)
  );
  return [...(graph?.initializer ?? []) as Tensor[], ...constants];
}

/**
 * Decodes the ONNX file at `path` for deriving graphs from it: large weights become references
 * into the model's files, small external ones are read in.
 *
 * @param bytes the file's bytes, when already read
 * @throws {TypeError} when the file is not an ONNX model with a graph
 * @throws {Error} naming the file when an external-data file is missing, outside the model's
 * folder or too short
 */
export async function readDerivedSource(path: string, bytes?: Uint8Array): Promise<DerivedSource> {
  let model: ModelProto;
  if (bytes === undefined) {
    // Large weights inside the file are never read: they come back as references.
    model = await scanOnnxFile(path, REFERENCE_BYTES);
  } else {
    try {
      model = onnx.ModelProto.decode(bytes);
    } catch (e) {
      throw new TypeError(`Not an ONNX model: ${path}: ${(e as Error).message}`);
    }
  }
  if (!model.graph) throw new TypeError(`Not an ONNX model: ${path}: no graph`);
  for (const t of weightsOf(model)) await prepareWeight(path, bytes, t);
  return { path, dir: dirname(path), model };
}

/** Whether a decoded graph references weights outside itself. */
export function hasExternalWeights(model: ModelProto): boolean {
  return weightsOf(model).some((t) => t.dataLocation === EXTERNAL);
}

/** The protobuf bytes of a derived model (its weight references are a few bytes each). */
export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/**
 * ONNX Runtime options for a derived graph of a model in folder `dir`: its weight references
 * resolve in that folder. Pass them (merged into the device's options) whenever a session is
 * made from derived bytes.
 */
export function derivedSessionOptions(dir: string): ort.InferenceSession.SessionOptions {
  return { extra: { session: { model_external_initializers_file_folder_path: dir } } };
}

/**
 * `options` with the settings of {@linkcode derivedSessionOptions} merged into its `extra`
 * entries (the caller's other entries kept).
 */
export function withDerivedFolder(
  options: ort.InferenceSession.SessionOptions,
  dir: string,
): ort.InferenceSession.SessionOptions {
  const extra = (options.extra ?? {}) as Record<string, Record<string, string>>;
  return {
    ...options,
    extra: {
      ...extra,
      session: { ...extra.session, model_external_initializers_file_folder_path: dir },
    },
  };
}
