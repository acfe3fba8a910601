/** Per-op finite-difference checks of the data-movement VJP rules, randomized attributes. */
import { checkVjp, type ModelSpec, randn } from "./_harness.ts";

/** Seeded integer in `[lo, hi]`. */
function intRng(seed: number): (lo: number, hi: number) => number {
  const r = randn(seed);
  return (lo, hi) => lo + Math.floor(Math.abs(r() * 1000)) % (hi - lo + 1);
}

function ints(name: string, values: number[]): ModelSpec["consts"] {
  return { [name]: { values, dims: [values.length], int: true } };
}

Deno.test("buildVjpModel() differentiates Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand", async () => {
  await checkVjp({
    inputs: { x: [2, 1, 3, 4] },
    consts: { ...ints("shape", [6, -1]), ...ints("ax", [1]), ...ints("ax0", [0]) },
    nodes: [
      { op: "Squeeze", inputs: ["x", "ax"], outputs: ["s"] },
      { op: "Transpose", inputs: ["s"], outputs: ["t"], attrs: { perm: [2, 0, 1] } },
      { op: "Reshape", inputs: ["t", "shape"], outputs: ["r"] },
      { op: "Unsqueeze", inputs: ["r", "ax0"], outputs: ["u"] },
      { op: "Flatten", inputs: ["u"], outputs: ["f"], attrs: { axis: 2 } },
      { op: "Transpose", inputs: ["f"], outputs: ["y"] },
    ],
    outputs: ["y"],
  }, { wrt: ["x"] });
  await checkVjp({
    inputs: { x: [3, 1, 2] },
    consts: ints("shape", [2, 3, 4, 2]),
    nodes: [{ op: "Expand", inputs: ["x", "shape"] }],
    outputs: ["y"],
  }, { wrt: ["x"] });
});

Deno.test("buildVjpModel() differentiates Concat and Split on random axes", async () => {
  for (let seed = 1; seed <= 4; seed++) {
    const rand = intRng(seed);
    const axis = rand(0, 2);
    const a = [2, 3, 4];
    const b = [2, 3, 4];
    b[axis] = rand(1, 3);
    const total = a[axis] + b[axis];
    const first = rand(1, total - 1);
    await checkVjp({
      inputs: { a, b },
      consts: ints("split", [first, total - first]),
      nodes: [
        { op: "Concat", inputs: ["a", "b"], outputs: ["c"], attrs: { axis: axis - 3 } },
        { op: "Split", inputs: ["c", "split"], outputs: ["p", "q"], attrs: { axis } },
        // only one piece of the split reaches the output: the other gets zeros
        { op: "Sin", inputs: ["q"], outputs: ["y"] },
      ],
      outputs: ["y"],
    }, { wrt: ["a", "b"], seed });
  }
});

Deno.test("buildVjpModel() differentiates Slice with random starts, ends, axes and steps", async () => {
  for (let seed = 1; seed <= 8; seed++) {
    const rand = intRng(100 + seed);
    const shape = [4, 5, 6];
    const axes = seed % 2 === 0 ? [0, 2] : [1];
    const starts: number[] = [];
    const ends: number[] = [];
    const steps: number[] = [];
    for (const ax of axes) {
      const n = shape[ax];
      const step = [1, 2, -1, -2, 3][rand(0, 4)];
      if (step > 0) {
        starts.push(rand(-n, n - 2));
        ends.push([n + 5, -1, n][rand(0, 2)]);
      } else {
        starts.push(rand(1, n + 3));
        ends.push([-n - 5, 0][rand(0, 1)]);
      }
      steps.push(step);
    }
    await checkVjp({
      inputs: { x: shape },
      consts: {
        ...ints("starts", starts),
        ...ints("ends", ends),
        ...ints("axes", axes),
        ...ints("steps", steps),
      },
      nodes: [{ op: "Slice", inputs: ["x", "starts", "ends", "axes", "steps"] }],
      outputs: ["y"],
    }, { wrt: ["x"], seed });
  }
});

Deno.test("buildVjpModel() joins the cotangents of slices of one axis (split, gaps, overlaps)", async () => {
  // pieces of axis 1 of x [2, 9, 3]: y = q·k + v·w + e with q, k, v tiling [0, 6), w
  // overlapping v, e another use of x; then the same without overlap, leaving a gap
  const slice = (name: string, s: number, e: number) => ({
    ...ints(`${name}_s`, [s]),
    ...ints(`${name}_e`, [e]),
  });
  for (const [w0, w1] of [[3, 5], [7, 8]]) {
    const ranges: [string, number, number][] = [
      ["q", 0, 2],
      ["k", 2, 4],
      ["v", 4, 6],
      ["w", w0, w1 + 1],
    ];
    await checkVjp({
      inputs: { x: [2, 9, 3] },
      consts: {
        ...ints("axis", [1]),
        ...Object.assign({}, ...ranges.map(([n, s, e]) => slice(n, s, e))),
        ...ints("wrap", [2, -1]),
      },
      nodes: [
        ...ranges.map(([n]) => ({
          op: "Slice",
          inputs: ["x", `${n}_s`, `${n}_e`, "axis"],
          outputs: [n],
        })),
        { op: "Mul", inputs: ["q", "k"], outputs: ["qk"] },
        { op: "ReduceSum", inputs: ["w", "axis"], outputs: ["ws"], attrs: { keepdims: 1 } },
        { op: "Mul", inputs: ["v", "ws"], outputs: ["vw"] },
        { op: "Add", inputs: ["qk", "vw"], outputs: ["t"] },
        { op: "Reshape", inputs: ["x", "wrap"], outputs: ["e"] },
        { op: "ReduceSum", inputs: ["e", "axis"], outputs: ["es"], attrs: { keepdims: 0 } },
        { op: "Reshape", inputs: ["es", "wrap"], outputs: ["es2"] },
        { op: "Add", inputs: ["t", "es2"] },
      ],
      outputs: ["y"],
    }, { wrt: ["x"], seed: w0 });
  }
});

Deno.test("buildVjpModel() differentiates Gather with repeated and negative indices", async () => {
  for (
    const [axis, indices, dims] of [
      [0, [2, 0, 2, -1], [2, 2]],
      [1, [1], []],
      [-1, [0, 3, 3], [3]],
    ] as [number, number[], number[]][]
  ) {
    await checkVjp({
      inputs: { x: [3, 4, 4] },
      consts: { idx: { values: indices, dims, int: true } },
      nodes: [{ op: "Gather", inputs: ["x", "idx"], attrs: { axis } }],
      outputs: ["y"],
    }, { wrt: ["x"] });
  }
});

Deno.test("buildVjpModel() differentiates Pad in every mode with random pads", async () => {
  let seed = 1;
  for (const mode of ["constant", "reflect", "edge", "wrap"]) {
    for (let k = 0; k < 2; k++) {
      const rand = intRng(200 + seed);
      const lo = mode === "constant" ? -1 : 0;
      const pads = [0, rand(lo, 2), rand(lo, 2), 0, rand(lo, 2), rand(0, 2)];
      await checkVjp({
        inputs: { x: [2, 4, 5] },
        consts: { ...ints("pads", pads), cv: { values: [0.3], dims: [] } },
        nodes: [{ op: "Pad", inputs: ["x", "pads", "cv"], attrs: { mode } }],
        outputs: ["y"],
        opset: 19,
      }, { wrt: ["x"], seed: seed++ });
    }
  }
});

Deno.test("buildVjpModel() differentiates Tile", async () => {
  await checkVjp({
    inputs: { x: [2, 3] },
    consts: ints("reps", [2, 3]),
    nodes: [{ op: "Tile", inputs: ["x", "reps"] }],
    outputs: ["y"],
  }, { wrt: ["x"] });
});
