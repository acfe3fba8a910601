/**
 * NumPy `.npz` archives: a zip file holding one `<name>.npy` entry per array, as written by
 * `numpy.savez` (stored) and `numpy.savez_compressed` (deflated).
 *
 * ld3 writes "stored" (uncompressed) entries with a fixed timestamp, so the same arrays give
 * the same bytes; it reads stored and deflated entries and checks every CRC-32. ZIP64 archives
 * (over 4 GiB or 65535 entries) are not supported.
 *
 * @module
 */
import { inflateRawSync } from "node:zlib";
import { writeFileAtomic } from "./atomic.ts";
import { decodeNpy, encodeNpy, type NpyArray, type NpyData } from "./npy.ts";

/** An array to store: flat C-order data and its shape. */
export interface NpzEntry {
  /** Values in C order. */
  data: NpyData;
  /** Dimensions. */
  shape: readonly number[];
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by zip and PNG.
 *
 * @param bytes Data to checksum.
 * @param crc Running CRC of the preceding data, to checksum in pieces.
 *
 * @example
 * ```ts
 * console.log(crc32(new TextEncoder().encode("123456789")).toString(16)); // "cbf43926"
 * ```
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL = 0x06054b50;
/** MS-DOS date of 1980-01-01 (the zip epoch), time 00:00: fixed for reproducible archives. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const DOS_TIME = 0;

/**
 * Encodes arrays as an `.npz` archive of stored entries `<key>.npy`, in the record's key order.
 *
 * @throws {RangeError} When a key is empty or a shape does not match its data.
 *
 * @example
 * ```ts
 * const bytes = encodeNpz({ z: { data: new Float32Array([0, 1]), shape: [2] } });
 * console.log(decodeNpz(bytes).z.shape); // [2]
 * ```
 */
export function encodeNpz(record: Record<string, NpzEntry>): Uint8Array {
  const encoder = new TextEncoder();
  const entries = Object.entries(record).map(([key, entry]) => {
    if (key.length === 0) throw new RangeError("Npz entry names must not be empty");
    const name = encoder.encode(`${key}.npy`);
    const body = encodeNpy(entry.data, entry.shape);
    return { name, body, crc: crc32(body) };
  });
  let size = 22;
  for (const e of entries) size += 30 + e.name.length + e.body.length + 46 + e.name.length;
  if (size > 0xffffffff) throw new RangeError(`Npz archive too large: ${size} bytes`);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let offset = 0;
  const localOffsets: number[] = [];
  // Common fields of local and central headers, from "version needed" to "extra length".
  function writeCommon(e: (typeof entries)[number]): void {
    view.setUint16(offset, 20, true); // version needed: 2.0
    view.setUint16(offset + 2, 0, true); // flags
    view.setUint16(offset + 4, 0, true); // method: stored
    view.setUint16(offset + 6, DOS_TIME, true);
    view.setUint16(offset + 8, DOS_DATE, true);
    view.setUint32(offset + 10, e.crc, true);
    view.setUint32(offset + 14, e.body.length, true); // compressed size
    view.setUint32(offset + 18, e.body.length, true); // uncompressed size
    view.setUint16(offset + 22, e.name.length, true);
    view.setUint16(offset + 24, 0, true); // extra field length
    offset += 26;
  }
  for (const e of entries) {
    localOffsets.push(offset);
    view.setUint32(offset, LOCAL_HEADER, true);
    offset += 4;
    writeCommon(e);
    out.set(e.name, offset);
    offset += e.name.length;
    out.set(e.body, offset);
    offset += e.body.length;
  }
  const centralStart = offset;
  entries.forEach((e, i) => {
    view.setUint32(offset, CENTRAL_HEADER, true);
    view.setUint16(offset + 4, 20, true); // version made by: 2.0, MS-DOS attributes
    offset += 6;
    writeCommon(e);
    view.setUint16(offset, 0, true); // comment length
    view.setUint16(offset + 2, 0, true); // disk number
    view.setUint16(offset + 4, 0, true); // internal attributes
    view.setUint32(offset + 6, 0, true); // external attributes
    view.setUint32(offset + 10, localOffsets[i], true);
    offset += 14;
    out.set(e.name, offset);
    offset += e.name.length;
  });
  const centralSize = offset - centralStart;
  view.setUint32(offset, END_OF_CENTRAL, true);
  view.setUint16(offset + 4, 0, true);
  view.setUint16(offset + 6, 0, true);
  view.setUint16(offset + 8, entries.length, true);
  view.setUint16(offset + 10, entries.length, true);
  view.setUint32(offset + 12, centralSize, true);
  view.setUint32(offset + 16, centralStart, true);
  view.setUint16(offset + 20, 0, true);
  return out;
}

/**
 * Decodes an `.npz` archive (stored or deflated entries) into arrays keyed by entry name
 * without the `.npy` suffix.
 *
 * @throws {SyntaxError} When the bytes are not a readable zip of `.npy` files or a CRC fails.
 */
export function decodeNpz(bytes: Uint8Array): Record<string, NpyArray> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end record sits at the end, after a comment of at most 65535 bytes.
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === END_OF_CENTRAL) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new SyntaxError("Not an .npz file: no zip end-of-central-directory record");
  const count = view.getUint16(end + 10, true);
  let offset = view.getUint32(end + 16, true);
  if (count === 0xffff || offset === 0xffffffff) {
    throw new SyntaxError("ZIP64 .npz archives are not supported");
  }
  const decoder = new TextDecoder();
  const result: Record<string, NpyArray> = {};
  for (let n = 0; n < count; n++) {
    if (offset + 46 > bytes.length || view.getUint32(offset, true) !== CENTRAL_HEADER) {
      throw new SyntaxError(`Corrupt .npz: bad central directory entry ${n}`);
    }
    const method = view.getUint16(offset + 10, true);
    const crc = view.getUint32(offset + 16, true);
    const compressedSize = view.getUint32(offset + 20, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const localOffset = view.getUint32(offset + 42, true);
    const name = decoder.decode(bytes.subarray(offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;

    if (view.getUint32(localOffset, true) !== LOCAL_HEADER) {
      throw new SyntaxError(`Corrupt .npz: bad local header for ${name}`);
    }
    const dataStart = localOffset + 30 + view.getUint16(localOffset + 26, true) +
      view.getUint16(localOffset + 28, true);
    const raw = bytes.subarray(dataStart, dataStart + compressedSize);
    if (raw.length !== compressedSize) throw new SyntaxError(`Truncated .npz entry: ${name}`);
    let body: Uint8Array;
    if (method === 0) body = raw;
    else if (method === 8) body = new Uint8Array(inflateRawSync(raw));
    else throw new SyntaxError(`Unsupported .npz compression method ${method} for ${name}`);
    if (crc32(body) !== crc) throw new SyntaxError(`CRC-32 mismatch in .npz entry: ${name}`);
    result[name.endsWith(".npy") ? name.slice(0, -4) : name] = decodeNpy(body);
  }
  return result;
}

/** Writes arrays to an `.npz` file at `path`, atomically. */
export async function writeNpz(path: string, record: Record<string, NpzEntry>): Promise<void> {
  await writeFileAtomic(path, encodeNpz(record));
}

/** Reads an `.npz` file. */
export async function readNpz(path: string): Promise<Record<string, NpyArray>> {
  return decodeNpz(await Deno.readFile(path));
}
