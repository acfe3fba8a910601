/** Per-op finite-difference checks of the elementwise VJP rules. */
import { checkVjp, type FloatType, type ModelSpec, randn } from "./_harness.ts";

/** Broadcast patterns `[a, b]` exercised by binary ops. */
const BROADCASTS: [number[], number[]][] = [
  [[2, 3], [2, 3]],
  [[2, 3, 4], [4]],
  [[2, 1, 4], [3, 1]],
  [[1], [2, 3]],
  [[2, 3, 1, 5], [1, 3, 4, 1]],
];

function binary(op: string, a: number[], b: number[], dtype: FloatType = "float64"): ModelSpec {
  return { inputs: { a, b }, nodes: [{ op, inputs: ["a", "b"] }], outputs: ["y"], dtype };
}

function unary(op: string, dtype: FloatType = "float64", attrs = {}): ModelSpec {
  return { inputs: { x: [2, 3, 4] }, nodes: [{ op, inputs: ["x"], attrs }], outputs: ["y"], dtype };
}

/** Positive values for ops defined on (0, ∞). */
function positive(n: number, seed: number): number[] {
  const r = randn(seed);
  return Array.from({ length: n }, () => 0.5 + Math.abs(r()));
}

Deno.test("buildVjpModel() differentiates broadcasting binary ops", async () => {
  let seed = 10;
  for (const op of ["Add", "Sub", "Mul", "Div", "Max", "Min"]) {
    for (const [a, b] of BROADCASTS) {
      const n = (s: number[]) => s.reduce((p, q) => p * q, 1);
      const values = op === "Div" ? { b: positive(n(b), seed) } : undefined;
      await checkVjp(binary(op, a, b), { wrt: ["a", "b"], seed: seed++, values });
    }
  }
});

Deno.test("buildVjpModel() differentiates Pow in base and exponent", async () => {
  const spec = binary("Pow", [2, 3], [3]);
  await checkVjp(spec, {
    wrt: ["a", "b"],
    values: { a: positive(6, 3), b: [0.5, 2, -1.5] },
  });
  // constant integer-valued exponent, as torch exports x**2
  await checkVjp({
    inputs: { x: [2, 3] },
    consts: { e: { values: [2], dims: [] } },
    nodes: [{ op: "Pow", inputs: ["x", "e"] }],
    outputs: ["y"],
  }, { wrt: ["x"] });
});

Deno.test("buildVjpModel() differentiates unary ops", async () => {
  const positiveOps = ["Sqrt", "Log", "Reciprocal"];
  const ops = ["Neg", "Exp", "Sigmoid", "Tanh", "Sin", "Cos", "Abs", "Relu", "Identity"];
  let seed = 40;
  for (const op of ops) await checkVjp(unary(op), { wrt: ["x"], seed: seed++ });
  for (const op of positiveOps) {
    await checkVjp(unary(op), { wrt: ["x"], seed: seed++, values: { x: positive(24, seed) } });
  }
  // ONNX Runtime implements these in float32 only
  for (const op of ["Erf", "Softplus"]) {
    await checkVjp(unary(op, "float32"), { wrt: ["x"], seed: seed++ });
  }
  await checkVjp(unary("LeakyRelu", "float64", { alpha: { f: 0.2 } }), { wrt: ["x"], seed });
  for (const approximate of ["none", "tanh"]) {
    await checkVjp({ ...unary("Gelu", "float32", { approximate }), opset: 20 }, { wrt: ["x"] });
  }
});

Deno.test("buildVjpModel() differentiates Clip, Where, Cast, Sum and Mean", async () => {
  await checkVjp({
    inputs: { x: [3, 4] },
    consts: { lo: { values: [-0.5], dims: [] }, hi: { values: [0.7], dims: [] } },
    nodes: [{ op: "Clip", inputs: ["x", "lo", "hi"] }],
    outputs: ["y"],
  }, { wrt: ["x"], seed: 3 });
  await checkVjp({
    inputs: { a: [3, 4], b: [4] },
    nodes: [
      { op: "Greater", inputs: ["a", "b"], outputs: ["c"] },
      { op: "Where", inputs: ["c", "a", "b"] },
    ],
    outputs: ["y"],
  }, { wrt: ["a", "b"], seed: 4 });
  // float64 → float32 → float64 round trip: cotangents are cast back
  await checkVjp({
    inputs: { x: [3, 4] },
    nodes: [
      { op: "Cast", inputs: ["x"], outputs: ["f"], attrs: { to: 1 } },
      { op: "Mul", inputs: ["f", "f"], outputs: ["s"] },
      { op: "Cast", inputs: ["s"], attrs: { to: 11 } },
    ],
    outputs: ["y"],
  }, { wrt: ["x"], tol: 1e-4, h: 1e-3 });
  await checkVjp({
    inputs: { a: [3, 4], b: [4], c: [3, 1] },
    nodes: [
      { op: "Sum", inputs: ["a", "b", "c"], outputs: ["s"] },
      { op: "Mean", inputs: ["s", "a", "c"] },
    ],
    outputs: ["y"],
    dtype: "float32", // ONNX Runtime has Mean in float32 only
  }, { wrt: ["a", "b", "c"] });
});

Deno.test("buildVjpModel() accumulates fan-out and ignores integer shape arithmetic", async () => {
  // y = reshape(x * x, shape(x)) + exp(x): x is used three times; Shape feeds Reshape
  await checkVjp({
    inputs: { x: [2, 3, 4] },
    nodes: [
      { op: "Mul", inputs: ["x", "x"], outputs: ["sq"] },
      { op: "Shape", inputs: ["x"], outputs: ["shp"] },
      { op: "Flatten", inputs: ["sq"], outputs: ["flat"], attrs: { axis: 1 } },
      { op: "Reshape", inputs: ["flat", "shp"], outputs: ["back"] },
      { op: "Exp", inputs: ["x"], outputs: ["e"] },
      { op: "Add", inputs: ["back", "e"] },
    ],
    outputs: ["y"],
  }, { wrt: ["x"] });
});

Deno.test("buildVjpModel() differentiates SiLU = x·Sigmoid(x), also when the sigmoid is reused", async () => {
  // σ·x (sigmoid first), x·σ, and x·σ with σ also used elsewhere (no folding there)
  let seed = 40;
  for (const order of [["s", "x"], ["x", "s"]]) {
    await checkVjp({
      inputs: { x: [2, 3, 4] },
      nodes: [
        { op: "Sigmoid", inputs: ["x"], outputs: ["s"] },
        { op: "Mul", inputs: order },
      ],
      outputs: ["y"],
      dtype: "float32", // ONNX Runtime fuses x·σ(x) into a float32-only kernel
    }, { wrt: ["x"], seed: seed++ });
  }
  await checkVjp({
    inputs: { x: [2, 3, 4] },
    nodes: [
      { op: "Sigmoid", inputs: ["x"], outputs: ["s"] },
      { op: "Mul", inputs: ["x", "s"], outputs: ["silu"] },
      { op: "Add", inputs: ["silu", "s"] },
    ],
    outputs: ["y"],
    dtype: "float32",
  }, { wrt: ["x"], seed: seed++ });
});
