/**
 * NumPy `.npy` files: the format `numpy.save` writes and `numpy.load` reads.
 *
 * Layout (format versions 1.0–3.0): the magic `\x93NUMPY`, two version bytes, the header
 * length (uint16 little-endian in 1.0, uint32 in 2.0/3.0), an ASCII (3.0: UTF-8) Python dict
 * literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and
 * a final newline so the data starts on a 64-byte boundary, then the raw array in C order.
 * ld3 writes version 1.0, little-endian, C order; it reads both byte orders but not Fortran
 * order.
 *
 * @module
 */
import { writeFileAtomic } from "./atomic.ts";

/** The NumPy dtypes ld3 reads and writes. */
export type NpyDtype = "float32" | "float64" | "uint8" | "int32" | "int64";

/** A typed array of one of the {@linkcode NpyDtype}s. */
export type NpyData = Float32Array | Float64Array | Uint8Array | Int32Array | BigInt64Array;

/** An n-dimensional array: flat C-order data plus its shape. */
export interface NpyArray<T extends NpyData = NpyData> {
  /** Values in C (row-major) order. */
  data: T;
  /** Dimensions; `[]` for a scalar. */
  shape: number[];
  /** Element type. */
  dtype: NpyDtype;
}

/** Whether this host stores numbers little-endian (then raw bytes can be copied as they are). */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const HEADER_ALIGN = 64;

/** Descriptor string and item size of each dtype (without the byte-order character). */
const DTYPE_INFO: Record<NpyDtype, { kind: string; bytes: number }> = {
  float32: { kind: "f4", bytes: 4 },
  float64: { kind: "f8", bytes: 8 },
  uint8: { kind: "u1", bytes: 1 },
  int32: { kind: "i4", bytes: 4 },
  int64: { kind: "i8", bytes: 8 },
};

/** The dtype of a typed array. */
export function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  throw new TypeError(`Unsupported array type: ${Object.prototype.toString.call(data)}`);
}

function checkShape(shape: readonly number[], length: number): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(`Shape entries must be non-negative integers: got [${shape}]`);
    }
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== length) {
    throw new RangeError(`Shape [${shape}] holds ${count} values but the data has ${length}`);
  }
}

/** The header dict of a little-endian, C-order array, padded to the 64-byte alignment. */
function headerText(dtype: NpyDtype, shape: readonly number[]): string {
  const descr = (dtype === "uint8" ? "|" : "<") + DTYPE_INFO[dtype].kind;
  // Python writes a 1-tuple as "(n,)".
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  const padding = (HEADER_ALIGN - (unpadded % HEADER_ALIGN)) % HEADER_ALIGN;
  return dict + " ".repeat(padding) + "\n";
}

/**
 * Encodes an array as a version 1.0 `.npy` file (little-endian, C order).
 *
 * @param data Values in C order.
 * @param shape Dimensions; their product must equal `data.length`.
 * @throws {RangeError} When the shape does not match the data.
 *
 * @example
 * ```ts
 * const bytes = encodeNpy(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(decodeNpy(bytes).shape); // [2, 2]
 * ```
 */
export function encodeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  const dtype = dtypeOf(data);
  checkShape(shape, data.length);
  const header = new TextEncoder().encode(headerText(dtype, shape));
  if (header.length > 0xffff) throw new RangeError(`Npy header too long: ${header.length} bytes`);
  const itemBytes = DTYPE_INFO[dtype].bytes;
  const out = new Uint8Array(10 + header.length + data.length * itemBytes);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(header, 10);
  if (HOST_LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
    return out;
  }
  const body = new DataView(out.buffer, 10 + header.length);
  // DataView with explicit little-endian writes keeps the output independent of host order.
  for (let i = 0; i < data.length; i++) {
    const o = i * itemBytes;
    switch (dtype) {
      case "float32":
        body.setFloat32(o, data[i] as number, true);
        break;
      case "float64":
        body.setFloat64(o, data[i] as number, true);
        break;
      case "uint8":
        body.setUint8(o, data[i] as number);
        break;
      case "int32":
        body.setInt32(o, data[i] as number, true);
        break;
      case "int64":
        body.setBigInt64(o, data[i] as bigint, true);
        break;
    }
  }
  return out;
}

/** Parses the header dict; throws SyntaxError naming what is wrong. */
function parseHeader(text: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) {
    throw new SyntaxError(`Npy header is not a valid dict: ${JSON.stringify(text.trim())}`);
  }
  const dims = shape[1].split(",").map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const n = Number(s.replace(/L$/, ""));
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new SyntaxError(`Npy header has a bad shape: (${shape[1]})`);
    }
    return n;
  });
  return { descr: descr[1], fortran: fortran[1] === "True", shape: dims };
}

/**
 * Decodes a `.npy` file (format 1.0, 2.0 or 3.0; either byte order; C order).
 *
 * @throws {SyntaxError} When the bytes are not a `.npy` file or are truncated.
 * @throws {TypeError} For an unsupported dtype or a Fortran-ordered array.
 */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new SyntaxError("Not a .npy file: bad magic string");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new SyntaxError("Truncated .npy header");
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new SyntaxError(`Unsupported .npy format version: ${major}.${bytes[7]}`);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) throw new SyntaxError("Truncated .npy header");
  const decoder = new TextDecoder(major === 3 ? "utf-8" : "latin1");
  const header = parseHeader(decoder.decode(bytes.subarray(headerStart, dataStart)));
  if (header.fortran) throw new TypeError("Fortran-ordered .npy arrays are not supported");
  const order = header.descr[0];
  const kind = header.descr.slice(1);
  const dtype = (Object.keys(DTYPE_INFO) as NpyDtype[]).find((d) => DTYPE_INFO[d].kind === kind);
  if (!dtype || !"<>|=".includes(order)) {
    throw new TypeError(`Unsupported .npy dtype: ${header.descr}`);
  }
  // '=' is native order; every platform Deno runs on is little-endian.
  const little = order !== ">";
  const count = header.shape.reduce((a, b) => a * b, 1);
  const itemBytes = DTYPE_INFO[dtype].bytes;
  if (dataStart + count * itemBytes > bytes.length) {
    throw new SyntaxError(
      `Truncated .npy data: shape (${header.shape}) needs ${count * itemBytes} bytes, got ${
        bytes.length - dataStart
      }`,
    );
  }
  if (little && HOST_LITTLE_ENDIAN) {
    // A copy is aligned for any element size; its bytes are already in host order.
    const buffer = bytes.slice(dataStart, dataStart + count * itemBytes).buffer;
    const Ctor = {
      float32: Float32Array,
      float64: Float64Array,
      uint8: Uint8Array,
      int32: Int32Array,
      int64: BigInt64Array,
    }[dtype];
    return { data: new Ctor(buffer), shape: header.shape, dtype };
  }
  const body = new DataView(bytes.buffer, bytes.byteOffset + dataStart, count * itemBytes);
  let data: NpyData;
  switch (dtype) {
    case "float32":
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = body.getFloat32(i * 4, little);
      break;
    case "float64":
      data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = body.getFloat64(i * 8, little);
      break;
    case "uint8":
      data = bytes.slice(dataStart, dataStart + count);
      break;
    case "int32":
      data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = body.getInt32(i * 4, little);
      break;
    case "int64":
      data = new BigInt64Array(count);
      for (let i = 0; i < count; i++) data[i] = body.getBigInt64(i * 8, little);
      break;
  }
  return { data, shape: header.shape, dtype };
}

/** Writes `data` with `shape` to a `.npy` file at `path`, atomically. */
export async function writeNpy(
  path: string,
  data: NpyData,
  shape: readonly number[],
): Promise<void> {
  await writeFileAtomic(path, encodeNpy(data, shape));
}

/** Reads a `.npy` file. */
export async function readNpy(path: string): Promise<NpyArray> {
  return decodeNpy(await Deno.readFile(path));
}
