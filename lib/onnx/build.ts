/**
 * Small helpers to write ONNX graphs by hand with the `onnx-proto` protobuf classes.
 *
 * ld3 builds a few networks itself (the Gaussian-mixture denoiser, test fixtures), so it needs
 * a compact, deterministic way to emit ONNX bytes without Python. The same bytes come out for
 * the same arguments: protobuf encoding is a pure function of the message.
 *
 * @module
 */
import { onnx } from "../deps.ts";

// `deps.ts` re-exports the protobuf classes as a value, so name the message types from it.
/** Properties of an ONNX `ValueInfoProto` (a graph input or output). */
export type ValueInfoProto = NonNullable<Parameters<typeof onnx.ValueInfoProto.create>[0]>;
/** Properties of an ONNX `TensorProto`. */
export type TensorProto = NonNullable<Parameters<typeof onnx.TensorProto.create>[0]>;
/** Properties of an ONNX `NodeProto`. */
export type NodeProto = NonNullable<Parameters<typeof onnx.NodeProto.create>[0]>;
/** Properties of an ONNX `AttributeProto`. */
export type AttributeProto = NonNullable<Parameters<typeof onnx.AttributeProto.create>[0]>;
/** A decoded ONNX model. */
export type ModelProto = ReturnType<typeof onnx.ModelProto.decode>;

/** ONNX element types used by ld3 (values of `onnx.TensorProto.DataType`). */
export const ElemType = {
  float: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  float16: 10,
  double: 11,
} as const;

/**
 * Bytes per element of the ONNX element types a tensor or weight can have
 * (`onnx.TensorProto.DataType`); strings and complex types are absent.
 */
export const ELEMENT_BYTES: Readonly<Record<number, number>> = {
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

/** Name of an ONNX element type number, e.g. `1 → "float"`, for error messages. */
export function elemTypeName(elemType: number): string {
  const name = (onnx.TensorProto.DataType as unknown as Record<number, string>)[elemType];
  return name ? name.toLowerCase() : `type ${elemType}`;
}

/** A tensor dimension: a fixed size, or a symbolic name such as `"batch"`. */
export type Dim = number | string;

/** A graph input or output declaration. */
export function valueInfo(
  name: string,
  elemType: number,
  dims: readonly Dim[],
): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => typeof d === "number" ? { dimValue: d } : { dimParam: d }),
        },
      },
    },
  };
}

/** A constant tensor (an initializer). Float data is stored as float32, integers as int64. */
export function tensor(
  name: string,
  dims: readonly number[],
  values: Float32Array | Float64Array | BigInt64Array | readonly number[],
  elemType: number = values instanceof BigInt64Array ? ElemType.int64 : ElemType.float,
): TensorProto {
  const size = dims.reduce((a, b) => a * b, 1);
  if (values.length !== size) {
    throw new RangeError(
      `Tensor "${name}" needs ${size} values for dims [${dims.join(", ")}]: got ${values.length}`,
    );
  }
  let raw: Uint8Array;
  if (elemType === ElemType.float) {
    raw = new Uint8Array(Float32Array.from(values as ArrayLike<number>).buffer);
  } else if (elemType === ElemType.double) {
    raw = new Uint8Array(Float64Array.from(values as ArrayLike<number>).buffer);
  } else if (elemType === ElemType.int64) {
    const ints = values instanceof BigInt64Array
      ? values
      : BigInt64Array.from(values as ArrayLike<number>, (v) => BigInt(v));
    raw = new Uint8Array(ints.buffer, ints.byteOffset, ints.byteLength);
  } else {
    throw new TypeError(`Tensor "${name}": unsupported element type: ${elemTypeName(elemType)}`);
  }
  // Raw data is little-endian in ONNX; typed arrays are little-endian on every target Deno runs.
  return { name, dims: [...dims], dataType: elemType, rawData: raw };
}

/** Attribute values accepted by {@linkcode node}. */
export type AttributeValue = number | string | readonly number[] | TensorProto;

/**
 * A graph node. Integer-valued numbers become INT attributes unless listed in `floatAttrs`;
 * arrays become INTS (or FLOATS when they hold a non-integer).
 */
export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: Record<string, AttributeValue> = {},
  floatAttrs: readonly string[] = [],
): NodeProto {
  const T = onnx.AttributeProto.AttributeType;
  const attribute: AttributeProto[] = Object.entries(attributes).map(([name, v]) => {
    if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
    if (typeof v === "number") {
      return Number.isInteger(v) && !floatAttrs.includes(name)
        ? { name, type: T.INT, i: v }
        : { name, type: T.FLOAT, f: v };
    }
    if (Array.isArray(v)) {
      const ints = v.every(Number.isInteger) && !floatAttrs.includes(name);
      return ints ? { name, type: T.INTS, ints: [...v] } : { name, type: T.FLOATS, floats: [...v] };
    }
    return { name, type: T.TENSOR, t: v as TensorProto };
  });
  return { opType, input: [...inputs], output: [...outputs], attribute };
}

/** Options of {@linkcode buildModel}. */
export interface BuildModelOptions {
  /** Graph nodes in topological order. */
  nodes: NodeProto[];
  /** Graph inputs (see {@linkcode valueInfo}). */
  inputs: ValueInfoProto[];
  /** Graph outputs. */
  outputs: ValueInfoProto[];
  /** Constant tensors (see {@linkcode tensor}). @default {[]} */
  initializers?: TensorProto[];
  /** Default-domain opset version. @default {17} */
  opset?: number;
  /** Graph name. @default {"ld3"} */
  name?: string;
  /** Free-text description stored in the model. */
  docString?: string;
}

/**
 * Encode a graph as ONNX model bytes (IR version 8).
 *
 * @example
 * ```ts
 * const bytes = buildModel({
 *   nodes: [node("Identity", ["x"], ["y"])],
 *   inputs: [valueInfo("x", ElemType.float, ["batch", 3])],
 *   outputs: [valueInfo("y", ElemType.float, ["batch", 3])],
 * });
 * ```
 */
export function buildModel(options: BuildModelOptions): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "ld3",
    opsetImport: [{ domain: "", version: options.opset ?? 17 }],
    docString: options.docString,
    graph: {
      name: options.name ?? "ld3",
      node: options.nodes,
      input: options.inputs,
      output: options.outputs,
      initializer: options.initializers ?? [],
    },
  });
  // protobufjs hands back a Node Buffer (a view into a shared pool): copy to a plain array.
  return new Uint8Array(onnx.ModelProto.encode(model).finish());
}
