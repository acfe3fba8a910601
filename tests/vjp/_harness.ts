/**
 * Test helpers: build tiny ONNX models in code and check VJP models against central finite
 * differences of the forward model, both run through ONNX Runtime.
 *
 * @module
 */
import assert from "node:assert/strict";
import { onnx, ort } from "../../lib/deps.ts";
import { type AttrValue, DataType, makeAttr, makeTensor } from "../../lib/vjp/_graph.ts";
import { buildVjpModel, cotangentName, gradientName } from "../../lib/vjp/mod.ts";

/** Element type of a test model's float values. */
export type FloatType = "float32" | "float64";

/** One node of a test model. */
export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs?: string[];
  attrs?: Record<string, AttrValue>;
}

/** A tiny test model: float inputs, nodes, constants, one or more outputs. */
export interface ModelSpec {
  inputs: Record<string, number[]>;
  nodes: NodeSpec[];
  outputs: string[];
  /** Float constants (in the model's float type) and int64 constants. */
  consts?: Record<string, { values: number[]; dims: number[]; int?: boolean }>;
  /** Extra typed inputs (e.g. int64 or bool), by name. */
  typedInputs?: Record<string, { dtype: number; shape: number[] }>;
  dtype?: FloatType;
  opset?: number;
}

const ELEM = { float32: DataType.FLOAT, float64: DataType.DOUBLE } as const;

/** Encodes a {@linkcode ModelSpec} as ONNX bytes. */
export function buildModel(spec: ModelSpec): Uint8Array {
  const et = ELEM[spec.dtype ?? "float64"];
  const vi = (name: string, elemType: number, shape?: number[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: {
          elemType,
          shape: shape ? { dim: shape.map((d) => ({ dimValue: d })) } : undefined,
        },
      },
    });
  let k = 0;
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: spec.opset ?? 17 }],
    graph: {
      name: "test",
      node: spec.nodes.map((n) => ({
        opType: n.op,
        name: `${n.op}_${k++}`,
        input: n.inputs,
        output: n.outputs ?? ["y"],
        attribute: Object.entries(n.attrs ?? {}).map(([name, v]) => makeAttr(name, v)),
      })),
      input: [
        ...Object.entries(spec.inputs).map(([name, shape]) => vi(name, et, shape)),
        ...Object.entries(spec.typedInputs ?? {}).map(([name, t]) => vi(name, t.dtype, t.shape)),
      ],
      output: spec.outputs.map((name) => vi(name, et)),
      initializer: Object.entries(spec.consts ?? {}).map(([name, c]) =>
        makeTensor(name, c.int ? DataType.INT64 : et, c.dims, c.values)
      ),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** A seeded normal random generator (mulberry32 + Box–Muller). */
export function randn(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

function tensor(dtype: FloatType, data: ArrayLike<number>, dims: number[]): ort.Tensor {
  return new ort.Tensor(
    dtype,
    dtype === "float64" ? Float64Array.from(data) : Float32Array.from(data),
    dims,
  );
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Options of {@linkcode checkVjp}. */
export interface CheckOptions {
  wrt: string[];
  of?: string;
  seed?: number;
  /** Relative tolerance. @default 1e-6 for float64, 2e-2 for float32 */
  tol?: number;
  /** Finite-difference step. @default 1e-5 for float64, 1e-2 for float32 */
  h?: number;
  /** Input values, by name; random normal where missing. */
  values?: Record<string, number[]>;
  /** Extra feeds (integer or boolean inputs). */
  feeds?: Record<string, ort.Tensor>;
  /** Number of random directions. @default 2 */
  directions?: number;
}

/**
 * Checks `⟨VJP(g), v⟩ = ⟨g, (f(x + h v) − f(x − h v)) / 2h⟩` for random cotangents `g` and
 * directions `v`, where `f` is the forward model run through ONNX Runtime. Returns the
 * largest relative error seen.
 */
export async function checkVjp(spec: ModelSpec, options: CheckOptions): Promise<number> {
  const dtype = spec.dtype ?? "float64";
  const bytes = buildModel(spec);
  const rng = randn(options.seed ?? 1);
  const of = options.of ?? spec.outputs[0];
  const x: Record<string, number[]> = {};
  for (const [name, shape] of Object.entries(spec.inputs)) {
    const n = shape.reduce((a, b) => a * b, 1);
    x[name] = options.values?.[name] ?? Array.from({ length: n }, rng);
  }
  const feedsAt = (vals: Record<string, number[]>) => {
    const feeds: Record<string, ort.Tensor> = { ...options.feeds };
    for (const [name, shape] of Object.entries(spec.inputs)) {
      feeds[name] = tensor(dtype, vals[name], shape);
    }
    return feeds;
  };
  const forward = await ort.InferenceSession.create(bytes);
  const vjpBytes = await buildVjpModel(bytes, { wrt: options.wrt, of });
  const vjp = await ort.InferenceSession.create(vjpBytes);
  try {
    const y = (await forward.run(feedsAt(x)))[of];
    const g = Array.from({ length: y.size }, rng);
    const res = await vjp.run({
      ...feedsAt(x),
      [cotangentName(of)]: tensor(dtype, g, [...y.dims]),
    });
    const h = options.h ?? (dtype === "float64" ? 1e-5 : 1e-2);
    const tol = options.tol ?? (dtype === "float64" ? 1e-6 : 2e-2);
    let worst = 0;
    for (let d = 0; d < (options.directions ?? 2); d++) {
      const v: Record<string, number[]> = {};
      const plus: Record<string, number[]> = { ...x };
      const minus: Record<string, number[]> = { ...x };
      let analytic = 0;
      for (const w of options.wrt) {
        v[w] = x[w].map(() => rng());
        plus[w] = x[w].map((xi, i) => xi + h * v[w][i]);
        minus[w] = x[w].map((xi, i) => xi - h * v[w][i]);
        const gw = res[gradientName(w)];
        assert.deepEqual([...gw.dims], spec.inputs[w], `gradient shape of ${w}`);
        analytic += dot(gw.data as Float64Array, v[w]);
      }
      const yp = (await forward.run(feedsAt(plus)))[of].data as Float64Array;
      const ym = (await forward.run(feedsAt(minus)))[of].data as Float64Array;
      const fd = dot(g, Array.from(yp, (p, i) => (p - ym[i]) / (2 * h)));
      const err = Math.abs(fd - analytic) / Math.max(Math.abs(fd), Math.abs(analytic), 1e-3);
      worst = Math.max(worst, err);
      assert.ok(
        err <= tol,
        `VJP mismatch (${
          spec.nodes.map((n) => n.op).join(",")
        }): fd ${fd}, vjp ${analytic}, rel ${err}`,
      );
    }
    return worst;
  } finally {
    await forward.release();
    await vjp.release();
  }
}
