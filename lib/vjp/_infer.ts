/**
 * What the VJP builder needs to know about every value of a forward graph: its element type
 * (inferred statically, so that unsupported ops are reported before anything runs) and its
 * concrete shape and small constant values (learned by one forward run of a copy of the model
 * that exposes every intermediate value as an output).
 *
 * @module
 */
import type { IGraphProto, IModelProto, IValueInfoProto } from "./_graph.ts";
import { onnx, ort } from "../deps.ts";
import { attrInt, DataType, getAttr, halfValue, numel, tensorValues, toNumber } from "./_graph.ts";

const BOOL_OPS = new Set([
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "IsNaN",
  "IsInf",
]);
const INT64_OPS = new Set(["Shape", "Size", "ArgMax", "ArgMin", "NonZero", "NonMaxSuppression"]);

/** Element type of every value, from graph types and per-op typing rules. */
export function inferDtypes(graph: IGraphProto): Map<string, number> {
  const dt = new Map<string, number>();
  for (const v of [...graph.input ?? [], ...graph.valueInfo ?? [], ...graph.output ?? []]) {
    const t = v.type?.tensorType?.elemType;
    if (v.name && t) dt.set(v.name, t);
  }
  for (const t of graph.initializer ?? []) if (t.name) dt.set(t.name, t.dataType ?? 0);
  for (const node of graph.node ?? []) {
    const op = node.opType ?? "";
    const first = (node.input ?? []).map((i) => dt.get(i)).find((t) => t !== undefined);
    (node.output ?? []).forEach((out, k) => {
      if (!out || dt.has(out)) return;
      let t: number | undefined = first;
      if (op === "Constant") {
        const a = node.attribute?.find((x) => x.t || x.name?.startsWith("value"));
        t = a?.t?.dataType ??
          (a?.name === "value_float" || a?.name === "value_floats"
            ? DataType.FLOAT
            : DataType.INT64);
      } else if (op === "Cast") t = attrInt(node, "to", 0);
      else if (op === "CastLike") t = dt.get(node.input![1]);
      else if (BOOL_OPS.has(op)) t = DataType.BOOL;
      else if (INT64_OPS.has(op) || (op === "MaxPool" && k === 1) || (op === "TopK" && k === 1)) {
        t = DataType.INT64;
      } else if (op === "ConstantOfShape") {
        t = getAttr(node, "value")?.t?.dataType ?? DataType.FLOAT;
      } else if (op === "Where") t = dt.get(node.input![1]);
      else if (op === "Dropout" && k === 1) t = DataType.BOOL;
      else if (op.startsWith("Random")) t = attrInt(node, "dtype", DataType.FLOAT);
      if (t !== undefined) dt.set(out, t);
    });
  }
  return dt;
}

/** Concrete facts about the values of a forward graph at one set of input shapes. */
export interface ValueFacts {
  shapes: Map<string, number[]>;
  dtypes: Map<string, number>;
  /** Values of non-float tensors and of small float tensors (≤ 4096 elements). */
  values: Map<string, number[]>;
}

const ORT_TYPE: Record<number, ort.Tensor.Type> = {
  [DataType.FLOAT]: "float32",
  [DataType.DOUBLE]: "float64",
  [DataType.INT64]: "int64",
  [DataType.INT32]: "int32",
  [DataType.BOOL]: "bool",
  [DataType.UINT8]: "uint8",
  [DataType.INT8]: "int8",
};
const FROM_ORT: Record<string, number> = {
  ...Object.fromEntries(Object.entries(ORT_TYPE).map(([k, v]) => [v, Number(k)])),
  float16: DataType.FLOAT16,
};

/** A filler tensor of the given type and shape: 0.5 for floats, 0 otherwise. */
function filler(dtype: number, shape: number[]): ort.Tensor {
  const type = ORT_TYPE[dtype];
  if (!type) throw new TypeError(`Unsupported input element type: ${dtype}`);
  const n = numel(shape);
  let data;
  switch (type) {
    case "float32":
      data = new Float32Array(n).fill(0.5);
      break;
    case "float64":
      data = new Float64Array(n).fill(0.5);
      break;
    case "int64":
      data = new BigInt64Array(n);
      break;
    case "int32":
      data = new Int32Array(n);
      break;
    case "int8":
      data = new Int8Array(n);
      break;
    default:
      data = new Uint8Array(n);
  }
  return new ort.Tensor(type, data, shape);
}

/** Elements of a value the probe reads back: a value this small is read whole. */
const HEAD = 4096;

/** Names of the probe's outputs for value `v`: its shape, and its first {@linkcode HEAD} + 1 values. */
function probeNames(v: string): { shape: string; head: string } {
  return { shape: `${v}#ld3_shape`, head: `${v}#ld3_head` };
}

/**
 * A copy of `graph` whose outputs are, for every node output, its shape and its first values:
 * ONNX Runtime frees each intermediate as soon as its last reader has run, so learning the facts
 * of a network costs about one forward pass of memory, not every activation at once.
 */
function probeGraph(graph: IGraphProto, values: readonly string[]) {
  const int64 = (name: string, v: number[]) =>
    onnx.TensorProto.create({
      name,
      dataType: DataType.INT64,
      dims: [v.length],
      rawData: new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer),
    });
  const consts = { flat: "ld3#probe_flat", zero: "ld3#probe_zero", end: "ld3#probe_end" };
  const nodes = [...graph.node ?? []];
  const outputs: IValueInfoProto[] = [];
  for (const v of values) {
    const { shape, head } = probeNames(v);
    const flat = `${v}#ld3_flat`;
    nodes.push(
      onnx.NodeProto.create({ opType: "Shape", input: [v], output: [shape] }),
      onnx.NodeProto.create({ opType: "Reshape", input: [v, consts.flat], output: [flat] }),
      onnx.NodeProto.create({
        opType: "Slice",
        input: [flat, consts.zero, consts.end],
        output: [head],
      }),
    );
    outputs.push({ name: shape }, { name: head });
  }
  return onnx.GraphProto.create({
    ...graph,
    node: nodes,
    initializer: [
      ...graph.initializer ?? [],
      int64(consts.flat, [-1]),
      int64(consts.zero, [0]),
      int64(consts.end, [HEAD + 1]),
    ],
    output: outputs,
    valueInfo: [],
  });
}

/** The numbers of an output tensor (float16 ones decoded when ORT hands over their bits). */
function numbersOf(t: ort.Tensor): number[] {
  const data = t.data as ArrayLike<number | bigint>;
  if (t.type === "float16" && data instanceof Uint16Array) return Array.from(data, halfValue);
  return Array.from(data, (v) => Number(v));
}

/**
 * Runs a copy of `model` that reports the shape and the first values of every node output, and
 * records shapes, element types and small values. Input values are fillers: shapes of the ops
 * this module supports do not depend on input values. `sessionOptions` (e.g. where the weights of
 * a graph made in memory live) are those of the probe's session.
 */
export async function learnValueFacts(
  model: IModelProto,
  inputShapes: Map<string, number[]>,
  dtypes: Map<string, number>,
  sessionOptions: ort.InferenceSession.SessionOptions = {},
): Promise<ValueFacts> {
  const graph = model.graph!;
  const outputs: string[] = [];
  const seen = new Set<string>();
  for (const node of graph.node ?? []) {
    for (const o of node.output ?? []) {
      if (o && !seen.has(o)) {
        seen.add(o);
        outputs.push(o);
      }
    }
  }
  const copy = onnx.ModelProto.create({ ...model, graph: probeGraph(graph, outputs) });
  const facts: ValueFacts = { shapes: new Map(), dtypes: new Map(), values: new Map() };
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, shape] of inputShapes) {
    feeds[name] = filler(dtypes.get(name)!, shape);
    facts.shapes.set(name, shape);
    facts.dtypes.set(name, dtypes.get(name)!);
  }
  for (const t of graph.initializer ?? []) {
    const shape = (t.dims ?? []).map((d) => toNumber(d));
    facts.shapes.set(t.name!, shape);
    facts.dtypes.set(t.name!, t.dataType ?? 0);
    const small = numel(shape) <= HEAD;
    if (t.dataType !== DataType.FLOAT && t.dataType !== DataType.DOUBLE || small) {
      facts.values.set(t.name!, tensorValues(t));
    }
  }
  const bytes = onnx.ModelProto.encode(copy).finish();
  const session = await ort.InferenceSession.create(bytes, {
    ...sessionOptions,
    graphOptimizationLevel: "disabled",
    enableCpuMemArena: false,
  });
  try {
    const result = await session.run(feeds);
    for (const name of outputs) {
      const { shape, head } = probeNames(name);
      if (!result[shape] || !result[head]) continue;
      const dims = numbersOf(result[shape]);
      facts.shapes.set(name, dims);
      const t = result[head];
      facts.dtypes.set(name, FROM_ORT[t.type] ?? 0);
      const float = t.type === "float32" || t.type === "float64" || t.type === "float16";
      if (!float || numel(dims) <= HEAD) facts.values.set(name, numbersOf(t));
    }
  } finally {
    await session.release();
  }
  return facts;
}
