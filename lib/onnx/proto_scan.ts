/**
 * Reading a large ONNX file without its weights: the graph's structure is decoded, and each large
 * weight stored inside the file (`raw_data` of an initializer) is left on disk and described by
 * where it is — the file, its offset and its length — in the form of an ONNX external-data
 * reference. A 1.7 GB float16 UNet or a 0.5 GB text encoder is read in a few megabytes.
 *
 * Protobuf makes this cheap: every length-delimited field states its length before its bytes, so
 * a reader can seek past a weight's bytes. Only the `initializer` entries of the graph are looked
 * into; every other field of the model and the graph is read and decoded as it is.
 *
 * @module
 */
import { basename } from "node:path";
import { onnx } from "../deps.ts";
import type { ModelProto } from "./build.ts";

/** Wire types of protobuf fields. */
const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

/** Field numbers: `ModelProto.graph`, `GraphProto.initializer`, `TensorProto.raw_data`. */
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;

/** A file read at positions, with a small read-ahead buffer for the headers of fields. */
class PositionedReader {
  #buf = new Uint8Array(0);
  #at = 0;
  constructor(readonly file: Deno.FsFile, readonly size: number) {}

  /** `length` bytes at `offset`. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset >= this.#at && offset + length <= this.#at + this.#buf.length) {
      return this.#buf.subarray(offset - this.#at, offset - this.#at + length);
    }
    const want = Math.min(Math.max(length, 1 << 16), this.size - offset);
    const out = new Uint8Array(want);
    await this.file.seek(offset, Deno.SeekMode.Start);
    for (let filled = 0; filled < want;) {
      const n = await this.file.read(out.subarray(filled));
      if (n === null) throw new RangeError(`unexpected end of file at ${offset + filled}`);
      filled += n;
    }
    this.#buf = out;
    this.#at = offset;
    return out.subarray(0, length);
  }

  /** A varint at `offset`, and the offset after it. */
  async varint(offset: number): Promise<[number, number]> {
    const bytes = await this.read(offset, Math.min(10, this.size - offset));
    let value = 0;
    for (let i = 0; i < bytes.length; i++) {
      value += (bytes[i] & 0x7f) * 2 ** (7 * i);
      if (bytes[i] < 0x80) return [value, offset + i + 1];
    }
    throw new RangeError(`malformed varint at ${offset}`);
  }
}

/** One field of a message: its number, wire type, and where its bytes (and value) lie. */
interface Field {
  number: number;
  wire: number;
  /** Where the field starts (its tag). */
  start: number;
  /** Where its value starts (after the length, for length-delimited fields). */
  value: number;
  /** Where the field ends. */
  end: number;
}

/** The fields of the message occupying `[start, end)` of the file, read one header at a time. */
async function* fields(r: PositionedReader, start: number, end: number): AsyncGenerator<Field> {
  let at = start;
  while (at < end) {
    const [tag, afterTag] = await r.varint(at);
    const wire = tag & 7;
    const number = Math.floor(tag / 8);
    let value = afterTag;
    let next: number;
    if (wire === VARINT) next = (await r.varint(afterTag))[1];
    else if (wire === FIXED64) next = afterTag + 8;
    else if (wire === FIXED32) next = afterTag + 4;
    else if (wire === BYTES) {
      const [length, afterLength] = await r.varint(afterTag);
      value = afterLength;
      next = afterLength + length;
    } else throw new RangeError(`unsupported protobuf wire type ${wire} at ${at}`);
    if (next > end) throw new RangeError(`field ${number} at ${at} runs past its message`);
    yield { number, wire, start: at, value, end: next };
    at = next;
  }
}

/** The bytes of fields, concatenated: a message holding just those fields. */
function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A length-delimited field `number` holding `payload`. */
function bytesField(number: number, payload: Uint8Array): Uint8Array {
  const head: number[] = [];
  for (let v = number * 8 + BYTES;; v = Math.floor(v / 128)) {
    head.push(v >= 128 ? (v % 128) | 128 : v);
    if (v < 128) break;
  }
  for (let v = payload.length;; v = Math.floor(v / 128)) {
    head.push(v >= 128 ? (v % 128) | 128 : v);
    if (v < 128) break;
  }
  return concat([Uint8Array.from(head), payload]);
}

/**
 * An initializer whose `raw_data` is at least `threshold` bytes, as a tensor message that names
 * those bytes in the file by reference (location = the file's name, offset, length).
 */
async function referencedTensor(
  r: PositionedReader,
  field: Field,
  location: string,
  threshold: number,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let raw: Field | undefined;
  for await (const f of fields(r, field.value, field.end)) {
    if (f.number === TENSOR_RAW_DATA && f.end - f.value >= threshold) raw = f;
    else parts.push((await r.read(f.start, f.end - f.start)).slice());
  }
  const tensor = onnx.TensorProto.decode(concat(parts));
  if (raw) {
    tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    tensor.externalData = [
      onnx.StringStringEntryProto.create({ key: "location", value: location }),
      onnx.StringStringEntryProto.create({ key: "offset", value: String(raw.value) }),
      onnx.StringStringEntryProto.create({ key: "length", value: String(raw.end - raw.value) }),
    ];
  }
  return bytesField(GRAPH_INITIALIZER, onnx.TensorProto.encode(tensor).finish());
}

/**
 * Decodes the ONNX file at `path`, leaving every initializer's `raw_data` of at least
 * `threshold` bytes in the file: such a weight comes back as an external-data reference to
 * its own bytes in `path` (offset and length), which ONNX Runtime reads like any external data.
 *
 * @throws {TypeError} when the file is not a readable ONNX protobuf
 */
export async function scanOnnxFile(path: string, threshold = 1 << 16): Promise<ModelProto> {
  const file = await Deno.open(path);
  try {
    const r = new PositionedReader(file, (await file.stat()).size);
    const modelParts: Uint8Array[] = [];
    for await (const m of fields(r, 0, r.size)) {
      if (m.number !== MODEL_GRAPH || m.wire !== BYTES) {
        modelParts.push((await r.read(m.start, m.end - m.start)).slice());
        continue;
      }
      const graphParts: Uint8Array[] = [];
      for await (const g of fields(r, m.value, m.end)) {
        const large = g.number === GRAPH_INITIALIZER && g.end - g.value >= threshold;
        graphParts.push(
          large
            ? await referencedTensor(r, g, basename(path), threshold)
            : (await r.read(g.start, g.end - g.start)).slice(),
        );
      }
      modelParts.push(bytesField(MODEL_GRAPH, concat(graphParts)));
    }
    return onnx.ModelProto.decode(concat(modelParts));
  } catch (e) {
    if (e instanceof RangeError || e instanceof Error && /index out of range/.test(e.message)) {
      throw new TypeError(`Not an ONNX model: ${path}: ${(e as Error).message}`);
    }
    throw e;
  } finally {
    file.close();
  }
}
