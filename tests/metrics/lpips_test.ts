import assert from "node:assert/strict";
import { loadLpips, repeatChannels, sumRepeatedChannels } from "../../lib/metrics/lpips.ts";
import { normalNoise } from "../../lib/rng.ts";

const MODEL = "models/lpips-tiny/lpips-tiny.onnx";

interface GradCase {
  shape: [number, number, number, number];
  in0: number[];
  in1: number[];
  distance: number[];
  grad_in0: number[];
}
const fixture: { cases: GradCase[] } = JSON.parse(
  await Deno.readTextFile("tests/fixtures/lpips_tiny.json"),
);

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 1e-12;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

for (const c of fixture.cases) {
  const [batch, channels, h, w] = c.shape;
  Deno.test(`loadLpips() matches PyTorch values and gradients (${channels}×${h}×${w})`, async () => {
    const lpips = await loadLpips(MODEL, { imageShape: [channels, h, w] });
    try {
      const a = Float64Array.from(c.in0);
      const b = Float32Array.from(c.in1);
      const value = await lpips.value(a, b, batch);
      assert.ok(relativeError(value, c.distance) < 1e-5, `values ${value} vs ${c.distance}`);
      const g = await lpips.grad(a, b, batch);
      assert.ok(relativeError(g.value, c.distance) < 1e-5);
      const err = relativeError(g.grad, c.grad_in0);
      assert.ok(err < 1e-4, `gradient relative error ${err}`);
    } finally {
      await lpips.close();
    }
  });
}

Deno.test("loadLpips() grad matches central finite differences of value", async () => {
  const c = fixture.cases[0];
  const [batch, channels, h, w] = c.shape;
  const lpips = await loadLpips(MODEL, { imageShape: [channels, h, w] });
  try {
    const a = Float64Array.from(c.in0);
    const b = Float64Array.from(c.in1);
    const { grad } = await lpips.grad(a, b, batch);
    const total = async (x: Float64Array) => {
      const v = await lpips.value(x, b, batch);
      return v.reduce((p, q) => p + q, 0);
    };
    // One pixel at a time, over pixels of both samples: a pixel moves few ReLU and max-pool
    // kinks, and the float32 network still limits single differences to about 1%, so the
    // check is on the whole vector of differences.
    const step = 3e-3;
    let err = 0;
    let norm = 0;
    for (let k = 0; k < 24; k++) {
      const p = (k * 37 + 11) % a.length;
      const plus = a.slice();
      plus[p] += step;
      const minus = a.slice();
      minus[p] -= step;
      const fd = (await total(plus) - await total(minus)) / (2 * step);
      err += (fd - grad[p]) ** 2;
      norm += grad[p] ** 2;
    }
    assert.ok(norm > 0);
    const rel = Math.sqrt(err / norm);
    assert.ok(rel < 0.05, `finite differences vs VJP: relative error ${rel}`);
  } finally {
    await lpips.close();
  }
});

Deno.test("loadLpips() gives 0 distance and 0 gradient for identical images", async () => {
  const lpips = await loadLpips(MODEL);
  try {
    const a = Float64Array.from(normalNoise(4, 0, 3 * 784), Math.tanh);
    const value = await lpips.value(a, a, 3);
    assert.deepEqual([...value], [0, 0, 0]);
    const g = await lpips.grad(a, Float32Array.from(a), 3);
    assert.deepEqual([...g.value], [0, 0, 0]);
    assert.ok(g.grad.every((v) => v === 0));
    const other = Float64Array.from(normalNoise(5, 0, 3 * 784), Math.tanh);
    const apart = await lpips.value(a, other, 3);
    assert.ok(apart.every((v) => v > 0.01), `distinct images: ${apart}`);
  } finally {
    await lpips.close();
  }
});

Deno.test("loadLpips() infers square 1- and 3-channel images and batches calls", async () => {
  const small = await loadLpips(MODEL, { batchSize: 2 });
  const large = await loadLpips(MODEL);
  try {
    assert.equal(large.modelChannels, 3);
    for (const channels of [1, 3]) {
      const size = channels * 20 * 20;
      const a = Float64Array.from(normalNoise(6, channels, 5 * size), Math.tanh);
      const b = Float64Array.from(normalNoise(7, channels, 5 * size), Math.tanh);
      const ref = await large.grad(a, b, 5);
      const chunked = await small.grad(a, b, 5);
      assert.ok(relativeError(chunked.value, ref.value) < 1e-6);
      assert.ok(relativeError(chunked.grad, ref.grad) < 1e-5);
      // Sample 3 alone gives its own distance and gradient.
      const one = await large.grad(a.slice(3 * size, 4 * size), b.slice(3 * size, 4 * size), 1);
      assert.ok(Math.abs(one.value[0] - ref.value[3]) < 1e-6);
      assert.ok(relativeError(one.grad, ref.grad.subarray(3 * size, 4 * size)) < 1e-5);
    }
  } finally {
    await small.close();
    await large.close();
  }
});

Deno.test("repeatChannels() and sumRepeatedChannels() are adjoint", () => {
  const batch = 2;
  const plane = 12;
  const u = normalNoise(8, 0, batch * plane);
  const v = normalNoise(9, 0, batch * 3 * plane);
  const ru = repeatChannels(u, batch, plane, 3);
  assert.equal(ru[(1 * 3 + 2) * plane + 4], Math.fround(u[plane + 4]));
  const rtv = sumRepeatedChannels(v, batch, plane, 3);
  let lhs = 0;
  for (let i = 0; i < v.length; i++) lhs += ru[i] * v[i];
  let rhs = 0;
  for (let i = 0; i < u.length; i++) rhs += Math.fround(u[i]) * rtv[i];
  assert.ok(Math.abs(lhs - rhs) < 1e-12 * Math.max(1, Math.abs(lhs)), `${lhs} vs ${rhs}`);
});

Deno.test("loadLpips() rejects images it cannot feed and models without the names", async () => {
  const lpips = await loadLpips(MODEL, { imageShape: [2, 8, 8] });
  try {
    const a = new Float64Array(2 * 64);
    await assert.rejects(() => lpips.value(a, a, 1), TypeError);
    await assert.rejects(() => lpips.value(a, a.slice(1), 1), RangeError);
  } finally {
    await lpips.close();
  }
  await assert.rejects(() => loadLpips(MODEL, { input0: "x" }), /needs inputs "x"/);
  await assert.rejects(() => loadLpips(MODEL, { batchSize: 0 }), RangeError);
});
