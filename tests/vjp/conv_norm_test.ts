/**
 * Per-op finite-difference checks of convolutions, pooling, normalisation and resizing, with
 * randomized strides, pads, dilations and groups. ONNX Runtime runs most of these in float32
 * only; linear ops take a large step, where central differences are exact up to rounding.
 */
import { checkVjp, type FloatType, type ModelSpec, randn } from "./_harness.ts";

function intRng(seed: number): (lo: number, hi: number) => number {
  const r = randn(seed);
  return (lo, hi) => lo + Math.floor(Math.abs(r() * 1000)) % (hi - lo + 1);
}

function weights(name: string, dims: number[], seed: number): ModelSpec["consts"] {
  const r = randn(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return { [name]: { values: Array.from({ length: n }, () => r() * 0.5), dims } };
}

const LINEAR = { h: 0.25, tol: 1e-3 };

Deno.test("buildVjpModel() differentiates Conv with random strides, pads, dilations, groups", async () => {
  for (let seed = 1; seed <= 12; seed++) {
    const rand = intRng(seed);
    const spatial = seed === 9 ? 1 : seed === 10 ? 3 : 2;
    const group = [1, 2, 4][rand(0, 2)];
    const c = 4;
    const m = group * rand(1, 2);
    const kernel = Array.from({ length: spatial }, () => rand(1, 3));
    const xs = Array.from({ length: spatial }, () => rand(5, 8));
    const attrs: Record<string, number[] | number | string> = {
      // seeds 11 and 12: unit strides (the Conv-of-flipped-kernel path)
      strides: kernel.map(() => (seed > 10 ? 1 : rand(1, 3))),
      dilations: kernel.map(() => rand(1, 2)),
      group,
    };
    if (seed === 5) attrs.auto_pad = "SAME_UPPER";
    else if (seed === 6) attrs.auto_pad = "SAME_LOWER";
    else attrs.pads = [...kernel, ...kernel].map(() => rand(0, 2));
    await checkVjp({
      inputs: { x: [2, c, ...xs] },
      consts: { ...weights("w", [m, c / group, ...kernel], seed), ...weights("b", [m], seed + 50) },
      nodes: [{ op: "Conv", inputs: ["x", "w", "b"], attrs }],
      outputs: ["y"],
      dtype: "float32",
    }, { wrt: ["x"], seed, ...LINEAR });
  }
});

Deno.test("buildVjpModel() differentiates ConvTranspose with random geometry", async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const rand = intRng(30 + seed);
    const group = [1, 2][rand(0, 1)];
    const kernel = [rand(1, 3), rand(1, 3)];
    const strides = [rand(1, 3), rand(1, 3)];
    const dilations = [rand(1, 2), rand(1, 2)];
    const attrs = {
      strides,
      dilations,
      group,
      pads: [0, 0, 0, 0].map((_, i) => rand(0, Math.min(1, kernel[i % 2] - 1))),
      output_padding: strides.map((s, i) => rand(0, Math.max(s, dilations[i]) - 1)),
    };
    await checkVjp({
      inputs: { x: [2, 4, rand(3, 5), rand(3, 5)] },
      consts: weights("w", [4, 3, ...kernel], seed),
      nodes: [{ op: "ConvTranspose", inputs: ["x", "w"], attrs }],
      outputs: ["y"],
      dtype: "float32",
    }, { wrt: ["x"], seed, ...LINEAR });
  }
});

Deno.test("buildVjpModel() differentiates AveragePool, MaxPool and GlobalAveragePool", async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const rand = intRng(60 + seed);
    const kernel = [rand(1, 3), rand(2, 3)];
    const pads = [...kernel, ...kernel].map((k) => rand(0, k - 1));
    const strides = [rand(1, 3), rand(1, 3)];
    await checkVjp({
      inputs: { x: [2, 3, 7, 6] },
      nodes: [{
        op: "AveragePool",
        inputs: ["x"],
        attrs: { kernel_shape: kernel, pads, strides, count_include_pad: seed % 2 },
      }],
      outputs: ["y"],
      dtype: "float32",
    }, { wrt: ["x"], seed, ...LINEAR });
    // overlapping windows (stride < kernel) accumulate; float64 for a tight check
    await checkVjp({
      inputs: { x: [2, 3, 7, 6] },
      nodes: [{
        op: "MaxPool",
        inputs: ["x"],
        attrs: { kernel_shape: kernel, pads, strides, dilations: [rand(1, 2), 1] },
      }],
      outputs: ["y"],
    }, { wrt: ["x"], seed });
  }
  await checkVjp({
    inputs: { x: [2, 3, 4, 5] },
    nodes: [{ op: "GlobalAveragePool", inputs: ["x"] }],
    outputs: ["y"],
    dtype: "float32",
  }, { wrt: ["x"], ...LINEAR });
});

Deno.test("buildVjpModel() differentiates InstanceNormalization, LayerNormalization, BatchNormalization", async () => {
  const c = 4;
  await checkVjp({
    inputs: { x: [2, c, 3, 5], s: [c], b: [c] },
    nodes: [{
      op: "InstanceNormalization",
      inputs: ["x", "s", "b"],
      attrs: { epsilon: { f: 1e-3 } },
    }],
    outputs: ["y"],
    dtype: "float32",
  }, { wrt: ["x", "s", "b"], h: 1e-2 });
  // PyTorch's GroupNorm export: constant unit scale and zero bias, [N, G, S] layout
  await checkVjp({
    inputs: { x: [2, 3, 6] },
    consts: { s: { values: [1, 1, 1], dims: [3] }, b: { values: [0, 0, 0], dims: [3] } },
    nodes: [{ op: "InstanceNormalization", inputs: ["x", "s", "b"] }],
    outputs: ["y"],
    dtype: "float32",
  }, { wrt: ["x"], h: 1e-2, seed: 7 });
  await checkVjp({
    inputs: { x: [2, c, 3, 5] },
    consts: { s: { values: [1, 2, 0.5, -1], dims: [c] }, b: { values: [0, 1, 0, 2], dims: [c] } },
    nodes: [{ op: "InstanceNormalization", inputs: ["x", "s", "b"] }],
    outputs: ["y"],
    dtype: "float32",
  }, { wrt: ["x"], h: 1e-2, seed: 8 });
  for (
    const [axis, dtype] of [[-1, "float64"], [1, "float64"], [2, "float32"]] as [
      number,
      FloatType,
    ][]
  ) {
    const shape = [2, 3, 4];
    await checkVjp({
      inputs: { x: shape, s: shape.slice(axis < 0 ? 3 + axis : axis), b: [4] },
      nodes: [{ op: "LayerNormalization", inputs: ["x", "s", "b"], attrs: { axis } }],
      outputs: ["y"],
      dtype,
    }, { wrt: ["x", "s", "b"], seed: axis + 3 });
  }
  await checkVjp({
    inputs: { x: [2, c, 3, 3] },
    consts: {
      ...weights("s", [c], 1),
      ...weights("b", [c], 2),
      ...weights("m", [c], 3),
      v: { values: [0.5, 1, 2, 3], dims: [c] },
    },
    nodes: [{ op: "BatchNormalization", inputs: ["x", "s", "b", "m", "v"] }],
    outputs: ["y"],
    dtype: "float32",
  }, { wrt: ["x"], ...LINEAR });
});

Deno.test("buildVjpModel() differentiates GroupNormalization (opsets 18 and 21)", async () => {
  for (const [opset, scale] of [[18, 2], [21, 6]]) {
    await checkVjp({
      inputs: { x: [2, 6, 3, 2], s: [scale], b: [scale] },
      nodes: [{ op: "GroupNormalization", inputs: ["x", "s", "b"], attrs: { num_groups: 2 } }],
      outputs: ["y"],
      dtype: "float32",
      opset,
    }, { wrt: ["x", "s", "b"], h: 1e-2 });
  }
});

Deno.test("buildVjpModel() differentiates Resize (nearest and linear, scales and sizes)", async () => {
  const cases: [string, string, string, number[] | null, number[] | null][] = [
    ["nearest", "asymmetric", "floor", [1, 1, 2, 2], null],
    ["nearest", "half_pixel", "round_prefer_floor", [1, 1, 2, 3], null],
    ["nearest", "asymmetric", "floor", [1, 1, 1, 3], null],
    ["nearest", "align_corners", "round_prefer_ceil", null, [2, 3, 7, 5]],
    ["linear", "half_pixel", "round_prefer_floor", [1, 1, 2, 2], null],
    ["linear", "pytorch_half_pixel", "round_prefer_floor", null, [2, 3, 9, 1]],
    ["linear", "align_corners", "round_prefer_floor", [1, 1, 3, 2], null],
    ["linear", "asymmetric", "round_prefer_floor", [1, 1, 0.5, 2], null],
  ];
  let seed = 1;
  for (const [mode, ctm, nearest, scales, sizes] of cases) {
    const consts: ModelSpec["consts"] = scales
      ? { scales: { values: scales, dims: [4] } }
      : { sizes: { values: sizes!, dims: [4], int: true } };
    // scales are float32 in ONNX whatever the data type: keep the model float32
    await checkVjp({
      inputs: { x: [2, 3, 4, 3] },
      consts,
      nodes: [{
        op: "Resize",
        inputs: scales ? ["x", "", "scales"] : ["x", "", "", "sizes"],
        attrs: { mode, coordinate_transformation_mode: ctm, nearest_mode: nearest },
      }],
      outputs: ["y"],
      dtype: "float32",
    }, { wrt: ["x"], seed: seed++, ...LINEAR });
  }
});
