import assert from "node:assert/strict";
import { l1Loss, l2Loss, lossByName } from "../../lib/metrics/losses.ts";

Deno.test("l2Loss and l1Loss are per-sample means with matching gradients", async () => {
  const a = Float64Array.from([1, 2, 3, 4, 0, 0]);
  const b = Float32Array.from([1, 0, 0, 4, 1, -2]);
  assert.deepEqual(await l2Loss.value(a, b, 2), Float64Array.from([13 / 3, 5 / 3]));
  assert.deepEqual(await l1Loss.value(a, b, 2), Float64Array.from([5 / 3, 1]));
  const g2 = await l2Loss.grad(a, b, 2);
  assert.deepEqual(g2.grad, Float64Array.from([0, 4 / 3, 2, 0, -2 / 3, 4 / 3]));
  const g1 = await l1Loss.grad(a, b, 2);
  assert.deepEqual(g1.grad, Float64Array.from([0, 1 / 3, 1 / 3, 0, -1 / 3, 1 / 3]));
  // Finite-difference check of the L2 gradient.
  const h = 1e-6;
  const a2 = Float64Array.from(a);
  a2[1] += h;
  const d = ((await l2Loss.value(a2, b, 2))[0] - (await l2Loss.value(a, b, 2))[0]) / h;
  assert.ok(Math.abs(d - g2.grad[1]) < 1e-5);
});

Deno.test("lossByName() knows L2 and L1 and explains LPIPS and unknown names", async () => {
  assert.equal(lossByName("L2"), l2Loss);
  assert.equal(lossByName("L1"), l1Loss);
  assert.throws(() => lossByName("LPIPS"), /LPIPS ONNX/);
  assert.throws(() => lossByName("L3"), /Unknown loss type: "L3"/);
  await assert.rejects(() => l2Loss.value(new Float64Array(3), new Float64Array(2), 1), RangeError);
});
