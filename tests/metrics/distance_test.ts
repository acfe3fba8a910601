import assert from "node:assert/strict";
import {
  gmmExactError,
  l1Distance,
  l2Distance,
  type PerceptualDistance,
  rmsDistance,
  teacherDistance,
} from "../../lib/metrics/distance.ts";
import { normalNoise } from "../../lib/rng.ts";

Deno.test("l2Distance() is the per-sample mean squared difference over C·H·W", () => {
  const a = new Float64Array([0, 0, 0, 0, 1, 2, 3, 4]);
  const b = new Float64Array([1, 1, 1, 1, 1, 2, 3, 0]);
  assert.deepEqual(Array.from(l2Distance(a, b, 2)), [1, 4]);
  // As one sample of 8 values: (4·1 + 16) / 8.
  assert.deepEqual(Array.from(l2Distance(a, b, 1)), [2.5]);
  // Float32 inputs are accumulated in float64.
  const f = l2Distance(new Float32Array([0.1, 0.2]), new Float32Array([0.2, 0.4]), 1)[0];
  const expected = ((Math.fround(0.2) - Math.fround(0.1)) ** 2 +
    (Math.fround(0.4) - Math.fround(0.2)) ** 2) / 2;
  assert.equal(f, expected);
});

Deno.test("rmsDistance() is the root of l2Distance(); l1Distance() the mean absolute value", () => {
  const a = normalNoise(1, 0, 3 * 50);
  const b = normalNoise(1, 1, 3 * 50);
  const l2 = l2Distance(a, b, 3);
  const rms = rmsDistance(a, b, 3);
  const l1 = l1Distance(a, b, 3);
  for (let s = 0; s < 3; s++) {
    assert.equal(rms[s], Math.sqrt(l2[s]));
    let abs = 0;
    for (let i = s * 50; i < (s + 1) * 50; i++) abs += Math.abs(a[i] - b[i]);
    assert.ok(Math.abs(l1[s] - abs / 50) < 1e-15);
    // Mean |x| ≤ RMS(x) (Jensen), and both are positive here.
    assert.ok(l1[s] > 0 && l1[s] <= rms[s]);
  }
  assert.deepEqual(Array.from(l1Distance(a, a, 3)), [0, 0, 0]);
});

Deno.test("gmmExactError() is the per-sample RMSE against the reference solution", () => {
  const reference = normalNoise(2, 0, 4 * 10);
  const output = reference.map((v, i) => v + (i < 10 ? 0 : i < 20 ? 0.5 : i < 30 ? -2 : 0.1));
  const err = gmmExactError(reference, output, 4);
  const expected = [0, 0.5, 2, 0.1];
  for (let s = 0; s < 4; s++) assert.ok(Math.abs(err[s] - expected[s]) < 1e-12, `${err[s]}`);
});

Deno.test("l2Distance() rejects mismatched lengths and batches", () => {
  assert.throws(() => l2Distance(new Float64Array(4), new Float64Array(6), 2), RangeError);
  assert.throws(() => l2Distance(new Float64Array(5), new Float64Array(5), 2), /batch = 2/);
  assert.throws(() => l1Distance(new Float64Array(4), new Float64Array(4), 0), RangeError);
  assert.throws(() => rmsDistance(new Float64Array(0), new Float64Array(0), 1), RangeError);
});

Deno.test("teacherDistance() dispatches to the chosen metric and the perceptual runner", async () => {
  const a = new Float64Array([0, 0, 1, 1]);
  const b = new Float64Array([1, -1, 1, 4]);
  assert.deepEqual(Array.from(await teacherDistance(a, b, { batch: 2 })), [1, 4.5]);
  assert.deepEqual(Array.from(await teacherDistance(a, b, { batch: 2, metric: "l1" })), [1, 1.5]);

  // A real (if simple) perceptual distance: largest absolute difference per sample.
  const calls: number[] = [];
  const maxAbs: PerceptualDistance = {
    distance(x, y, batch) {
      calls.push(batch);
      const size = x.length / batch;
      const out = new Float64Array(batch);
      for (let s = 0; s < batch; s++) {
        for (let i = s * size; i < (s + 1) * size; i++) {
          out[s] = Math.max(out[s], Math.abs(x[i] - y[i]));
        }
      }
      return Promise.resolve(out);
    },
  };
  const lp = await teacherDistance(a, b, { batch: 2, metric: "lpips", perceptual: maxAbs });
  assert.deepEqual(Array.from(lp), [1, 3]);
  assert.deepEqual(calls, [2]);

  await assert.rejects(() => teacherDistance(a, b, { batch: 2, metric: "lpips" }), TypeError);
  await assert.rejects(
    () => teacherDistance(a, b, { batch: 2, metric: "l3" as "l1" }),
    /Metric must be one of l2, l1, lpips: got "l3"/,
  );
  await assert.rejects(
    () => teacherDistance(a, b, { batch: 3, metric: "lpips", perceptual: maxAbs }),
    RangeError,
  );
});
