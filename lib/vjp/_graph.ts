/**
 * Small helpers over the `onnx-proto` classes: reading attributes and constant tensors, and a
 * builder that appends nodes with fresh names (the backward half of a VJP graph).
 *
 * @module
 */
import { onnx } from "../deps.ts";

/**
 * ONNX message shapes (the `I*Proto` interfaces of `onnx-proto`), derived from the classes.
 * `@ignore`: they are onnx-proto's, documented there.
 * @ignore
 */
export type INodeProto = NonNullable<Parameters<typeof onnx.NodeProto.create>[0]>;
/**
 * A tensor message.
 * @ignore
 */
export type ITensorProto = NonNullable<Parameters<typeof onnx.TensorProto.create>[0]>;
/** An attribute message. */
export type IAttributeProto = NonNullable<Parameters<typeof onnx.AttributeProto.create>[0]>;
/** A graph message. */
export type IGraphProto = NonNullable<Parameters<typeof onnx.GraphProto.create>[0]>;
/** A model message. */
export type IModelProto = NonNullable<Parameters<typeof onnx.ModelProto.create>[0]>;
/** A value-info message. */
export type IValueInfoProto = NonNullable<Parameters<typeof onnx.ValueInfoProto.create>[0]>;

/** ONNX element types, by name. */
export const DataType = onnx.TensorProto.DataType;

/** A protobuf int64 as decoded by protobufjs (`Long`) or a plain number. */
export type IntLike = number | { toNumber(): number };

/** Converts a decoded int64 field to a JavaScript number. */
export function toNumber(v: IntLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === "number" ? v : v.toNumber();
}

/** Whether an ONNX element type is a floating-point type (the only ones that carry gradients). */
export function isFloatType(t: number | undefined): boolean {
  return t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16 ||
    t === DataType.BFLOAT16;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** How a node is named in error messages: its name, or its index and first output. */
export function nodeLabel(node: INodeProto, index?: number): string {
  if (node.name) return node.name;
  return `#${index ?? "?"} (output ${node.output?.[0] ?? "?"})`;
}

/**
 * How to read one little-endian element of `rawData`, per element type: its size in bytes and
 * its reader (booleans read as their byte).
 */
const RAW_READERS: Record<number, [bytes: number, read: (view: DataView, at: number) => number]> = {
  [DataType.FLOAT]: [4, (v, o) => v.getFloat32(o, true)],
  [DataType.DOUBLE]: [8, (v, o) => v.getFloat64(o, true)],
  [DataType.INT64]: [8, (v, o) => Number(v.getBigInt64(o, true))],
  [DataType.INT32]: [4, (v, o) => v.getInt32(o, true)],
  [DataType.INT8]: [1, (v, o) => v.getInt8(o)],
  [DataType.UINT8]: [1, (v, o) => v.getUint8(o)],
  [DataType.BOOL]: [1, (v, o) => v.getUint8(o)],
  [DataType.INT16]: [2, (v, o) => v.getInt16(o, true)],
  [DataType.UINT16]: [2, (v, o) => v.getUint16(o, true)],
  [DataType.FLOAT16]: [2, (v, o) => halfValue(v.getUint16(o, true))],
};

/** The number IEEE float16 bits `bits` stand for. */
export function halfValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The decoded numeric values of a constant tensor (int and float types). */
export function tensorValues(t: ITensorProto): number[] {
  const dt = t.dataType ?? 0;
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const reader = RAW_READERS[dt];
    if (reader === undefined) throw new TypeError(`Unsupported constant tensor type: ${dt}`);
    const [step, read] = reader;
    const out: number[] = [];
    for (let o = 0; o < raw.byteLength; o += step) out.push(read(view, o));
    return out;
  }
  if (t.floatData?.length) return Array.from(t.floatData);
  if (t.doubleData?.length) return Array.from(t.doubleData);
  if (t.int64Data?.length) return t.int64Data.map((v) => toNumber(v));
  if (t.int32Data?.length) return Array.from(t.int32Data);
  return [];
}

/** The IEEE float16 bits of `v`, rounded to nearest even (constants of float16 graphs). */
export function halfBits(v: number): number {
  // Direct rounding where the runtime has Float16Array; else through float32 (rarely one ulp off).
  const F16 = (globalThis as { Float16Array?: new (v: number[]) => { buffer: ArrayBuffer } })
    .Float16Array;
  if (F16) return new Uint16Array(new F16([v]).buffer)[0];
  const f32 = new Float32Array([v]);
  const x = new Uint32Array(f32.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = (mant | 0x800000) >>> (1 - e);
    const rounded = m + 0xfff + ((m >>> 13) & 1);
    return sign | (rounded >>> 13);
  }
  const rounded = (e << 23 | mant) + 0xfff + ((mant >>> 13) & 1);
  if (rounded >>> 23 >= 0x1f) return sign | 0x7c00;
  return sign | (rounded >>> 13);
}

/** Builds a constant tensor proto of numbers, stored little-endian in `rawData`. */
export function makeTensor(
  name: string,
  dataType: number,
  dims: readonly number[],
  values: ArrayLike<number>,
): ITensorProto {
  let raw: Uint8Array;
  switch (dataType) {
    case DataType.FLOAT:
      raw = new Uint8Array(Float32Array.from(values).buffer);
      break;
    case DataType.DOUBLE:
      raw = new Uint8Array(Float64Array.from(values).buffer);
      break;
    case DataType.INT64:
      raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
      break;
    case DataType.INT32:
      raw = new Uint8Array(Int32Array.from(values).buffer);
      break;
    case DataType.FLOAT16:
      raw = new Uint8Array(Uint16Array.from(values, halfBits).buffer);
      break;
    default:
      throw new TypeError(`Unsupported constant tensor type: ${dataType}`);
  }
  return onnx.TensorProto.create({ name, dataType, dims: [...dims], rawData: raw });
}

/** The attribute `name` of a node, if set. */
export function getAttr(node: INodeProto, name: string): IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

/** An integer attribute, or `fallback`. */
export function attrInt(node: INodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? toNumber(a.i) : fallback;
}

/** A float attribute, or `fallback`. */
export function attrFloat(node: INodeProto, name: string, fallback: number): number {
  const a = getAttr(node, name);
  return a ? (a.f ?? 0) : fallback;
}

/** An integer-list attribute, or `undefined`. */
export function attrInts(node: INodeProto, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a ? (a.ints ?? []).map((v) => toNumber(v)) : undefined;
}

/** A float-list attribute, or `undefined`. */
export function attrFloats(node: INodeProto, name: string): number[] | undefined {
  const a = getAttr(node, name);
  return a ? Array.from(a.floats ?? []) : undefined;
}

/** A string attribute, or `fallback`. */
export function attrString(node: INodeProto, name: string, fallback: string): string {
  const a = getAttr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : fallback;
}

/** An attribute value to emit: numbers are INT/INTS, `{ f }`/`{ floats }` mark floats. */
export type AttrValue =
  | number
  | number[]
  | string
  | { f: number }
  | { floats: number[] }
  | { t: ITensorProto };

/** An attribute message named `name` holding `v`. */
export function makeAttr(name: string, v: AttrValue): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") return { name, type: T.INT, i: v };
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ("f" in v) return { name, type: T.FLOAT, f: v.f };
  if ("floats" in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.TENSOR, t: v.t };
}

/**
 * Appends nodes and constants with names that cannot clash with the forward graph. Every
 * emitted value of a backward computation shares the element type `dtype` of the value it is
 * a cotangent for; constants are made in that type.
 */
export class GraphBuilder {
  /** Nodes emitted so far, in order. */
  readonly nodes: INodeProto[] = [];
  /** Constant tensors emitted so far. */
  readonly initializers: ITensorProto[] = [];
  /**
   * Values made by {@linkcode GraphBuilder.padAxis}: a cotangent `g` placed at
   * `[begin, begin + len)` of `axis` in zeros of shape `shape`. Fan-out sums of such values
   * become one `Concat` (see {@linkcode GraphBuilder.sum}).
   */
  readonly placed: Map<string, { g: string; axis: number; begin: number; len: number }> = new Map();
  #taken: Set<string>;
  #count = 0;
  #prefix: string;

  /** A builder whose fresh names avoid `taken` and start with `prefix`. */
  constructor(taken: Set<string>, prefix = "vjp") {
    this.#taken = taken;
    this.#prefix = prefix;
  }

  /** A new unique value name. */
  fresh(hint: string): string {
    let name: string;
    do {
      name = `${this.#prefix}/${hint}_${this.#count++}`;
    } while (this.#taken.has(name));
    this.#taken.add(name);
    return name;
  }

  /**
   * Runs `emit` and takes the nodes it emitted out of {@linkcode GraphBuilder.nodes} (its
   * constants stay), for splicing them elsewhere in the graph.
   */
  capture<T>(emit: () => T): { nodes: INodeProto[]; result: T } {
    const start = this.nodes.length;
    const result = emit();
    return { nodes: this.nodes.splice(start), result };
  }

  /** Emits one node and returns its output names. */
  opN(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs = 1,
  ): string[] {
    const out = Array.from({ length: outputs }, () => this.fresh(opType));
    this.nodes.push({
      opType,
      name: this.fresh(`${opType}_node`),
      input: inputs,
      output: out,
      attribute: Object.entries(attrs).map(([k, v]) => makeAttr(k, v)),
    });
    return out;
  }

  /** Emits one single-output node and returns its output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.opN(opType, inputs, attrs, 1)[0];
  }

  /** An int64 constant (1-D unless `dims` is given). */
  int64(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh("const_i64");
    this.initializers.push(makeTensor(name, DataType.INT64, dims, values));
    return name;
  }

  /** A constant of element type `dtype` and shape `dims` (a scalar by default). */
  constant(values: ArrayLike<number>, dtype: number, dims: number[] = []): string {
    const name = this.fresh("const");
    this.initializers.push(makeTensor(name, dtype, dims, values));
    return name;
  }

  /** A scalar constant of element type `dtype`. */
  scalar(value: number, dtype: number): string {
    return this.constant([value], dtype, []);
  }

  /** Zeros of `shape` and element type `dtype`, without storing them in the model. */
  zeros(shape: number[], dtype: number): string {
    return this.op("ConstantOfShape", [this.int64(shape)], {
      value: { t: makeTensor("", dtype, [1], [0]) },
    });
  }

  /**
   * `g` (shape `shape` except `len` along `axis`) zero-padded to `shape`, placed at `begin`
   * along `axis`: the adjoint of a contiguous slice of one axis.
   */
  padAxis(g: string, shape: number[], axis: number, begin: number, len: number): string {
    const pads = new Array<number>(2 * shape.length).fill(0);
    pads[axis] = begin;
    pads[shape.length + axis] = shape[axis] - begin - len;
    const out = this.op("Pad", [g, this.int64(pads)]);
    this.placed.set(out, { g, axis, begin, len });
    return out;
  }

  /**
   * Sum of cotangents of one value (`shape`, element type `dtype`). Parts placed by
   * {@linkcode GraphBuilder.padAxis} into disjoint ranges of one axis (the pieces of a
   * split, e.g. q, k and v) are joined by one `Concat`, with zeros in the gaps, instead of
   * being padded and added.
   */
  sum(parts: string[], shape: number[], dtype: number): string {
    if (parts.length === 1) return parts[0];
    const byAxis = new Map<number, string[]>();
    for (const p of parts) {
      const info = this.placed.get(p);
      if (info) byAxis.set(info.axis, [...byAxis.get(info.axis) ?? [], p]);
    }
    let rest = parts;
    for (const [axis, group] of byAxis) {
      if (group.length < 2) continue;
      const sorted = group.map((p) => this.placed.get(p)!).sort((a, b) => a.begin - b.begin);
      // the ranges must not overlap: each piece ends before the next begins
      if (sorted.some((p, k) => k > 0 && p.begin < sorted[k - 1].begin + sorted[k - 1].len)) {
        continue;
      }
      const pieces: string[] = [];
      let cursor = 0;
      sorted.forEach((p) => {
        if (p.begin > cursor) {
          pieces.push(this.zeros(shape.map((d, i) => (i === axis ? p.begin - cursor : d)), dtype));
        }
        pieces.push(p.g);
        cursor = p.begin + p.len;
      });
      if (cursor < shape[axis]) {
        pieces.push(
          this.zeros(shape.map((d, i) => (i === axis ? shape[axis] - cursor : d)), dtype),
        );
      }
      const joined = this.op("Concat", pieces, { axis });
      rest = [...rest.filter((p) => !group.includes(p)), joined];
    }
    return rest.length === 1 ? rest[0] : this.op("Sum", rest);
  }

  /** `Reshape(x, shape)` with a constant target shape. */
  reshape(x: string, shape: number[]): string {
    return this.op("Reshape", [x, this.int64(shape)]);
  }

  /** `ReduceSum(x, axes)` (opset ≥ 13 form, axes as an input). */
  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    return this.op("ReduceSum", [x, this.int64(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  /** Mean over `axes` (kept), of a value whose shape is `shape`. */
  reduceMean(x: string, shape: number[], axes: number[], dtype: number): string {
    const n = axes.reduce((a, ax) => a * shape[ax], 1);
    const first = shape.length - axes.length;
    if (axes.length > 1 && axes.every((ax, i) => ax === first + i)) {
      // trailing axes: reduce one contiguous axis, ONNX Runtime's fast path
      const flat = this.reshape(x, [numel(shape.slice(0, first)), n]);
      const kept = shape.map((d, i) => (i < first ? d : 1));
      const mean = this.op("Mul", [this.reduceSum(flat, [1], true), this.scalar(1 / n, dtype)]);
      return this.reshape(mean, kept);
    }
    return this.op("Mul", [this.reduceSum(x, axes, true), this.scalar(1 / n, dtype)]);
  }

  /**
   * Sums a cotangent of broadcast shape `from` back to the shape `to` of the operand that was
   * broadcast (numpy rules: leading axes and size-1 axes).
   */
  unbroadcast(g: string, from: number[], to: number[]): string {
    if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
    const k = from.length - to.length;
    const axes: number[] = [];
    for (let i = 0; i < from.length; i++) {
      if (i < k || (to[i - k] === 1 && from[i] !== 1)) axes.push(i);
    }
    const summed = axes.length > 0 ? this.reduceSum(g, axes, true) : g;
    return this.reshape(summed, to);
  }

  /**
   * Applies the matrix `m` (`inLen × outLen`, row-major values) along `axis` of `g` (shape
   * `shape`, `shape[axis] = outLen`): the adjoint of an axis-wise linear map such as a
   * gather, a strided slice or an interpolation.
   */
  axisMatrix(
    g: string,
    shape: number[],
    axis: number,
    m: ArrayLike<number>,
    inLen: number,
    dtype: number,
  ): string {
    const pre = numel(shape.slice(0, axis));
    const post = numel(shape.slice(axis + 1));
    const outLen = shape[axis];
    const next = shape.slice();
    next[axis] = inLen;
    // nearest upsampling by an integer factor: each input feeds a contiguous block
    const s = outLen / inLen;
    const block = Number.isInteger(s) && s > 1 &&
      Array.from(m).every((v, k) =>
        v === (Math.floor((k % outLen) / s) === Math.floor(k / outLen) ? 1 : 0)
      );
    if (block) {
      const summed = this.reduceSum(this.reshape(g, [pre, inLen, s, post]), [2], false);
      return this.reshape(summed, next);
    }
    if (post === 1) {
      // one large product instead of many tiny batched ones
      const mt = new Float64Array(m.length);
      for (let i = 0; i < inLen; i++) {
        for (let o = 0; o < outLen; o++) mt[o * inLen + i] = m[i * outLen + o];
      }
      const prod = this.op("MatMul", [
        this.reshape(g, [pre, outLen]),
        this.constant(mt, dtype, [outLen, inLen]),
      ]);
      return this.reshape(prod, next);
    }
    const g3 = this.reshape(g, [pre, outLen, post]);
    const prod = this.op("MatMul", [this.constant(m, dtype, [inLen, outLen]), g3]);
    return this.reshape(prod, next);
  }
}
