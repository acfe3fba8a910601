/**
 * ONNX external data: graphs over 2 GB (a float32 Stable Diffusion UNet) keep their weights in
 * files beside the `.onnx` file, which protobuf cannot hold. ONNX Runtime finds those for a model
 * opened from its path ({@linkcode sessionSource}), and for graphs ld3 makes in memory from the
 * folder `derived.ts` names; ld3 also hashes them with the graph ({@linkcode onnxModelHash}).
 * Files over 64 MiB are read without their weights ({@linkcode readOnnxFile}, `proto_scan.ts`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, isAbsolute, join, normalize } from "node:path";
import { scanOnnxFile } from "./proto_scan.ts";
import { ELEMENT_BYTES } from "./build.ts";
import { cacheDir } from "../io/remote.ts";
import { writeTextFileAtomic } from "../io/atomic.ts";
import { onnx, type ort } from "../deps.ts";
import { createSession, type OnnxSignature, readOnnxSignature, sha256Hex } from "./session.ts";
import { derivedSessionOptions, encodeModel, readDerivedSource } from "./derived.ts";
import { float32Signature, halfPrecisionIo, withFloat32Interface } from "./float_io.ts";

/**
 * Opens external-data file `name` of the model at `path`, naming both when it is missing. Like
 * ONNX Runtime, only files inside the model's folder are read: a location that is absolute or
 * climbs out (`../`) is refused.
 */
async function openDataFile(path: string, name: string): Promise<Deno.FsFile> {
  if (isAbsolute(name) || normalize(name).split(/[\\/]/)[0] === "..") {
    throw new Error(
      `ONNX model ${path} names external data outside its folder: "${name}" (ld3, like ONNX ` +
        `Runtime, reads only files beside the model)`,
    );
  }
  const file = join(dirname(path), name);
  try {
    return await Deno.open(file);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(
      `ONNX model ${path} keeps its weights in ${name}, which is missing: ${file} ` +
        `(copy it beside the model)`,
    );
  }
}

/**
 * The external-data files an ONNX graph keeps weights in (the `location` of each initializer stored
 * outside the file, first use first); empty when every weight is inside. Exports over 2 GB (a
 * Stable Diffusion UNet in float32) must use external data: protobuf cannot hold them.
 */
export function externalDataFiles(bytes: Uint8Array): string[] {
  return [...readOnnxSignature(bytes).externalData];
}

/** Protobuf cannot encode a message of 2 GiB or more. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

/**
 * The ONNX file at `path` (whose bytes are `bytes`) with every external-data weight read back
 * into the graph; the bytes themselves when nothing is external. ld3's own derived graphs (float16
 * interfaces, LD3's gradient graphs) no longer need this: they keep the weights in the model's
 * files (`derived.ts`), with no size limit.
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
        `most 2 GiB, so they cannot be read into it (keep them external: readDerivedSource)`,
    );
  }
  for (const r of reads) {
    const handle = await openDataFile(path, r.file);
    try {
      await handle.seek(r.offset, Deno.SeekMode.Start);
      const data = new Uint8Array(r.length);
      let filled = 0;
      while (filled < r.length) {
        const n = await handle.read(data.subarray(filled));
        if (n === null) {
          throw new Error(
            `ONNX model ${path}: ${r.file} ends before weight "${r.tensor.name}" ` +
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
export function sessionSource(
  path: string,
  bytes: Uint8Array | undefined,
  external: readonly string[] = bytes ? externalDataFiles(bytes) : [],
): Uint8Array | string {
  return external.length > 0 || !bytes ? path : bytes;
}

/**
 * Lowercase hex SHA-256 identifying the ONNX model at `path` (whose bytes are `bytes`): of the file,
 * or for a graph with external data, of the file followed by each data file in
 * {@linkcode externalDataFiles} order, streamed so multi-GB weights are never held twice.
 *
 * @throws {Error} naming the file when an external-data file is missing
 */
export async function onnxModelHash(
  path: string,
  bytes: Uint8Array | undefined,
  files: readonly string[] = bytes ? externalDataFiles(bytes) : [],
): Promise<string> {
  if (files.length === 0 && bytes) return await sha256Hex(bytes);
  if (!bytes) return await cachedModelHash(path, files);
  return await streamedModelHash(path, bytes, files);
}

/**
 * The hash of a large model (several GB are minutes of hashing on a small machine, at every
 * load), remembered in the cache folder (`lib/io/remote.ts`) under the files' identity: path,
 * size, modification time and inode of the graph and each data file. A file changed since is a
 * new key, and is hashed again.
 */
async function cachedModelHash(path: string, files: readonly string[]): Promise<string> {
  const stats = [];
  for (const name of [basename(path), ...files]) {
    const file = join(dirname(path), name);
    const info = await Deno.stat(file);
    stats.push([await Deno.realPath(file), info.size, info.mtime?.getTime() ?? 0, info.ino ?? 0]);
  }
  const key = createHash("sha256").update(JSON.stringify(stats)).digest("hex");
  const entry = join(cacheDir(), "model-hashes", key);
  try {
    const known = (await Deno.readTextFile(entry)).trim();
    if (/^[0-9a-f]{64}$/.test(known)) return known;
  } catch { /* not known yet */ }
  const hash = await streamedModelHash(path, undefined, files);
  try {
    await Deno.mkdir(dirname(entry), { recursive: true });
    await writeTextFileAtomic(entry, hash + "\n");
  } catch { /* a cache that cannot be written only costs time */ }
  return hash;
}

/** SHA-256 of the graph's bytes (read from `path` when not given), then each data file's. */
async function streamedModelHash(
  path: string,
  bytes: Uint8Array | undefined,
  files: readonly string[],
): Promise<string> {
  const hash = createHash("sha256");
  // A file not read whole (over SMALL_FILE bytes) is streamed: the same hash as of its bytes.
  const names = bytes ? files : [basename(path), ...files];
  if (bytes) hash.update(bytes);
  for (const name of names) {
    const handle = await openDataFile(path, name);
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

/** Files up to this size are read whole; larger ones are scanned without their weights. */
const SMALL_FILE = 64 * 2 ** 20;

/** An ONNX file read once: its path, its bytes (when small) and their signature. */
export interface OnnxFile {
  readonly path: string;
  /**
   * The file's bytes, when it is small (64 MiB or less); a larger one is read without its weights
   * ({@linkcode scanOnnxFile}), opened by ONNX Runtime from its path and hashed from disk.
   */
  readonly bytes?: Uint8Array;
  /**
   * Inputs, outputs and external-data files, decoded from `bytes`, as ld3 exchanges them:
   * half-precision inputs and outputs read as float32 (see {@linkcode halfPrecision}).
   */
  readonly signature: OnnxSignature;
  /**
   * The inputs and outputs the file declares in float16 (or bfloat16): ld3 opens the network
   * behind Cast nodes that exchange them as float32 (`float_io.ts`). Empty for float32 graphs.
   */
  readonly halfPrecision: readonly string[];
  /** Bytes of the file and of the external-data files it names: the weights, near enough. */
  readonly size: number;
}

/**
 * From this many bytes of weights (64 MiB) a network's sessions give the memory of a run back
 * after it instead of keeping it in ONNX Runtime's arena: a Stable Diffusion UNet's activations
 * take gigabytes, and the VJP graphs of training need that memory next.
 */
export const LARGE_MODEL_BYTES = 64 * 2 ** 20;

/**
 * Reads the ONNX file at `path` and decodes its signature, so that checking, hashing and opening
 * it later need no second read or decode.
 *
 * @throws {TypeError} when the file is not an ONNX model with a graph
 * @throws {Error} naming the file when an external-data file is missing
 */
export async function readOnnxFile(path: string): Promise<OnnxFile> {
  const size = (await Deno.stat(path)).size;
  const bytes = size <= SMALL_FILE ? await Deno.readFile(path) : undefined;
  const declared = bytes ? readOnnxSignature(bytes, path) : await readOnnxSignatureFile(path);
  // A missing data file is named here, before ONNX Runtime reports it in its own words.
  let total = size;
  for (const name of declared.externalData) {
    const handle = await openDataFile(path, name);
    total += (await handle.stat()).size;
    handle.close();
  }
  return {
    size: total,
    path,
    ...(bytes ? { bytes } : {}),
    signature: float32Signature(declared),
    halfPrecision: halfPrecisionIo(declared),
  };
}

/**
 * The signature of the ONNX file at `path`, read without its weights: only the external-data
 * files its initializers name count as external (weights inside the file stay so).
 *
 * @throws {TypeError} when the file is not an ONNX model with a graph
 */
export async function readOnnxSignatureFile(path: string): Promise<OnnxSignature> {
  const model = await scanOnnxFile(path, 1 << 16);
  const own = basename(path);
  for (const t of model.graph?.initializer ?? []) {
    const location = t.externalData?.find((e) => e.key === "location")?.value;
    // References to the file's own bytes stand for weights inside it: keep them inside.
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL && location === own) {
      t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
      t.externalData = [];
    }
  }
  return readOnnxSignature(onnx.ModelProto.encode(model).finish(), path);
}

/**
 * An ONNX Runtime session on `file` for `device`: opened from its bytes, or from its path when
 * its weights live in external-data files ({@linkcode sessionSource}); a half-precision network
 * behind its float32 interface (`float_io.ts`), its weights read from the file they are in. A
 * network of {@linkcode LARGE_MODEL_BYTES} or more runs without ONNX Runtime's memory arena.
 *
 * @throws {DeviceUnavailableError} when the device's provider cannot start
 */
export async function openOnnxFile(
  file: OnnxFile,
  device: string,
  threads?: number,
): Promise<ort.InferenceSession> {
  const memArena = file.size < LARGE_MODEL_BYTES;
  if (file.halfPrecision.length === 0) {
    return await createSession(sessionSource(file.path, file.bytes, file.signature.externalData), {
      device,
      intraOpNumThreads: threads,
      memArena,
    });
  }
  const source = await readDerivedSource(file.path, file.bytes);
  const bytes = encodeModel(withFloat32Interface(source.model));
  return await createSession(bytes, {
    device,
    intraOpNumThreads: threads,
    memArena,
    extra: derivedSessionOptions(source.dir).extra,
  });
}
